#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ilab_info
short_description: Facts about an InstructLab installation
version_added: 0.1.0
description:
  - Reports the installed InstructLab version, the configuration (path and values), the models
    present (C(ilab model list)), C(ilab system info) and NVIDIA GPU facts (the same
    C(nvidia-smi) query as M(labforge.instructlab.gpu_info)) where C(nvidia-smi) is present.
  - Read-only; runs the same in check mode.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.attributes
  - labforge.instructlab.ilab
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  gather:
    description: What to gather.
    type: list
    elements: str
    choices: [version, config, models, system, gpu]
    default: [version, config, models, system, gpu]
  model_dirs:
    description: Extra model directories for C(ilab model list --model-dirs).
    type: list
    elements: path
    default: []
'''

EXAMPLES = r'''
- name: What is installed?
  labforge.instructlab.ilab_info:
  become: true
  register: ilab

- name: Show the models
  ansible.builtin.debug:
    var: ilab.models
'''

RETURN = r'''
ilab_version:
  description: Installed InstructLab version (null when not installed).
  returned: when version is gathered
  type: str
  sample: 0.26.1
installed:
  description: Whether C(VENV/bin/ilab) exists.
  returned: always
  type: bool
config_path:
  description: The configuration file.
  returned: always
  type: str
config_exists:
  description: Whether the configuration file exists.
  returned: always
  type: bool
config:
  description:
    - The configuration values, read through the collection's file layer - a configuration file that is a link
      the service user planted to a file it could not read itself is refused, never returned.
  returned: when config is gathered
  type: dict
models:
  description: C(ilab model list) rows.
  returned: when models is gathered and ilab is installed and configured
  type: list
  elements: dict
  sample: [{name: SmolLM2-135M-Instruct.Q4_1.gguf, modified: "2026-11-25 20:00:00", size: 94.8 MB,
            path: /var/lib/instructlab/.cache/instructlab/models/SmolLM2-135M-Instruct.Q4_1.gguf}]
system:
  description: C(ilab system info), by category and key.
  returned: when system is gathered and ilab is installed
  type: dict
  sample: {Platform: {sys.version: "3.11.2", os.cpu_count: "16"}, InstructLab: {instructlab.version: 0.26.1}}
gpus:
  description:
    - GPUs reported by C(nvidia-smi) (empty without one), read as M(labforge.instructlab.gpu_info) reads
      them, with the same keys (index, name, uuid, memory_total_mib, memory_used_mib, driver_version,
      compute_cap, cuda_version).
  returned: when gpu is gathered
  type: list
  elements: dict
gpu_status:
  description: V(ok), V(no_nvidia_smi) or the failure class of C(nvidia-smi), as in M(labforge.instructlab.gpu_info).
  returned: when gpu is gathered
  type: str
gpu_error:
  description: What went wrong, when C(gpu_status) is V(error).
  returned: when gpu is gathered and gpu_status is error
  type: str
gpu_profile:
  description: The InstructLab system profile these GPUs match (null when none), with the reason.
  returned: when gpu is gathered
  type: dict
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(models),
      RV(ilab_version), RV(config_path), those of them that have a value. A failure adds C(path) (a path the
      file layer refused) and C(log_path) when it has them."
  returned: always
  type: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import (
    IlabRunner, ilab_argument_spec, run_guarded)
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.module_utils import _gpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_yaml
from ansible_collections.labforge.instructlab.plugins.module_utils import _report


def parse_model_list(text):
    """Rows of ilab's print_table output (| a | b | c | d |)."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith('|') or not line.endswith('|'):
            continue
        cells = [c.strip() for c in line.strip('|').split('|')]
        if len(cells) != 4 or cells[0] == 'Model Name':
            continue
        rows.append(dict(name=cells[0], modified=cells[1], size=cells[2], path=cells[3]))
    return rows


def parse_system_info(text):
    out = {}
    cat = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(' ') and line.rstrip().endswith(':'):
            cat = line.rstrip()[:-1]
            out[cat] = {}
        elif cat is not None and ':' in line:
            k, v = line.strip().split(':', 1)
            out[cat][k.strip()] = v.strip()
    return out


def gather_gpu(module, version):
    """GPUs as labforge.instructlab.gpu_info reads them (the one reader, _gpu.read_gpus)."""
    status, reason, gpus, _cuda, _commands = _gpu.read_gpus(module)
    res = dict(gpus=gpus, gpu_status=status, gpu_profile=None)
    if status == _gpu.STATUS_ERROR:
        res['gpu_error'] = reason
    if status == _gpu.STATUS_OK and version:
        pid, why = _gpu.choose_profile(gpus, version)
        res['gpu_profile'] = dict(id=pid, reason=why)
    return res


def main():
    argument_spec = ilab_argument_spec()
    argument_spec.update(
        gather=dict(type='list', elements='str', default=['version', 'config', 'models', 'system', 'gpu'],
                    choices=['version', 'config', 'models', 'system', 'gpu']),
        model_dirs=dict(type='list', elements='path', default=[]),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    _report.attach(module, 'models', 'ilab_version', 'config_path')
    run_guarded(module, gather_facts)


def gather_facts(module):
    runner = IlabRunner.checked(module)
    gather = set(module.params['gather'])
    installed = os.access(runner.ilab, os.X_OK)
    exists = _fs.isfile(runner.config_path)
    result = dict(changed=False, installed=installed, config_path=runner.config_path,
                  config_exists=exists, venv=runner.venv, user=runner.user)
    version = runner.ilab_version() if installed else None
    if 'version' in gather:
        result['ilab_version'] = version
    if 'config' in gather:
        result['config'] = _ilab_yaml.read_config(runner) if exists else {}
    if 'models' in gather and installed and exists:
        opts = [('--model-dirs', module.params['model_dirs'])] if module.params['model_dirs'] else []
        default_dir = runner.paths.models
        if opts:
            opts = [('--model-dirs', [default_dir] + module.params['model_dirs'])]
        res = runner.run('ilab model list', runner.argv(['model', 'list'], opts),
                         changes_state=False, log=False)
        if res.rc != 0:
            runner.fail('ilab model list', res)
        result['models'] = parse_model_list(res.stdout)
    if 'system' in gather and installed:
        res = runner.run('ilab system info', runner.argv(['system', 'info'], config=exists),
                         changes_state=False, log=False)
        if res.rc != 0:
            runner.fail('ilab system info', res)
        result['system'] = parse_system_info(res.stdout)
    if 'gpu' in gather:
        result.update(gather_gpu(module, version))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
