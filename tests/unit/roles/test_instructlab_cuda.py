# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The instructlab role's CUDA decisions for given facts, without a GPU:

* tasks/cuda_plan.yml: the toolkit/driver compatibility table, the toolkit the
  repository offers, the architectures gathered across the hosts of a play,
  input errors (one play per group of hosts: the architectures come from every
  host of a play);
* with nvcc --version as NVIDIA's 12.4 and Debian 12's 11.8 compilers print it.

validate.yml end to end (wheelhouse key, `auto` on a GPU host without driver)
is in test_instructlab_locks.py, the GPU check's causes in test_instructlab_venv.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# `nvcc --version` as the compilers print it (NVIDIA's 12.4.131 binaries from Debian 13's
# nvidia-cuda-toolkit, and Debian 12's nvidia-cuda-toolkit 11.8).
NVCC_12_4 = ("nvcc: NVIDIA (R) Cuda compiler driver\nCopyright (c) 2005-2024 NVIDIA Corporation\n"
             "Built on Thu_Mar_28_02:18:24_PDT_2024\nCuda compilation tools, release 12.4, V12.4.131\n"
             "Build cuda_12.4.r12.4/compiler.34097967_0\n")
NVCC_11_8 = ("nvcc: NVIDIA (R) Cuda compiler driver\nCopyright (c) 2005-2022 NVIDIA Corporation\n"
             "Built on Wed_Sep_21_10:33:58_PDT_2022\nCuda compilation tools, release 11.8, V11.8.89\n"
             "Build cuda_11.8.r11.8/compiler.31833905_0\n")


def gpu(name, cap, count=1, driver="565.57.01", cuda="12.7", mib=23028):
    """A gpu_info fact of a working driver."""
    return {"status": "ok", "reason": None, "gpu_count": count, "driver_version": driver,
            "driver_branch": driver.split(".")[0], "cuda_version": cuda,
            "gpus": [{"index": i, "name": name, "compute_cap": cap, "memory_total_mib": mib,
                      "driver_version": driver} for i in range(count)]}


NO_SMI = {"status": "no_nvidia_smi", "reason": "nvidia-smi not found: no NVIDIA driver is installed on this host",
          "gpu_count": 0, "gpus": [], "driver_version": None, "cuda_version": None}
NVIDIA_PKGS_RHEL = ["cuda-nvcc-12-6", "cuda-cudart-devel-12-6", "libcublas-devel-12-6", "cuda-cccl-12-6"]


def offered(names, version, installed=""):
    return {n: {"installed": installed, "candidate": version} for n in names}


def nvidia(names=tuple(NVIDIA_PKGS_RHEL), pkgs=None, want="12.6"):
    """Probe results of the nvidia toolkit (cuda_probe.yml) for a repository that offers PKGS."""
    return {"__instructlab_cuda_want": want, "__instructlab_cuda_home": "/usr/local/cuda-" + want,
            "__instructlab_cuda_package_names": names,
            "__instructlab_cuda_pkgs": offered(names, "12.6.85") if pkgs is None else pkgs}


def provided(nvcc_out, home="/opt/cuda", rc=0):
    return {"instructlab_cuda_toolkit": "provided", "instructlab_cuda_home": home, "__instructlab_cuda_want": "12.6",
            "__instructlab_cuda_home": home, "__instructlab_cuda_package_names": [], "__instructlab_cuda_pkgs": {},
            "__instructlab_nvcc_probe": {"rc": rc, "stdout": nvcc_out, "stderr": "", "msg": ""}}


