# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The instructlab role's tested locks, and what the role derives from them
(accelerator, CMake flags, wheelhouse keys, input errors) for given inputs.

Adding a release: run tools/compile-locks.sh, then add it to SUPPORTED and to
KEY_PINS below.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LOCKS = os.path.join(ROOT, "roles", "instructlab", "files", "locks")

SUPPORTED = {"0.26.1/cpu", "0.26.1/cuda", "0.26.1/cuda-vllm"}
KEY_PINS = {
    "0.26.1": {"instructlab": "0.26.1", "numpy": "1.26.4", "torch": "2.7.0", "transformers": "4.52.4",
               "pyarrow": "20.0.0", "llama-cpp-python": "0.3.6", "instructlab-training": "0.10.3",
               "instructlab-sdg": "0.8.2", "docling": "2.34.0"},
}
# A lock's own pins where they differ from its release's: cuda-vllm obeys InstructLab's torch cap.
LOCK_PINS = {
    "0.26.1/cuda-vllm": {"torch": "2.6.0", "vllm": "0.8.5.post1", "xformers": "0.0.29.post2",
                         "nvidia-cuda-runtime-cu12": "12.4.127"},
}
# InstructLab's own files, read at its release tag (git show v0.26.1:FILE): vLLM is installed
# with `pip install .[cuda] -r requirements-vllm-cuda.txt -c constraints-dev.txt` (its CI, its
# Containerfile); requirements-vllm-cuda.txt holds the vllm line, constraints-dev.txt the caps.
VLLM_SOURCE = {
    "0.26.1": {"requires": ["instructlab[cuda]==0.26.1", "vllm>=0.8.0 ; sys_platform == 'linux'"],
               "constraints": ["torch<2.7.0", "vllm<0.9.0"]},
}


def shipped():
    out = set()
    for version in os.listdir(LOCKS):
        for accel in os.listdir(os.path.join(LOCKS, version)):
            out.add("%s/%s" % (version, accel))
    return out


