# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.ilab_model_serve.

systemctl is a fake that keeps unit state (enabled/active) and records the
exact command lines; the endpoint wait is a fake; unit and config rendering,
comparison and decisions are the real code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd

import pytest
import yaml

from ansible.module_utils import basic

from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_runner
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_serve as srv
from ansible_collections.labforge.instructlab.plugins.modules import ilab_model_serve as mod

from ilab_testlib import Exit, Fail, raiser, run_main


SYSTEMCTL = '/usr/bin/systemctl'


def write(path, text):
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        os.makedirs(d)
    with open(path, 'w') as f:
        f.write(text)


class Bed(object):
    def __init__(self, tmp_path, monkeypatch):
        self.tmp = str(tmp_path)
        self.home = os.path.join(self.tmp, 'home')
        self.venv = os.path.join(self.tmp, 'venv')
        os.makedirs(os.path.join(self.venv, 'bin'))
        self.units = os.path.join(self.tmp, 'units')
        os.makedirs(self.units)
        self.model = os.path.join(self.tmp, 'models', 'student.gguf')
        write(self.model, 'GGUF')
        self.cfg = os.path.join(self.home, '.config', 'instructlab', 'config.yaml')
        write(self.cfg, 'chat:\n  model: x\nserve:\n  backend: null\n  model_path: /m.gguf\n'
                        '  server:\n    host: 127.0.0.1\n    port: 8000\n  llama_cpp:\n    gpu_layers: -1\n')
        self.calls = []
        self.active = {}
        self.enabled = set()
        self.healthy = [True]
        me = pwd.getpwuid(os.getuid())
        self.user = me.pw_name
        fake_pw = pwd.struct_passwd((me.pw_name, 'x', me.pw_uid, me.pw_gid, '', self.home, '/bin/sh'))
        monkeypatch.setattr(_ilab_runner.pwd, 'getpwnam', lambda name: fake_pw)
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'check_venv', lambda r: None)
        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path',
                            lambda s, name, required=False, opt_dirs=None: '/usr/bin/' + name)
        monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda s, argv, **kw: self.systemctl(argv))
        monkeypatch.setattr(srv, 'wait_healthy', self.fake_wait)
        self.held = []     # processes srv.listeners() reports on the port
        monkeypatch.setattr(srv, 'listeners', lambda port, host=None: list(self.held))
        monkeypatch.setattr(srv, 'gpu_devices', lambda: [])
        self.warnings = []
        monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda s, msg: self.warnings.append(msg))
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', raiser(Exit))
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', raiser(Fail))

    def systemctl(self, argv):
        self.calls.append(list(argv))
        if argv[0] == '/usr/bin/journalctl':
            return 0, 'llama server crashed\n', ''
        verb = argv[1]
        unit = argv[2] if len(argv) > 2 else None
        if verb == 'is-active':
            st = self.active.get(unit, 'inactive')
            return (0 if st == 'active' else 3), st + '\n', ''
        if verb == 'is-enabled':
            return (0, 'enabled\n', '') if unit in self.enabled else (1, 'disabled\n', '')
        if verb == 'enable':
            self.enabled.add(unit)
        elif verb == 'disable':
            self.enabled.discard(unit)
        elif verb in ('start', 'restart'):
            self.active[unit] = 'active'
        elif verb == 'stop':
            self.active[unit] = 'inactive'
        elif verb == 'show':
            return 0, 'MainPID=4242\nNRestarts=1\nActiveState=%s\n' % self.active.get(unit, 'inactive'), ''
        return 0, '', ''

    def fake_wait(self, url, port, host, unit, model_path, timeout, interval=1.0, alive=None):
        self.calls.append(['wait', url, timeout])
        ok = self.healthy.pop(0) if len(self.healthy) > 1 else self.healthy[0]
        return (True, [self.model], 0.5, None) if ok else (False, 'Connection refused', float(timeout), None)

    def run(self, check=False, diff=False, **kw):
        args = dict(user='ignored', venv=self.venv, model_path=self.model, unit_dir=self.units,
                    name='student', port=8001)
        args.update(kw)
        args = dict((k, v) for k, v in args.items() if v is not None)
        return run_main(mod.main, args, check, diff)

    def verbs(self):
        return [c[1] if c[0] == SYSTEMCTL else c[0] for c in self.calls
                if c[0] == 'wait' or c[1] not in ('is-active', 'is-enabled', 'show')]


