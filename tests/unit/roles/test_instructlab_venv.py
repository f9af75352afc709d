# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/instructlab/files/instructlab_venv.py: probe (idempotence from real
state), wheelhouse checks, lock parsing and the failure path of install
(a failed build leaves the active venv alone and removes the new dir)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, "roles", "instructlab", "files", "instructlab_venv.py")

spec = importlib.util.spec_from_file_location("instructlab_venv", SCRIPT)
iv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(iv)

DESIRED = {"instructlab_version": "0.26.1", "accelerator": "cpu", "lock_sha256": "a" * 64,
           "cmake_args": "-DGGML_NATIVE=off", "python": "/usr/bin/python3.11"}


def fake_venv(tmp_path, desired=None, versions=None, ilab=True):
    """A directory shaped like an installed venv whose python is this interpreter."""
    desired = DESIRED if desired is None else desired
    venv = tmp_path / "venvs" / "v1"
    (venv / "bin").mkdir(parents=True)
    os.symlink(sys.executable, str(venv / "bin" / "python"))
    if ilab:
        (venv / "bin" / "ilab").write_text("#!/bin/sh\n")
        (venv / "bin" / "ilab").chmod(0o755)
    if versions is None:
        # what that python really has (pip comes with every CPython install)
        versions, err = iv.venv_versions(str(venv / "bin" / "python"), ["pip"])
        assert versions and versions["pip"], err
    (venv / iv.MANIFEST).write_text(json.dumps({"desired": desired, "installed": {"versions": versions}}))
    link = tmp_path / "venv"
    os.symlink(str(venv), str(link))
    return str(link)


def test_probe_without_venv(tmp_path):
    res = iv.probe({"venv": str(tmp_path / "venv"), "desired": DESIRED, "wheels": []})
    assert res["install_needed"] is True
    assert res["reason"].startswith("no venv at")


def test_probe_matching_venv_is_left_alone(tmp_path):
    res = iv.probe({"venv": fake_venv(tmp_path), "desired": DESIRED, "wheels": []})
    assert res["install_needed"] is False, res["reason"]
    assert res["target"].endswith("/venvs/v1")


@pytest.mark.parametrize("key, value", [("accelerator", "cuda"), ("cmake_args", "-DGGML_NATIVE=on"),
                                        ("lock_sha256", "b" * 64)])
def test_probe_reports_which_input_changed(tmp_path, key, value):
    desired = dict(DESIRED, **{key: value})
    res = iv.probe({"venv": fake_venv(tmp_path), "desired": desired, "wheels": []})
    assert res["install_needed"] is True
    assert res["reason"] == "manifest differs: " + key
    assert res["current"] == DESIRED


def test_probe_checks_the_real_packages_not_only_the_manifest(tmp_path):
    venv = fake_venv(tmp_path, versions={"pip": "0.0.1"})
    res = iv.probe({"venv": venv, "desired": DESIRED, "wheels": []})
    assert res["install_needed"] is True
    assert "installed versions differ from the manifest: pip" in res["reason"]


def test_probe_missing_ilab(tmp_path):
    res = iv.probe({"venv": fake_venv(tmp_path, ilab=False), "desired": DESIRED, "wheels": []})
    assert res["install_needed"] is True
    assert res["reason"] == "bin/ilab is missing"


def test_probe_foreign_venv(tmp_path):
    (tmp_path / "venv").mkdir()
    res = iv.probe({"venv": str(tmp_path / "venv"), "desired": DESIRED, "wheels": []})
    assert res["install_needed"] is True
    assert "not built by this role" in res["reason"]


def wheel_entry(tmp_path, name="llama_cpp_python-0.3.6-cp311-cp311-linux_x86_64.whl", corrupt=False):
    d = tmp_path / "wh" / "debian12-x86_64-cp311" / "llama-cpp-python-0.3.6-0123456789ab"
    d.mkdir(parents=True)
    (d / name).write_bytes(b"wheel bytes")
    digest = hashlib.sha256(b"other" if corrupt else b"wheel bytes").hexdigest()
    (d / "SHA256SUMS").write_text("%s  %s\n" % (digest, name))
    return str(d)


def test_wheel_dir_ok(tmp_path):
    d = wheel_entry(tmp_path)
    assert iv.wheel_dir_ok(d)
    assert iv.wheels_in(d) == [os.path.join(d, "llama_cpp_python-0.3.6-cp311-cp311-linux_x86_64.whl")]


