# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The instructlab role's cuda-vllm lock (``instructlab_extras: [vllm]``, issue 16)
installs for real on this GPU-less machine: every locked wheel with its hash,
``pip check`` clean, ``import vllm`` and the module ``ilab model serve`` runs for
the vllm backend (``vllm.entrypoints.openai.api_server``) import.

tests/testbed/vllm-venv.sh builds the venv once per lock (cached in
$LABFORGE_CACHE/vllm-venv-<key>, downloads in the shared uv cache
$LABFORGE_CACHE/uv; log $LABFORGE_CACHE/vllm-venv.log). What it does NOT
install as a CUDA host would, and why (its header says the same):
- llama-cpp-python: built from the lock's own sdist (hash checked) for CPU, a
  stand-in of the same pinned version for the CUDA build (that compile is the
  gpu_sim scenario's); the test checks its version, not its CUDA support;
- flash-attn: left out, as the role does with instructlab_flash_attn: false (a
  CUDA compile of hours). It is an optional extra of instructlab-training, so
  ``pip check`` does not ask for it; the test checks that it is the only locked
  package missing.
Serving needs a GPU: nothing here starts vLLM. vLLM's compiled CUDA ops
(``vllm._C``) link the driver's libcuda.so.1: without the NVIDIA driver they
cannot load (checked: the error names libcuda.so.1); everything else imports.

One command: ``.venv/bin/pytest -v -s tests/integration/test_vllm_lock.py``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import subprocess
import time

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCK = os.path.join(ROOT, "roles", "instructlab", "files", "locks", "0.26.1", "cuda-vllm")
BUILDER = os.path.join(ROOT, "tests", "testbed", "vllm-venv.sh")
LEFT_OUT = {"flash-attn"}


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path):
    with open(path, encoding="utf-8") as fh:
        return {norm(n): v for n, v in re.findall(r"^([A-Za-z0-9_.-]+)==([^ ;\\\n]+)", fh.read(), re.M)}


def run(argv, timeout=900):
    t0 = time.time()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout, check=False)
    return proc, time.time() - t0


@pytest.fixture(scope="module")
def venv():
    proc, took = run([BUILDER], timeout=3600)
    assert proc.returncode == 0, "tests/testbed/vllm-venv.sh failed:\n%s%s" % (proc.stdout, proc.stderr[-3000:])
    path = proc.stdout.strip().splitlines()[-1]
    print("\n[vllm] venv %s ready in %.1f s" % (path, took))
    return path


def test_pip_check(venv):
    proc, took = run([os.path.join(venv, "bin", "python"), "-m", "pip", "check"])
    print("\n[vllm] pip check (%.1f s): %s" % (took, proc.stdout.strip()))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No broken requirements found." in proc.stdout


def test_venv_holds_exactly_the_lock(venv):
    code = ("import json, importlib.metadata as m; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    proc, _took = run([os.path.join(venv, "bin", "python"), "-c", code])
    assert proc.returncode == 0, proc.stderr
    have = {norm(k): v for k, v in json.loads(proc.stdout).items()}
    want = pins(os.path.join(LOCK, "requirements.txt"))
    want.update(pins(os.path.join(LOCK, "sdists.txt")))
    wrong = {n: (v, have.get(n)) for n, v in want.items() if n not in LEFT_OUT and have.get(n) != v}
    assert wrong == {}, "installed versions differ from the lock: %s" % wrong
    assert LEFT_OUT.isdisjoint(have)
    # nothing beyond the lock but the venv's own installers
    assert set(have) - set(want) <= {"pip", "setuptools", "wheel"}, set(have) - set(want)
    with open(os.path.join(LOCK, "lock.yml"), encoding="utf-8") as fh:
        meta = yaml.safe_load(fh)
    assert have["vllm"] == meta["vllm"] and have["torch"] == meta["torch"]


# One interpreter for the import checks (each start imports torch: ~10 s of CPU).
IMPORT_CODE = """
import ctypes, json
try:
    ctypes.CDLL('libcuda.so.1'); driver = True
except OSError:
    driver = False
import torch, vllm, vllm.entrypoints.openai.api_server
try:
    import vllm._C; kernels_error = ''
except ImportError as exc:
    kernels_error = str(exc)
print(json.dumps({'vllm': vllm.__version__, 'torch': torch.__version__, 'torch_cuda': torch.version.cuda,
                  'cuda_available': torch.cuda.is_available(), 'driver': driver, 'kernels_error': kernels_error}))
"""


@pytest.fixture(scope="module")
def imported(venv):
    proc, took = run([os.path.join(venv, "bin", "python"), "-c", IMPORT_CODE])
    assert proc.returncode == 0, "import vllm failed (rc %d):\n%s" % (proc.returncode, proc.stderr[-4000:])
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    print("\n[vllm] import vllm + api_server in %.1f s: %s" % (took, info))
    return info


def test_import_vllm_and_its_server(imported):
    assert imported["vllm"] == "0.8.5.post1"
    assert imported["torch"].startswith("2.6.0") and imported["torch_cuda"] == "12.4"


def test_vllm_kernels_need_the_driver_library(imported):
    """vLLM's compiled CUDA ops (vllm._C) link the driver's libcuda.so.1: on a host without the
    NVIDIA driver they cannot load (vLLM then logs "Failed to import from vllm._C" and runs on
    "UnspecifiedPlatform"), which is why serving needs a GPU host; with the driver they load."""
    if imported["driver"]:
        assert imported["kernels_error"] == ""
    else:
        assert "libcuda.so.1" in imported["kernels_error"]
