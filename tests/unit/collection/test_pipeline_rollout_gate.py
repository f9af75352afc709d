"""The rollout gate (``labforge_rollout_gate``, roles/pipeline/tasks/gate.yml) wired into the
real playbook: ``playbooks/pipeline.yml`` runs on a local host with the stub modules of
test_pipeline_run.py (the stub ``ilab_model_evaluate`` answers scores per model path from
HOST/eval-scores.json). The tests check what the trainer is asked to evaluate (one mmlu_branch
run: candidate as --model, the checkpoint in service as --base-model; mt_bench: one run per
model), what the gate decides with both scores, that a held-back candidate leaves the model in
service and its record alone, that only fail_fleet fails the run, and that a dry run predicts
and never fails. Without a gate nothing is evaluated (test_pipeline_run's module list)."""

import json
import os

import pytest
import yaml

from test_pipeline_run import ROOT, args_of, run

MCQ = os.path.join(ROOT, 'inventories', 'local', 'files', 'rollout-gate', 'haiku-mcq.jsonl')
TAXONOMY_QNA = os.path.join(ROOT, 'inventories', 'local', 'files', 'taxonomy', 'compositional_skills', 'writing',
                            'freeform', 'haiku', 'qna.yaml')
GATE = {'benchmark': 'mmlu_branch', 'questions': MCQ, 'questions_limit': 4, 'min_score': 0.2,
        'options': {'few_shots': 2, 'batch_size': '1', 'skip_server': True}}
DECIDE = 'Decide with the rollout gate (%s)'
SAY_WHY = 'Say why the candidate is not rolled out to lf-a'
STOP = 'Stop the run (labforge_rollout_gate.fail_fleet)'


def gate(**kw):
    g = dict(GATE)
    g.update(kw)
    return {'labforge_rollout_gate': dict((k, v) for k, v in g.items() if v is not None)}


def host(tmp, *parts):
    return os.path.join(str(tmp / 'host'), *parts)


def record_path(tmp):
    return str(tmp / 'varlib' / 'rollout' / 'serving-main.json')


def in_service(tmp, trained_host='lf-a'):
    """A model in service before this run, trained on TRAINED_HOST (its checkpoint on lf-a's disk)."""
    os.makedirs(host(tmp, 'old', 'hf'))
    with open(host(tmp, 'old', 'model.gguf'), 'w') as f:
        f.write('GGUF old')
    os.makedirs(os.path.dirname(record_path(tmp)))
    record = {'model_path': str(tmp / 'models' / 'old' / 'model.gguf'), 'endpoint': 'http://127.0.0.1:8000/v1',
              'serve': {}, 'trained': {'host': trained_host, 'hf_path': host(tmp, 'old', 'hf'),
                                       'gguf_path': host(tmp, 'old', 'model.gguf')}}
    with open(record_path(tmp), 'w') as f:
        f.write(json.dumps(record, indent=4) + '\n')
    with open(record_path(tmp)) as f:
        return f.read()


def scores(tmp, **kw):
    os.makedirs(host(tmp), exist_ok=True)
    with open(host(tmp, 'eval-scores.json'), 'w') as f:
        json.dump(kw, f)


def decision(names, benchmark='mmlu_branch'):
    return names[DECIDE % benchmark]['ansible_facts']['labforge_rollout_gate_result']


def served_main(calls):
    return [a for a in args_of(calls, 'ilab_model_serve') if a['name'] == 'main']