@pytest.fixture
def bed(tmp_path, monkeypatch):
    return Bed(tmp_path, monkeypatch)


UNIT = 'labforge-ilab-serve-student.service'


def test_start_writes_hardened_unit_and_own_config(bed):
    kind, r = bed.run(diff=True, max_ctx_size=2048, gpu_layers=0)
    assert kind == 'exit', r
    assert r['changed'] and r['healthy'] and r['endpoint'] == 'http://127.0.0.1:8001/v1'
    assert r['actions'] == ['write config', 'write environment', 'write unit', 'daemon-reload', 'enable', 'start']
    assert bed.verbs() == ['daemon-reload', 'enable', 'reset-failed', 'start', 'wait']
    assert [SYSTEMCTL, 'start', UNIT] in bed.calls
    assert bed.calls[-2] == ['wait', 'http://127.0.0.1:8001', 120]
    svc = os.path.join(bed.home, '.local', 'state', 'labforge', 'serve', 'student')
    assert r['config_path'] == os.path.join(svc, 'config.yaml')
    with open(os.path.join(bed.units, UNIT)) as f:
        unit = f.read()
    ilab = os.path.join(bed.venv, 'bin', 'ilab')
    assert ('ExecStart=%s --config %s/config.yaml model serve --model-path %s --backend llama-cpp '
            '--host 127.0.0.1 --port 8001\n' % (ilab, svc, bed.model)) in unit
    for line in ('User=ignored', 'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict',
                 'PrivateTmp=yes', 'ProtectHome=read-only', 'ReadWritePaths=%s\n' % svc,
                 'WorkingDirectory=%s' % svc, 'EnvironmentFile=%s' % r['env_path'],
                 'CapabilityBoundingSet=\n', 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6',
                 'SystemCallFilter=@system-service', 'ProtectProc=invisible', 'ProcSubset=pid',
                 'ProtectClock=yes', 'ProtectHostname=yes', 'PrivateIPC=yes', 'RemoveIPC=yes',
                 'PrivateUsers=yes', 'DevicePolicy=closed', 'StartLimitIntervalSec=300', 'StartLimitBurst=5',
                 'WantedBy=multi-user.target'):
        assert line in unit
    assert 'Environment=' not in unit and 'DeviceAllow=' not in unit and 'TMPDIR' not in unit
    # the environment: a root-only file outside the service user's reach
    assert r['env_path'] == os.path.join(mod._fs.STATE_ROOT, 'serve', 'student.env')
    st = os.stat(r['env_path'])
    assert (st.st_uid, oct(st.st_mode & 0o777)) == (0, '0o600')
    env = open(r['env_path']).read()
    assert 'XDG_CONFIG_HOME="%s/xdg-config"' % svc in env and 'PATH="%s/bin:' % bed.venv in env
    assert 'XDG_DATA_HOME="%s/xdg-data"' % svc in env and 'TMPDIR' not in env
    with open(r['config_path']) as f:
        cfg = yaml.safe_load(f)
    assert cfg['serve']['model_path'] == bed.model
    assert cfg['serve']['server'] == dict(host='127.0.0.1', port=8001)
    assert cfg['serve']['backend'] == 'llama-cpp'
    assert cfg['serve']['llama_cpp'] == dict(gpu_layers=0, max_ctx_size=2048)
    assert cfg['chat'] == dict(model='x')  # the rest of the user's config is kept
    assert os.path.isdir(os.path.join(svc, 'xdg-config', 'instructlab'))
    assert [d['before'] for d in r['diff']] == ['', '', '']
    assert r['diff'][0]['after'] == unit
    assert r['main_pid'] == 4242 and r['restarts'] == 1 and r['models'] == [bed.model]