def parse(path):
    """{name: (version, [hashes])} of a hashed requirements file."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    out = {}
    for block in re.split(r"\n(?=\S)", text):
        block = block.strip()
        if not block or block.startswith("#"):
            block = "\n".join(line for line in block.splitlines() if not line.startswith("#")).strip()
            if not block:
                continue
        m = re.match(r"([A-Za-z0-9_.-]+)==([^ ;\\]+)", block)
        assert m, "not an exact pin: %r" % block[:80]
        assert m.group(1) not in out
        out[m.group(1)] = (m.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return out


def test_shipped_locks_are_the_supported_ones():
    assert shipped() == SUPPORTED


@pytest.mark.parametrize("lock", sorted(SUPPORTED))
def test_lock_is_complete_pinned_and_hashed(lock):
    version, accel = lock.split("/")
    d = os.path.join(LOCKS, version, accel)
    with open(os.path.join(d, "lock.yml"), encoding="utf-8") as fh:
        meta = yaml.safe_load(fh)
    wheels = parse(os.path.join(d, "requirements.txt"))
    sdists = parse(os.path.join(d, "sdists.txt"))
    assert meta["instructlab_version"] == version
    # the directory is <accelerator>[-<extra>...]
    assert [meta["accelerator"]] + meta["extras"] == accel.split("-")
    assert meta["python_version"] == "3.11"
    assert meta["platform"] == "x86_64-manylinux_2_28"
    assert not set(wheels) & set(sdists)
    assert len(wheels) + len(sdists) == meta["packages"]
    assert sorted("%s==%s" % (n, v[0]) for n, v in sdists.items()) == sorted(meta["sdists"])
    for name, (_version, hashes) in list(wheels.items()) + list(sdists.items()):
        assert hashes, "%s has no hash" % name
    for name, pin in dict(KEY_PINS[version], **LOCK_PINS.get(lock, {})).items():
        got = wheels.get(name, sdists.get(name, (None,)))[0]
        assert got == pin, "%s: %s != %s" % (name, got, pin)
    assert meta["torch"] == wheels["torch"][0]
    # the CUDA runtime torch's wheels bring: what the role's toolkit must match
    assert meta["torch_cuda"] == ".".join(wheels["nvidia-cuda-runtime-cu12"][0].split(".")[:2])
    assert meta["llama_cpp_python"] == KEY_PINS[version]["llama-cpp-python"]
    assert "llama-cpp-python" in sdists


def _meta(lock):
    with open(os.path.join(LOCKS, lock, "lock.yml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.mark.parametrize("lock", sorted(SUPPORTED))
def test_lock_respects_its_recorded_constraints(lock):
    """Every constraint the lock was compiled with holds for its pins (packaging's own comparison)."""
    from packaging.requirements import Requirement

    meta = _meta(lock)
    pins = parse(os.path.join(LOCKS, lock, "requirements.txt"))
    pins.update(parse(os.path.join(LOCKS, lock, "sdists.txt")))
    for text in meta["constraints"]:
        req = Requirement(text)
        assert req.name in pins, "%s: %s is not in the lock" % (lock, req.name)
        assert req.specifier.contains(pins[req.name][0], prereleases=True), (
            "%s: %s==%s breaks %s" % (lock, req.name, pins[req.name][0], text))


def test_vllm_lock_is_instructlabs_own_recipe():
    """cuda-vllm resolves InstructLab's requirement and caps (read at the release tag), nothing else."""
    meta = _meta("0.26.1/cuda-vllm")
    assert meta["requires"] == VLLM_SOURCE["0.26.1"]["requires"]
    assert meta["constraints"] == VLLM_SOURCE["0.26.1"]["constraints"]
    assert meta["vllm"] == "0.8.5.post1"
    assert meta["exclude_newer"] == _meta("0.26.1/cuda")["exclude_newer"]
    pins = parse(os.path.join(LOCKS, "0.26.1", "cuda-vllm", "requirements.txt"))
    assert pins["vllm"][0] == "0.8.5.post1" and len(pins["vllm"][1]) >= 1
    # the plain locks are InstructLab's extras alone
    for lock in ("0.26.1/cpu", "0.26.1/cuda"):
        assert _meta(lock)["requires"] == ["instructlab[%s]==0.26.1" % lock.split("/")[1]]
        assert "vllm" not in parse(os.path.join(LOCKS, lock, "requirements.txt"))


def test_vllm_lock_keeps_the_cuda_locks_instructlab():
    """Same InstructLab stack as the cuda lock; only vLLM and the torch stack it needs differ."""
    cuda = parse(os.path.join(LOCKS, "0.26.1", "cuda", "requirements.txt"))
    vllm = parse(os.path.join(LOCKS, "0.26.1", "cuda-vllm", "requirements.txt"))
    with open(os.path.join(LOCKS, "0.26.1", "cuda", "sdists.txt"), encoding="utf-8") as a, \
            open(os.path.join(LOCKS, "0.26.1", "cuda-vllm", "sdists.txt"), encoding="utf-8") as b:
        assert a.read().split("\n", 1)[1] == b.read().split("\n", 1)[1]
    for name in ("instructlab", "instructlab-training", "instructlab-sdg", "instructlab-eval", "transformers",
                 "numpy", "bitsandbytes"):
        assert vllm[name][0] == cuda[name][0], name


def test_cuda_lock_adds_the_training_extras():
    cpu = parse(os.path.join(LOCKS, "0.26.1", "cpu", "requirements.txt"))
    cuda = parse(os.path.join(LOCKS, "0.26.1", "cuda", "requirements.txt"))
    cuda_sdists = parse(os.path.join(LOCKS, "0.26.1", "cuda", "sdists.txt"))
    assert "flash-attn" in cuda_sdists
    assert "bitsandbytes" in cuda and "bitsandbytes" not in cpu


# ---------------------------------------------------------------- role logic

PLAY = """
- hosts: all
  connection: local
  gather_facts: true
  gather_subset: [min]
  tasks:
    - name: Inject the GPU fact
      ansible.builtin.set_fact:
        gpu_info: "{{ case_gpu_info }}"
        cacheable: true
      when: case_gpu_info is defined
    - block:
        - ansible.builtin.include_role:
            name: labforge.instructlab.instructlab
            tasks_from: set_vars.yml
        - ansible.builtin.include_role:
            name: labforge.instructlab.instructlab
            tasks_from: validate.yml
            public: true
        - ansible.builtin.copy:
            dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
            content: "{{ {'accelerator': __instructlab_accelerator, 'cmake': __instructlab_cmake_args,
                          'desired': __instructlab_desired, 'wheels': __instructlab_wheels,
                          'lock_host': __instructlab_lock_host | default(none), 'plan_requirements': __instructlab_plan.requirements,
                          'cuda_plan': __instructlab_cuda | default({}),
                          'recorded': __instructlab_wheels_recorded | from_json} | to_json }}"
            mode: "0644"
      rescue:
        - ansible.builtin.copy:
            dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
            content: "{{ {'failed': ansible_failed_result.msg, 'task': ansible_failed_task.name} | to_json }}"
            mode: "0644"
"""

PY311 = sys.executable if sys.version_info[:2] == (3, 11) else "/usr/bin/python3.11"

A10G = {"instructlab_cuda_toolkit": "provided", "instructlab_cuda_home": "NVCC",
        "case_gpu_info": {"gpu_count": 1, "status": "ok", "driver_version": "565.57.01", "cuda_version": "12.7",
                          "gpus": [{"name": "NVIDIA A10G", "compute_cap": "8.6"}]}}
NO_DRIVER = {"status": "no_driver", "gpu_count": 0, "gpus": [],
             "reason": "nvidia-smi: the NVIDIA kernel driver is not loaded (rc=9): \"NVIDIA-SMI has failed because "
                       "it couldn't communicate with the NVIDIA driver.\""}
PCI_A10G = {"skipped": False, "pci_gpus": ["0000:00:1e.0"], "installed": True, "reboot_pending": False}

CASES = {
    "cpu": {"instructlab_accelerator": "cpu"},
    # a provided CUDA 12.4 toolkit (NVCC below) for the A10G's architecture
    "cuda": {"instructlab_accelerator": "cuda", "instructlab_cuda_toolkit": "provided",
             "instructlab_cuda_home": "NVCC", "instructlab_cuda_architectures": ["86"]},
    "cpu_extra": {"instructlab_accelerator": "cpu", "instructlab_llama_cmake_extra_args": ["-DGGML_AVX512=off"]},
    "cpu_native": {"instructlab_accelerator": "cpu", "instructlab_llama_native": True},
    "auto_gpu": {"instructlab_accelerator": "auto", "instructlab_cuda_toolkit": "provided", "instructlab_cuda_home": "NVCC",
                 "case_gpu_info": {"gpu_count": 2, "status": "ok", "driver_version": "565.57.01",
                                   "gpus": [{"name": "NVIDIA A10G", "compute_cap": "8.6"}] * 2}},
    "auto_nogpu": {"instructlab_accelerator": "auto", "case_gpu_info": {"gpu_count": 0, "status": "no_gpu"}},
    # cuda on the users' A10G host (driver 565), with the provided 12.4 toolkit
    "auto_a10g": dict(A10G, instructlab_accelerator="auto"),
    "auto_a10g_fa_off": dict(A10G, instructlab_accelerator="auto", instructlab_flash_attn=False),
    "auto_a10g_sm80": dict(A10G, instructlab_accelerator="auto", instructlab_cuda_architectures=["80"]),
    # an NVIDIA GPU on the PCI bus and no working driver: no silent CPU fallback
    "auto_pci_no_driver": {"instructlab_accelerator": "auto", "case_gpu_info": NO_DRIVER,
                           "nvidia_driver_status": PCI_A10G},
    "auto_pci_reboot_pending": {"instructlab_accelerator": "auto", "case_gpu_info": NO_DRIVER,
                                "nvidia_driver_status": dict(PCI_A10G, reboot_pending=True),
                                "nvidia_driver_reboot": False},
    "auto_no_pci_gpu": {"instructlab_accelerator": "auto", "case_gpu_info": {"gpu_count": 0, "status": "no_nvidia_smi"},
                        "nvidia_driver_status": dict(PCI_A10G, pci_gpus=[], skipped=True)},
    "rocm": {"instructlab_accelerator": "rocm"},
    "old_release": {"instructlab_accelerator": "cpu", "instructlab_version": "0.25.0"},
    "py310": {"instructlab_accelerator": "cpu", "instructlab_python": "FAKE310"},
    "no_python": {"instructlab_accelerator": "cpu", "instructlab_python": ""},
    "cpu_shared": {"instructlab_accelerator": "cpu", "instructlab_wheelhouse_shared": True},
    "foreign_python": {"instructlab_accelerator": "cpu", "instructlab_python": "FOREIGN"},
    "writable_python": {"instructlab_accelerator": "cpu", "instructlab_python": "WRITABLE"},
    "uv_unpinned": {"instructlab_accelerator": "cpu", "instructlab_uv_version": "0.9.0"},
    "uv_bad_sha256": {"instructlab_accelerator": "cpu", "instructlab_uv_version": "0.9.0",
                      "instructlab_uv_sha256": ["abc"]},
    "bad_record": {"instructlab_accelerator": "cpu", "instructlab_wheelhouse_record": "BADRECORD"},
    # vLLM (issue 16): the cuda-vllm lock on CUDA hosts only
    "cuda_vllm": {"instructlab_accelerator": "cuda", "instructlab_cuda_toolkit": "provided",
                  "instructlab_cuda_home": "NVCC", "instructlab_cuda_architectures": ["86"],
                  "instructlab_extras": ["vllm"]},
    "auto_a10g_vllm": dict(A10G, instructlab_accelerator="auto", instructlab_extras=["vllm"]),
    "cpu_vllm": {"instructlab_accelerator": "cpu", "instructlab_extras": ["vllm"]},
    "auto_nogpu_vllm": {"instructlab_accelerator": "auto", "case_gpu_info": {"gpu_count": 0, "status": "no_gpu"},
                        "instructlab_extras": ["vllm"]},
    "unknown_extra": {"instructlab_accelerator": "cuda", "instructlab_extras": ["vllm", "rag"]},
    "extras_string": {"instructlab_accelerator": "cuda", "instructlab_extras": "vllm"},
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    if not os.path.exists(PY311):
        pytest.skip("no Python 3.11 on this machine")
    tmp = tmp_path_factory.mktemp("il")
    fake = tmp / "python3.10"
    fake.write_text("#!/bin/sh\necho '{\"version\": \"3.10.12\", \"series\": \"3.10\", \"soabi\": \"x\"}'\n")
    fake.chmod(0o755)
    nvcc = tmp / "cuda" / "bin" / "nvcc"
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 12.4, V12.4.131'\n")
    nvcc.chmod(0o755)
    # an interpreter reached through a directory another account (nobody) owns
    foreign = tmp / "foreign"
    foreign.mkdir()
    os.symlink(PY311, str(foreign / "python3.11"))
    os.chown(str(foreign), 65534, 65534)
    # ... and through a root-owned directory anyone can write (not sticky)
    writable = tmp / "writable"
    writable.mkdir()
    os.symlink(PY311, str(writable / "python3.11"))
    os.chmod(str(writable), 0o777)
    (tmp / "bad-record.json").write_text("[]\n")
    out = _run_cases(tmp, CASES, {"FAKE310": str(fake), "FOREIGN": str(foreign / "python3.11"),
                                  "WRITABLE": str(writable / "python3.11"),
                                  "BADRECORD": str(tmp / "bad-record.json"),
                                  "NVCC": str(tmp / "cuda")})
    out["_tmp"] = tmp
    return out


def _run_cases(tmp, cases, aliases):
    """Run validate.yml for each case (one inventory host each); {case: what it computed or its failure}."""
    inventory = {"all": {"hosts": {}}}
    for name, hostvars in cases.items():
        hv = {"instructlab_python": PY311, "out_dir": str(tmp), "ansible_python_interpreter": sys.executable,
              "instructlab_wheelhouse_record": str(tmp / "no-record.json")}
        hv.update(hostvars)
        for key, value in hv.items():
            if isinstance(value, str) and value in aliases:
                hv[key] = aliases[value]
        inventory["all"]["hosts"][name] = hv
    (tmp / "inv.yml").write_text(yaml.safe_dump(inventory))
    (tmp / "play.yml").write_text(PLAY)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           "-i", str(tmp / "inv.yml"), str(tmp / "play.yml")],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          check=False)
    out = {}
    for name in cases:
        path = tmp / (name + ".json")
        assert path.exists(), proc.stdout[-3000:]
        out[name] = json.loads(path.read_text())
        path.unlink()
    return out


