# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.ilab_config (runner calls recorded;
`ilab config init` and the config writer simulated)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import yaml

from ansible_collections.labforge.instructlab.plugins.modules import ilab_config

from ilab_testlib import GPU_COMMANDS, Recorder, fake_nvidia_smi, run_module, make_venv

INIT_CONFIG = {
    'chat': {'model': '~/.cache/instructlab/models/granite-7b-lab-Q4_K_M.gguf'},
    'generate': {'pipeline': 'full', 'taxonomy_base': 'origin/main',
                 'taxonomy_path': '~/.local/share/instructlab/taxonomy'},
    'serve': {'server': {'host': '127.0.0.1', 'port': 8000}, 'backend': None},
    'train': {'pipeline': 'full', 'nproc_per_node': 1, 'device': 'cpu',
              'model_path': '/student'},
    'evaluate': {'gpus': None},
}


class Env(object):
    def __init__(self, tmp_path, monkeypatch, write_rc=0):
        self.tmp = tmp_path
        self.venv = make_venv(tmp_path)
        self.cfg = str(tmp_path / 'cfg' / 'config.yaml')
        self.tax = str(tmp_path / 'taxonomy')
        self.profiles = tmp_path / 'profiles'
        (self.profiles / 'nvidia' / 'a100').mkdir(parents=True)
        (self.profiles / 'nvidia' / 'a100' / 'a100_x4.yaml').write_text(yaml.safe_dump({
            'train': {'nproc_per_node': 4, 'effective_batch_size': 128, 'max_batch_len': 54000,
                      'device': 'cuda', 'model_path': '/profile/path', 'additional_args': {'warmup_steps': 10}},
            'serve': {'backend': 'vllm'}}))
        self.write_rc = write_rc
        self.rec = Recorder(self.respond).install(monkeypatch)

    def respond(self, step, argv, call):
        if step == 'ilab version':
            return 0, '0.26.1\n', ''
        if step == 'locate profiles':
            return 0, str(self.profiles) + '\n', ''
        if step == 'create local taxonomy':
            os.makedirs(os.path.join(argv[-1], '.git'))
        if step == 'ilab config init':
            out = os.path.join(call['env']['XDG_CONFIG_HOME'], 'instructlab', 'config.yaml')
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, 'w') as f:
                yaml.safe_dump(INIT_CONFIG, f)
        if step == 'write config':
            if self.write_rc:
                return self.write_rc, 'INVALID: serve.server.port: Input should be a valid integer\n', ''
            src = dst = argv[3]   # the writer runs as the user and replaces the file itself
            data = yaml.safe_load(open(src))
            for key, value in json.loads(call['data']).items():
                cur = data
                for p in key.split('.')[:-1]:
                    cur = cur.setdefault(p, {})
                cur[key.split('.')[-1]] = value
            with open(dst, 'w') as f:
                yaml.safe_dump(data, f)
        return None

    def args(self, **kw):
        a = dict(venv=self.venv, config_path=self.cfg, taxonomy_path=self.tax, log_dir=str(self.tmp / 'logs'))
        a.update(kw)
        return a

    def write(self, data):
        os.makedirs(os.path.dirname(self.cfg), exist_ok=True)
        with open(self.cfg, 'w') as f:
            yaml.safe_dump(data, f)