def test_gpu_devices_are_allowed_only_when_used(bed, monkeypatch):
    monkeypatch.setattr(srv, 'gpu_devices', lambda: ['/dev/nvidia0', '/dev/nvidiactl'])
    kind, r = bed.run(gpu_layers=0)
    assert 'DeviceAllow' not in open(r['unit_path']).read()
    kind, r = bed.run(gpu_layers=-1)
    unit = open(r['unit_path']).read()
    assert 'DevicePolicy=closed\n' in unit and 'DeviceAllow=/dev/nvidia0 rw\nDeviceAllow=/dev/nvidiactl rw\n' in unit
    assert r['actions'] == ['write config', 'write unit', 'daemon-reload', 'restart']


@pytest.mark.parametrize('option,value', [
    ('model_path', 'a\nExecStartPre=+/bin/touch /root/pwned\n.gguf'),
    ('model_path', 'm\r.gguf'),
    ('model_path', 'm\x00.gguf'),
    ('model_path', 'm\u2028.gguf'),
    ('host', '127.0.0.1\nExecStartPre=+/bin/sh'),
    ('model_family', 'granite\x1b[0m'),
])
def test_control_characters_are_refused_naming_the_option(bed, option, value):
    if option == 'model_path':
        value = os.path.join(bed.tmp, 'models', value)
        if '\x00' not in value:
            write(value, 'GGUF')   # the service user can name a file so
    kind, r = bed.run(**{option: value, 'allow_remote': True})
    assert kind == 'fail' and r['msg'].startswith('%s: ' % option) and 'control character' in r['msg'], r
    assert os.listdir(bed.units) == [] and bed.verbs() == []


def test_a_newline_in_the_task_environment_is_refused(bed, monkeypatch):
    monkeypatch.setenv('HTTPS_PROXY', 'http://proxy:3128\nExecStartPre=+/bin/touch /root/pwned')
    kind, r = bed.run()
    assert kind == 'fail' and 'environment variable HTTPS_PROXY' in r['msg'] and 'control character' in r['msg']
    assert os.listdir(bed.units) == [] and not os.path.exists(r['env_path'])


def test_dollar_and_percent_are_escaped_and_credentials_stay_in_the_env_file(bed, monkeypatch):
    monkeypatch.setenv('HTTPS_PROXY', 'http://u:p$w%d"x@proxy:3128')
    model = os.path.join(bed.tmp, 'models', 'm$1%n.gguf')
    write(model, 'GGUF')
    kind, r = bed.run(model_path=model, diff=True)
    assert kind == 'exit', r
    unit = open(r['unit_path']).read()
    assert '--model-path "%s/models/m$$1%%%%n.gguf" ' % bed.tmp in unit
    assert 'Description=InstructLab model server student (m$1%%n.gguf on 127.0.0.1:8001)' in unit
    assert 'proxy' not in unit
    assert 'HTTPS_PROXY="http://u:p\\$w%d\\"x@proxy:3128"\n' in open(r['env_path']).read()
    env_diff = r['diff'][1]['after']
    assert 'HTTPS_PROXY=********' in env_diff and 'u:p' not in env_diff and 'HOME=' in env_diff


def test_network_host_needs_opt_in_and_warns(bed):
    kind, r = bed.run(host='0.0.0.0')
    assert kind == 'fail' and 'allow_remote=true' in r['msg'] and os.listdir(bed.units) == []
    kind, r = bed.run(host='0.0.0.0', allow_remote=True)
    assert kind == 'exit' and r['healthy']
    assert any('WITHOUT authentication' in w for w in bed.warnings)
    bed.warnings[:] = []
    bed.run(host='127.0.0.5')
    assert bed.warnings == []


def test_a_port_held_by_another_process_fails_naming_it(bed):
    bed.held = [dict(pid=777, comm='nginx', uid=0, user='root', unit='nginx.service')]
    kind, r = bed.run()
    assert kind == 'fail' and 'port 8001 is already held by pid 777 (nginx, user root, unit nginx.service)' in r['msg']
    assert os.listdir(bed.units) == [] and bed.verbs() == []
    bed.held = [dict(pid=778, comm='ilab', uid=1000, user='ignored', unit=UNIT)]   # our own unit: fine
    kind, r = bed.run()
    assert kind == 'exit' and r['healthy']