def wheel(res, name):
    return [w for w in res["wheels"] if w["name"] == name][0]


def test_cpu_flags_and_wheels(results):
    res = results["cpu"]
    assert res["accelerator"] == "cpu"
    assert res["cmake"] == "-DGGML_NATIVE=off"
    assert res["desired"]["lock"] == "0.26.1/cpu"
    assert len(res["desired"]["lock_sha256"]) == 64
    assert sorted(w["name"] for w in res["wheels"]) == [
        "llama-cpp-python", "pylatexenc", "rouge-score", "sqlitedict", "word2number"]
    assert wheel(res, "llama-cpp-python")["native"] is True
    assert wheel(res, "rouge-score")["native"] is False
    assert re.match(r"^[a-z]+\d+-cpython-311-x86_64-linux-gnu/llama-cpp-python-0\.3\.6-[0-9a-f]{12}$", wheel(res, "llama-cpp-python")["rel"])


def test_cuda_flags(results):
    res = results["cuda"]
    assert res["cmake"] == "-DGGML_CUDA=on -DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined -DGGML_NATIVE=off -DCMAKE_CUDA_ARCHITECTURES=86"
    assert res["desired"]["cuda_toolkit"] == "12.4.131"
    assert wheel(res, "flash-attn")["isolation"] is False
    assert wheel(res, "llama-cpp-python")["dir"] != wheel(results["cpu"], "llama-cpp-python")["dir"]


