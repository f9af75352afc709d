# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nvidia_driver role's plan for given facts, without any EL9/Ubuntu image.

One ansible-playbook run on localhost, one inventory host per case (all with
the local connection). Each host's facts are injected as cacheable facts
(``set_fact`` with ``cacheable: true`` lands in the fact cache, hence in
``ansible_facts``; no gathering happens: the role gathers only missing facts),
the probe results the plan needs are host variables, and the playbook runs the
role's real ``set_vars.yml`` and ``plan.yml`` (the same files a real run
includes), then writes the plan, or the failure message, to a JSON file per
host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest
import yaml

NV = 'https://developer.download.nvidia.com/compute/cuda/repos'
# The pinned key fingerprints (roles/nvidia_driver/vars/main.yml says where each comes from).
DEBIAN_CUDA_KEY = 'EB693B3035CD5710E231E123A4B469963BF863CC'
RHEL_CUDA_KEY = '610C7B14E068A878070DA4E99CD0A493D42D0685'
EPEL9_KEY = 'FF8AD1344597106ECE813B918A3872BF3228467C'
EL_KERNEL = '5.14.0-427.13.1.el9_4.x86_64'


def facts(distribution, major, kernel, arch, family=None, version=None):
    return {
        'ansible_distribution': distribution,
        'ansible_distribution_major_version': major,
        'ansible_distribution_version': version or major,
        'ansible_os_family': family or ('Debian' if distribution in ('Debian', 'Ubuntu') else 'RedHat'),
        'ansible_kernel': kernel,
        'ansible_architecture': arch,
    }


PROBE_OK = {
    '__nvidia_driver_secure_boot': 'disabled',
    '__nvidia_driver_kernel_devel_available': True,
    '__nvidia_driver_kernel_devel_installed': [],
    '__nvidia_driver_kernel_devel_newest': '',
}


def repos(*pairs):
    """__nvidia_driver_repos as probe-RedHat.yml reads them from `dnf repolist --all`."""
    return [{'id': i, 'status': st} for i, st in pairs]


# Repository ids as each vendor's image has them (CodeReady Builder disabled).
REPOS_RHEL_SUB = repos(('rhel-9-for-x86_64-appstream-rpms', 'enabled'), ('rhel-9-for-x86_64-baseos-rpms', 'enabled'),
                       ('codeready-builder-for-rhel-9-x86_64-debug-rpms', 'disabled'),
                       ('codeready-builder-for-rhel-9-x86_64-rpms', 'disabled'),
                       ('codeready-builder-for-rhel-9-x86_64-source-rpms', 'disabled'))
REPOS_RHEL_RHUI_AWS = repos(('codeready-builder-for-rhel-9-rhui-debug-rpms', 'disabled'),
                            ('codeready-builder-for-rhel-9-rhui-rpms', 'disabled'),
                            ('codeready-builder-for-rhel-9-rhui-source-rpms', 'disabled'),
                            ('rhel-9-appstream-rhui-rpms', 'enabled'), ('rhel-9-baseos-rhui-rpms', 'enabled'),
                            ('rhui-client-config-server-9', 'enabled'))
REPOS_EL9_CRB = repos(('appstream', 'enabled'), ('baseos', 'enabled'), ('crb', 'disabled'), ('crb-debuginfo', 'disabled'),
                      ('extras', 'enabled'))
REPOS_EL9_CRB_ON = repos(('appstream', 'enabled'), ('baseos', 'enabled'), ('crb', 'enabled'))
REPOS_RHEL10_SUB = repos(('rhel-10-for-x86_64-baseos-rpms', 'enabled'),
                         ('codeready-builder-for-rhel-10-x86_64-rpms', 'disabled'))

