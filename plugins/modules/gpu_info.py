#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: gpu_info
short_description: NVIDIA GPU facts and the InstructLab system profile that fits them
version_added: "0.1.0"
description:
  - Reads the NVIDIA GPUs of a host from C(nvidia-smi --query-gpu=index,name,uuid,memory.total,memory.used,driver_version,compute_cap
    --format=csv,noheader,nounits) and the CUDA version (of the driver) from the header of plain C(nvidia-smi).
    Drivers older than 510 know no C(compute_cap); they are asked again without it.
  - When there is no C(nvidia-smi), no loaded driver, no GPU, or the kernel module and the user-space
    driver differ (C(Driver/library version mismatch), normal until the reboot that follows a driver update),
    the module does not fail; it returns an empty GPU list, a O(ignore:status) and a human-readable O(ignore:reason).
  - Chooses the C(ilab config init) system profile that InstructLab would pick for these GPUs (same GPU
    model and count), from a table read from the InstructLab sources of the given release series.
    Profile identifiers are paths relative to C(~/.local/share/instructlab/internal/system_profiles/),
    for example C(nvidia/a100/a100_x4.yaml).
  - Returns everything both as top-level keys and as the fact C(gpu_info) (C(ansible_facts.gpu_info)).
  - Never changes anything.
author:
  - labforge engineers (@labforge)
options:
  ilab_version:
    description:
      - InstructLab version whose system profiles are considered (only its C(major.minor) series matters).
      - Known series are 0.25 and 0.26. For other versions no profile is chosen and the reason says so.
    type: str
    default: "0.26.1"
  nvidia_smi:
    description:
      - Path of C(nvidia-smi). By default it is searched on C(PATH) (and the usual system directories).
    type: path
extends_documentation_fragment:
  - labforge.instructlab.attributes
attributes:
  check_mode:
    support: full
    details: Only reads; runs the same read-only commands in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Never reports a change.
  facts:
    description: Returns an C(ansible_facts) dictionary (C(gpu_info)) that updates the host facts.
    support: full
notes:
  - C(nvidia-smi) lists every GPU the driver sees; C(CUDA_VISIBLE_DEVICES) does not limit it (it limits what
    C(ilab) itself sees).
  - Mixed GPU models get no profile (InstructLab would compare only the name of the last GPU).
seealso:
  - name: InstructLab system profiles
    description: The profiles the table comes from (C(src/instructlab/profiles/)).
    link: https://github.com/instructlab/instructlab/tree/v0.26.1/src/instructlab/profiles
  - name: nvidia-smi documentation
    description: The query options and the exit codes of C(nvidia-smi).
    link: https://docs.nvidia.com/deploy/nvidia-smi/index.html
'''

EXAMPLES = r'''
- name: Read the GPUs
  labforge.instructlab.gpu_info:
  register: gpus

- name: Show the profile ilab config init would use
  ansible.builtin.debug:
    msg: "{{ gpus.ilab_profile | default('generic defaults', true) }} ({{ gpus.ilab_profile_reason }})"

- name: Require a working driver of branch 580
  ansible.builtin.assert:
    that:
      - ansible_facts.gpu_info.status == 'ok'
      - ansible_facts.gpu_info.driver_branch == '580'
    fail_msg: "{{ ansible_facts.gpu_info.reason }}"

- name: Profiles of another InstructLab release series
  labforge.instructlab.gpu_info:
    ilab_version: "0.25.1"
'''

RETURN = r'''
gpus:
  description: The GPUs, in C(nvidia-smi) index order. Empty when O(ignore:status) is not C(ok).
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: GPU index.
      type: int
      sample: 0
    name:
      description: Product name as the driver reports it.
      type: str
      sample: NVIDIA A10G
    uuid:
      description: GPU UUID.
      type: str
      sample: GPU-8c0e3f1a-4a9b-7c1d-2e6f-5b3a9d0c7e41
    memory_total_mib:
      description: Total memory in MiB.
      type: int
      sample: 23028
    memory_used_mib:
      description: Used memory in MiB.
      type: int
      sample: 0
    driver_version:
      description: Driver version.
      type: str
      sample: 565.57.01
    compute_cap:
      description: CUDA compute capability (C(major.minor)); null when the driver does not report it (older than 510).
      type: str
      sample: "8.6"
    cuda_version:
      description: Highest CUDA version the driver supports (from the C(nvidia-smi) header); null if unknown.
      type: str
      sample: "12.7"
  sample:
    - index: 0
      name: NVIDIA A10G
      uuid: GPU-8c0e3f1a-4a9b-7c1d-2e6f-5b3a9d0c7e41
      memory_total_mib: 23028
      memory_used_mib: 0
      driver_version: 565.57.01
      compute_cap: "8.6"
      cuda_version: "12.7"
