# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.ilab_info (read-only facts)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.labforge.instructlab.plugins.modules import ilab_info as I

from ilab_testlib import GPU_COMMANDS, Recorder, fake_nvidia_smi, run_module, make_venv

MODEL_LIST = """+---------------------------------+---------------------+---------+----------------------------------------------+
| Model Name                      | Last Modified       | Size    | Absolute path                                |
+---------------------------------+---------------------+---------+----------------------------------------------+
| SmolLM2-135M-Instruct.Q4_1.gguf | 2026-11-25 20:11:05 | 93.8 MB | /m/SmolLM2-135M-Instruct.Q4_1.gguf           |
+---------------------------------+---------------------+---------+----------------------------------------------+
| smollm2                         | 2026-11-25 20:12:00 | 93.8 MB | /m/smollm2                                   |
+---------------------------------+---------------------+---------+----------------------------------------------+
"""

SYSTEM_INFO = """Platform:
  sys.version: 3.11.2 (main, Mar 13 2023, 12:18:29) [GCC 12.2.0]
  sys.platform: linux
  os.cpu_count: 2

InstructLab:
  instructlab.version: 0.26.1
  instructlab-schema.version: 0.4.2

Torch:
  torch.version: 2.7.0+cu126
  torch.cuda.available: False
"""


def responder(step, argv, call):
    if step == 'ilab version':
        return 0, '0.26.1\n', ''
    if step == 'ilab model list':
        return 0, MODEL_LIST, ''
    if step == 'ilab system info':
        return 0, SYSTEM_INFO, ''
    return None


def test_parsers():
    rows = I.parse_model_list(MODEL_LIST)
    assert rows == [
        {'name': 'SmolLM2-135M-Instruct.Q4_1.gguf', 'modified': '2026-11-25 20:11:05', 'size': '93.8 MB',
         'path': '/m/SmolLM2-135M-Instruct.Q4_1.gguf'},
        {'name': 'smollm2', 'modified': '2026-11-25 20:12:00', 'size': '93.8 MB', 'path': '/m/smollm2'}]
    info = I.parse_system_info(SYSTEM_INFO)
    assert info['Platform']['os.cpu_count'] == '2'
    assert info['Platform']['sys.version'].startswith('3.11.2 (main')
    assert info['InstructLab'] == {'instructlab.version': '0.26.1', 'instructlab-schema.version': '0.4.2'}
    assert info['Torch']['torch.cuda.available'] == 'False'


def test_facts_with_exact_commands(tmp_path, monkeypatch):
    rec = Recorder(responder).install(monkeypatch)
    venv = make_venv(tmp_path)
    cfg = tmp_path / 'config.yaml'
    cfg.write_text('serve:\n  server:\n    port: 8001\n')
    monkeypatch.setattr(I.AnsibleModule, 'get_bin_path', lambda self, name, required=False, opt_dirs=None: None)
    r = run_module(monkeypatch, I.main, dict(venv=venv, config_path=str(cfg), model_dirs=['/srv/m']), check_mode=True)
    assert not r['changed'] and r['installed'] and r['config_exists']
    assert r['ilab_version'] == '0.26.1'
    assert r['config'] == {'serve': {'server': {'port': 8001}}}
    assert [m['name'] for m in r['models']] == ['SmolLM2-135M-Instruct.Q4_1.gguf', 'smollm2']
    assert r['system']['InstructLab']['instructlab.version'] == '0.26.1'
    assert r['gpus'] == [] and r['gpu_status'] == 'no_nvidia_smi'
    calls = dict((c['step'], c) for c in rec.calls)
    home = calls['ilab model list']['env']['HOME']
    assert calls['ilab model list']['argv'] == [venv + '/bin/ilab', '--config', str(cfg), 'model', 'list',
                                                '--model-dirs', home + '/.cache/instructlab/models',
                                                '--model-dirs', '/srv/m']
    assert calls['ilab system info']['argv'] == [venv + '/bin/ilab', '--config', str(cfg), 'system', 'info']
    # read-only: everything ran even in check mode, and nothing was flagged as changing state
    assert all(not c['changes_state'] and not c['skipped'] for c in rec.calls)


def test_not_installed(tmp_path, monkeypatch):
    rec = Recorder(responder).install(monkeypatch)
    monkeypatch.setattr(I.AnsibleModule, 'get_bin_path', lambda self, name, required=False, opt_dirs=None: None)
    r = run_module(monkeypatch, I.main, dict(venv=str(tmp_path / 'none'), config_path=str(tmp_path / 'c.yaml')))
    assert not r['installed'] and r['ilab_version'] is None and not r['config_exists']
    assert 'models' not in r and 'system' not in r and rec.calls == []


def test_gpu_facts(tmp_path, monkeypatch):
    Recorder(responder).install(monkeypatch)
    seen = fake_nvidia_smi(monkeypatch, 'NVIDIA H100 80GB HBM3', 8, 81559, '9.0')
    r = run_module(monkeypatch, I.main, dict(venv=make_venv(tmp_path), config_path=str(tmp_path / 'c.yaml'),
                                             gather=['version', 'gpu']))
    assert seen == GPU_COMMANDS   # the one GPU reader, as gpu_info
    assert r['gpus'][0]['compute_cap'] == '9.0' and r['gpus'][0]['cuda_version'] == '12.4'
    assert r['gpu_status'] == 'ok' and len(r['gpus']) == 8
    assert r['gpu_profile']['id'] == 'nvidia/h100/h100_x8.yaml'


def test_failing_model_list_reports(tmp_path, monkeypatch):
    Recorder(lambda step, argv, call: (1, '', 'boom\n') if step == 'ilab model list' else responder(step, argv, call)
             ).install(monkeypatch)
    cfg = tmp_path / 'config.yaml'
    cfg.write_text('{}\n')
    r = run_module(monkeypatch, I.main, dict(venv=make_venv(tmp_path), config_path=str(cfg), gather=['models']))
    assert r['failed'] and r['step'] == 'ilab model list' and 'boom' in r['msg']