def test_rerun_is_unchanged_and_only_checks_health(bed):
    bed.run()
    bed.calls[:] = []
    kind, r = bed.run()
    assert kind == 'exit' and not r['changed'] and r['actions'] == [] and r['healthy']
    assert bed.verbs() == ['wait']


def test_changed_settings_restart(bed):
    bed.run()
    bed.calls[:] = []
    kind, r = bed.run(max_ctx_size=8192, diff=True)
    assert kind == 'exit' and r['changed']
    assert r['actions'] == ['write config', 'restart']
    assert bed.verbs() == ['restart', 'wait']
    assert 'max_ctx_size: 8192' in r['diff'][2]['after'] and 'max_ctx_size' not in r['diff'][2]['before']
    bed.calls[:] = []
    kind, r = bed.run(max_ctx_size=8192, host='0.0.0.0', allow_remote=True)
    assert r['actions'] == ['write config', 'write unit', 'daemon-reload', 'restart']
    assert r['endpoint'] == 'http://127.0.0.1:8001/v1'


def test_stopped_service_is_started_without_rewrite(bed):
    bed.run()
    bed.active[UNIT] = 'failed'
    bed.calls[:] = []
    kind, r = bed.run()
    assert kind == 'exit' and r['changed'] and r['actions'] == ['start']
    assert bed.verbs() == ['reset-failed', 'start', 'wait']


def test_restarting_after_a_crash_is_waited_for_not_restarted(bed):
    bed.run()
    bed.active[UNIT] = 'activating'  # systemd's auto-restart after kill -9
    bed.calls[:] = []
    kind, r = bed.run()
    assert kind == 'exit' and not r['changed'] and r['healthy']
    assert bed.verbs() == ['wait']


def test_unhealthy_fails_with_journal_or_restarts_on_request(bed):
    bed.run()
    bed.healthy = [False]
    kind, r = bed.run()
    assert kind == 'fail' and 'not healthy' in r['msg'] and 'llama server crashed' in r['msg']
    assert r['healthy'] is False
    bed.healthy = [False, True]
    bed.calls[:] = []
    kind, r = bed.run(restart_unhealthy=True)
    assert kind == 'exit' and r['changed'] and r['actions'] == ['restart (unhealthy)'] and r['healthy']
    assert bed.verbs() == ['wait', 'restart', 'wait']


def test_check_mode_changes_nothing(bed):
    kind, r = bed.run(check=True, diff=True)
    assert kind == 'exit' and r['changed'] and r['healthy'] is None
    assert os.listdir(bed.units) == [] and bed.verbs() == []
    assert 'ExecStart=' in r['diff'][0]['after']
    bed.run()
    kind, r = bed.run(check=True, port=8001)
    assert kind == 'exit' and not r['changed']


def test_stopped_and_absent(bed):
    bed.run()
    bed.calls[:] = []
    kind, r = bed.run(state='stopped', model_path=None, check=True)
    assert kind == 'exit' and r['changed'] and r['actions'] == ['stop', 'disable'] and bed.verbs() == []
    kind, r = bed.run(state='stopped', model_path=None)
    assert r['actions'] == ['stop', 'disable'] and bed.verbs() == ['stop', 'disable']
    kind, r = bed.run(state='stopped', model_path=None)
    assert kind == 'exit' and not r['changed']
    bed.calls[:] = []
    kind, r = bed.run(state='absent', model_path=None, diff=True)
    assert kind == 'exit' and r['actions'] == ['remove unit', 'remove environment', 'remove config']
    assert bed.verbs() == ['daemon-reload', 'reset-failed']
    assert os.listdir(bed.units) == [] and not os.path.exists(r['env_path'])
    assert not os.path.exists(os.path.join(bed.home, '.local', 'state', 'labforge', 'serve', 'student'))
    kind, r = bed.run(state='absent', model_path=None)
    assert kind == 'exit' and not r['changed']


def test_default_name_from_model_and_port(bed):
    kind, r = bed.run(name=None, port=8123)
    assert kind == 'exit' and r['unit'] == 'labforge-ilab-serve-student-8123.service'
    kind, r = bed.run(name='bad name')
    assert kind == 'fail' and 'name' in r['msg']