gpu_count:
  description: Number of GPUs.
  returned: always
  type: int
  sample: 1
total_memory_mib:
  description: Sum of the GPUs' total memory in MiB.
  returned: always
  type: int
  sample: 23028
driver_version:
  description: Driver version (null without a working driver).
  returned: always
  type: str
  sample: 565.57.01
driver_branch:
  description: Driver branch, the first field of the version (null without a working driver).
  returned: always
  type: str
  sample: "565"
cuda_version:
  description: CUDA version of the driver (null without a working driver).
  returned: always
  type: str
  sample: "12.7"
status:
  description:
    - C(ok), C(no_nvidia_smi) (no driver installed), C(no_driver) (installed but not loaded),
      C(no_gpu), C(driver_library_mismatch) (reboot pending after a driver change) or C(error).
  returned: always
  type: str
  sample: ok
reason:
  description: Why the list is empty (null when O(ignore:status) is C(ok)).
  returned: always
  type: str
  sample: "nvidia-smi not found: no NVIDIA driver is installed on this host"
ilab_version:
  description: The InstructLab version the profile was chosen for.
  returned: always
  type: str
  sample: "0.26.1"
ilab_profile:
  description: The chosen system profile id (a path under C(system_profiles/)); null when none fits.
  returned: always
  type: str
  sample: nvidia/a100/a100_x4.yaml
ilab_profile_reason:
  description: Why this profile, or why none.
  returned: always
  type: str
  sample: "4x NVIDIA A100-SXM4-80GB matches InstructLab 0.26.1 system profile nvidia/a100/a100_x4.yaml (NVIDIA A100 X4)"
ilab_profile_details:
  description: Label, path relative to C(XDG_DATA_HOME), key train/serve values and overrides of the chosen profile.
  returned: always
  type: dict
  sample:
    id: nvidia/a100/a100_x4.yaml
    label: NVIDIA A100 X4
    data_path: instructlab/internal/system_profiles/nvidia/a100/a100_x4.yaml
    gpu_count: 4
    train: {device: cuda, nproc_per_node: 4, effective_batch_size: 128, max_batch_len: 54000}
    serve: {backend: vllm, vllm_gpus: 4, tensor_parallel_size: 4}
    overrides: {}
commands:
  description: The command lines run.
  returned: always
  type: list
  elements: list
  sample: [["/usr/bin/nvidia-smi", "--query-gpu=index,name,uuid,memory.total,memory.used,driver_version,compute_cap",
            "--format=csv,noheader,nounits"], ["/usr/bin/nvidia-smi"]]
ansible_facts:
  description: Facts.
  returned: always
  type: dict
  contains:
    gpu_info:
      description: Every key above but C(commands).
      type: dict
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(ilab_version),
      RV(reason), those of them that have a value. A failure adds C(path) (a path the file layer refused) and
      C(log_path) when it has them."
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils._gpu import (
    STATUS_OK,
    choose_profile,
    driver_branch,
    profile_details,
    read_gpus,
)
from ansible_collections.labforge.instructlab.plugins.module_utils import _report


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ilab_version=dict(type='str', default='0.26.1'),
            nvidia_smi=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    _report.attach(module, 'ilab_version', 'reason')
    status, reason, gpus, cuda, commands = read_gpus(module, module.params['nvidia_smi'])
    ilab_version = module.params['ilab_version']
    profile, profile_reason = choose_profile(gpus, ilab_version)
    if status != STATUS_OK:
        profile_reason = '%s (%s)' % (profile_reason, reason)
    driver = gpus[0]['driver_version'] if gpus else None
    info = dict(
        gpus=gpus,
        gpu_count=len(gpus),
        total_memory_mib=sum(g['memory_total_mib'] or 0 for g in gpus),
        driver_version=driver,
        driver_branch=driver_branch(driver),
        cuda_version=cuda,
        status=status,
        reason=reason,
        ilab_version=ilab_version,
        ilab_profile=profile,
        ilab_profile_reason=profile_reason,
        ilab_profile_details=profile_details(profile, ilab_version, gpus),
    )
    result = dict(info)
    module.exit_json(changed=False, commands=commands, ansible_facts=dict(gpu_info=info), **result)


if __name__ == '__main__':
    main()