def test_flag_change_rekeys_only_the_native_build(results):
    cpu, extra = results["cpu"], results["cpu_extra"]
    assert extra["cmake"] == "-DGGML_NATIVE=off -DGGML_AVX512=off"
    assert wheel(extra, "llama-cpp-python")["dir"] != wheel(cpu, "llama-cpp-python")["dir"]
    for name in ("pylatexenc", "rouge-score", "sqlitedict", "word2number"):
        assert wheel(extra, name)["dir"] == wheel(cpu, name)["dir"]
    assert extra["desired"]["cmake_args"] != cpu["desired"]["cmake_args"]
    assert results["cpu_native"]["cmake"] == "-DGGML_NATIVE=on"


def test_auto_follows_the_gpus(results):
    assert results["auto_gpu"]["accelerator"] == "cuda"
    assert results["auto_nogpu"]["accelerator"] == "cpu"


@pytest.mark.parametrize("case, text", [
    ("rocm", "Unsupported combination: InstructLab 0.26.1 with accelerator 'rocm'"),
    ("old_release", "Unsupported combination: InstructLab 0.25.0 with accelerator 'cpu'"),
    ("py310", "is not a usable Python 3.11"),
    ("no_python", "No Python interpreter"),
    ("foreign_python", "is not root's alone"),
    ("uv_unpinned", "instructlab_uv_version 0.9.0 has no pinned sha256: the role pins uv 0.13.9 (vars/main.yml)"),
    ("uv_bad_sha256", "64 hex digits each, not abc"),
    ("bad_record", "is not a JSON object of wheelhouse entries"),
    ("cpu_vllm", 'instructlab_extras ["vllm"] needs instructlab_accelerator cuda, but this host\'s accelerator is cpu:'),
    ("auto_nogpu_vllm", "accelerator is cpu (instructlab_accelerator auto found no NVIDIA GPU here)"),
    ("unknown_extra", 'instructlab_extras must be a list of extras among vllm, not ["vllm", "rag"]'),
    ("extras_string", 'instructlab_extras must be a list of extras among vllm, not "vllm"'),
])
def test_bad_input_fails_clearly(results, case, text):
    assert "failed" in results[case]
    assert text in results[case]["failed"]
    if case in ("rocm", "old_release"):
        assert "0.26.1/cpu, 0.26.1/cuda" in results[case]["failed"]
    if case == "py310":
        assert "3.10.12" in results[case]["failed"]


