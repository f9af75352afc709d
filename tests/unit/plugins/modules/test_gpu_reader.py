# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One GPU reader (module_utils._gpu.read_gpus) for gpu_info, ilab_info and
ilab_config: on one host the three see the same GPUs, found the same way
(nvidia-smi on PATH or in the driver's usual directories), with the same
command lines. Outputs are the real nvidia-smi outputs of fixtures/nvidia-smi/."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible.module_utils import basic

from ansible_collections.labforge.instructlab.plugins.module_utils import _gpu
from ansible_collections.labforge.instructlab.plugins.modules import gpu_info, ilab_config, ilab_info

from ilab_testlib import Fail, run_module

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures', 'nvidia-smi')
# a CUDA container's driver: not on PATH, in /usr/local/nvidia/bin
SMI = '/usr/local/nvidia/bin/nvidia-smi'
QUERY = (SMI, '--query-gpu=index,name,uuid,memory.total,memory.used,driver_version,compute_cap',
         '--format=csv,noheader,nounits')


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as fh:
        return fh.read()


class Host(object):
    """nvidia-smi found only in its own directory; every command line it runs recorded."""

    def __init__(self, outputs):
        self.outputs = outputs
        self.calls = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        assert name == 'nvidia-smi'
        return SMI if os.path.dirname(SMI) in (opt_dirs or []) else None

    def run_command(self, argv, **kw):
        self.calls.append((list(argv), kw.get('environ_update')))
        return self.outputs[tuple(argv)]


class FakeModule(object):
    def __init__(self, host):
        self.params = {}
        self.check_mode = False
        self.get_bin_path = host.get_bin_path
        self.run_command = host.run_command

    def fail_json(self, **kw):
        raise Fail(kw)


def h100_host():
    return Host({QUERY: (0, fixture('h100-x8.query.csv'), ''), (SMI,): (0, fixture('h100-x8.txt'), '')})


def test_the_three_modules_see_the_same_gpus(monkeypatch):
    host = h100_host()
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, *a, **kw: host.get_bin_path(*a, **kw))
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda self, *a, **kw: host.run_command(*a, **kw))
    seen = run_module(monkeypatch, gpu_info.main, {}, ilab_options=False)['gpus']
    gpu_info_calls, host.calls = host.calls, []
    assert len(seen) == 8 and seen[0]['compute_cap'] == '9.0' and seen[0]['cuda_version'] == '12.4'

    info = ilab_info.gather_gpu(FakeModule(host), '0.26.1')
    assert host.calls == gpu_info_calls
    host.calls = []
    assert info['gpu_status'] == 'ok' and info['gpus'] == seen
    assert info['gpu_profile']['id'] == 'nvidia/h100/h100_x8.yaml'

    assert ilab_config.detect_gpus(FakeModule(host)) == seen
    assert host.calls == gpu_info_calls
    assert gpu_info_calls == [(list(QUERY), {'LC_ALL': 'C'}), ([SMI], {'LC_ALL': 'C'})]


@pytest.mark.parametrize('text, status', [('no-devices.txt', 'no_gpu'), ('no-driver.txt', 'no_driver'),
                                          ('mismatch.txt', 'driver_library_mismatch')])
def test_failures_classified_alike(text, status):
    rc = {'no_gpu': 6, 'no_driver': 9, 'driver_library_mismatch': 18}[status]
    host = Host({QUERY: (rc, fixture(text), '')})
    assert _gpu.read_gpus(FakeModule(host))[0] == status
    info = ilab_info.gather_gpu(FakeModule(host), '0.26.1')
    assert info['gpu_status'] == status and info['gpus'] == [] and info['gpu_profile'] is None
    if status == 'no_gpu':
        assert ilab_config.detect_gpus(FakeModule(host)) == []
    else:
        with pytest.raises(Fail, match='cannot read the GPUs'):
            ilab_config.detect_gpus(FakeModule(host))


def test_unparsable_output_fails_ilab_config_cleanly():
    host = Host({QUERY: (0, '0, NVIDIA A10G, GPU-0\n', '')})
    info = ilab_info.gather_gpu(FakeModule(host), '0.26.1')
    assert info['gpu_status'] == 'error' and 'unexpected nvidia-smi line' in info['gpu_error']
    with pytest.raises(Fail, match='unexpected nvidia-smi line'):
        ilab_config.detect_gpus(FakeModule(host))


def test_without_nvidia_smi():
    class NoSmi(Host):
        def get_bin_path(self, name, required=False, opt_dirs=None):
            return None
    host = NoSmi({})
    assert _gpu.read_gpus(FakeModule(host))[:3] == ('no_nvidia_smi', _gpu.NO_NVIDIA_SMI, [])
    assert ilab_info.gather_gpu(FakeModule(host), '0.26.1')['gpu_status'] == 'no_nvidia_smi'
    assert ilab_config.detect_gpus(FakeModule(host)) == []
    assert host.calls == []