# group (one play) -> {host: vars}; "case_gpu_info" becomes the host's gpu_info fact
PLAN_CASES = {
    "a10g": {"a10g_565": dict(nvidia(), case_gpu_info=gpu("NVIDIA A10G", "8.6"))},
    "fleet": {
        "fleet_l4": dict(nvidia(), case_gpu_info=gpu("NVIDIA L4", "8.9", driver="550.90.07", cuda="12.4")),
        "fleet_a10g": dict(nvidia(), case_gpu_info=gpu("NVIDIA A10G", "8.6")),
        "fleet_a100": dict(nvidia(), case_gpu_info=gpu("NVIDIA A100-SXM4-80GB", "8.0", count=4,
                                                       driver="535.183.01", cuda="12.2")),
        "fleet_h100": dict(nvidia(), case_gpu_info=gpu("NVIDIA H100 80GB HBM3", "9.0", count=8,
                                                       driver="550.127.05", cuda="12.4")),
        # an image builder in the same play: no GPU, the fleet's list
        "fleet_builder": dict(nvidia(), case_gpu_info=NO_SMI),
    },
    # the only host of its play, without a GPU
    "nogpu": {"no_gpu_no_archs": dict(provided(NVCC_12_4), case_gpu_info=NO_SMI)},
    "single": {
        "explicit_archs": dict(nvidia(), case_gpu_info=gpu("NVIDIA A10G", "8.6"),
                               instructlab_cuda_architectures=["80", "90"]),
        "repo_lacks_12_7": dict(nvidia(names=[n.replace("12-6", "12-7") for n in NVIDIA_PKGS_RHEL], pkgs={},
                                       want="12.7"),
                                instructlab_cuda_toolkit_version="12.7", case_gpu_info=NO_SMI,
                                instructlab_cuda_architectures=["86"]),
        "repo_13_0_vs_cu126": dict(nvidia(names=[n.replace("12-6", "13-0") for n in NVIDIA_PKGS_RHEL],
                                          pkgs=offered([n.replace("12-6", "13-0") for n in NVIDIA_PKGS_RHEL],
                                                       "13.0.48"), want="13.0"),
                                   instructlab_cuda_toolkit_version="13.0",
                                   case_gpu_info=gpu("NVIDIA H100 80GB HBM3", "9.0", driver="580.65.06",
                                                     cuda="13.0")),
        "installed_12_6": dict(nvidia(pkgs=offered(NVIDIA_PKGS_RHEL, "12.6.85", installed="12.6.77")),
                               case_gpu_info=NO_SMI, instructlab_cuda_architectures=["86"]),
        "provided_12_4_driver_520": dict(provided(NVCC_12_4), case_gpu_info=gpu("NVIDIA L4", "8.9",
                                                                                driver="520.61.05", cuda="11.8")),
        "provided_12_4_driver_525": dict(provided(NVCC_12_4), case_gpu_info=gpu("NVIDIA A10G", "8.6",
                                                                                driver="525.60.13", cuda="12.0")),
        "provided_11_8": dict(provided(NVCC_11_8, home="/usr"), case_gpu_info=gpu("NVIDIA A10G", "8.6")),
        "provided_missing": dict(provided("", home="/opt/nothing", rc=2), case_gpu_info=gpu("NVIDIA A10G", "8.6")),
        "blackwell_on_12_4": dict(provided(NVCC_12_4), case_gpu_info=NO_SMI, instructlab_cuda_architectures=["120"]),
        "kepler_on_12_4": dict(provided(NVCC_12_4), case_gpu_info=NO_SMI, instructlab_cuda_architectures=["37"]),
        "maxwell_on_12_4": dict(provided(NVCC_12_4), case_gpu_info=NO_SMI, instructlab_cuda_architectures=["52"]),
        "cmake_archs_in_extra_args": dict(provided(NVCC_12_4), case_gpu_info=NO_SMI,
                                          instructlab_llama_cmake_extra_args=["-DCMAKE_CUDA_ARCHITECTURES=86"]),
        "provided_without_home": dict(provided(NVCC_12_4, home=""), case_gpu_info=NO_SMI),
    },
}