def test_the_local_mcq_set_is_built_from_the_taxonomys_own_seed_examples():
    """haiku-mcq.jsonl: for each seed question of the local haiku skill, its own seed answer among
    three other seed answers (lines joined with ' / '); the syllable rule of the task description."""
    with open(TAXONOMY_QNA) as f:
        qna = yaml.safe_load(f)
    seeds = dict((s['question'], ' / '.join(line.strip() for line in s['answer'].strip().splitlines()))
                 for s in qna['seed_examples'])
    with open(MCQ) as f:
        rows = [json.loads(line) for line in f]
    from_seeds = [r for r in rows if r['question'].split(' Which')[0] in seeds]
    assert len(from_seeds) == len(seeds) and len(rows) == len(seeds) + 1
    for r in from_seeds:
        assert r['choices']['ABCD'.index(r['answer'])] == seeds[r['question'].split(' Which')[0]], r
        assert set(r['choices']) <= set(seeds.values()) and len(set(r['choices'])) == 4, r
    rule, = [r for r in rows if r not in from_seeds]
    assert rule['choices']['ABCD'.index(rule['answer'])] == 'five, seven and five'
    assert 'five, seven and five' in qna['task_description']
    assert sorted(set(r['answer'] for r in rows)) == ['A', 'B', 'C', 'D']


def test_first_rollout_evaluates_the_candidate_alone_and_records_its_checkpoint(tmp_path):
    """Nothing in service: one mmlu_branch run with the candidate as both models (only min_score
    counts); it passes, is rolled out, and the record names its checkpoint on the trainer."""
    calls, names = run(tmp_path, extra=gate())
    ev, = args_of(calls, 'ilab_model_evaluate')
    with open(MCQ) as f:
        mcq = [json.loads(line) for line in f]
    assert ev == {'name': 'rollout-gate', 'benchmark': 'mmlu_branch', 'model': host(tmp_path, 'trained', 'hf'),
                  'base_model': host(tmp_path, 'trained', 'hf'), 'mcq_questions': mcq, 'questions_limit': 4,
                  'few_shots': 2, 'batch_size': '1', 'skip_server': True, 'user': 'nobody',
                  'venv': '/nonexistent/venv'}
    d = decision(names)
    assert d['rollout'] is True and d['score'] == 0.5 and d['current_score'] is None and d['in_service'] is None, d
    assert len(served_main(calls)) == 1
    with open(record_path(tmp_path)) as f:
        assert json.load(f)['trained'] == {'host': 'lf-a', 'hf_path': host(tmp_path, 'trained', 'hf'),
                                           'gguf_path': host(tmp_path, 'trained', 'model.gguf')}
    assert names[SAY_WHY].get('skipped') and names[STOP].get('skipped')


@pytest.mark.parametrize('min_score, tolerance, rollout, words', [
    (1.5, None, False, 'below the minimum 1.5 (model in service: 0.6)'),       # above the maximum score
    (None, 0.05, False, 'below the model in service (0.6) by more than the tolerance 0.05'),
    (None, 0.2, True, 'passes (model in service: 0.6, tolerance 0.2'),
])
def test_the_gate_compares_with_the_checkpoint_in_service(tmp_path, min_score, tolerance, rollout, words):
    before = in_service(tmp_path)
    scores(tmp_path, scores={host(tmp_path, 'trained', 'hf'): 0.5, host(tmp_path, 'old', 'hf'): 0.6})
    calls, names = run(tmp_path, extra=gate(min_score=min_score, tolerance=tolerance))
    ev, = args_of(calls, 'ilab_model_evaluate')
    assert (ev['model'], ev['base_model']) == (host(tmp_path, 'trained', 'hf'), host(tmp_path, 'old', 'hf'))
    d = decision(names)
    assert d['rollout'] is rollout and words in d['reason'], d
    assert (d['score'], d['current_score'], d['in_service']) == (0.5, 0.6, host(tmp_path, 'old', 'hf'))
    with open(record_path(tmp_path)) as f:
        after = f.read()
    if rollout:
        assert len(served_main(calls)) == 1 and json.loads(after)['trained']['hf_path'] == host(tmp_path, 'trained', 'hf')
        assert names[SAY_WHY].get('skipped')
    else:
        # not rolled out: the server is not touched, the record still names the model in service
        assert served_main(calls) == [] and args_of(calls, 'ilab_model_chat') == [] and after == before
        msg = names[SAY_WHY]['msg']
        assert 'NOT rolled out to lf-a' in msg and 'Candidate score 0.5, model in service 0.6' in msg, msg
        assert 'The previous model keeps serving.' in msg
    assert names[STOP].get('skipped')