def test_missing_model_or_config_fails(bed):
    kind, r = bed.run(model_path=os.path.join(bed.tmp, 'nope.gguf'))
    assert kind == 'fail' and 'does not exist' in r['msg']
    os.unlink(bed.cfg)
    kind, r = bed.run()
    assert kind == 'fail' and 'ilab_config' in r['msg']


def test_exec_line_quoting():
    assert srv.exec_line(['/v/ilab', '--model-path', '/m/a b%.gguf']) == '/v/ilab --model-path "/m/a b%%.gguf"'
    assert srv.exec_line(['/v/ilab', '$X', 'a"b\\c']) == '/v/ilab "$$X" "a\\"b\\\\c"'
    assert srv.render_env_file({'K': 'a"b$c`d\\e'}).splitlines()[1] == 'K="a\\"b\\$c\\`d\\\\e"'
    with pytest.raises(srv.UnitValueError, match='environment variable name'):
        srv.render_env_file({'A B': 'x'})
    assert srv.base_url('::', 80) == 'http://[::1]:80'


HF_FILES = ('config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json')


def hf_dir(bed, name='student-hf', files=HF_FILES):
    """A Hugging Face model directory as the accelerated/full pipelines write them."""
    d = os.path.join(bed.tmp, 'models', name)
    for f in files:
        write(os.path.join(d, f), '{"architectures": ["LlamaForCausalLM"]}' if f.endswith('.json') else 'x')
    return d


def vllm_installed(monkeypatch, answers=('True\n',)):
    seen = []

    def fake_python(runner, step, script, **kw):
        seen.append(script)
        return _ilab_runner.IlabResult(step, ['python'], rc=0, stdout=answers[min(len(seen), len(answers)) - 1])
    monkeypatch.setattr(_ilab_runner.IlabRunner, 'python', fake_python)
    return seen


def test_vllm_needs_vllm_in_the_venv(bed, monkeypatch):
    seen = vllm_installed(monkeypatch, answers=('False\n', 'True\n'))
    model = hf_dir(bed)
    kind, r = bed.run(backend='vllm', gpus=2, model_path=model)
    assert kind == 'fail' and 'vLLM is not installed' in r['msg'] and 'find_spec("vllm")' in seen[0]
    kind, r = bed.run(backend='vllm', gpus=2, vllm_args=['--max-model-len', '4096'], model_path=model)
    assert kind == 'exit', r
    with open(r['config_path']) as f:
        cfg = yaml.safe_load(f)
    assert cfg['serve']['backend'] == 'vllm'
    assert cfg['serve']['vllm'] == dict(gpus=2, vllm_args=['--max-model-len', '4096'])


def nothing_changed(bed, r):
    return (os.listdir(bed.units) == [] and bed.verbs() == []
            and not os.path.exists(os.path.join(mod._fs.STATE_ROOT, 'serve', 'student.env'))
            and not os.path.exists(os.path.join(bed.home, '.local', 'state', 'labforge', 'serve', 'student')))


@pytest.mark.parametrize('backend,options,named', [
    ('llama-cpp', dict(gpus=8), 'gpus: not used by backend llama-cpp'),
    ('llama-cpp', dict(gpus=1), 'gpus: not used by backend llama-cpp'),
    ('llama-cpp', dict(vllm_args=['--max-model-len', '4096']), 'vllm_args: not used by backend llama-cpp'),
    ('llama-cpp', dict(settings={'vllm.gpus': 2}), 'settings.vllm.gpus: a vllm setting'),
    ('llama-cpp', dict(settings={'serve.vllm': {'gpus': 2}}), 'settings.serve.vllm: a vllm setting'),
    ('vllm', dict(gpu_layers=-1), 'gpu_layers: not used by backend vllm'),
    ('vllm', dict(max_ctx_size=4096), 'max_ctx_size: not used by backend vllm'),
    ('vllm', dict(settings={'llama_cpp.gpu_layers': 10}), 'settings.llama_cpp.gpu_layers: a llama-cpp setting'),
    ('vllm', dict(gpus=0), 'gpus: 0 is not a GPU count'),
    ('vllm', dict(vllm_args=['--tensor-parallel-size', '2']), 'vllm_args: --tensor-parallel-size is set by the module from gpus'),
    ('vllm', dict(gpus=2, vllm_args=['-tp=2']), 'vllm_args: -tp is set by the module from gpus'),
    ('vllm', dict(vllm_args=['--port=9000']), 'vllm_args: --port is set by the module from port'),
    ('vllm', dict(vllm_args=['--host', '0.0.0.0']), 'vllm_args: --host is set by the module from host'),
    ('vllm', dict(vllm_args=['--model', '/other']), 'vllm_args: --model is set by the module from model_path'),
    ('vllm', dict(vllm_args=['--served-model-name', 'x']), 'vllm_args: --served-model-name is set by the module'),
])
def test_settings_that_cannot_act_on_the_backend_are_refused_first(bed, monkeypatch, backend, options, named):
    seen = vllm_installed(monkeypatch)
    model = hf_dir(bed) if backend == 'vllm' else bed.model
    kind, r = bed.run(backend=backend, model_path=model, **options)
    assert kind == 'fail' and named in r['msg'], r
    assert r['msg'].startswith('settings that cannot act on backend %s: ' % backend)
    assert nothing_changed(bed, r) and seen == []


