# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integration tests of ilab_data_generate, ilab_model_train, ilab_model_serve
and ilab_model_chat against the REAL InstructLab 0.26.1 on a Debian 12 systemd
test host (podman container from tests/testbed/build-image.sh).

One command: ``tests/integration/run.sh -k pipeline`` (or
``pytest tests/integration/test_pipeline_modules.py``).

The host gets, read-only: the InstructLab venv built on the controller
(``LABFORGE_ILAB_VENV``, default /opt/labforge-ilab-venv, at the same path),
the test model (tests/testbed/make-test-model.sh, SmolLM2 135M GGUF) as the
teacher, and the tiny trainable student (tests/testbed/make-student.py, built
with the venv's python, cached in $LABFORGE_CACHE/models/student-<hash>/).

The tests run in file order on one host: killed generate -> generate ->
idempotence; killed train module (orphaned ilab) -> train -> idempotence; serve two models ->
idempotence -> kill -9 -> systemd brings it back; chat; stop/absent. Each
module call is run through ansible-playbook with the json callback, so the
assertions read the module's own result (changed, diff, paths, timings).
Timings of generate, train and serve start are printed (pytest -s) and
written to ``$LABFORGE_PIPELINE_TIMINGS`` (default /tmp/labforge-pipeline-timings.json).
The container is removed at the end unless LABFORGE_KEEP_HOST=1.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import time

import pytest

from testhost import TESTBED, VENV, host_env, model_path, on, require_ilab_venv, running, sh

NAME = os.environ.get('LABFORGE_PIPELINE_HOST', 'lfm7-pipeline')
HOME = '/var/lib/instructlab'
LOGS = HOME + '/.local/state/labforge/logs'
DATASETS = HOME + '/.local/share/instructlab/datasets'
TRAINED = HOME + '/.local/share/instructlab/trained'
TEACHER = '/srv/models/SmolLM2-135M-Instruct.Q4_1.gguf'
STUDENT = '/srv/student'
TIMINGS = {}

SKILL = '''version: 2
task_description: Write short three-line haiku poems about simple subjects.
created_by: labforge
seed_examples:
  - question: Write a haiku about the sea.
    answer: |
      Waves fold into foam
      salt wind carries gull voices
      the tide keeps its time
  - question: Write a haiku about a cat.
    answer: |
      Curled in morning sun
      one ear turning to the door
      the cat dreams of birds
  - question: Write a haiku about rain.
    answer: |
      Soft rain on the roof
      gutters hum a quiet tune
      puddles hold the sky
  - question: Write a haiku about a mountain.
    answer: |
      Stone shoulders in cloud
      snow remembers every wind
      the summit stays still
  - question: Write a haiku about a candle.
    answer: |
      A small flame leaning
      wax tears gather at its base
      dark rooms breathe slowly
'''

GENERATE = dict(venv=VENV, model=TEACHER, pipeline='simple', sdg_scale_factor=1, taxonomy_base='empty',
                max_num_tokens=512)
TRAIN = dict(venv=VENV, pipeline='simple', device='cpu', num_epochs=1, model_path=STUDENT, data_path='latest')


def on_host(script, check=True, **kw):
    return on(NAME, script, check=check, **kw)


class Host(object):
    def __init__(self, inventory, env, tmp):
        self.inventory = inventory
        self.env = env
        self.tmp = tmp
        self.n = 0

    def playbook_argv(self, module, args, check=False, diff=True):
        self.n += 1
        pb = os.path.join(self.tmp, 'step%03d.yml' % self.n)
        with open(pb, 'w') as f:
            json.dump([dict(hosts='all', gather_facts=False, become=True, tasks=[
                {'name': module, 'labforge.instructlab.' + module: args}])], f)
        argv = ['ansible-playbook', '-i', self.inventory, pb]
        if check:
            argv.append('--check')
        if diff:
            argv.append('--diff')
        return argv

    def parse(self, res):
        try:
            data = json.loads(res.stdout[res.stdout.index('{'):])
        except ValueError:
            raise AssertionError('no JSON from ansible-playbook:\n%s\n%s' % (res.stdout[-5000:], res.stderr[-3000:]))
        task = data['plays'][0]['tasks'][0]
        return task['hosts'][NAME]

    def module(self, module, args, check=False, diff=True, expect_fail=False):
        res = sh(self.playbook_argv(module, args, check, diff), check=False, env=self.env)
        out = self.parse(res)
        if expect_fail:
            assert out.get('failed'), out
        else:
            assert not out.get('failed'), '%s failed: %s' % (module, out.get('msg', out))
        return out

    def background(self, module, args):
        return subprocess.Popen(self.playbook_argv(module, args), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True)


def four_times(host, module, args):
    """check, apply, idempotent check, idempotent apply (community.docker style)."""
    c1 = host.module(module, args, check=True)
    assert c1['changed'], c1
    t = time.time()
    a1 = host.module(module, args)
    took = time.time() - t
    assert a1['changed'], a1
    c2 = host.module(module, args, check=True)
    assert not c2['changed'], c2
    a2 = host.module(module, args)
    assert not a2['changed'], a2
    return c1, a1, a2, took


@pytest.fixture(scope='module')
def host(tmp_path_factory):
    require_ilab_venv()
    model = model_path()
    t = time.time()
    student = sh([os.path.join(VENV, 'bin', 'python'), os.path.join(TESTBED, 'make-student.py')],
                 env=host_env()).stdout.strip()
    TIMINGS['make_student_s'] = round(time.time() - t, 1)
    tmp = str(tmp_path_factory.mktemp('pipeline'))
    volumes = ['%s:/srv/models:ro' % os.path.dirname(model), '%s:%s:ro' % (student, STUDENT)]
    try:
        with running(NAME, 'ilab-pipeline', volumes, tmp) as (env, inventory):
            env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.posix.json'
            h = Host(inventory, env, tmp)
            # git for the local taxonomy, libgomp1 for llama_cpp (what the instructlab role installs);
            # the service user; a 5-example compositional skill
            on_host('for i in $(seq 30); do apt-get install -y -q --no-install-recommends git libgomp1 >/dev/null 2>&1 '
                    '&& break; apt-get update -q >/dev/null 2>&1; sleep 3; done; command -v git')
            on_host('useradd --system --create-home --home-dir %s --shell /bin/bash instructlab' % HOME)
            h.module('ilab_config', dict(venv=VENV, taxonomy_base='empty', generate_pipeline='simple',
                                         train_model_path=STUDENT))
            on_host('set -e; d=%s/.local/share/instructlab/taxonomy/compositional_skills/writing/haiku; '
                    'mkdir -p $d; cat > $d/qna.yaml; chown -R instructlab: %s/.local/share/instructlab/taxonomy'
                    % (HOME, HOME), input=SKILL)
            yield h
    finally:
        path = os.environ.get('LABFORGE_PIPELINE_TIMINGS', '/tmp/labforge-pipeline-timings.json')
        with open(path, 'w') as f:
            json.dump(TIMINGS, f, indent=2, sort_keys=True)
        print('\npipeline timings: %s' % json.dumps(TIMINGS, sort_keys=True))


def kill_when(proc, subcommand, log_glob, marker, timeout=900, module=False):
    """Wait until ``ilab ... SUBCOMMAND`` runs and its log (``log_glob``) contains
    ``marker``; then kill -9 its process group (the runner starts ilab in its own
    session, so the group is ilab and its helpers) or, with ``module``, the
    module process that started it (ilab is left orphaned, as after an ``async``
    timeout). Returns the ilab pid."""
    # a regex that cannot match the command line of the shell running it
    pattern = 'bin/ilab --config [^ ]+ %s' % subcommand
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError('the module ended before ilab %s was killed:\n%s' % (subcommand, out[-5000:]))
        res = on_host("pid=$(pgrep -o -f '%s') || exit 3; grep -aqs '%s' %s || exit 4; "
                      "pgid=$(ps -o pgid= -p $pid | tr -d ' '); ppid=$(ps -o ppid= -p $pid | tr -d ' '); "
                      "ps -o pid,ppid,pgid,args -p $ppid -g $pgid >&2; "
                      "if [ %s = 1 ]; then kill -9 $ppid; else kill -9 -- -$pgid; fi; echo $pid"
                      % (pattern, marker, log_glob, 1 if module else 0), check=False)
        if res.returncode == 0:
            print('killed:\n' + res.stderr)
            return int(res.stdout.split()[0])
        if res.returncode not in (3, 4):
            raise AssertionError('kill failed: rc=%s %s %s' % (res.returncode, res.stdout, res.stderr))
        time.sleep(0.5)
    raise AssertionError('never saw ilab %s with %s in %s' % (subcommand, marker, log_glob))


def test_generate_killed_midway_leaves_no_dataset(host):
    proc = host.background('ilab_data_generate', GENERATE)
    kill_when(proc, 'data generate', LOGS + '/ilab-data-generate-*.log', 'Running block')
    out, err = proc.communicate(timeout=300)
    result = host.parse(subprocess.CompletedProcess([], proc.returncode, out, err))
    assert result.get('failed') and result['rc'] == -9, result
    listing = on_host('ls -a %s' % DATASETS).stdout.split()
    assert not [e for e in listing if e.startswith('generate-') or e.startswith('.generate-')], listing
    assert 'labforge-generate-latest.json' not in listing


def test_generate_then_idempotent(host):
    c1, a1, a2, took = four_times(host, 'ilab_data_generate', GENERATE)
    TIMINGS['generate_s'] = round(took, 1)
    TIMINGS['generate_ilab_s'] = a1['duration']
    assert c1['generated'] and a1['generated'] and not a2['generated']
    assert a1['rows']['train'] > 0 and a1['rows']['test'] >= 5, a1['rows']
    assert a2['files'] == a1['files'] and a2['fingerprint'] == a1['fingerprint']
    assert a1['diff']['before'] == {'dataset_dir': None} and a1['diff']['after']['dataset_dir'] == a1['dataset_dir']
    rows = on_host('wc -l < %s' % a1['files']['train']).stdout.strip()
    assert int(rows) == a1['rows']['train']
    m = json.loads(on_host('cat %s' % a1['manifest_path']).stdout)
    assert m['fingerprint'] == a1['fingerprint'] and m['ilab_version'] == '0.26.1'


def test_train_module_killed_midway_leaves_no_model(host):
    # the module (not ilab) dies, e.g. an async timeout: ilab is orphaned in its own session
    proc = host.background('ilab_model_train', TRAIN)
    host.orphan = kill_when(proc, 'model train', LOGS + '/ilab-model-train-train.log', 'LOADING THE BASE MODEL',
                            module=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0, out[-3000:]
    listing = on_host('ls -A %s' % TRAINED).stdout.split()
    assert not [e for e in listing if e.startswith('train-')], listing  # no final result
    assert 'GGUF' not in on_host('ls %s/.local/share/instructlab/checkpoints' % HOME).stdout


def test_train_then_idempotent(host):
    c1, a1, a2, took = four_times(host, 'ilab_model_train', TRAIN)
    # the orphaned ilab of the killed module was stopped, its directory removed
    assert on_host('kill -0 %d 2>/dev/null || echo gone' % host.orphan, check=False).stdout.strip() == 'gone'
    assert on_host('ls -A %s' % TRAINED).stdout.split() == [os.path.basename(a1['model_dir'])]
    TIMINGS['train_s'] = round(took, 1)
    TIMINGS['train_ilab_s'] = a1['duration']
    TIMINGS['train_final_loss'] = a1['final_loss']
    assert a1['trained'] and not a2['trained']
    assert a1['gguf_path'].startswith(a1['model_dir'] + '/') and a2['gguf_path'] == a1['gguf_path']
    assert isinstance(a1['final_loss'], float)
    assert on_host('head -c 4 %s' % a1['gguf_path']).stdout == 'GGUF'
    assert 'LINUX_TRAIN.PY: FINISHED' in on_host('cat %s' % a1['log_path']).stdout
    status = json.loads(on_host('cat %s' % a1['status_path']).stdout)
    assert status['state'] == 'finished' and status['rc'] == 0
    # ilab's fixed places were not used: nothing in the cwd-relative or the shared GGUF path
    assert on_host('test ! -e %s/training_results && test ! -e %s/.local/share/instructlab/checkpoints/'
                   'ggml-model-f16.gguf && echo clean' % (HOME, HOME)).stdout.strip() == 'clean'
    host.trained = a1


def test_convert_hf_checkpoint_then_idempotent_and_served(host):
    """The student (a Hugging Face directory, as accelerated training writes) becomes a GGUF
    with InstructLab's own converter and quantizer, and llama-cpp serves it."""
    args = dict(venv=VENV, src=STUDENT, name='student', quantize='Q8_0')
    c1, a1, a2, took = four_times(host, 'ilab_model_convert', args)
    TIMINGS['convert_s'] = round(took, 1)
    assert a1['converted'] and not a2['converted'] and a2['gguf_path'] == a1['gguf_path']
    assert a1['gguf_path'] == a1['model_dir'] + '/model-Q8_0.gguf'
    for path in (a1['gguf_path'], a1['f16_path']):
        assert on_host('head -c 4 %s' % path).stdout == 'GGUF', path
    assert on_host('stat -c %U {}'.format(a1['gguf_path'])).stdout.strip() == 'instructlab'
    served = host.module('ilab_model_serve', dict(venv=VENV, name='converted', model_path=a1['gguf_path'],
                                                  port=8103, wait_timeout=180))
    assert served['healthy'] and served['model_format'] == 'gguf', served
    host.module('ilab_model_serve', dict(venv=VENV, name='converted', state='absent'))


def test_serve_two_models_idempotent(host):
    smol = dict(venv=VENV, name='smol', model_path=TEACHER, port=8101, wait_timeout=180)
    c1, a1, a2, took = four_times(host, 'ilab_model_serve', smol)
    TIMINGS['serve_start_s'] = round(took, 1)
    TIMINGS['serve_wait_s'] = a1['wait_seconds']
    assert a1['endpoint'] == 'http://127.0.0.1:8101/v1' and a1['healthy'] and a1['models']
    assert 'ExecStart=' in c1['diff'][0]['after'] and c1['diff'][0]['before'] == ''
    assert a2['actions'] == []
    student = dict(venv=VENV, name='student', model_path=host.trained['gguf_path'], port=8102, wait_timeout=180)
    s = host.module('ilab_model_serve', student)
    assert s['changed'] and s['healthy']
    # both answer, each bound to loopback only
    listen = on_host('ss -ltnH').stdout
    assert '127.0.0.1:8101' in listen and '127.0.0.1:8102' in listen, listen
    unit = on_host('systemctl cat labforge-ilab-serve-smol.service').stdout
    for line in ('User=instructlab', 'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict',
                 'PrivateTmp=yes'):
        assert line in unit
    assert on_host('ps -o user= -p $(systemctl show -p MainPID --value labforge-ilab-serve-smol)').stdout.strip() == 'instructlab'
    # a setting change restarts only that service
    pid = on_host('systemctl show -p MainPID --value labforge-ilab-serve-smol').stdout.strip()
    ch = host.module('ilab_model_serve', dict(smol, max_ctx_size=2048))
    assert ch['changed'] and 'restart' in ch['actions'] and ch['healthy']
    assert on_host('systemctl show -p MainPID --value labforge-ilab-serve-smol').stdout.strip() != pid


def test_kill_9_systemd_restarts_and_module_reports_healthy(host):
    smol = dict(venv=VENV, name='smol', model_path=TEACHER, port=8101, wait_timeout=180, max_ctx_size=2048)
    pid = on_host('systemctl show -p MainPID --value labforge-ilab-serve-smol').stdout.strip()
    before = int(on_host('systemctl show -p NRestarts --value labforge-ilab-serve-smol').stdout.strip())
    on_host('kill -9 %s' % pid)
    r = host.module('ilab_model_serve', smol)
    assert not r['changed'] and r['healthy'], r
    assert r['main_pid'] != int(pid) and r['restarts'] == before + 1


def test_chat_answers(host):
    r = host.module('ilab_model_chat', dict(venv=VENV, endpoint_url='http://127.0.0.1:8101/v1',
                                            questions=['Write a haiku about the sea.'], max_tokens=48))
    assert not r['changed'] and all(a['answer'] for a in r['answers']), r['answers']
    TIMINGS['chat_ilab_latency_s'] = [a['latency'] for a in r['answers']]
    r = host.module('ilab_model_chat', dict(venv=VENV, method='http', endpoint_url='http://127.0.0.1:8101/v1',
                                            questions=['Say hello.'], max_tokens=32), check=True)
    assert not r['changed'] and r['answers'][0]['answer']
    TIMINGS['chat_http_latency_s'] = r['answers'][0]['latency']
    # the trained student answers too (a 2-layer model: any text, maybe none)
    r = host.module('ilab_model_chat', dict(venv=VENV, method='http', endpoint_url='http://127.0.0.1:8102/v1',
                                            questions=['Write a haiku about the sea.'], max_tokens=16,
                                            allow_empty=True))
    assert not r['changed'] and len(r['answers']) == 1


def test_stop_and_remove(host):
    r = host.module('ilab_model_serve', dict(venv=VENV, name='student', state='stopped'))
    assert r['changed'] and r['actions'] == ['stop', 'disable']
    assert on_host('systemctl is-active labforge-ilab-serve-student', check=False).stdout.strip() == 'inactive'
    r = host.module('ilab_model_serve', dict(venv=VENV, name='student', state='stopped'))
    assert not r['changed']
    for name in ('student', 'smol'):
        r = host.module('ilab_model_serve', dict(venv=VENV, name=name, state='absent'))
        assert r['changed']
        r = host.module('ilab_model_serve', dict(venv=VENV, name=name, state='absent'), check=True)
        assert not r['changed']
    assert on_host('ls /etc/systemd/system | grep -c labforge-ilab-serve || true').stdout.strip() == '0'
