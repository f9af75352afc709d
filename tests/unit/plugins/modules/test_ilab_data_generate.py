# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.ilab_data_generate.

The runner's process methods (start/run) are replaced by fakes that record
the exact command line and write what ``ilab data generate`` 0.26.1 writes (a
dated directory with train_/test_/messages_/skills_train_msgs_ jsonl files);
argv building, fingerprints, manifests and decisions are the real code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd

import pytest

from ansible.module_utils import basic

from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_runner
from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.modules import ilab_data_generate as mod

from ilab_testlib import Exit, Fail, raiser, run_main


SKILL = '''version: 2
task_description: Write haiku.
created_by: labforge
seed_examples:
  - question: Write a haiku about the sea.
    answer: Waves fold into foam
'''


def write(path, text):
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        os.makedirs(d)
    with open(path, 'w') as f:
        f.write(text)


class FakeJob(object):
    def __init__(self, result, status_path):
        self.result = result
        self.pid = 999999999
        self.status_path = status_path

    def wait(self, timeout=None):
        return self.result


class Bed(object):
    """A home, a venv path, a config and a taxonomy in tmp_path; fakes for ilab."""

    @staticmethod
    def patched(fake):
        """A function for the class attribute (called with the runner as first argument)."""
        def method(runner, *args, **kwargs):
            return fake(runner, *args, **kwargs)
        return method

    def __init__(self, tmp_path, monkeypatch):
        self.tmp = str(tmp_path)
        self.home = os.path.join(self.tmp, 'home')
        self.venv = os.path.join(self.tmp, 'venv')
        os.makedirs(os.path.join(self.venv, 'bin'))
        self.tax = os.path.join(self.home, 'taxonomy')
        write(os.path.join(self.tax, 'compositional_skills', 'haiku', 'qna.yaml'), SKILL)
        self.teacher = os.path.join(self.tmp, 'teacher.gguf')
        write(self.teacher, 'GGUF teacher weights')
        self.out = os.path.join(self.tmp, 'datasets')
        self.cfg = os.path.join(self.home, '.config', 'instructlab', 'config.yaml')
        write(self.cfg, 'generate:\n  pipeline: full\n  sdg_scale_factor: 30\n  taxonomy_base: empty\n'
                        '  taxonomy_path: %s\n  output_dir: %s\n  teacher:\n    model_path: %s\n'
                        % (self.tax, self.out, self.teacher))
        self.calls = []
        self.rc = 0
        self.rows = 10
        me = pwd.getpwuid(os.getuid())
        fake_pw = pwd.struct_passwd((me.pw_name, 'x', me.pw_uid, me.pw_gid, '', self.home, '/bin/sh'))
        monkeypatch.setattr(_ilab_runner.pwd, 'getpwnam', lambda name: fake_pw)
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'check_venv', lambda self: None)
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'ilab_version', lambda self: '0.26.1')
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'start', self.patched(self.fake_start))
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'run', self.patched(self.fake_run))
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', raiser(Exit))
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', raiser(Fail))

    def fake_run(self, runner, step, argv, **kw):
        self.calls.append(('run', list(argv), kw))
        return _ilab_runner.IlabResult(step, argv, rc=1, stdout='', stderr='not a git repo')

    def fake_start(self, runner, step, argv, env=None, cwd=None, log_name=None, **kw):
        self.calls.append(('start', list(argv), dict(env=env, cwd=cwd, log_name=log_name)))
        out = argv[argv.index('--output-dir') + 1]
        log = runner.log_path_for(log_name)
        runner.ensure_dir(os.path.dirname(log))
        write(log, 'INFO generating\nfailed to generate data with exception: boom\n' if self.rc else 'INFO ok\n')
        if self.rc == 0 or self.rc == -9:
            d = os.path.join(out, '2026-11-25_205636')
            s = '2026-11-25T20_56_50'
            rows = self.rows if self.rc == 0 else 3
            write(os.path.join(d, 'train_%s.jsonl' % s), '{"user": "q", "assistant": "a"}\n' * rows)
            if self.rc == 0:
                write(os.path.join(d, 'test_%s.jsonl' % s), '{"user": "q", "assistant": "a"}\n' * 5)
                write(os.path.join(d, 'messages_%s.jsonl' % s), '{"messages": []}\n' * rows)
                write(os.path.join(d, 'skills_train_msgs_%s.jsonl' % s), '{"messages": []}\n' * 30)
                os.makedirs(os.path.join(d, 'preprocessed_%s' % s))
        res = _ilab_runner.IlabResult(step, argv, rc=self.rc, log_path=log,
                                      log_tail='failed to generate data with exception: boom' if self.rc else '',
                                      duration=12.0)
        return FakeJob(res, log[:-4] + '.status.json')

    def args(self, **kw):
        a = dict(user='ignored', venv=self.venv, model=self.teacher, pipeline='simple',
                 sdg_scale_factor=2, taxonomy_base='empty', output_dir=self.out)
        a.update(kw)
        return a

    def run(self, check=False, diff=False, **kw):
        args = self.args(**kw)
        return run_main(mod.main, args, check, diff)

    def starts(self):
        return [c for c in self.calls if c[0] == 'start']