def test_interpreter_in_a_directory_another_account_owns_is_refused_unrun(results):
    """Root builds the venv with instructlab_python: one reached through a directory nobody owns is
    refused before it runs (the old role ran it, as root, to probe it)."""
    msg = results["foreign_python"]["failed"]
    assert "instructlab_python %s/foreign/python3.11 is not root's alone: %s/foreign belongs to nobody" % (
        results["_tmp"], results["_tmp"]) in " ".join(msg.split())
    assert "python_user: root" in msg
    msg = " ".join(results["writable_python"]["failed"].split())
    assert "%s/writable belongs to root (mode 0777)" % results["_tmp"] in msg


def test_record_keys_follow_the_wheelhouse_sharing(results):
    """A shared wheelhouse's entries are recorded once for the fleet; a host's own, per host."""
    for wheel_ in results["cpu_shared"]["wheels"]:
        assert wheel_["record_key"] == wheel_["dir"] == "/var/cache/instructlab/wheelhouse/" + wheel_["rel"]
    for wheel_ in results["cpu"]["wheels"]:
        assert wheel_["record_key"] == "cpu:" + wheel_["dir"]
    # nothing recorded yet: no sha256 reaches the plan (the entries will be compiled and recorded)
    assert all(w["files"] == {} for w in results["cpu_shared"]["recorded"])


