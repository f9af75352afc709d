"""A wrong pipeline input stops ``labforge.instructlab.pipeline`` before any host changes.

The playbook runs for real (``ansible-playbook``, local connection) on a small
inventory - one host teaches and trains, one serves - with one wrong
``labforge_*`` setting on one host. Each run must fail with a message naming
the variable, and no task outside the playbook's first play (the input check,
which changes nothing) may have run on any host: the other host, whose inputs
are right, is stopped too.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(ROOT, 'playbooks', 'pipeline.yml')
CHECK_PLAY = "Check the pipeline's inputs"

GOOD = {
    'labforge_teacher_model': {'source': 'path', 'src': '/nonexistent/teacher.gguf'},
    'labforge_student_model': {'source': 'path', 'src': '/nonexistent/student'},
    'labforge_taxonomy_dir': '/nonexistent/taxonomy',
}

# (case, host the setting is on, variables, what the message must contain)
WRONG = [
    ('train-pipeline', 'lf-a', {'labforge_train': {'pipeline': 'foo'}}, ['labforge_train', 'pipeline', 'foo']),
    ('serve-backend', 'lf-b', {'labforge_serve': {'backend': 'bar'}}, ['labforge_serve', 'backend', 'bar']),
    ('serve-port', 'lf-b', {'labforge_serve': {'port': 'x'}}, ['labforge_serve', 'port']),
    ('generate-string', 'lf-a', {'labforge_generate': 'full'}, ['labforge_generate']),
    ('serial-mapping', 'lf-b', {'labforge_serial': {'hosts': 2}}, ['labforge_serial']),
    ('serial-word', 'lf-a', {'labforge_serial': 'half'}, ['labforge_serial']),
    ('teacher-key', 'lf-a', {'labforge_teacher_serve': {'prot': 8100}}, ['labforge_teacher_serve', 'prot']),
    ('verify-choice', 'lf-b', {'labforge_verify': 'always'}, ['labforge_verify', 'always']),
    ('student-missing', 'lf-a', {'labforge_student_model': {}}, ['labforge_student_model']),
    # the rollout gate: the specification (types, choices, keys), then what it cannot say (validate.yml)
    ('gate-benchmark', 'lf-b', {'labforge_rollout_gate': {'benchmark': 'mmlu'}}, ['labforge_rollout_gate', 'benchmark', 'mmlu']),
    ('gate-key', 'lf-b', {'labforge_rollout_gate': {'benchmark': 'mmlu_branch', 'threshold': 0.5}},
     ['labforge_rollout_gate', 'threshold']),
    ('gate-min-score', 'lf-b', {'labforge_rollout_gate': {'benchmark': 'mmlu_branch', 'min_score': 'high'}},
     ['labforge_rollout_gate', 'min_score']),
    ('gate-options-key', 'lf-b', {'labforge_rollout_gate': {'benchmark': 'mmlu_branch', 'options': {'judge': 'x'}}},
     ['labforge_rollout_gate', 'options', 'judge']),
    ('gate-no-benchmark', 'lf-b', {'labforge_rollout_gate': {'min_score': 0.5}},
     ['labforge_rollout_gate.benchmark is required']),
    ('gate-no-questions', 'lf-b', {'labforge_rollout_gate': {'benchmark': 'mmlu_branch'}},
     ['mmlu_branch needs exactly one of labforge_rollout_gate.questions', 'labforge_rollout_gate.tasks_dir']),
    ('gate-judge', 'lf-b', {'labforge_rollout_gate': {'benchmark': 'mt_bench', 'judge': 'judge.gguf'}},
     ['mt_bench needs labforge_rollout_gate.judge']),
    ('gate-tolerance', 'lf-b', {'labforge_rollout_gate': {'benchmark': 'mmlu_branch', 'questions': '/q.jsonl',
                                                          'tolerance': -0.1, 'max_error_rate': 0.5}},
     ['labforge_rollout_gate.tolerance must not be negative', 'labforge_rollout_gate.max_error_rate is for mt_bench']),
    ('gate-limit', 'lf-b', {'labforge_rollout_gate': {'benchmark': 'mt_bench', 'judge': '/j.gguf', 'questions_limit': 0}},
     ['labforge_rollout_gate.questions_limit must be at least 1']),
    ('gate-simple-trainer', 'lf-b', {'labforge_rollout_gate': {'benchmark': 'mmlu_branch', 'questions': '/q.jsonl'},
                                     'lf-a': {'labforge_train': {'pipeline': 'simple'}}},
     ['labforge_rollout_gate', 'labforge_train.pipeline is simple on lf-a']),
    # a setting that is right alone, wrong with the trainer's: vLLM serves no GGUF
    ('vllm-from-simple', 'lf-b', {'labforge_serve': {'backend': 'vllm'}, 'lf-a': {'labforge_train': {'pipeline': 'simple'}}},
     ['labforge_serve.backend', 'vllm', 'labforge_train.pipeline', 'simple', 'lf-a']),
]


def inventory(host, wrong):
    hosts = {'lf-a': dict(GOOD), 'lf-b': {}}
    wrong = dict(wrong)
    for other in ('lf-a', 'lf-b'):   # what another host of the case sets
        hosts[other].update(wrong.pop(other, {}))
    hosts[host].update(wrong)
    for h in hosts.values():
        h['ansible_connection'] = 'local'
        h['ansible_python_interpreter'] = sys.executable
    return {'instructlab': {'children': {
        'instructlab_teachers': {'hosts': {'lf-a': hosts['lf-a']}},
        'instructlab_trainers': {'hosts': {'lf-a': None}},
        'instructlab_servers': {'hosts': {'lf-b': hosts['lf-b']}}}}}


def run(tmp_path, host, wrong):
    coll = tmp_path / 'collections' / 'ansible_collections' / 'labforge'
    coll.mkdir(parents=True)
    os.symlink(ROOT, str(coll / 'instructlab'))
    inv = tmp_path / 'hosts.yml'
    inv.write_text(yaml.safe_dump(inventory(host, wrong)))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / 'collections'),
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'), ANSIBLE_HOME=str(tmp_path / 'home'),
               ANSIBLE_RETRY_FILES_ENABLED='0')
    env.pop('ANSIBLE_CALLBACKS_ENABLED', None)
    env.pop('ANSIBLE_CONFIG', None)
    bindir = os.path.dirname(sys.executable)
    proc = subprocess.run([os.path.join(bindir, 'ansible-playbook'), '-i', str(inv), PLAYBOOK],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False, timeout=300)
    try:
        data = json.loads(proc.stdout[proc.stdout.index('{'):])
    except ValueError:
        pytest.fail('no JSON result (rc=%s):\n%s\n%s' % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc, data


@pytest.mark.parametrize('case,host,wrong,words', WRONG, ids=[w[0] for w in WRONG])
def test_a_wrong_input_is_refused_before_any_host_changes(tmp_path, case, host, wrong, words):
    proc, data = run(tmp_path, host, wrong)
    assert proc.returncode != 0, proc.stdout[-3000:]
    ran, failed = [], []
    for play in data['plays']:
        for task in play['tasks']:
            for h, res in task['hosts'].items():
                if play['play']['name'] != CHECK_PLAY and not res.get('skipped'):
                    ran.append((play['play']['name'], task['task']['name'], h))
                if res.get('failed'):
                    # a loop's message is in its items
                    items = [str(r.get('msg', '')) for r in res.get('results') or []]
                    failed.append((h, ' '.join([str(res.get('msg', ''))] + items)))
    assert ran == [], 'tasks ran past the input check: %s' % ran
    assert [h for h, _m in failed] == [host], failed
    msg = str(failed[0][1])
    missing = [w for w in words if w not in msg]
    assert missing == [], msg
    assert data['stats'][host]['failures'] == 1


def test_right_inputs_pass_the_check(tmp_path):
    """The same inventory with nothing wrong passes the check play (and then
    goes on: the local hosts have no InstructLab, so a later play fails)."""
    proc, data = run(tmp_path, 'lf-a', {})
    check = [p for p in data['plays'] if p['play']['name'] == CHECK_PLAY][0]
    failed = [(t['task']['name'], h, r.get('msg')) for t in check['tasks'] for h, r in t['hosts'].items()
              if r.get('failed')]
    assert failed == []
    assert len(data['plays']) > 1


@pytest.mark.parametrize('gate', [
    {'benchmark': 'mmlu_branch', 'questions': '/q.jsonl', 'questions_limit': 4, 'min_score': 1.5,
     'tolerance': 0.05, 'fail_fleet': True, 'options': {'few_shots': 2, 'batch_size': '1', 'skip_server': True}},
    {'benchmark': 'mt_bench', 'judge': '/j.gguf', 'max_error_rate': 0.1, 'options': {'judge_backend': 'vllm'}},
], ids=['mmlu_branch', 'mt_bench'])
def test_a_right_rollout_gate_passes_the_check(tmp_path, gate):
    """min_score above the benchmark's maximum is allowed: a gate nothing passes."""
    proc, data = run(tmp_path, 'lf-b', {'labforge_rollout_gate': gate})
    check = [p for p in data['plays'] if p['play']['name'] == CHECK_PLAY][0]
    failed = [(t['task']['name'], h, r.get('msg')) for t in check['tasks'] for h, r in t['hosts'].items()
              if r.get('failed')]
    assert failed == []
    ran = [t['task']['name'] for t in check['tasks'] if 'lf-b' in t['hosts'] and not t['hosts']['lf-b'].get('skipped')]
    assert any('Check labforge_rollout_gate' in n for n in ran), ran