CASES = {
    'rhel_open_latest': (facts('RedHat', '9', EL_KERNEL, 'x86_64', version='9.4'),
                         {'nvidia_driver_branch': '', '__nvidia_driver_repos': REPOS_RHEL_SUB}),
    'rocky_proprietary_580_toolkit': (
        facts('Rocky', '9', EL_KERNEL, 'x86_64', version='9.4'),
        {'nvidia_driver_kernel_module': 'proprietary', 'nvidia_driver_branch': '580',
         'nvidia_driver_cuda_toolkit_version': '12.8', '__nvidia_driver_repos': REPOS_EL9_CRB}),
    'alma_aarch64_64k_open_580': (
        facts('AlmaLinux', '9', '5.14.0-503.14.1.el9_5.aarch64+64k', 'aarch64', version='9.5'),
        {'nvidia_driver_branch': 580, '__nvidia_driver_repos': REPOS_EL9_CRB}),
    'centos_proprietary_550': (
        facts('CentOS', '9', '5.14.0-570.el9.x86_64', 'x86_64'),
        {'nvidia_driver_kernel_module': 'proprietary', 'nvidia_driver_branch': '550',
         '__nvidia_driver_repos': REPOS_EL9_CRB_ON}),
    # the users' hosts: RHEL 9.4 on AWS (RHUI), a working 565 driver
    'rhel_rhui_installed_565': (
        facts('RedHat', '9', EL_KERNEL, 'x86_64', version='9.4'),
        {'__nvidia_driver_repos': REPOS_RHEL_RHUI_AWS, '__nvidia_driver_installed_branch': '565',
         '__nvidia_driver_kernel_devel_matched_available': True}),
    'rhel_installed_no_driver': (
        facts('RedHat', '9', EL_KERNEL, 'x86_64', version='9.4'),
        {'__nvidia_driver_repos': REPOS_RHEL_SUB, '__nvidia_driver_installed_branch': ''}),
    'rhel_no_crb_known': (
        facts('RedHat', '9', EL_KERNEL, 'x86_64', version='9.4'),
        {'__nvidia_driver_repos': repos(('rhel-9-baseos-rhui-rpms', 'enabled'))}),
    'rhel10_open_580': (
        facts('RedHat', '10', '6.12.0-55.9.1.el10_0.x86_64', 'x86_64', version='10.0'),
        {'nvidia_driver_branch': '580', '__nvidia_driver_repos': REPOS_RHEL10_SUB,
         '__nvidia_driver_kernel_devel_matched_available': True}),
    'rocky10_open_latest_toolkit_12_7': (
        facts('Rocky', '10', '6.12.0-55.9.1.el10_0.x86_64', 'x86_64', version='10.0'),
        {'nvidia_driver_branch': 'latest', 'nvidia_driver_cuda_toolkit_version': '12.7',
         '__nvidia_driver_repos': REPOS_EL9_CRB,
         '__nvidia_driver_toolkits_offered': ['12.9', '12.6', '12.8', '13.0', '12.10']}),
    'rocky_toolkit_12_6_offered': (
        facts('Rocky', '9', EL_KERNEL, 'x86_64', version='9.4'),
        {'nvidia_driver_cuda_toolkit_version': '12.6', '__nvidia_driver_repos': REPOS_EL9_CRB,
         '__nvidia_driver_toolkits_offered': ['12.6', '12.8']}),
    'rhel_issue75_525': (
        facts('RedHat', '9', EL_KERNEL, 'x86_64', version='9.4'),
        {'nvidia_driver_kernel_module': 'proprietary', 'nvidia_driver_branch': '525', 'nvidia_driver_epel': False}),
    'rhel_full_version_rejected': (
        facts('RedHat', '9', EL_KERNEL, 'x86_64', version='9.4'),
        {'nvidia_driver_branch': '525.125.06', '__nvidia_driver_repos': REPOS_RHEL_SUB}),
    'rhel_kernel_mismatch': (
        facts('RedHat', '9', '5.14.0-362.8.1.el9_3.x86_64', 'x86_64', version='9.3'),
        {'__nvidia_driver_repos': REPOS_RHEL_SUB, '__nvidia_driver_kernel_devel_available': False,
         '__nvidia_driver_kernel_devel_installed': [EL_KERNEL],
         '__nvidia_driver_kernel_devel_newest': '5.14.0-503.14.1.el9_5.x86_64'}),
    'rocky_kernel_mismatch_update': (
        facts('Rocky', '9', '5.14.0-362.8.1.el9_3.x86_64', 'x86_64', version='9.3'),
        {'nvidia_driver_kernel_mismatch': 'update', '__nvidia_driver_repos': REPOS_EL9_CRB,
         '__nvidia_driver_kernel_devel_available': False,
         '__nvidia_driver_kernel_devel_newest': '5.14.0-503.14.1.el9_5.x86_64'}),
    'debian12_open_580': (
        facts('Debian', '12', '6.1.0-26-amd64', 'x86_64', version='12.7'), {'nvidia_driver_branch': '580'}),
    'debian12_kernel_mismatch': (
        facts('Debian', '12', '6.1.0-18-cloud-amd64', 'x86_64', version='12.5'),
        {'nvidia_driver_kernel_mismatch': 'update', '__nvidia_driver_kernel_devel_available': False}),
    'ubuntu2404_proprietary_latest': (
        facts('Ubuntu', '24', '6.8.0-1015-aws', 'x86_64', version='24.04'),
        {'nvidia_driver_kernel_module': 'proprietary'}),
    'ubuntu2204_arm_open': (
        facts('Ubuntu', '22', '5.15.0-1061-nvidia', 'aarch64', version='22.04'), {}),
    'debian12_http_mirror': (
        facts('Debian', '12', '6.1.0-26-amd64', 'x86_64', version='12.7'),
        {'nvidia_driver_repo_base_url': 'http://mirror.example/cuda/repos'}),
    'rhel_file_mirror': (
        facts('RedHat', '9', EL_KERNEL, 'x86_64', version='9.4'),
        {'nvidia_driver_repo_base_url': 'file:///srv/cuda/repos/', '__nvidia_driver_repos': REPOS_RHEL_SUB}),
}