@pytest.fixture
def bed(tmp_path, monkeypatch):
    return Bed(tmp_path, monkeypatch)


def expected_argv(bed, staging, **over):
    v = dict(pipeline='simple', model=bed.teacher, sf='2', tax=bed.tax, base='empty')
    v.update(over)
    return [os.path.join(bed.venv, 'bin', 'ilab'), '--config', bed.cfg, 'data', 'generate',
            '--pipeline', v['pipeline'], '--model', v['model'], '--sdg-scale-factor', v['sf'],
            '--taxonomy-path', v['tax'], '--taxonomy-base', v['base'], '--output-dir', staging]


def test_first_run_generates_with_exact_command(bed):
    kind, r = bed.run(diff=True)
    assert kind == 'exit', r
    assert r['changed'] and r['generated']
    (dummy, argv, kw), = bed.starts()
    staging = argv[argv.index('--output-dir') + 1]
    assert os.path.basename(staging).startswith('.generate-%s.labforge-tmp-' % fpu.short(r['fingerprint']))
    assert argv == expected_argv(bed, staging)
    assert kw['log_name'] == 'ilab-data-generate-' + fpu.short(r['fingerprint'])
    final = os.path.join(bed.out, 'generate-' + fpu.short(r['fingerprint']))
    assert r['dataset_dir'] == final
    assert r['files']['train'] == os.path.join(final, 'train_2026-11-25T20_56_50.jsonl')
    assert r['files']['knowledge_train_msgs'] is None
    assert r['rows'] == dict(train=10, test=5, messages=10, skills_train_msgs=30)
    assert not os.path.exists(staging)
    m = fpu.read_manifest(final)
    assert m['fingerprint'] == r['fingerprint'] and m['rows']['train'] == 10
    assert m['inputs']['teacher']['digest'] == _fs.path_digest(bed.teacher)
    assert m['inputs']['ilab_version'] == '0.26.1'
    assert fpu.latest_dataset(bed.out)['dir'] == final
    assert r['diff']['before'] == dict(dataset_dir=None)
    assert r['diff']['after']['dataset_dir'] == final


def test_same_inputs_unchanged_and_returns_existing_paths(bed):
    dummy, first = bed.run()
    kind, r = bed.run(diff=True)
    assert kind == 'exit' and not r['changed'] and not r['generated']
    assert len(bed.starts()) == 1
    assert r['files'] == first['files'] and r['rows'] == first['rows']
    assert r['diff']['before']['dataset_dir'] == r['diff']['after']['dataset_dir']


@pytest.mark.parametrize('change', ['param', 'taxonomy', 'teacher', 'version', 'teacher settings'])
def test_changed_inputs_regenerate(bed, change, monkeypatch):
    dummy, first = bed.run()
    kw = {}
    if change == 'teacher settings':   # config.yaml's generate section shapes the result too
        with open(bed.cfg, 'a') as f:
            f.write('    llama_cpp:\n      max_ctx_size: 8192\n')
    elif change == 'param':
        kw['sdg_scale_factor'] = 5
    elif change == 'taxonomy':
        write(os.path.join(bed.tax, 'compositional_skills', 'haiku', 'qna.yaml'), SKILL + '# edited\n')
    elif change == 'teacher':
        write(bed.teacher, 'other teacher weights')
    else:
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'ilab_version', lambda self: '0.26.2')
    kind, r = bed.run(**kw)
    assert kind == 'exit' and r['changed'] and r['generated']
    assert r['fingerprint'] != first['fingerprint']
    assert r['dataset_dir'] != first['dataset_dir']
    assert len(bed.starts()) == 2
    assert fpu.latest_dataset(bed.out)['dir'] == r['dataset_dir']
    assert os.path.isdir(first['dataset_dir'])  # the earlier result is kept


def test_force_regenerates_in_place(bed):
    dummy, first = bed.run()
    kind, r = bed.run(force=True)
    assert kind == 'exit' and r['changed'] and len(bed.starts()) == 2
    assert r['dataset_dir'] == first['dataset_dir']
    assert [e for e in os.listdir(bed.out) if e.startswith('.') or 'tmp' in e] == []


def test_check_mode_runs_nothing(bed):
    kind, r = bed.run(check=True, diff=True)
    assert kind == 'exit' and r['changed'] and r['generated'] and bed.starts() == []
    assert not os.path.exists(r['dataset_dir'])
    assert '--output-dir' in r['cmd']
    bed.run()
    kind, r = bed.run(check=True)
    assert kind == 'exit' and not r['changed'] and len(bed.starts()) == 1


def test_back_to_earlier_inputs_only_moves_latest(bed):
    dummy, a = bed.run()
    bed.run(sdg_scale_factor=5)
    kind, r = bed.run()
    assert kind == 'exit' and r['changed'] and not r['generated']
    assert len(bed.starts()) == 2
    assert fpu.latest_dataset(bed.out)['dir'] == a['dataset_dir']