def test_wheel_dir_corrupt_or_incomplete(tmp_path):
    assert not iv.wheel_dir_ok(wheel_entry(tmp_path, corrupt=True))
    assert not iv.wheel_dir_ok(str(tmp_path / "missing"))


def test_probe_lists_missing_wheels(tmp_path):
    ok = wheel_entry(tmp_path)
    wheels = [{"name": "llama-cpp-python", "dir": ok}, {"name": "rouge-score", "dir": str(tmp_path / "nope")}]
    res = iv.probe({"venv": fake_venv(tmp_path), "desired": DESIRED, "wheels": wheels})
    assert res["missing_wheels"] == ["rouge-score"]


def test_lock_entry_takes_one_block_with_its_hashes():
    path = os.path.join(ROOT, "roles", "instructlab", "files", "locks", "0.26.1", "cpu", "sdists.txt")
    block = iv.lock_entry(path, "llama-cpp-python")
    assert block.startswith("llama-cpp-python==0.3.6 \\\n")
    assert block.count("--hash=sha256:") == 1
    assert "pylatexenc" not in block
    with pytest.raises(iv.Failure):
        iv.lock_entry(path, "torch")


def test_install_failure_keeps_active_venv_and_removes_new_dir(tmp_path):
    active = fake_venv(tmp_path)
    before = sorted(os.listdir(active))
    new = tmp_path / "venvs" / "v2"
    plan = {"venv_dir": str(new), "python": str(tmp_path / "no-such-python3.11"), "installer": "uv",
            "uv": "/bin/false", "requirements": "/dev/null", "sdists_file": "/dev/null", "wheels": [],
            "build": False, "desired": DESIRED, "owner": "root", "group": "root",
            "log": str(tmp_path / "log" / "install.log")}
    res = iv.install(plan)
    assert res["failed"] is True
    assert "creating the venv failed" in res["msg"] or "No such file" in res["msg"]
    assert not new.exists()
    assert sorted(os.listdir(active)) == before
    assert "FAILED" in res["log_tail"]


def test_install_refuses_to_build_on_a_non_builder(tmp_path):
    """A host that is not the fleet's builder fails clearly when the wheelhouse lacks a wheel."""
    plan_path = tmp_path / "plan.json"
    new = tmp_path / "venvs" / "v3"
    # a "uv" that installs nothing but succeeds, so the run reaches the wheelhouse step
    plan = {"venv_dir": str(new), "python": sys.executable, "installer": "uv", "uv": "/bin/true",
            "requirements": "/dev/null", "sdists_file": "/dev/null",
            "wheels": [{"name": "llama-cpp-python", "version": "0.3.6", "dir": str(tmp_path / "wh" / "x")}],
            "build": False, "desired": DESIRED, "owner": "root", "group": "root",
            "log": str(tmp_path / "install.log")}
    plan_path.write_text(json.dumps(plan))
    proc = subprocess.run([sys.executable, SCRIPT, "install", str(plan_path)], stdout=subprocess.PIPE,
                          universal_newlines=True, check=False)
    assert proc.returncode == 1
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "llama-cpp-python==0.3.6 missing from the wheelhouse" in res["msg"]
    assert not new.exists()


def test_locked_then_install_continues_from_the_locked_venv(tmp_path):
    """`locked` (run while the wheelhouse compiles) leaves a marked venv that `install` continues from;
    a changed lock makes `install` start over."""
    calls = tmp_path / "uv-calls"
    uv = tmp_path / "uv"
    uv.write_text("#!/bin/sh\necho \"$@\" >> %s\n" % calls)
    uv.chmod(0o755)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# lock 1\n")
    new = tmp_path / "venvs" / "v4"
    plan = {"venv_dir": str(new), "python": sys.executable, "installer": "uv", "uv": str(uv),
            "requirements": str(reqs), "sdists_file": "/dev/null", "wheels": [],
            "build": False, "desired": DESIRED, "owner": "root", "group": "root",
            "log": str(tmp_path / "install.log")}
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))

    def run(cmd):
        proc = subprocess.run([sys.executable, SCRIPT, cmd, str(plan_path)], stdout=subprocess.PIPE,
                              universal_newlines=True, check=False)
        return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])

    rc, res = run("locked")
    assert rc == 0, res
    assert (new / iv.LOCKED_MARK).read_text().strip() == iv.locked_digest(plan)
    assert len(calls.read_text().splitlines()) == 1
    # install continues: no second lock install; it then fails on the import check (no torch here)
    rc, res = run("install")
    assert rc == 1 and "import torch, llama_cpp, instructlab failed" in res["msg"], res
    assert len(calls.read_text().splitlines()) == 1
    assert "the locked wheels are already in %s" % new in (tmp_path / "install.log").read_text()
    assert not new.exists()
    # a changed lock: the marked venv is not reused
    run("locked")
    reqs.write_text("# lock 2\n")
    rc, res = run("install")
    assert len(calls.read_text().splitlines()) == 3
    assert "removing leftover %s" % new in (tmp_path / "install.log").read_text()