PLAYBOOK = """
- name: Compute nvidia_driver plans
  hosts: all
  gather_facts: false
  tasks:
    - name: Inject the facts of the case
      ansible.builtin.set_fact:
        ansible_distribution: "{{ case_facts.ansible_distribution }}"
        ansible_distribution_major_version: "{{ case_facts.ansible_distribution_major_version }}"
        ansible_distribution_version: "{{ case_facts.ansible_distribution_version }}"
        ansible_os_family: "{{ case_facts.ansible_os_family }}"
        ansible_kernel: "{{ case_facts.ansible_kernel }}"
        ansible_architecture: "{{ case_facts.ansible_architecture }}"
        cacheable: true
    - name: Plan
      block:
        - name: Load the platform variables
          ansible.builtin.include_role:
            name: labforge.instructlab.nvidia_driver
            tasks_from: set_vars
        - name: Compute the plan
          ansible.builtin.include_role:
            name: labforge.instructlab.nvidia_driver
            tasks_from: plan
        - name: Check the toolkit against the repository's list
          ansible.builtin.include_role:
            name: labforge.instructlab.nvidia_driver
            tasks_from: toolkit-plan
          when: __nvidia_driver_toolkits_offered is defined
        - name: Save the plan
          ansible.builtin.copy:
            content: "{{ {'plan': __nvidia_driver_plan} | to_json }}"
            dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
            mode: "0600"
          delegate_to: localhost
      rescue:
        - name: Save the failure
          ansible.builtin.copy:
            content: "{{ {'failed_task': ansible_failed_task.name, 'msg': ansible_failed_result.msg} | to_json }}"
            dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
            mode: "0600"
          delegate_to: localhost
"""


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('nvidia-plan')
    out = tmp / 'out'
    out.mkdir()
    hosts = {}
    for name, (host_facts, host_vars) in CASES.items():
        hv = dict(PROBE_OK)
        hv['case_facts'] = host_facts
        hv.update(host_vars)
        hv.update({'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable})
        hosts[name] = hv
    (tmp / 'inventory.yml').write_text(yaml.safe_dump({'all': {'hosts': hosts}}))
    (tmp / 'plan.yml').write_text(PLAYBOOK)
    env = dict(os.environ)
    env.update({
        'ANSIBLE_GATHERING': 'explicit',
        'ANSIBLE_FORKS': '12',
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_DEPRECATION_WARNINGS': 'false',
    })
    bindir = os.path.dirname(sys.executable)
    proc = subprocess.run(
        [os.path.join(bindir, 'ansible-playbook'), '-i', str(tmp / 'inventory.yml'), str(tmp / 'plan.yml'),
         '-e', 'out_dir=%s' % out],
        env=env, cwd=str(tmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False,
        timeout=300)
    assert proc.returncode == 0, proc.stdout
    res = {}
    for name in CASES:
        path = out / (name + '.json')
        assert path.exists(), 'no result for %s:\n%s' % (name, proc.stdout)
        res[name] = json.loads(path.read_text())
    return res


def plan(results, name):
    assert 'plan' in results[name], results[name]
    return results[name]['plan']


def test_rhel_open_latest(results):
    p = plan(results, 'rhel_open_latest')
    assert p['family'] == 'RedHat'
    assert p['repo_url'] == NV + '/rhel9/x86_64/'
    assert p['repo_name'] == 'cuda-rhel9-x86_64'
    assert p['key_url'] == NV + '/rhel9/x86_64/D42D0685.pub'
    assert p['key_fingerprint'] == RHEL_CUDA_KEY
    assert p['key_path'] == '/etc/pki/rpm-gpg/RPM-GPG-KEY-labforge-nvidia-cuda'
    assert p['epel_key'] == 'https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-9'
    assert p['epel_key_fingerprint'] == EPEL9_KEY
    assert p['module_stream'] == 'nvidia-driver:open-dkms'
    assert p['module_enable'] is True
    assert p['driver_packages'] == ['nvidia-open']
    assert p['build_packages'] == ['dkms']
    assert p['kernel_packages'] == ['kernel-devel-' + EL_KERNEL, 'kernel-headers']
    assert p['kernel_devel_ok'] is True and p['kernel_update'] is False
    assert p['toolkit_packages'] == []
    assert p['epel_release'] == 'https://dl.fedoraproject.org/pub/epel/epel-release-latest-9.noarch.rpm'
    assert p['crb_repo'] == 'codeready-builder-for-rhel-9-x86_64-rpms'
    assert p['expected_branch'] == ''
    assert 'keyring_url' not in p
    assert p['secure_boot'] == 'disabled'


def test_rocky_proprietary_branch_and_toolkit(results):
    p = plan(results, 'rocky_proprietary_580_toolkit')
    assert p['repo_url'] == NV + '/rhel9/x86_64/'
    # epel-release comes signed from Rocky's own repositories: no key is fetched
    assert p['epel_key'] == '' and p['epel_key_fingerprint'] == ''
    assert p['module_stream'] == 'nvidia-driver:580-dkms'
    assert p['module_enable'] is True
    assert p['driver_packages'] == ['cuda-drivers']
    assert p['toolkit_packages'] == ['cuda-toolkit-12-8']
    assert p['epel_release'] == 'epel-release'
    assert p['crb_repo'] == 'crb'
    assert p['expected_branch'] == '580'


def test_alma_aarch64_64k(results):
    p = plan(results, 'alma_aarch64_64k_open_580')
    assert p['repo_url'] == NV + '/rhel9/sbsa/'
    assert p['repo_name'] == 'cuda-rhel9-sbsa'
    assert p['key_url'] == NV + '/rhel9/sbsa/D42D0685.pub'
    assert p['module_stream'] == 'nvidia-driver:580-open'
    assert p['driver_packages'] == ['nvidia-open']
    assert p['kernel_packages'] == ['kernel-64k-devel-5.14.0-503.14.1.el9_5.aarch64', 'kernel-headers']
    assert p['crb_repo'] == 'crb'


def test_centos_pre_570_branch_uses_module_profile(results):
    p = plan(results, 'centos_proprietary_550')
    assert p['module_stream'] == 'nvidia-driver:550-dkms'
    assert p['module_enable'] is False
    assert p['driver_packages'] == ['@nvidia-driver:550-dkms/default']
    assert p['kernel_packages'] == ['kernel-devel-5.14.0-570.el9.x86_64', 'kernel-headers']


def test_issue_75_branch_maps_to_stream_name(results):
    # NVIDIA/ansible-role-nvidia-driver#75: "nvidia-driver:525.125.06" is no stream; "525-dkms" is.
    p = plan(results, 'rhel_issue75_525')
    assert p['module_stream'] == 'nvidia-driver:525-dkms'
    assert p['driver_packages'] == ['@nvidia-driver:525-dkms/default']
    assert p['epel_release'] == '' and p['crb_repo'] == ''
    assert p['epel_key'] == ''


def test_full_driver_version_is_rejected(results):
    r = results['rhel_full_version_rejected']
    assert 'plan' not in r
    assert r['failed_task'] == 'Check the role\'s variables'
    assert ('nvidia_driver_branch=525.125.06 (a branch number such as 580, installed, or empty/latest for the latest)'
            in r['msg'])


def test_kernel_devel_mismatch_fails_clearly(results):
    r = results['rhel_kernel_mismatch']
    assert 'plan' not in r
    assert r['failed_task'] == 'Fail when the running kernel\'s development files cannot be installed'
    assert r['msg'] == (
        'kernel-devel-5.14.0-362.8.1.el9_3.x86_64 (development files of the RUNNING kernel '
        '5.14.0-362.8.1.el9_3.x86_64) is neither installed nor available from the enabled repositories, '
        'so DKMS cannot build the NVIDIA kernel module for the kernel this host runs. '
        'Installed: 5.14.0-427.13.1.el9_4.x86_64. Newest in the repositories: 5.14.0-503.14.1.el9_5.x86_64. '
        'This is typical of cloud images whose kernel is older than the repositories, or of a kernel update '
        'without a reboot. Update the kernel and reboot into it, then run again, or set '
        'nvidia_driver_kernel_mismatch: update (with nvidia_driver_reboot: true) to let this role do it.')


def test_kernel_mismatch_update_mode_plans_a_kernel_update(results):
    p = plan(results, 'rocky_kernel_mismatch_update')
    assert p['kernel_devel_ok'] is False
    assert p['kernel_update'] is True
    assert p['kernel_update_packages'] == ['kernel', 'kernel-devel']
    assert p['kernel_packages'] == ['kernel-devel-5.14.0-362.8.1.el9_3.x86_64', 'kernel-headers']


def test_debian12(results):
    p = plan(results, 'debian12_open_580')
    assert p['family'] == 'Debian'
    assert p['repo_url'] == NV + '/debian12/x86_64/'
    assert p['key_url'] == NV + '/debian12/x86_64/3bf863cc.pub'
    assert p['key_fingerprint'] == DEBIAN_CUDA_KEY
    assert p['key_path'] == '/etc/apt/keyrings/labforge-nvidia-cuda.asc'
    assert 'keyring_url' not in p
    assert p['module_stream'] == '' and p['module_enable'] is False
    assert p['driver_packages'] == ['nvidia-open-580']
    assert p['kernel_packages'] == ['linux-headers-6.1.0-26-amd64']
    assert p['expected_branch'] == '580'
    assert p['epel_release'] == ''


def test_debian12_mismatch_cannot_update(results):
    r = results['debian12_kernel_mismatch']
    assert 'plan' not in r
    assert r['msg'].startswith('linux-headers-6.1.0-18-cloud-amd64 (development files of the RUNNING kernel '
                               '6.1.0-18-cloud-amd64) is neither installed nor available')
    assert r['msg'].endswith('Update the kernel and reboot into it, then run again.')


def test_ubuntu2404_proprietary(results):
    p = plan(results, 'ubuntu2404_proprietary_latest')
    assert p['key_url'] == NV + '/ubuntu2404/x86_64/3bf863cc.pub'
    assert p['key_fingerprint'] == DEBIAN_CUDA_KEY
    assert p['driver_packages'] == ['cuda-drivers']
    assert p['kernel_packages'] == ['linux-headers-6.8.0-1015-aws']


def test_ubuntu2204_arm(results):
    p = plan(results, 'ubuntu2204_arm_open')
    assert p['key_url'] == NV + '/ubuntu2204/sbsa/3bf863cc.pub'
    assert p['repo_url'] == NV + '/ubuntu2204/sbsa/'
    assert p['driver_packages'] == ['nvidia-open']


def test_repository_urls_must_be_https(results):
    """A CUDA repository (and its key) over plain http is refused before anything changes."""
    r = results['debian12_http_mirror']
    assert 'plan' not in r
    assert r['failed_task'] == 'Check the role\'s variables'
    assert ('nvidia_driver_repo_base_url=http://mirror.example/cuda/repos (an https:// URL, or file:// for a '
            'mirror on the host)') in r['msg']


def test_local_mirror_gets_the_same_pinned_key(results):
    p = plan(results, 'rhel_file_mirror')
    assert p['repo_url'] == 'file:///srv/cuda/repos/rhel9/x86_64/'
    assert p['key_url'] == 'file:///srv/cuda/repos/rhel9/x86_64/D42D0685.pub'
    assert p['key_fingerprint'] == RHEL_CUDA_KEY


# --- issue 15: real EL hosts ---------------------------------------------------------------

def test_installed_keeps_a_working_driver_branch(results):
    """The default nvidia_driver_branch (installed) pins the working 565 driver's stream: a rerun
    never moves it to the newest branch."""
    p = plan(results, 'rhel_rhui_installed_565')
    assert p['branch'] == '565' and p['expected_branch'] == '565'
    assert p['module_stream'] == 'nvidia-driver:565-open'
    assert p['module_enable'] is False
    assert p['driver_packages'] == ['@nvidia-driver:565-open/default']
    assert p['branch_reason'] == 'nvidia_driver_branch: installed, the working driver is of branch 565'


def test_installed_without_a_working_driver_takes_the_newest(results):
    p = plan(results, 'rhel_installed_no_driver')
    assert p['branch'] == '' and p['module_stream'] == 'nvidia-driver:open-dkms'
    assert p['branch_reason'] == 'nvidia_driver_branch: installed, no working driver: the newest branch'


def test_codeready_builder_on_rhui_is_enabled_with_dnf(results):
    """AWS RHEL images get their repositories from RHUI: subscription-manager manages none of them."""
    p = plan(results, 'rhel_rhui_installed_565')
    assert p['crb_repo'] == 'codeready-builder-for-rhel-9-rhui-rpms'
    assert p['crb_enabled'] is False
    assert p['crb_command'] == ['dnf', 'config-manager', '--set-enabled', 'codeready-builder-for-rhel-9-rhui-rpms']


def test_codeready_builder_with_a_subscription(results):
    p = plan(results, 'rhel_open_latest')
    assert p['crb_command'] == ['subscription-manager', 'repos', '--enable=codeready-builder-for-rhel-9-x86_64-rpms']


@pytest.mark.parametrize('case', ['rocky_proprietary_580_toolkit', 'alma_aarch64_64k_open_580'])
def test_codeready_builder_on_rocky_and_alma(results, case):
    p = plan(results, case)
    assert p['crb_repo'] == 'crb' and p['crb_enabled'] is False
    assert p['crb_command'] == ['dnf', 'config-manager', '--set-enabled', 'crb']


def test_codeready_builder_already_enabled(results):
    p = plan(results, 'centos_proprietary_550')
    assert p['crb_repo'] == 'crb' and p['crb_enabled'] is True


def test_no_codeready_builder_known_fails_clearly(results):
    r = results['rhel_no_crb_known']
    assert 'plan' not in r
    assert r['failed_task'] == 'Fail when no CodeReady Builder repository is known (EPEL\'s dkms needs it)'
    assert 'found rhel-9-baseos-rhui-rpms' in r['msg']
    assert '^codeready-builder-for-rhel-9-x86_64-rpms$' in r['msg']


def test_kernel_devel_matched_where_it_exists(results):
    assert plan(results, 'rhel_rhui_installed_565')['kernel_packages'] == [
        'kernel-devel-matched-' + EL_KERNEL, 'kernel-headers']
    # not offered: kernel-devel of the running kernel
    assert plan(results, 'rhel_open_latest')['kernel_packages'] == ['kernel-devel-' + EL_KERNEL, 'kernel-headers']


def test_rhel10_has_no_module_streams_and_pins_with_versionlock(results):
    p = plan(results, 'rhel10_open_580')
    assert p['repo_url'] == NV + '/rhel10/x86_64/'
    assert p['repo_name'] == 'cuda-rhel10-x86_64'
    assert p['epel_key'] == 'https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-10'
    assert p['epel_key_fingerprint'] == '7D8D15CBFC4E62688591FB2633D98517E37ED158'
    assert p['module_stream'] == '' and p['module_enable'] is False
    assert p['driver_packages'] == ['nvidia-open']
    assert p['versionlock'] == '*nvidia*580*'
    assert p['versionlock_package'] == 'python3-dnf-plugin-versionlock'
    assert p['expected_branch'] == '580'
    assert p['epel_release'] == 'https://dl.fedoraproject.org/pub/epel/epel-release-latest-10.noarch.rpm'
    assert p['crb_command'] == ['subscription-manager', 'repos', '--enable=codeready-builder-for-rhel-10-x86_64-rpms']
    assert p['kernel_packages'] == ['kernel-devel-matched-6.12.0-55.9.1.el10_0.x86_64', 'kernel-headers']


def test_el9_has_no_versionlock(results):
    assert plan(results, 'rhel_open_latest')['versionlock'] == ''


def test_toolkit_version_the_repository_does_not_offer(results):
    """There never was a CUDA 12.7: refused before the driver is installed, listing what exists."""
    r = results['rocky10_open_latest_toolkit_12_7']
    assert 'plan' not in r
    assert r['msg'] == (
        'nvidia_driver_cuda_toolkit_version=12.7: NVIDIA\'s repository (%s/rhel10/x86_64) has no '
        'cuda-toolkit-12-7. It offers CUDA 12.6, 12.8, 12.9, 12.10, 13.0.' % NV)


def test_toolkit_version_the_repository_offers(results):
    assert plan(results, 'rocky_toolkit_12_6_offered')['toolkit_packages'] == ['cuda-toolkit-12-6']
