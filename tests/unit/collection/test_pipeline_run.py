"""The thin playbook and the pipeline role run end to end on a local host.

``playbooks/pipeline.yml`` runs for real (``ansible-playbook``, local
connection) with the collection's ``ilab_*``, ``gpu_info`` and
``ilab_endpoint_info`` modules replaced by stubs that log the arguments they
get and answer what the real ones answer (``job_wait`` is the real one: it
waits for the stub training started with ``async``). The tests check the
wiring the molecule scenarios otherwise only show in containers:

* every ``ilab_*`` module gets ``user`` and ``venv`` once, from the role's
  ``module_defaults`` for the action group ``labforge.instructlab.ilab``;
* the settings the InstructLab configuration keeps go to ``ilab_config``
  only (``ilab_data_generate`` and ``ilab_model_train`` read them there);
* a dry run whose configuration change touches the train section predicts
  the training (``force``), as it does for a changed dataset;
* the logs are looked for in the service user's home that ``ilab_config``
  found, and the rollout records the served model in the role's root-only
  directory.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
STUBBED = ('gpu_info', 'ilab_config', 'ilab_data_generate', 'ilab_endpoint_info', 'ilab_info', 'ilab_model_chat',
           'ilab_model_convert', 'ilab_model_download', 'ilab_model_evaluate', 'ilab_model_serve',
           'ilab_model_train', 'ilab_taxonomy')
# The real ones: job_wait waits for the stub training, run_state compares and records the run.
REAL = ('job_wait', 'run_state')
ILAB_GROUP = ('ilab_config', 'ilab_data_generate', 'ilab_info', 'ilab_model_chat', 'ilab_model_convert',
              'ilab_model_download', 'ilab_model_evaluate', 'ilab_model_serve', 'ilab_model_train', 'ilab_taxonomy')

STUB = r'''#!/usr/bin/python
import json, os, sys
from ansible.module_utils.basic import _load_params

NAME, LOG, HOST, CHANGED_KEYS = %r, %r, %r, %r


def main():
    p = _load_params()
    args = dict((k, v) for k, v in p.items() if not k.startswith('_ansible'))
    check = bool(p.get('_ansible_check_mode'))
    with open(LOG, 'a') as f:
        f.write(json.dumps({'module': NAME, 'check': check, 'args': args}, sort_keys=True) + '\n')
    out = {'changed': False}
    if NAME == 'gpu_info':
        out['ansible_facts'] = {'gpu_info': {'gpus': []}}
    elif NAME == 'ilab_config':
        out.update(config_path=HOST + '/home/.config/instructlab/config.yaml',
                   changed_keys=CHANGED_KEYS if check else [], changed=bool(check and CHANGED_KEYS))
    elif NAME == 'ilab_model_download':
        out.update(path=HOST + '/models/' + args['name'])
    elif NAME == 'ilab_model_serve':
        out.update(endpoint='http://127.0.0.1:%%s/v1' %% args['port'], changed=True)
    elif NAME == 'ilab_taxonomy':
        out.update(taxonomy_path=HOST + '/taxonomy')
    elif NAME == 'ilab_data_generate':
        out.update(dataset_dir=HOST + '/datasets/1')
    elif NAME == 'ilab_model_train':
        out.update(changed=bool(args.get('force')))
        # a real run trains; a dry run returns the stored result when there is one
        if not check or os.path.exists(HOST + '/export/model.gguf'):
            if not check:
                os.makedirs(HOST + '/export', exist_ok=True)
                with open(HOST + '/export/model.gguf', 'w') as f:
                    f.write('GGUF')
                os.makedirs(HOST + '/trained/hf', exist_ok=True)
            out.update(fingerprint='sha256:' + 'ab' * 32, export_path=HOST + '/export/model.gguf',
                       model={'gguf_path': HOST + '/trained/model.gguf', 'hf_path': HOST + '/trained/hf',
                              'format': 'gguf'}, model_dir=HOST + '/trained')
    elif NAME == 'ilab_model_evaluate':
        # scores by model path (HOST/eval-scores.json; 0.5 otherwise); none in a dry run when asked
        scores = {}
        if os.path.exists(HOST + '/eval-scores.json'):
            with open(HOST + '/eval-scores.json') as f:
                scores = json.load(f)
        none = check and scores.get('check_none')
        score = lambda m: None if none else scores.get('scores', {}).get(m, 0.5)
        out.update(changed=bool(none), evaluated=bool(none), benchmark=args['benchmark'], model=args['model'],
                   score=score(args['model']), error_rate=scores.get('error_rate'),
                   base_score=score(args['base_model']) if args.get('base_model') else None)
    elif NAME == 'ilab_model_chat':
        out.update(answers=['stub answer'])
    print(json.dumps(out))
    sys.exit(0)


if __name__ == '__main__':
    main()
'''


def collection(tmp, changed_keys):
    """The collection with stub modules: every top-level entry links to the checkout, but plugins/modules."""
    top = tmp / 'collections' / 'ansible_collections' / 'labforge' / 'instructlab'
    if top.exists():   # a rerun in the same place
        return str(tmp / 'collections')
    top.mkdir(parents=True)
    for name in os.listdir(ROOT):
        if name not in ('plugins', '.git', 'build', '.venv'):
            os.symlink(os.path.join(ROOT, name), str(top / name))
    (top / 'plugins').mkdir()
    for name in os.listdir(os.path.join(ROOT, 'plugins')):
        if name != 'modules':
            os.symlink(os.path.join(ROOT, 'plugins', name), str(top / 'plugins' / name))
    modules = top / 'plugins' / 'modules'
    modules.mkdir()
    for name in REAL:
        os.symlink(os.path.join(ROOT, 'plugins', 'modules', name + '.py'), str(modules / (name + '.py')))
    for name in STUBBED:
        (modules / ('%s.py' % name)).write_text(STUB % (name, str(tmp / 'calls.jsonl'), str(tmp / 'host'),
                                                        list(changed_keys)))
    return str(tmp / 'collections')


def run(tmp, check=False, changed_keys=(), extra=None, fail_ok=False):
    hostvars = {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
        'instructlab_user': 'nobody', 'instructlab_venv': '/nonexistent/venv',
        'labforge_teacher_model': {'source': 'path', 'src': '/nonexistent/teacher.gguf', 'name': 'teacher.gguf'},
        'labforge_student_model': {'source': 'path', 'src': '/nonexistent/student', 'name': 'student'},
        'labforge_taxonomy_dir': os.path.join(ROOT, 'inventories', 'local', 'files', 'taxonomy'),
        'labforge_artifacts_dir': str(tmp / 'artifacts'),
        'labforge_models_home': str(tmp / 'models'),
        'labforge_generate': {'pipeline': 'simple', 'sdg_scale_factor': 2},
        'labforge_train': {'pipeline': 'full', 'device': 'cpu', 'num_epochs': 1, 'poll': 1},
    }
    hostvars.update(extra or {})
    inv = tmp / 'hosts.yml'
    inv.write_text(yaml.safe_dump({'instructlab': {'vars': hostvars, 'children': dict(
        (g, {'hosts': {'lf-a': None}}) for g in ('instructlab_teachers', 'instructlab_trainers', 'instructlab_servers'))}}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collection(tmp, changed_keys),
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCAL_TEMP=str(tmp / 'tmp'), ANSIBLE_HOME=str(tmp / 'home'), ANSIBLE_RETRY_FILES_ENABLED='0',
               ANSIBLE_ASYNC_DIR=str(tmp / 'async'))
    env.pop('ANSIBLE_CONFIG', None)
    env.pop('ANSIBLE_CALLBACKS_ENABLED', None)
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', str(inv),
            os.path.join(ROOT, 'playbooks', 'pipeline.yml'),
            # the role's root-only directory (vars/main.yml), here a private one
            '-e', json.dumps({'__pipeline_root_dir': str(tmp / 'varlib')})]
    if check:
        argv.append('--check')
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(tmp), check=False, timeout=600)
    try:
        data = json.loads(proc.stdout[proc.stdout.index('{'):])
    except ValueError:
        pytest.fail('no JSON result (rc=%s):\n%s\n%s' % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    assert fail_ok or proc.returncode == 0, [(t['task']['name'], r.get('msg')) for p in data['plays'] for t in p['tasks']
                                             for r in t['hosts'].values() if r.get('failed')]
    calls = []
    if os.path.exists(str(tmp / 'calls.jsonl')):   # none: no stub ran (a rerun that ended after its check)
        with open(str(tmp / 'calls.jsonl')) as f:
            calls = [json.loads(line) for line in f]
    names = dict((t['task']['name'].split(' : ', 1)[-1], r) for p in data['plays'] for t in p['tasks']
                 for r in t['hosts'].values())
    return calls, names


RECORD = 'Record the run for the next one (pipeline)'
SAY = 'Say whether the run goes on, and why'


@pytest.fixture(scope='module')
def applied(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('run')
    return tmp, run(tmp)


def args_of(calls, module):
    return [c['args'] for c in calls if c['module'] == module]


def test_every_ilab_module_gets_user_and_venv_from_the_action_group(applied):
    _tmp, (calls, _names) = applied
    assert sorted(set(c['module'] for c in calls if c['module'] in ILAB_GROUP)) == sorted(
        ['ilab_config', 'ilab_data_generate', 'ilab_model_chat', 'ilab_model_download', 'ilab_model_serve',
         'ilab_model_train', 'ilab_taxonomy'])
    for c in calls:
        if c['module'] in ILAB_GROUP:
            assert (c['args'].get('user'), c['args'].get('venv')) == ('nobody', '/nonexistent/venv'), c
        else:
            assert 'user' not in c['args'] and 'venv' not in c['args'], c


def test_no_task_passes_user_or_venv_itself():
    """user and venv are set once, by module_defaults; no task of the playbook or the role repeats them."""
    files = [os.path.join(ROOT, 'playbooks', 'pipeline.yml')]
    tasks_dir = os.path.join(ROOT, 'roles', 'pipeline', 'tasks')
    if os.path.isdir(tasks_dir):
        files += [os.path.join(tasks_dir, n) for n in sorted(os.listdir(tasks_dir))]
    found = []

    def walk(node, path):
        if isinstance(node, list):
            for item in node:
                walk(item, path)
        elif isinstance(node, dict):
            for key, value in node.items():
                if str(key).startswith('labforge.instructlab.ilab_') and isinstance(value, dict):
                    found.extend('%s: %s.%s' % (path, key, k) for k in ('user', 'venv') if k in value)
                walk(value, path)

    for path in files:
        with open(path) as f:
            walk(yaml.safe_load(f), os.path.relpath(path, ROOT))
    assert found == []


def test_the_configuration_settings_go_to_ilab_config_only(applied):
    _tmp, (calls, _names) = applied
    cfg, = args_of(calls, 'ilab_config')
    assert (cfg['generate_pipeline'], cfg['train_pipeline'], cfg['train_device'], cfg['taxonomy_base']) == (
        'simple', 'full', 'cpu', 'empty')
    gen, = args_of(calls, 'ilab_data_generate')
    train, = args_of(calls, 'ilab_model_train')
    assert [k for k in ('pipeline', 'taxonomy_base') if k in gen] == []
    assert [k for k in ('pipeline', 'device') if k in train] == []
    assert (gen['sdg_scale_factor'], train['num_epochs']) == (2, 1)


def test_the_run_trains_fetches_and_rolls_out(applied):
    tmp, (calls, names) = applied
    wait = [n for n in names if n.startswith('Wait for the training to end')]
    assert wait == ['Wait for the training to end, follow the log ilab-model-train-train.log in %s'
                    % (tmp / 'host' / 'home' / '.local' / 'state' / 'labforge' / 'logs')]
    served = [a for a in args_of(calls, 'ilab_model_serve') if a['name'] == 'main']
    assert len(served) == 1 and served[0]['model_path'].startswith(str(tmp / 'models') + '/')
    with open(str(tmp / 'varlib' / 'rollout' / 'serving-main.json')) as f:
        assert json.load(f)['model_path'] == served[0]['model_path']
    chat, = args_of(calls, 'ilab_model_chat')
    assert chat['questions'] == ['What is InstructLab?'] and 'max_tokens' not in chat


def test_a_rerun_moves_no_model_the_controller_holds(tmp_path):
    """The trained model's place on the controller is named by its result: a rerun does not
    fetch it again (with become, fetch would copy the whole model each time), and the rollout
    serves the same copy."""
    fetch = 'Fetch the trained model to the controller'
    full = {'labforge_full_run': True}   # every step runs again (without it the rerun ends after its check)
    calls, names = run(tmp_path, extra=full)
    assert not names[fetch].get('skipped') and names[fetch].get('changed'), names[fetch]
    first = [a['model_path'] for a in args_of(calls, 'ilab_model_serve') if a['name'] == 'main']
    assert names[RECORD].get('reason') == 'recorded'
    os.unlink(str(tmp_path / 'calls.jsonl'))
    calls, names = run(tmp_path, extra=full)
    assert names[fetch].get('skipped'), names[fetch]
    # the record keeps the fingerprint of the run's start: what the run set (the results it
    # registered, set_fact) cannot change it, so a second full run records nothing new
    assert names[RECORD].get('reason') == 'the record is up to date', names[RECORD]
    assert [a['model_path'] for a in args_of(calls, 'ilab_model_serve') if a['name'] == 'main'] == first


@pytest.mark.parametrize('changed_keys,force', [(['serve.server.port'], False), (['train.pipeline'], True)])
def test_a_dry_run_predicts_training_when_the_train_configuration_would_change(tmp_path, changed_keys, force):
    calls, names = run(tmp_path, check=True, changed_keys=changed_keys,
                       extra={'instructlab_user_home': '/home/elsewhere'})
    train, = args_of(calls, 'ilab_model_train')
    assert train['force'] is force
    assert [n for n in names if n.startswith('Train, follow the log in /home/elsewhere/.local/state/labforge/logs')]
    assert 'Predict the rollout (dry run; the model is trained by the real run)' in names


def test_a_rerun_with_nothing_changed_ends_after_its_check(tmp_path):
    """The no-op rerun (labforge.instructlab.run_state): after a complete run, a rerun, and a dry
    run, run no module of the pipeline; an edited qna.yaml on the controller makes the next run
    a full one, and the check says why."""
    taxonomy = tmp_path / 'taxonomy'
    shutil.copytree(os.path.join(ROOT, 'inventories', 'local', 'files', 'taxonomy'), str(taxonomy))
    extra = {'labforge_taxonomy_dir': str(taxonomy)}
    calls, names = run(tmp_path, extra=extra)
    assert calls and names[RECORD].get('reason') == 'recorded'
    assert names[SAY]['msg'] == 'The run goes on: no record of a complete run of this playbook.'
    for check in (False, True):
        if os.path.exists(str(tmp_path / 'calls.jsonl')):
            os.unlink(str(tmp_path / 'calls.jsonl'))
        calls, names = run(tmp_path, check=check, extra=extra)
        assert calls == [], calls
        assert names[SAY]['msg'].startswith('Nothing changed since the last complete run of pipeline: every later play')
        assert names[RECORD].get('skipped') and not [n for n, r in names.items() if r.get('changed')]
    qna = sorted(taxonomy.rglob('qna.yaml'))[0]
    qna.write_text(qna.read_text() + '# edited\n')
    calls, names = run(tmp_path, extra=extra)
    assert 'ilab_taxonomy' in [c['module'] for c in calls]
    assert names[SAY]['msg'] == 'The run goes on: inputs changed: the controller files of labforge_taxonomy_dir.'
    assert names[RECORD].get('reason') == 'recorded'