PLAN_PLAY = """
- name: CUDA plans of group {group}
  hosts: {group}
  connection: local
  gather_facts: false
  tasks:
    - name: Inject the GPU fact
      ansible.builtin.set_fact:
        gpu_info: "{{{{ case_gpu_info }}}}"
        cacheable: true
    - name: Plan
      block:
        - name: Compute the CUDA plan
          ansible.builtin.include_role:
            name: labforge.instructlab.instructlab
            tasks_from: cuda_plan.yml
        - name: Save it
          ansible.builtin.copy:
            content: "{{{{ {{'cuda': __instructlab_cuda}} | to_json }}}}"
            dest: "{{{{ out_dir }}}}/{{{{ inventory_hostname }}}}.json"
            mode: "0600"
      rescue:
        - name: Save the failure
          ansible.builtin.copy:
            content: "{{{{ {{'task': ansible_failed_task.name, 'msg': ansible_failed_result.msg}} | to_json }}}}"
            dest: "{{{{ out_dir }}}}/{{{{ inventory_hostname }}}}.json"
            mode: "0600"
"""


def run_playbook(tmp, inventory, playbook):
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp / "play.yml").write_text(playbook)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_FORKS="16",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_DEPRECATION_WARNINGS="false")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           "-i", str(tmp / "inventory.yml"), str(tmp / "play.yml")],
                          env=env, cwd=str(tmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False, timeout=900)
    return proc


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cuda-plan")
    inventory = {"all": {"children": {}}}
    for group, hosts in PLAN_CASES.items():
        inventory["all"]["children"][group] = {"hosts": {
            # validate.yml has chosen the accelerator (and with it the lock) before cuda_plan.yml runs
            name: dict(hv, out_dir=str(tmp), ansible_python_interpreter=sys.executable,
                       __instructlab_accelerator="cuda")
            for name, hv in hosts.items()}}
    proc = run_playbook(tmp, inventory, "".join(PLAN_PLAY.format(group=g) for g in PLAN_CASES))
    out = {}
    for hosts in PLAN_CASES.values():
        for name in hosts:
            path = tmp / (name + ".json")
            assert path.exists(), "no result for %s:\n%s" % (name, proc.stdout[-4000:])
            out[name] = json.loads(path.read_text())
    return out


def cuda(plans, name):
    assert "cuda" in plans[name], plans[name]
    return plans[name]["cuda"]


def failure(plans, name):
    assert "msg" in plans[name], plans[name]
    return plans[name]["msg"]


def test_a10g_host_with_the_nvidia_toolkit(plans):
    """The users' host: RHEL, one A10G on driver 565; the lock's torch is cu126."""
    c = cuda(plans, "a10g_565")
    assert c["toolkit"] == "nvidia"
    assert (c["version"], c["full_version"]) == ("12.6", "12.6.85")
    assert c["home"] == "/usr/local/cuda-12.6"
    assert c["packages"] == NVIDIA_PKGS_RHEL and c["install"] is True and c["packages_missing"] == []
    assert (c["torch"], c["torch_cuda"]) == ("2.7.0", "12.6")
    assert (c["driver_version"], c["min_driver"]) == ("565.57.01", "525.60.13")
    assert c["architectures"] == ["86"]
    assert c["cmake_args"] == ["-DCMAKE_CUDA_ARCHITECTURES=86"]


def test_architectures_gathered_across_the_play(plans):
    """One wheel for the fleet: every host, the GPU-less builder too, gets all compute capabilities."""
    for name in PLAN_CASES["fleet"]:
        c = cuda(plans, name)
        assert c["architectures"] == ["80", "86", "89", "90"], name
        assert c["architectures_from"] == "gpu_info of the play"
        assert c["cmake_args"] == ["-DCMAKE_CUDA_ARCHITECTURES=80;86;89;90"]


def test_explicit_architectures_win(plans):
    c = cuda(plans, "explicit_archs")
    assert c["architectures"] == ["80", "90"]
    assert c["architectures_from"] == "instructlab_cuda_architectures"