FAKE_PIP = r'''#!%s
"""Stands in for `python -m pip wheel ...`: records when each build runs, writes one wheel."""
import sys, time
argv = sys.argv[1:]
name, out = argv[argv.index("--no-binary") + 1], argv[argv.index("-w") + 1]
with open(%r, "a") as fh:
    fh.write("start %%s %%f\n" %% (name, time.time()))
print("building %%s" %% name)
time.sleep({"native": 1.5}.get(name, 0.2))
if name == "broken":
    print("error: broken sdist")
    sys.exit(1)
with open("%%s/%%s-1.0-py3-none-any.whl" %% (out, name.replace("-", "_")), "w") as fh:
    fh.write(name)
with open(%r, "a") as fh:
    fh.write("end %%s %%f\n" %% (name, time.time()))
'''


def wheels_plan(tmp_path, small):
    """A `wheels` plan with one native sdist and SMALL pure ones, built by a fake pip."""
    calls = tmp_path / "calls"
    builder = tmp_path / "builder-python"
    builder.write_text(FAKE_PIP % (sys.executable, str(calls), str(calls)))
    builder.chmod(0o755)
    names = ["native"] + small
    sdists = tmp_path / "sdists.txt"
    sdists.write_text("".join("%s==1.0 \\\n    --hash=sha256:%s\n" % (n, "0" * 64) for n in names))
    wheels = [{"name": n, "version": "1.0", "native": n == "native", "dir": str(tmp_path / "wh" / n)}
              for n in names]
    plan = {"venv_dir": str(tmp_path / "venvs" / "v5"), "builder_python": str(builder),
            "sdists_file": str(sdists), "wheels": wheels, "build_env": {"CMAKE_ARGS": "-DGGML_NATIVE=off"},
            "desired": DESIRED, "log": str(tmp_path / "log" / "install.log")}
    return plan, calls


def test_small_sdists_compile_beside_the_native_one(tmp_path):
    """The pure-Python sdists do not wait for the long native compile; each one's output
    lands in the log as one block; every entry ends up usable."""
    plan, calls = wheels_plan(tmp_path, ["small-a", "small-b"])
    res = iv.wheels(plan)
    assert not res.get("failed"), res
    assert sorted(res["built"]) == ["native", "small-a", "small-b"]
    times = {}
    for line in calls.read_text().splitlines():
        what, name, when = line.split()
        times[(what, name)] = float(when)
    # both small builds started and ended while the native one was compiling
    assert times[("end", "small-b")] < times[("end", "native")]
    assert times[("start", "small-a")] < times[("end", "native")]
    for wheel in plan["wheels"]:
        assert iv.wheel_dir_ok(wheel["dir"]), wheel
    log = (tmp_path / "log" / "install.log").read_text()
    for name in ("small-a", "small-b"):
        block = log[log.index("BUILD START %s" % name):log.index("BUILD DONE %s" % name)]
        assert "building %s" % name in block and "native" not in block
    assert not [f for f in os.listdir(str(tmp_path / "log")) if f.startswith(".build-")]


def test_a_failed_small_sdist_fails_the_wheelhouse_step(tmp_path):
    plan = wheels_plan(tmp_path, ["broken"])[0]
    res = iv.wheels(plan)
    assert res["failed"] is True
    assert "compiling broken failed" in res["msg"], res
    assert "error: broken sdist" in (tmp_path / "log" / "install.log").read_text()
    # the native compile was not thrown away
    assert iv.wheel_dir_ok(plan["wheels"][0]["dir"])