def test_init_offline_then_settings(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    r = run_module(monkeypatch, ilab_config.main, e.args(serve_port=8001, generate_pipeline='simple'), diff=True)
    assert r['changed'] and r['initialized'] and r['taxonomy_created'], r
    steps = e.rec.steps()
    assert steps == ['ilab version', 'create local taxonomy', 'commit empty taxonomy',
                     'ilab config init', 'write config']
    git_init, git_commit, init = [c for c in e.rec.calls if c['step'] in (
        'create local taxonomy', 'commit empty taxonomy', 'ilab config init')]
    git = ['git', '-c', 'user.name=labforge', '-c', 'user.email=labforge@localhost', '-c', 'init.defaultBranch=main']
    assert git_init['argv'] == git + ['init', '-q', '-b', 'main', e.tax]
    assert git_commit['argv'] == git + ['-C', e.tax, 'commit', '-q', '--allow-empty', '-m',
                                        'Local taxonomy (labforge.instructlab)']
    # exact init command line: no --config (init always writes the default path), no network
    assert init['argv'] == [e.venv + '/bin/ilab', 'config', 'init', '--non-interactive', '--taxonomy-path', e.tax]
    # a custom config_path: init runs with a private XDG_CONFIG_HOME and the result is moved
    assert init['env']['XDG_CONFIG_HOME'] != init['env']['HOME'] + '/.config'
    assert init['env']['PATH'].startswith(e.venv + '/bin:')
    assert not os.path.exists(init['env']['XDG_CONFIG_HOME'])
    cfg = yaml.safe_load(open(e.cfg))
    assert cfg['serve']['server']['port'] == 8001 and cfg['generate']['pipeline'] == 'simple'
    assert cfg['generate']['taxonomy_path'] == e.tax
    assert sorted(r['changed_keys']) == ['evaluate.mt_bench_branch.taxonomy_path', 'generate.pipeline',
                                         'generate.taxonomy_path', 'serve.server.port']
    assert r['effective']['serve.server.port'] == 8001
    assert r['diff']['before'] == '' and 'port: 8001' in r['diff']['after']


def test_unchanged_when_values_match(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    os.makedirs(os.path.join(e.tax, '.git'))
    data = json.loads(json.dumps(INIT_CONFIG))
    data['serve']['server']['port'] = 8001
    data['generate']['taxonomy_path'] = e.tax
    data['evaluate']['mt_bench_branch'] = {'taxonomy_path': e.tax}
    e.write(data)
    before = open(e.cfg).read()
    r = run_module(monkeypatch, ilab_config.main, e.args(serve_port=8001), diff=True)
    assert not r['changed'] and r['changed_keys'] == []
    assert e.rec.steps() == ['ilab version']
    assert open(e.cfg).read() == before
    assert r['diff']['before'] == r['diff']['after']


def test_change_one_value_with_diff(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    os.makedirs(os.path.join(e.tax, '.git'))
    e.write(INIT_CONFIG)
    r = run_module(monkeypatch, ilab_config.main,
                   e.args(taxonomy_path=None, serve_port=8002, settings={'generate.sdg_scale_factor': 2}), diff=True)
    assert r['changed'] and not r['initialized']
    assert r['changed_keys'] == ['generate.sdg_scale_factor', 'serve.server.port']
    write = [c for c in e.rec.calls if c['step'] == 'write config'][0]
    assert json.loads(write['data']) == {'serve.server.port': 8002, 'generate.sdg_scale_factor': 2}
    assert write['argv'][0] == e.venv + '/bin/python' and write['argv'][3] == e.cfg
    assert write['argv'][4:] == ['1']  # validate with InstructLab's Config; no temp path from root
    assert 'port: 8000' in r['diff']['before'] and 'port: 8002' in r['diff']['after']
    assert yaml.safe_load(open(e.cfg))['serve']['server']['port'] == 8002


def test_check_mode_changes_nothing(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    r = run_module(monkeypatch, ilab_config.main, e.args(serve_port=8001), check_mode=True, diff=True)
    assert r['changed'] and r['initialized'] and r['taxonomy_created']
    assert not os.path.exists(e.cfg) and not os.path.exists(e.tax)
    assert e.rec.steps() == ['ilab version']      # only the read-only probe really ran
    assert r['effective'] == {'serve.server.port': 8001, 'generate.taxonomy_path': e.tax,
                              'evaluate.mt_bench_branch.taxonomy_path': e.tax}


def test_check_mode_existing_config_reports_diff(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    os.makedirs(os.path.join(e.tax, '.git'))
    e.write(INIT_CONFIG)
    before = open(e.cfg).read()
    r = run_module(monkeypatch, ilab_config.main, e.args(taxonomy_path=None, serve_host='0.0.0.0'),
                   check_mode=True, diff=True)
    assert r['changed'] and r['changed_keys'] == ['serve.server.host']
    assert 'host: 0.0.0.0' in r['diff']['after']
    assert open(e.cfg).read() == before
    assert 'write config' not in e.rec.steps()


def test_train_profile_auto_from_gpu_facts(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    os.makedirs(os.path.join(e.tax, '.git'))
    e.write(INIT_CONFIG)
    gpus = [{'index': i, 'name': 'NVIDIA A100-SXM4-80GB', 'memory_total_mib': 81920} for i in range(4)]
    r = run_module(monkeypatch, ilab_config.main,
                   e.args(taxonomy_path=None, train_profile='auto', gpu_facts=gpus, train_pipeline='accelerated'))
    assert r['train_profile'] == 'nvidia/a100/a100_x4.yaml', r
    assert 'a100' in r['train_profile_reason'].lower()
    cfg = yaml.safe_load(open(e.cfg))['train']
    assert cfg['nproc_per_node'] == 4 and cfg['effective_batch_size'] == 128 and cfg['device'] == 'cuda'
    assert cfg['additional_args'] == {'warmup_steps': 10}
    assert cfg['pipeline'] == 'accelerated'             # explicit option wins
    assert cfg['model_path'] == '/student'              # profile paths are not applied


def test_train_profile_auto_without_gpu_applies_nothing(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    os.makedirs(os.path.join(e.tax, '.git'))
    e.write(INIT_CONFIG)
    r = run_module(monkeypatch, ilab_config.main, e.args(taxonomy_path=None, train_profile='auto', gpu_facts=[]))
    assert not r['changed'] and r['train_profile'] is None
    assert 'no NVIDIA GPU' in r['train_profile_reason']


def test_named_profile_and_gpus(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    os.makedirs(os.path.join(e.tax, '.git'))
    e.write(INIT_CONFIG)
    r = run_module(monkeypatch, ilab_config.main, e.args(taxonomy_path=None, train_profile='nvidia/a100/a100_x4', gpus=2))
    cfg = yaml.safe_load(open(e.cfg))
    assert cfg['train']['nproc_per_node'] == 2 and cfg['evaluate']['gpus'] == 2
    assert r['train_profile'] == 'nvidia/a100/a100_x4'
    r = run_module(monkeypatch, ilab_config.main, e.args(taxonomy_path=None, train_profile='../../etc/passwd'))
    assert r['failed'] and 'escapes' in r['msg']


def test_rejected_value_leaves_file_alone(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch, write_rc=3)
    os.makedirs(os.path.join(e.tax, '.git'))
    e.write(INIT_CONFIG)
    before = open(e.cfg).read()
    r = run_module(monkeypatch, ilab_config.main, e.args(taxonomy_path=None, settings={'serve.server.port': 'x'}))
    assert r['failed'] and r['step'] == 'write config'
    assert 'the new settings were rejected' in r['msg'] and 'valid integer' in r['msg']
    assert open(e.cfg).read() == before
    assert [f for f in os.listdir(os.path.dirname(e.cfg)) if f != 'config.yaml'] == []


def test_default_config_path_init_uses_users_xdg(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    home = tmp_path / 'home'
    home.mkdir()

    import pwd

    class PW(object):
        pw_uid, pw_gid, pw_dir, pw_name = os.getuid(), os.getgid(), str(home), 'me'
    monkeypatch.setattr(pwd, 'getpwnam', lambda name: PW())
    args = e.args()
    del args['config_path']
    r = run_module(monkeypatch, ilab_config.main, args)
    init = [c for c in e.rec.calls if c['step'] == 'ilab config init'][0]
    assert init['env']['XDG_CONFIG_HOME'] == str(home / '.config')
    assert r['config_path'] == str(home / '.config' / 'instructlab' / 'config.yaml')
    assert os.path.isfile(r['config_path'])


def test_init_false_and_missing_config_fails(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    r = run_module(monkeypatch, ilab_config.main, e.args(init=False))
    assert r['failed'] and 'init=false' in r['msg']


def test_failed_init_reports_step_and_log(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    orig = e.respond

    def respond(step, argv, call):
        if step == 'ilab config init':
            return 1, 'Cloning https://github.com/instructlab/taxonomy.git...\nFailed to clone\n', ''
        return orig(step, argv, call)
    e.rec.responder = respond
    r = run_module(monkeypatch, ilab_config.main, e.args())
    assert r['failed'] and r['step'] == 'ilab config init'
    assert 'Failed to clone' in r['msg'] and 'config init --non-interactive' in r['msg']
    assert not os.path.exists(e.cfg)


def test_train_profile_auto_asks_nvidia_smi(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    os.makedirs(os.path.join(e.tax, '.git'))
    e.write(INIT_CONFIG)
    seen = fake_nvidia_smi(monkeypatch, 'NVIDIA A100-SXM4-80GB', 4, 81920, '8.0')
    r = run_module(monkeypatch, ilab_config.main, e.args(taxonomy_path=None, train_profile='auto'))
    assert seen == GPU_COMMANDS   # the one GPU reader, as gpu_info
    assert r['train_profile'] == 'nvidia/a100/a100_x4.yaml'
    assert yaml.safe_load(open(e.cfg))['train']['nproc_per_node'] == 4


def test_train_profile_auto_without_nvidia_smi(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    os.makedirs(os.path.join(e.tax, '.git'))
    e.write(INIT_CONFIG)
    monkeypatch.setattr(ilab_config.AnsibleModule, 'get_bin_path', lambda self, name, required=False, opt_dirs=None: None)
    r = run_module(monkeypatch, ilab_config.main, e.args(taxonomy_path=None, train_profile='auto'))
    assert not r['changed'] and r['train_profile'] is None and 'no NVIDIA GPU' in r['train_profile_reason']


def test_unknown_key_warns(tmp_path, monkeypatch):
    e = Env(tmp_path, monkeypatch)
    os.makedirs(os.path.join(e.tax, '.git'))
    e.write(INIT_CONFIG)
    warnings = []
    monkeypatch.setattr(ilab_config.AnsibleModule, 'warn', lambda self, msg: warnings.append(msg))
    run_module(monkeypatch, ilab_config.main, e.args(taxonomy_path=None, settings={'serve.sever.port': 1}))
    assert len(warnings) == 1 and 'serve.sever.port is not a key' in warnings[0]