def test_installed_toolkit_version_is_the_one_that_builds(plans):
    assert cuda(plans, "installed_12_6")["full_version"] == "12.6.77"


def test_toolkit_the_repository_does_not_offer(plans):
    msg = failure(plans, "repo_lacks_12_7")
    assert msg.startswith("CUDA toolkit 12.7 is not available on this host: the package sources offer no "
                          "cuda-nvcc-12-7, cuda-cudart-devel-12-7, libcublas-devel-12-7, cuda-cccl-12-7")
    assert "set instructlab_cuda_toolkit_version to a 12.x it offers" in msg


def test_toolkit_of_another_major_than_torch(plans):
    msg = failure(plans, "repo_13_0_vs_cu126")
    assert msg.startswith("CUDA toolkit 13.0 (/usr/local/cuda-13.0) does not fit the lock's torch 2.7.0, built "
                          "for CUDA 12.6")
    assert "Use a 12.x toolkit" in msg


def test_debian12_toolkit_11_8_does_not_fit_cu126(plans):
    msg = failure(plans, "provided_11_8")
    assert msg.startswith("CUDA toolkit 11.8 (/usr) does not fit the lock's torch 2.7.0, built for CUDA 12.6")


@pytest.mark.parametrize("driver, ok", [("520.61.05", False), ("525.60.13", True)])
def test_driver_compatibility_table_for_12(plans, driver, ok):
    name = "provided_12_4_driver_" + driver.split(".")[0]
    if ok:
        c = cuda(plans, name)
        assert (c["version"], c["full_version"], c["min_driver"]) == ("12.4", "12.4.131", "525.60.13")
        assert c["install"] is False and c["packages"] == []
    else:
        assert failure(plans, name) == (
            "CUDA toolkit 12.4 (/opt/cuda) is too new for driver 520.61.05 (CUDA 11.8) on this host: builds of "
            "CUDA 12.x need driver 525.60.13 or newer. Update the driver (nvidia_driver_branch), or use a lock and "
            "toolkit of a CUDA major version this driver runs.")


def test_compatibility_table():
    """CUDA minor-version compatibility: the oldest driver per CUDA major version."""
    with open(os.path.join(ROOT, "roles", "instructlab", "vars", "main.yml"), encoding="utf-8") as fh:
        table = yaml.safe_load(fh)["__instructlab_cuda_min_driver"]
    assert table == {"11": "450.80.02", "12": "525.60.13", "13": "580.65.06"}


def test_missing_compiler(plans):
    msg = failure(plans, "provided_missing")
    assert msg.startswith("No CUDA toolkit at instructlab_cuda_home=/opt/nothing (instructlab_cuda_toolkit: "
                          "provided): /opt/nothing/bin/nvcc --version failed")


@pytest.mark.parametrize("name, text", [
    ("blackwell_on_12_4", "cannot compile for compute capability 120 (instructlab_cuda_architectures): "
                          "120 needs CUDA 12.8 or newer."),
    ("kepler_on_12_4", "cannot compile for compute capability 37 (instructlab_cuda_architectures): 37 needs "
                       "a toolkit older than CUDA 12, which dropped it."),
    ("no_gpu_no_archs", "No CUDA architecture to compile llama.cpp for: no host of this play reported a GPU "
                        "compute capability (gpu_info on no_gpu_no_archs: no_nvidia_smi, nvidia-smi not found"),
    ("cmake_archs_in_extra_args", "instructlab_llama_cmake_extra_args must not set CMAKE_CUDA_ARCHITECTURES"),
    ("provided_without_home", "instructlab_cuda_home= (required with provided)"),
])
def test_bad_cuda_input_fails_clearly(plans, name, text):
    assert text in failure(plans, name)


def test_maxwell_still_compiles_with_12(plans):
    assert cuda(plans, "maxwell_on_12_4")["architectures"] == ["52"]
