# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nvidia_driver role's GPU detection (tasks/detect.yml) on made-up PCI trees.

The role reads ``<sysfs>/<address>/{vendor,device,class}``; the tree's root is a
role variable (``/sys/bus/pci/devices``), pointed here at a temporary copy with
an NVIDIA GPU, NVIDIA non-GPU functions (HD audio, USB) and other vendors.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

PLAYBOOK = """
- name: Detect NVIDIA GPUs
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the role's detection
      ansible.builtin.include_role:
        name: labforge.instructlab.nvidia_driver
        tasks_from: detect
    - name: Save the result
      ansible.builtin.copy:
        content: "{{ nvidia_driver_status | to_json }}"
        dest: "{{ out_file }}"
        mode: "0600"
"""


def make_tree(root, devices):
    for addr, vendor, device, klass in devices:
        d = root / addr
        d.mkdir(parents=True)
        (d / 'vendor').write_text(vendor + '\n')
        (d / 'device').write_text(device + '\n')
        (d / 'class').write_text(klass + '\n')


def detect(tmp_path, devices, force=False):
    tree = tmp_path / 'devices'
    tree.mkdir()
    make_tree(tree, devices)
    (tmp_path / 'play.yml').write_text(PLAYBOOK)
    out = tmp_path / 'status.json'
    extra = {'__nvidia_driver_sysfs_pci_devices': str(tree), 'out_file': str(out),
             'nvidia_driver_force': force, 'ansible_python_interpreter': sys.executable}
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,',
         str(tmp_path / 'play.yml'), '-e', json.dumps(extra)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False, timeout=120,
        cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout
    return json.loads(out.read_text()), tree


A10G = ('0000:00:1e.0', '0x10de', '0x2237', '0x030200')
NV_AUDIO = ('0000:01:00.1', '0x10de', '0x22bc', '0x040300')
NV_VGA = ('0000:01:00.0', '0x10de', '0x2684', '0x030000')
INTEL = ('0000:00:02.0', '0x8086', '0x1237', '0x060000')
VIRTIO = ('0000:00:03.0', '0x1af4', '0x1000', '0x020000')


@pytest.mark.parametrize('devices,expected', [
    ([INTEL, A10G, VIRTIO], ['0000:00:1e.0']),
    ([NV_VGA, NV_AUDIO, INTEL], ['0000:01:00.0']),
])
def test_gpus_found(tmp_path, devices, expected):
    status, _tree = detect(tmp_path, devices)
    assert status['skipped'] is False
    assert status['pci_gpus'] == expected
    assert status['reason'] == '%d NVIDIA GPU(s) on the PCI bus: %s' % (len(expected), ', '.join(expected))
    assert status['installed'] is False


def test_no_gpu_skips_and_says_why(tmp_path):
    # An NVIDIA audio function alone is no GPU.
    status, tree = detect(tmp_path, [INTEL, VIRTIO, NV_AUDIO])
    assert status['skipped'] is True
    assert status['pci_gpus'] == []
    assert status['reason'] == (
        'No NVIDIA GPU on the PCI bus (no display controller with vendor 0x10de in %s): nothing to install, '
        'the NVIDIA driver role did nothing. Set nvidia_driver_force: true to install anyway.' % tree)


def test_force_without_gpu(tmp_path):
    status, _tree = detect(tmp_path, [INTEL], force=True)
    assert status['skipped'] is False
    assert status['pci_gpus'] == []
    assert status['reason'] == 'nvidia_driver_force is set: installing without an NVIDIA GPU on the PCI bus.'
