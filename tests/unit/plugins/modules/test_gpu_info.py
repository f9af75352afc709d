# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.gpu_info and module_utils._gpu.

``run_command`` and ``get_bin_path`` are mocked with the exact command lines;
their outputs are real ``nvidia-smi`` outputs kept in fixtures/nvidia-smi/.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible.module_utils import basic

from ansible_collections.labforge.instructlab.plugins.module_utils import _gpu
from ansible_collections.labforge.instructlab.plugins.modules import gpu_info

from ilab_testlib import Exit, Fail, patch_module_args

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'nvidia-smi')
SMI = '/usr/bin/nvidia-smi'
QUERY = [SMI, '--query-gpu=index,name,uuid,memory.total,memory.used,driver_version,compute_cap',
         '--format=csv,noheader,nounits']
# drivers older than 510 refuse compute_cap: asked again without it
LEGACY_QUERY = [SMI, '--query-gpu=index,name,uuid,memory.total,memory.used,driver_version',
                '--format=csv,noheader,nounits']
PLAIN = [SMI]


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as fh:
        return fh.read()


def run_module(monkeypatch, commands, args=None, bin_path=SMI):
    """Run the module; ``commands`` maps tuple(argv) -> (rc, stdout, stderr)."""
    calls = []

    def fake_run_command(self, argv, **kwargs):
        calls.append(list(argv))
        key = tuple(argv)
        if key not in commands:
            raise AssertionError('unexpected command: %r' % (argv,))
        assert kwargs.get('environ_update') == {'LC_ALL': 'C'}
        return commands[key]

    def fake_get_bin_path(self, name, required=False, opt_dirs=None):
        assert name == 'nvidia-smi'
        return bin_path

    def exit_json(self, **kwargs):
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        raise Fail(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', fake_run_command)
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', fake_get_bin_path)
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    with patch_module_args(args or {}):
        with pytest.raises(Exit) as exc:
            gpu_info.main()
    result = exc.value.args[0]
    return result, calls


def ok_commands(name):
    return {
        tuple(QUERY): (0, fixture(name + '.query.csv'), ''),
        tuple(PLAIN): (0, fixture(name + '.txt'), ''),
    }


def check_common(result, calls, expect_calls):
    assert result['changed'] is False
    assert calls == expect_calls
    assert result['commands'] == expect_calls
    facts = result['ansible_facts']['gpu_info']
    for key, value in facts.items():
        assert result[key] == value
    assert 'commands' not in facts


def test_a10g_x1(monkeypatch):
    result, calls = run_module(monkeypatch, ok_commands('a10g-x1'))
    check_common(result, calls, [QUERY, PLAIN])
    assert result['gpus'] == [{
        'index': 0,
        'name': 'NVIDIA A10G',
        'uuid': 'GPU-3f8b2a1c-6d4e-9f7a-b2c5-8e1d0a4f6b93',
        'memory_total_mib': 23028,
        'memory_used_mib': 1,
        'driver_version': '565.57.01',
        'compute_cap': '8.6',
        'cuda_version': '12.7',
    }]
    assert result['gpu_count'] == 1
    assert result['total_memory_mib'] == 23028
    assert result['driver_version'] == '565.57.01'
    assert result['driver_branch'] == '565'
    assert result['cuda_version'] == '12.7'
    assert result['status'] == 'ok'
    assert result['reason'] is None
    assert result['ilab_version'] == '0.26.1'
    # InstructLab 0.26.1 ships no A10G profile: generic defaults.
    assert result['ilab_profile'] is None
    assert result['ilab_profile_details'] is None
    assert result['ilab_profile_reason'] == (
        'no InstructLab 0.26.1 system profile for 1x NVIDIA A10G; ilab keeps its generic defaults')


def test_l4_x1(monkeypatch):
    result, calls = run_module(monkeypatch, ok_commands('l4-x1'))
    check_common(result, calls, [QUERY, PLAIN])
    assert result['gpus'] == [{
        'index': 0,
        'name': 'NVIDIA L4',
        'uuid': 'GPU-a1d4e6f2-73c8-5b19-0e2d-9c4f7a8b3e51',
        'memory_total_mib': 23034,
        'memory_used_mib': 1,
        'driver_version': '550.90.07',
        'compute_cap': '8.9',
        'cuda_version': '12.4',
    }]
    assert (result['driver_branch'], result['cuda_version'], result['status']) == ('550', '12.4', 'ok')
    # Only an 8x L4 profile exists in 0.26.1.
    assert result['ilab_profile'] is None
    assert result['ilab_profile_reason'] == (
        'no InstructLab 0.26.1 system profile for 1x NVIDIA L4 (profiles exist for x8 of this GPU); '
        'ilab keeps its generic defaults')


def test_a100_x4(monkeypatch):
    result, calls = run_module(monkeypatch, ok_commands('a100-x4'))
    check_common(result, calls, [QUERY, PLAIN])
    assert [g['uuid'] for g in result['gpus']] == [
        'GPU-6b2f9e41-0c7d-4a88-b3e5-1f9d2c6a7e04', 'GPU-d94a1c3e-58b2-4f6d-9a07-e3c1b5f82d69',
        'GPU-2e7c5a9d-b1f4-4638-8d0e-7a6c3b9f1e25', 'GPU-f0a8d3b6-9e2c-41d7-a5b8-4c1e6d7f0a93']
    assert [g['index'] for g in result['gpus']] == [0, 1, 2, 3]
    assert set(g['name'] for g in result['gpus']) == {'NVIDIA A100-SXM4-80GB'}
    assert [g['memory_total_mib'] for g in result['gpus']] == [81920] * 4
    assert [g['memory_used_mib'] for g in result['gpus']] == [4] * 4
    assert result['gpu_count'] == 4
    assert result['total_memory_mib'] == 327680
    assert (result['driver_version'], result['driver_branch'], result['cuda_version']) == ('535.183.01', '535', '12.2')
    assert result['ilab_profile'] == 'nvidia/a100/a100_x4.yaml'
    assert result['ilab_profile_reason'] == (
        '4x NVIDIA A100-SXM4-80GB matches InstructLab 0.26.1 system profile nvidia/a100/a100_x4.yaml (NVIDIA A100 X4)')
    assert result['ilab_profile_details'] == {
        'id': 'nvidia/a100/a100_x4.yaml',
        'label': 'NVIDIA A100 X4',
        'data_path': 'instructlab/internal/system_profiles/nvidia/a100/a100_x4.yaml',
        'gpu_count': 4,
        'train': {'device': 'cuda', 'nproc_per_node': 4, 'effective_batch_size': 128, 'max_batch_len': 54000},
        'serve': {'backend': 'vllm', 'vllm_gpus': 4, 'tensor_parallel_size': 4},
        'overrides': {},
    }


def test_h100_x8(monkeypatch):
    result, calls = run_module(monkeypatch, ok_commands('h100-x8'))
    check_common(result, calls, [QUERY, PLAIN])
    assert result['gpu_count'] == 8
    assert result['gpus'][7] == {
        'index': 7,
        'name': 'NVIDIA H100 80GB HBM3',
        'uuid': 'GPU-0c9e7b2a-4f15-3d86-e1a0-b7c4d9f2e659',
        'memory_total_mib': 81559,
        'memory_used_mib': 1,
        'driver_version': '550.127.05',
        'compute_cap': '9.0',
        'cuda_version': '12.4',
    }
    assert result['total_memory_mib'] == 8 * 81559
    assert result['ilab_profile'] == 'nvidia/h100/h100_x8.yaml'
    details = result['ilab_profile_details']
    assert details['label'] == 'NVIDIA H100 X8'
    assert details['train'] == {'device': 'cuda', 'nproc_per_node': 8, 'effective_batch_size': 128,
                                'max_batch_len': 60000}
    assert details['serve'] == {'backend': 'vllm', 'vllm_gpus': 4, 'tensor_parallel_size': 4}


def test_h100_x8_older_series_has_no_table(monkeypatch):
    result, _calls = run_module(monkeypatch, ok_commands('h100-x8'), args={'ilab_version': '0.21.2'})
    assert result['gpu_count'] == 8
    assert result['ilab_profile'] is None
    assert result['ilab_profile_reason'] == (
        "no InstructLab profile table for version '0.21.2' (known release series: 0.25, 0.26)")


def test_no_nvidia_smi(monkeypatch):
    result, calls = run_module(monkeypatch, {}, bin_path=None)
    check_common(result, calls, [])
    assert result['gpus'] == []
    assert result['gpu_count'] == 0
    assert result['status'] == 'no_nvidia_smi'
    assert result['reason'] == 'nvidia-smi not found: no NVIDIA driver is installed on this host'
    assert result['driver_version'] is None and result['driver_branch'] is None and result['cuda_version'] is None
    assert result['ilab_profile'] is None
    assert result['ilab_profile_reason'] == (
        'no NVIDIA GPU: InstructLab 0.26.1 uses its generic (CPU) defaults '
        '(nvidia-smi not found: no NVIDIA driver is installed on this host)')


def test_driver_not_loaded(monkeypatch):
    result, calls = run_module(monkeypatch, {tuple(QUERY): (9, fixture('no-driver.txt'), '')})
    check_common(result, calls, [QUERY])
    assert result['gpus'] == []
    assert result['status'] == 'no_driver'
    assert result['reason'].startswith(
        'nvidia-smi: the NVIDIA kernel driver is not loaded (rc=9): "NVIDIA-SMI has failed because it '
        "couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed "
        'and running."')
    assert 'Secure Boot' in result['reason']


def test_driver_library_mismatch(monkeypatch):
    result, calls = run_module(monkeypatch, {tuple(QUERY): (18, fixture('mismatch.txt'), '')})
    check_common(result, calls, [QUERY])
    assert result['gpus'] == []
    assert result['gpu_count'] == 0
    assert result['status'] == 'driver_library_mismatch'
    assert result['reason'] == (
        'nvidia-smi: "Failed to initialize NVML: Driver/library version mismatch" (rc=18): the NVIDIA '
        'kernel module loaded now is not the one of the installed user-space driver (NVML library 550.127). '
        'This is expected right after a driver install or update: reboot (or unload and reload the nvidia '
        'kernel modules).')


def test_no_devices(monkeypatch):
    result, calls = run_module(monkeypatch, {tuple(QUERY): (6, fixture('no-devices.txt'), '')})
    check_common(result, calls, [QUERY])
    assert result['status'] == 'no_gpu'
    assert result['reason'] == 'nvidia-smi: no NVIDIA GPU found by the driver (rc=6).'


def test_custom_path_and_version(monkeypatch):
    smi = '/opt/nvidia/bin/nvidia-smi'
    query = [smi] + QUERY[1:]
    commands = {tuple(query): (0, fixture('a100-x4.query.csv'), ''),
                (smi,): (0, fixture('a100-x4.txt'), '')}
    result, calls = run_module(monkeypatch, commands, args={'nvidia_smi': smi, 'ilab_version': '0.25.1'},
                               bin_path=None)
    assert calls == [query, [smi]]
    assert result['ilab_profile'] == 'nvidia/a100/a100_x4.yaml'
    assert result['ilab_version'] == '0.25.1'


def test_unparsable_query(monkeypatch):
    result, _calls = run_module(monkeypatch, {tuple(QUERY): (0, '0, NVIDIA A10G, 23028\n', '')})
    assert result['status'] == 'error'
    assert result['gpus'] == []
    assert 'unexpected nvidia-smi line (3 fields, expected 7)' in result['reason']


def test_driver_without_compute_cap_is_asked_again(monkeypatch):
    """A driver older than 510 refuses the compute_cap field (its own message, rc 2): the query is
    repeated without it and the GPUs have compute_cap None."""
    legacy = ''.join(line.rsplit(',', 1)[0] + '\n' for line in fixture('a10g-x1.query.csv').splitlines())
    commands = {
        tuple(QUERY): (2, 'Field "compute_cap" is not a valid field to query.\n', ''),
        tuple(LEGACY_QUERY): (0, legacy, ''),
        tuple(PLAIN): (0, fixture('a10g-x1.txt'), ''),
    }
    result, calls = run_module(monkeypatch, commands)
    check_common(result, calls, [QUERY, LEGACY_QUERY, PLAIN])
    assert result['status'] == 'ok'
    assert [(g['name'], g['compute_cap']) for g in result['gpus']] == [('NVIDIA A10G', None)]


def test_compute_cap_not_available(monkeypatch):
    """'[N/A]' (MIG or vGPU setups) is not a compute capability."""
    line = fixture('a10g-x1.query.csv').replace('8.6', '[N/A]')
    result, _calls = run_module(monkeypatch, {tuple(QUERY): (0, line, ''), tuple(PLAIN): (0, fixture('a10g-x1.txt'), '')})
    assert result['gpus'][0]['compute_cap'] is None


# --- module_utils._gpu.choose_profile -------------------------------------------------------

def gpus(name, count, mib):
    return [{'index': i, 'name': name, 'memory_total_mib': mib} for i in range(count)]


@pytest.mark.parametrize('name,count,mib,expected', [
    ('NVIDIA A100-SXM4-80GB', 2, 81920, 'nvidia/a100/a100_x2.yaml'),
    ('NVIDIA A100-SXM4-40GB', 8, 40960, 'nvidia/a100/a100_x8.yaml'),
    ('NVIDIA A100 80GB PCIe', 4, 81920, 'nvidia/a100/a100_x4.yaml'),
    ('NVIDIA A100-PCIE-40GB', 4, 40960, None),   # that SKU string is not in ilab's list
    ('NVIDIA H100 PCIe', 2, 81559, 'nvidia/h100/h100_x2.yaml'),
    ('NVIDIA H100 NVL', 4, 95830, 'nvidia/h100/h100_x4.yaml'),
    ('NVIDIA H100 80GB HBM3', 4, 81559, 'nvidia/h100/h100_x4.yaml'),
    ('NVIDIA L4', 8, 23034, 'nvidia/l4/l4_x8.yaml'),
    ('NVIDIA L4', 4, 23034, None),
    ('NVIDIA L40S', 4, 46068, 'nvidia/l40s/l40s_x4.yaml'),
    ('NVIDIA L40S', 8, 46068, 'nvidia/l40s/l40s_x8.yaml'),
    ('Tesla T4', 1, 15360, None),
])
def test_choose_profile_table(name, count, mib, expected):
    profile, reason = _gpu.choose_profile(gpus(name, count, mib), '0.26.1')
    assert profile == expected, reason
    if expected:
        assert reason.startswith('%dx %s matches InstructLab 0.26.1 system profile %s' % (count, name, expected))
    else:
        assert reason.startswith('no InstructLab 0.26.1 system profile for %dx %s' % (count, name))


def test_a100_40gb_x8_override():
    g = gpus('NVIDIA A100-SXM4-40GB', 8, 40960)
    assert _gpu.profile_details('nvidia/a100/a100_x8.yaml', '0.26.1', g)['overrides'] == {'train.max_batch_len': 10000}
    assert _gpu.profile_details('nvidia/a100/a100_x8.yaml', '0.26.1', g)['train']['max_batch_len'] == 10000
    g80 = gpus('NVIDIA A100-SXM4-80GB', 8, 81920)
    assert _gpu.profile_details('nvidia/a100/a100_x8.yaml', '0.26.1', g80)['overrides'] == {}
    assert _gpu.profile_details('nvidia/a100/a100_x8.yaml', '0.26.1', g80)['train']['max_batch_len'] == 60000


def test_mixed_models():
    g = gpus('NVIDIA L4', 1, 23034) + gpus('NVIDIA A10G', 1, 23028)
    profile, reason = _gpu.choose_profile(g, '0.26.1')
    assert profile is None
    assert reason.startswith('mixed GPU models (NVIDIA A10G, NVIDIA L4)')


def test_no_gpus_and_bad_version():
    assert _gpu.choose_profile([], '0.26.1') == (
        None, 'no NVIDIA GPU: InstructLab 0.26.1 uses its generic (CPU) defaults')
    assert _gpu.choose_profile(gpus('NVIDIA L4', 8, 23034), 'main')[0] is None
    assert _gpu.choose_profile(gpus('NVIDIA L4', 8, 23034), 'v0.26.0')[0] == 'nvidia/l4/l4_x8.yaml'


def test_cuda_version_parsers():
    assert _gpu.parse_cuda_version(fixture('a10g-x1.txt')) == '12.7'
    assert _gpu.parse_cuda_version('    CUDA Version                          : 12.8\n') == '12.8'
    assert _gpu.parse_cuda_version('') is None