def test_more_gpus_than_the_host_has_are_refused(bed, monkeypatch):
    vllm_installed(monkeypatch)
    monkeypatch.setattr(srv, 'gpu_devices', lambda: ['/dev/nvidia0', '/dev/nvidia1', '/dev/nvidiactl',
                                                     '/dev/nvidia-uvm', '/dev/nvidia-caps/nvidia-cap1'])
    kind, r = bed.run(backend='vllm', model_path=hf_dir(bed), gpus=4)
    assert kind == 'fail' and 'gpus: 4, but this host has 2 NVIDIA GPU(s)' in r['msg'] and nothing_changed(bed, r)
    kind, r = bed.run(backend='vllm', model_path=hf_dir(bed), gpus=2)
    assert kind == 'exit' and r['tensor_parallel_size'] == 2


@pytest.mark.parametrize('backend,model,reason', [
    ('vllm', 'gguf', 'student.gguf is a GGUF file, but backend vllm serves a Hugging Face model directory'),
    ('llama-cpp', 'hf', 'student-hf is a Hugging Face model directory, but backend llama-cpp serves one GGUF file'),
    ('llama-cpp', 'text', 'notes.gguf is not a GGUF file (it does not start with the GGUF magic)'),
    ('vllm', 'noconfig', 'has no config.json (not a Hugging Face model directory)'),
    ('vllm', 'noweights', 'has no weights (*.safetensors or *.bin)'),
    ('vllm', 'badjson', 'config.json is not valid JSON'),
])
def test_a_model_the_backend_cannot_serve_is_refused_with_the_reason(bed, monkeypatch, backend, model, reason):
    seen = vllm_installed(monkeypatch)
    if model == 'gguf':
        path = bed.model
    elif model == 'hf':
        path = hf_dir(bed)
    elif model == 'text':
        path = os.path.join(bed.tmp, 'models', 'notes.gguf')
        write(path, 'not a model')
    elif model == 'noconfig':
        path = hf_dir(bed, files=('model.safetensors', 'tokenizer.json'))
    elif model == 'noweights':
        path = hf_dir(bed, files=('config.json', 'tokenizer.json'))
    else:
        path = hf_dir(bed)
        write(os.path.join(path, 'config.json'), '{"broken": ')
    kind, r = bed.run(backend=backend, model_path=path)
    assert kind == 'fail' and r['msg'].startswith('model_path: ') and reason in r['msg'], r
    assert nothing_changed(bed, r) and seen == []