def test_fail_fleet_fails_the_run_when_the_candidate_is_held_back(tmp_path):
    before = in_service(tmp_path)
    calls, names = run(tmp_path, extra=gate(min_score=1.5, fail_fleet=True), fail_ok=True)
    assert names[STOP].get('failed'), names[STOP]
    assert 'stopped the rollout at lf-a' in names[STOP]['msg'] and 'below the minimum 1.5' in names[STOP]['msg']
    assert served_main(calls) == []
    with open(record_path(tmp_path)) as f:
        assert f.read() == before


def test_a_checkpoint_of_another_trainer_is_not_compared(tmp_path):
    in_service(tmp_path, trained_host='lf-elsewhere')
    calls, names = run(tmp_path, extra=gate())
    ev, = args_of(calls, 'ilab_model_evaluate')
    assert ev['base_model'] == ev['model'] == host(tmp_path, 'trained', 'hf')
    assert decision(names)['current_score'] is None and decision(names)['rollout'] is True


def test_mt_bench_evaluates_each_model_with_the_same_judge(tmp_path):
    in_service(tmp_path)
    scores(tmp_path, scores={host(tmp_path, 'trained', 'model.gguf'): 6.0, host(tmp_path, 'old', 'model.gguf'): 7.0},
           error_rate=0.0)
    judge = '/srv/models/judge.gguf'
    calls, names = run(tmp_path, extra={'labforge_rollout_gate': {
        'benchmark': 'mt_bench', 'judge': judge, 'questions_limit': 3, 'tolerance': 0.5, 'max_error_rate': 0.2,
        'options': {'backend': 'llama-cpp', 'judge_backend': 'llama-cpp', 'max_workers': '1'}}})
    evs = args_of(calls, 'ilab_model_evaluate')
    assert [(e['benchmark'], e['model'], e['judge'], e['questions_limit'], e['max_workers']) for e in evs] == [
        ('mt_bench', host(tmp_path, 'trained', 'model.gguf'), judge, 3, '1'),
        ('mt_bench', host(tmp_path, 'old', 'model.gguf'), judge, 3, '1')]
    assert all('base_model' not in e and 'mcq_questions' not in e for e in evs)
    d = decision(names, 'mt_bench')
    assert d['rollout'] is False and 'below the model in service (7) by more than the tolerance 0.5' in d['reason']
    assert served_main(calls) == []


def test_a_dry_run_predicts_the_gate_and_never_fails(tmp_path):
    """Before the model exists the gate is predicted to pass; once a model is in service and its
    scores are stored, a dry run decides with them - an impossible gate with fail_fleet then says
    the candidate would be held back, and still does not fail."""
    calls, names = run(tmp_path, check=True, extra=gate(min_score=1.5, fail_fleet=True))
    d = decision(names)
    assert d['predicted'] is True and d['rollout'] is True and d['reason'].startswith('dry run: '), d
    assert args_of(calls, 'ilab_model_evaluate') == [] and names[STOP].get('skipped')
    run(tmp_path, extra=gate())                       # the model is trained and in service
    os.unlink(str(tmp_path / 'calls.jsonl'))
    calls, names = run(tmp_path, check=True, extra=gate(min_score=1.5, fail_fleet=True))
    ev, = [c for c in calls if c['module'] == 'ilab_model_evaluate']
    assert ev['check'] is True
    d = decision(names)
    assert d['rollout'] is False and not d.get('predicted') and 'below the minimum 1.5' in d['reason'], d
    assert names[STOP].get('skipped') and 'NOT rolled out' in names[SAY_WHY]['msg']
    assert [c for c in calls if c['module'] == 'ilab_model_serve' and c['args']['name'] == 'main'] == []