def test_failure_reports_log_tail_and_leaves_nothing(bed):
    bed.rc = 1
    kind, r = bed.run()
    assert kind == 'fail'
    assert 'boom' in r['msg'] and r['rc'] == 1 and r['step'] == 'ilab data generate'
    assert os.listdir(bed.out) == []
    assert fpu.latest_dataset(bed.out) is None


def test_killed_run_is_not_accepted_and_rerun_regenerates(bed):
    bed.rc = -9  # killed midway: a partial train file only
    kind, r = bed.run()
    assert kind == 'fail' and r['rc'] == -9
    assert os.listdir(bed.out) == []
    # a leftover of a killed *module* (it holds no lock any more) is removed by the next run
    leftover = os.path.join(bed.out, '.generate-%s.labforge-tmp-dead01' % fpu.short(r['fingerprint']))
    write(os.path.join(leftover, 'x', 'train_x.jsonl'), '{}\n')
    bed.rc = 0
    kind, r2 = bed.run()
    assert kind == 'exit' and r2['generated'] and r2['rows']['train'] == 10
    assert not os.path.exists(leftover)


def test_empty_train_file_fails(bed):
    bed.rows = 0
    kind, r = bed.run()
    assert kind == 'fail' and 'min_rows' in r['msg']
    assert os.listdir(bed.out) == []


def test_defaults_come_from_the_config(bed):
    kind, r = bed.run(model=None, pipeline=None, sdg_scale_factor=None, taxonomy_base=None, output_dir=None)
    assert kind == 'exit', r
    (dummy, argv, dummy2), = bed.starts()
    staging = argv[argv.index('--output-dir') + 1]
    assert argv == expected_argv(bed, staging, pipeline='full', sf='30')
    assert r['dataset_dir'].startswith(bed.out + os.sep)


def test_endpoint_teacher_and_optional_flags(bed, monkeypatch):
    asked = []
    monkeypatch.setattr(mod.srv, 'endpoint_models', lambda url: asked.append(url) or (True, ['/m/teacher.gguf']))
    kind, r = bed.run(endpoint_url='http://127.0.0.1:8000/v1', model='teacher-model', gpus=4, num_cpus=2,
                      chunk_word_count=800, server_ctx_size=4096, batch_size=0, max_num_tokens=512,
                      model_family='mixtral', taxonomy_base='origin/main')
    assert kind == 'exit', r
    (dummy, argv, dummy2), = bed.starts()
    staging = argv[argv.index('--output-dir') + 1]
    assert argv == expected_argv(bed, staging, model='teacher-model', base='origin/main')[:9] + [
        '--endpoint-url', 'http://127.0.0.1:8000/v1', '--sdg-scale-factor', '2',
        '--taxonomy-path', bed.tax, '--taxonomy-base', 'origin/main', '--output-dir', staging,
        '--gpus', '4', '--num-cpus', '2', '--chunk-word-count', '800', '--server-ctx-size', '4096',
        '--batch-size', '0', '--max-num-tokens', '512', '--model-family', 'mixtral']
    assert r['inputs']['teacher'] == dict(name='teacher-model', served=['/m/teacher.gguf'])
    assert asked == ['http://127.0.0.1:8000/v1']
    # the base ref was resolved with git (here: not a repository -> None)
    git = [c for c in bed.calls if c[0] == 'run']
    assert git[0][1] == ['git', '-C', bed.tax, 'rev-parse', '--verify', 'origin/main^{commit}']
    assert git[0][2]['changes_state'] is False


def test_missing_teacher_file_fails_early(bed):
    kind, r = bed.run(model=os.path.join(bed.tmp, 'nope.gguf'))
    assert kind == 'fail' and 'does not exist' in r['msg'] and bed.starts() == []


def test_another_model_behind_the_endpoint_generates_again(bed, monkeypatch):
    served = ['/m/teacher-a.gguf']
    monkeypatch.setattr(mod.srv, 'endpoint_models', lambda url: (True, list(served)))
    args = dict(endpoint_url='http://127.0.0.1:8000/v1', model='teacher-model')
    dummy, first = bed.run(**args)
    dummy, same = bed.run(**args)
    assert not same['generated']
    served[:] = ['/m/teacher-b.gguf']
    dummy, r = bed.run(**args)
    assert r['generated'] and r['fingerprint'] != first['fingerprint']


def test_unreachable_endpoint_fails_but_check_mode_predicts(bed, monkeypatch):
    monkeypatch.setattr(mod.srv, 'endpoint_models', lambda url: (False, 'Connection refused'))
    args = dict(endpoint_url='http://127.0.0.1:8000/v1', model='teacher-model')
    kind, r = bed.run(**args)
    assert kind == 'fail' and 'endpoint_url http://127.0.0.1:8000/v1' in r['msg'] and 'refused' in r['msg']
    kind, r = bed.run(check=True, **args)
    assert kind == 'exit' and r['generated'] and bed.starts() == []