def test_vllm_serves_with_tensor_parallel_size_equal_to_gpus(bed, monkeypatch):
    """ilab 0.26.1 (model/serve_backend.py) appends --tensor-parallel-size GPUS to
    serve.vllm.vllm_args when --gpus/serve.vllm.gpus is set; the h100_x8 profile's own
    "--tensor-parallel-size 4" must not be left in front of it."""
    vllm_installed(monkeypatch)
    monkeypatch.setattr(srv, 'gpu_devices', lambda: ['/dev/nvidia%d' % i for i in range(8)] + ['/dev/nvidiactl'])
    write(bed.cfg, 'serve:\n  backend: vllm\n  model_path: /m\n  server:\n    host: 127.0.0.1\n    port: 8000\n'
                   '  vllm:\n    gpus: 4\n    llm_family: mixtral\n'
                   '    vllm_args: ["--tensor-parallel-size", "4", "--max-model-len", "4096"]\n')
    model = hf_dir(bed, 'mixtral-8x7b-instruct')
    kind, r = bed.run(backend='vllm', model_path=model, gpus=8, name='teacher', port=8100, diff=True)
    assert kind == 'exit', r
    svc = os.path.join(bed.home, '.local', 'state', 'labforge', 'serve', 'teacher')
    unit = open(r['unit_path']).read()
    ilab = os.path.join(bed.venv, 'bin', 'ilab')
    assert ('ExecStart=%s --config %s/config.yaml model serve --model-path %s --backend vllm '
            '--host 127.0.0.1 --port 8100 --gpus 8\n' % (ilab, svc, model)) in unit
    assert ''.join('DeviceAllow=/dev/nvidia%d rw\n' % i for i in range(8)) in unit
    with open(r['config_path']) as f:
        cfg = yaml.safe_load(f)
    assert cfg['serve']['backend'] == 'vllm' and cfg['serve']['model_path'] == model
    assert cfg['serve']['vllm'] == dict(gpus=8, llm_family='mixtral', vllm_args=['--max-model-len', '4096'])
    assert r['vllm_args'] == ['--max-model-len', '4096', '--tensor-parallel-size', '8']
    assert r['tensor_parallel_size'] == 8 and r['model_format'] == 'hf'
    # without gpus the configuration's settings apply (ilab: serve.vllm.gpus 4 -> tp 4)
    kind, r = bed.run(backend='vllm', model_path=model, name='teacher', port=8100)
    assert kind == 'exit' and r['actions'] == ['write config', 'write unit', 'daemon-reload', 'restart']
    assert r['vllm_args'] == ['--tensor-parallel-size', '4', '--max-model-len', '4096', '--tensor-parallel-size', '4']
    assert r['tensor_parallel_size'] == 4
    assert '--gpus' not in open(r['unit_path']).read()


def test_llama_cpp_serves_a_gguf_and_says_so(bed):
    kind, r = bed.run(gpu_layers=-1, max_ctx_size=4096)
    assert kind == 'exit' and r['model_format'] == 'gguf'
    assert 'vllm_args' not in r and 'tensor_parallel_size' not in r


def test_ilab_argument_semantics():
    """The same answers as instructlab.utils.contains_argument and
    instructlab.model.backends.vllm.get_argument (0.26.1)."""
    assert srv.contains_argument('--port', ['--port=1']) and srv.contains_argument('--port', ['--port', '1'])
    assert not srv.contains_argument('--port', ['--ports', '1'])
    assert srv.get_argument('--foo', ['--foo', '2']) == '2'
    assert srv.get_argument('--foo', ['--foo', '--foo']) is None
    assert srv.get_argument('--foo', ['--foo=2', '--foo', '3']) == '3'
    assert srv.get_argument('--foo', ['foo']) is None
    assert srv.without_argument('--tensor-parallel-size', ['-x', '--tensor-parallel-size', '4', '--tensor-parallel-size=2',
                                                           '--enforce-eager']) == ['-x', '--enforce-eager']
    assert srv.vllm_effective_args({'serve': {'vllm': {'gpus': 2, 'vllm_args': None}}}) == (
        ['--tensor-parallel-size', '2'], 2)
    assert srv.vllm_effective_args({'serve': {'vllm': {}}}) == ([], 1)


# ------------------------------------------------ current -> desired -> actions
def state(unit='U', env='E', config='C', active='active', enabled=True, env_exists=True, dir_exists=True):
    return dict(unit=unit, env=env, config=config, active=active, enabled=enabled,
                env_exists=env_exists, dir_exists=dir_exists)


STARTED = dict(state='started', unit='U', env='E', config='C')