def test_recorded_sha256_reach_the_plan(results, tmp_path):
    """The sha256 the controller recorded for an entry are what the hosts check its wheels against."""
    llama = wheel(results["cpu_shared"], "llama-cpp-python")
    record = {llama["record_key"]: {"files": {"llama_cpp_python-0.3.6-cp311-cp311-linux_x86_64.whl": "a" * 64},
                                    "built_by": "h1"},
              "/other/entry": {"files": {"x.whl": "b" * 64}}}
    (tmp_path / "record.json").write_text(json.dumps(record))
    out = _run_cases(tmp_path, {"rec": {"instructlab_accelerator": "cpu", "instructlab_wheelhouse_shared": True,
                                        "instructlab_wheelhouse_record": str(tmp_path / "record.json")}}, {})
    recorded = {w["name"]: w["files"] for w in out["rec"]["recorded"]}
    assert recorded["llama-cpp-python"] == {"llama_cpp_python-0.3.6-cp311-cp311-linux_x86_64.whl": "a" * 64}
    assert recorded["rouge-score"] == {}


def test_uv_pins():
    with open(os.path.join(ROOT, "roles", "instructlab", "vars", "main.yml"), encoding="utf-8") as fh:
        pins = yaml.safe_load(fh)["__instructlab_uv_pins"]
    with open(os.path.join(ROOT, "roles", "instructlab", "defaults", "main.yml"), encoding="utf-8") as fh:
        default = yaml.safe_load(fh)["instructlab_uv_version"]
    assert default in pins
    # the manylinux x86_64 wheel PyPI serves for uv 0.13.9
    assert "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19" in pins["0.13.9"]
    assert all(re.match(r"^[0-9a-f]{64}$", h) for h in pins["0.13.9"]) and len(set(pins["0.13.9"])) == 13


# ---------------------------------------------------------------- cuda (issue 15)

def test_auto_on_the_a10g_host_is_cuda_with_the_toolkit_in_the_manifest(results):
    res = results["auto_a10g"]
    assert res["accelerator"] == "cuda"
    assert res["desired"]["cuda_toolkit"] == "12.4.131"
    assert res["desired"]["cmake_args"] == "-DGGML_CUDA=on -DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined -DGGML_NATIVE=off -DCMAKE_CUDA_ARCHITECTURES=86"
    assert "without" not in res["desired"]
    assert sorted(w["name"] for w in res["wheels"]) == [
        "flash-attn", "llama-cpp-python", "pylatexenc", "rouge-score", "sqlitedict", "word2number"]


def test_flash_attn_can_be_left_out(results):
    res = results["auto_a10g_fa_off"]
    assert "flash-attn" not in [w["name"] for w in res["wheels"]]
    assert res["desired"]["without"] == ["flash-attn"]
    assert wheel(res, "llama-cpp-python")["dir"] == wheel(results["auto_a10g"], "llama-cpp-python")["dir"]