@pytest.mark.parametrize('cur,want,actions', [
    # nothing changed: no action (the health check still runs)
    (state(), STARTED, []),
    # systemd restarting it after a crash: waited for, not restarted
    (state(active='activating'), STARTED, []),
    # a changed unit: written, reloaded, restarted
    (state(unit='old'), STARTED, ['write unit', 'daemon-reload', 'restart']),
    # another model: its configuration and the unit's ExecStart change
    (state(unit='old', config='old'), STARTED, ['write config', 'write unit', 'daemon-reload', 'restart']),
    (state(env='old'), STARTED, ['write environment', 'restart']),
    # stopped (or failed) -> started: started, nothing rewritten
    (state(active='inactive'), STARTED, ['start']),
    (state(active='failed'), STARTED, ['start']),
    # a changed file of a stopped service: written, then started (not restarted)
    (state(active='inactive', config='old'), STARTED, ['write config', 'start']),
    # disabled but running: enabled only
    (state(enabled=False), STARTED, ['enable']),
    # first install
    (state(unit=None, env=None, config=None, active='inactive', enabled=False, env_exists=False, dir_exists=False),
     STARTED, ['write config', 'write environment', 'write unit', 'daemon-reload', 'enable', 'start']),
    # stopped
    (state(), dict(state='stopped'), ['stop', 'disable']),
    (state(active='failed', enabled=False), dict(state='stopped'), ['stop']),
    (state(active='inactive', enabled=False), dict(state='stopped'), []),
    # absent: stopped, then every file removed
    (state(), dict(state='absent'), ['stop', 'disable', 'remove unit', 'remove environment', 'remove config']),
    (state(active='inactive', enabled=False, env_exists=False), dict(state='absent'), ['remove unit', 'remove config']),
    (state(unit=None, env=None, config=None, active='inactive', enabled=False, env_exists=False, dir_exists=False),
     dict(state='absent'), []),
])
def test_plan_is_a_function_of_current_and_desired(cur, want, actions):
    assert mod.plan(cur, want) == actions


def test_diff_comes_from_the_same_comparison():
    svc = mod.Service('student', '/units', '/home/u')
    assert (svc.unit, svc.unit_path, svc.config_path) == (
        UNIT, '/units/' + UNIT, '/home/u/.local/state/labforge/serve/student/config.yaml')
    d = mod.diff(state(unit='old', env='HOME=/h\nHF_TOKEN=secret\n'),
                 dict(STARTED, env='HOME=/h\nHF_TOKEN=other\n'), svc)
    assert [(x['before_header'], x['before'], x['after']) for x in d] == [
        (svc.unit_path, 'old', 'U'),
        (svc.env_path, 'HOME=/h\nHF_TOKEN=********\n', 'HOME=/h\nHF_TOKEN=********\n'),
        (svc.config_path, 'C', 'C')]
    d = mod.diff(state(), dict(state='absent'), svc)
    assert [(x['before_header'], x['before'], x['after']) for x in d] == [
        (svc.unit_path, 'U', ''), (UNIT + ': state', 'active\n', 'inactive\n')]
    d = mod.diff(state(active='failed'), dict(state='stopped'), svc)
    assert [(x['before'], x['after']) for x in d] == [('U', 'U'), ('failed\n', 'inactive\n')]


def test_current_reads_files_and_unit_state(bed):
    bed.run()
    svc = mod.Service('student', bed.units, bed.home)
    from ansible_collections.labforge.instructlab.plugins.module_utils._systemd import Systemd

    class M(object):
        def get_bin_path(self, name, required=False):
            return '/usr/bin/' + name

        def run_command(self, argv, **kw):
            return bed.systemctl(argv)
    cur = mod.current(Systemd(M()), svc)
    assert cur['unit'] == open(svc.unit_path).read() and cur['config'] == open(svc.config_path).read()
    assert (cur['active'], cur['enabled'], cur['dir_exists']) == ('active', True, True)
    os.unlink(svc.unit_path)
    bed.calls[:] = []
    cur = mod.current(Systemd(M()), svc)
    assert (cur['unit'], cur['active'], cur['enabled']) == (None, 'inactive', False)
    assert bed.calls == []   # no unit file: systemd is not asked