def test_wheelhouse_key_includes_architectures_and_toolkit(results):
    a10g, sm80, cpu = results["auto_a10g"], results["auto_a10g_sm80"], results["cpu"]
    assert wheel(a10g, "llama-cpp-python")["dir"] != wheel(sm80, "llama-cpp-python")["dir"]
    # explicit ["86"] on a host without GPU facts: the same toolkit and flags, the same entry
    assert wheel(results["cuda"], "llama-cpp-python")["dir"] == wheel(a10g, "llama-cpp-python")["dir"]
    # pure-Python source packages do not depend on the toolkit
    for name in ("pylatexenc", "rouge-score", "sqlitedict", "word2number"):
        assert wheel(a10g, name)["dir"] == wheel(cpu, name)["dir"]
    assert "cuda_toolkit" not in cpu["desired"]


def test_no_silent_cpu_fallback_on_a_gpu_host_without_driver(results):
    res = results["auto_pci_no_driver"]
    assert res["task"] == "Do not fall back to CPU on a host with an NVIDIA GPU and no working driver"
    assert res["failed"].startswith(
        "instructlab_accelerator is auto and this host has 1 NVIDIA GPU(s) on the PCI bus (0000:00:1e.0), but no "
        "working NVIDIA driver: nvidia-smi: the NVIDIA kernel driver is not loaded (rc=9)")
    assert "set instructlab_accelerator: cpu to want a CPU install on purpose" in res["failed"]


def test_no_silent_cpu_fallback_names_the_pending_reboot(results):
    msg = results["auto_pci_reboot_pending"]["failed"]
    assert "the nvidia_driver role installed it and a reboot is pending (nvidia_driver_reboot is false)" in msg


def test_auto_without_an_nvidia_gpu_is_cpu(results):
    assert results["auto_no_pci_gpu"]["accelerator"] == "cpu"


# ---------------------------------------------------------------- vLLM (issue 16)

def test_vllm_extra_chooses_the_cuda_vllm_lock(results):
    res, cuda = results["cuda_vllm"], results["cuda"]
    assert res["accelerator"] == "cuda"
    assert res["desired"]["lock"] == "0.26.1/cuda-vllm"
    assert res["desired"]["extras"] == ["vllm"]
    assert res["lock_host"] == "/opt/instructlab/locks/0.26.1/cuda-vllm"
    assert res["plan_requirements"] == "/opt/instructlab/locks/0.26.1/cuda-vllm/requirements.txt"
    assert res["desired"]["lock_sha256"] != cuda["desired"]["lock_sha256"]
    # the toolkit is checked against this lock's torch (2.6.0, CUDA 12.4), not the cuda lock's
    assert res["cuda_plan"]["torch"] == "2.6.0" and res["cuda_plan"]["torch_cuda"] == "12.4"
    assert cuda["cuda_plan"]["torch"] == "2.7.0" and cuda["cuda_plan"]["torch_cuda"] == "12.6"
    # without extras nothing changes for existing installs: no extras key, same lock path
    assert "extras" not in cuda["desired"] and cuda["desired"]["lock"] == "0.26.1/cuda"
    assert cuda["plan_requirements"] == "/opt/instructlab/locks/0.26.1/cuda/requirements.txt"
    assert results["auto_a10g_vllm"]["desired"]["lock"] == "0.26.1/cuda-vllm"


def test_vllm_wheelhouse_keys(results):
    """flash-attn is compiled against the venv's torch (2.6.0 here, 2.7.0 in the cuda lock): its
    entry is the variant's own. The builds with isolation (llama.cpp, pure Python) do not depend
    on torch: the cuda lock's entries serve both."""
    res, cuda = results["cuda_vllm"], results["cuda"]
    assert wheel(res, "flash-attn")["dir"] != wheel(cuda, "flash-attn")["dir"]
    for name in ("llama-cpp-python", "pylatexenc", "rouge-score", "sqlitedict", "word2number"):
        assert wheel(res, name)["dir"] == wheel(cuda, name)["dir"], name
