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
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile

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


LLAMA_WHEEL = "llama_cpp_python-0.3.6-cp311-cp311-linux_x86_64.whl"


def wheel_entry(tmp_path, recorded=b"wheel bytes", content=b"wheel bytes"):
    """A wheelhouse entry holding CONTENT, as the plan describes it when the controller recorded
    the sha256 of RECORDED (None: no record). A SHA256SUMS beside the wheel always agrees with
    the wheel there (whoever can write the wheelhouse can write it too)."""
    d = tmp_path / "wh" / "debian12-x86_64-cp311" / "llama-cpp-python-0.3.6-0123456789ab"
    d.mkdir(parents=True)
    (d / LLAMA_WHEEL).write_bytes(content)
    (d / "SHA256SUMS").write_text("%s  %s\n" % (hashlib.sha256(content).hexdigest(), LLAMA_WHEEL))
    files = {LLAMA_WHEEL: hashlib.sha256(recorded).hexdigest()} if recorded is not None else {}
    return {"name": "llama-cpp-python", "version": "0.3.6", "dir": str(d), "files": files}


def test_wheel_dir_ok(tmp_path):
    assert iv.wheel_dir_ok(wheel_entry(tmp_path))


def test_wheel_dir_corrupt_or_incomplete(tmp_path):
    assert not iv.wheel_dir_ok(wheel_entry(tmp_path, content=b"tampered"))
    assert not iv.wheel_dir_ok({"name": "x", "dir": str(tmp_path / "missing"), "files": {LLAMA_WHEEL: "0" * 64}})


def test_wheel_without_a_controller_record_is_not_used(tmp_path):
    """The SHA256SUMS lying beside the wheel matches it, but nothing was recorded on the controller."""
    wheel = wheel_entry(tmp_path, recorded=None)
    assert iv.wheel_mismatch(wheel) == "no sha256 recorded on the controller"


def test_a_linked_wheel_is_not_followed(tmp_path):
    wheel = wheel_entry(tmp_path)
    path = os.path.join(wheel["dir"], LLAMA_WHEEL)
    real = tmp_path / "elsewhere.whl"
    real.write_bytes(b"wheel bytes")
    os.unlink(path)
    os.symlink(str(real), path)
    assert iv.wheel_mismatch(wheel).startswith(path + ": ")


def test_record_names_must_be_wheel_file_names(tmp_path):
    wheel = dict(wheel_entry(tmp_path), files={"../../etc/shadow": "0" * 64})
    with pytest.raises(iv.Failure):
        iv.wheel_mismatch(wheel)


def test_probe_lists_missing_wheels(tmp_path):
    ok = wheel_entry(tmp_path)
    wheels = [ok, {"name": "rouge-score", "dir": str(tmp_path / "nope"), "files": {"r.whl": "0" * 64}}]
    res = iv.probe({"venv": fake_venv(tmp_path), "desired": DESIRED, "wheels": wheels})
    assert res["missing_wheels"] == ["rouge-score"]


def real_venv(tmp_path, marker):
    """A real (pip-less) venv whose site-packages holds a .pth that writes MARKER when python starts."""
    venv = tmp_path / "venvs" / "v1"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"
    (site / "planted.pth").write_text("import os; open(%r, 'w').close()\n" % str(marker))
    (venv / "bin" / "ilab").write_text("#!/bin/sh\n")
    (venv / "bin" / "ilab").chmod(0o755)
    (venv / iv.MANIFEST).write_text(json.dumps({"desired": DESIRED, "installed": {"versions": {"pip": "1"}}}))
    link = tmp_path / "venv"
    os.symlink(str(venv), str(link))
    return venv, link, site / "planted.pth"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a file to another account")
def test_probe_never_runs_a_venv_another_account_can_change(tmp_path):
    """A .pth planted by the service user must not run as root: the probe checks ownership first."""
    marker = tmp_path / "pth-ran"
    venv, link, pth = real_venv(tmp_path, marker)
    # control: the same venv, root's alone, is run (the .pth fires: it is a real venv)
    res = iv.probe({"venv": str(link), "desired": DESIRED, "wheels": []})
    assert marker.exists(), res
    marker.unlink()
    os.chown(str(pth), 65534, 65534)
    res = iv.probe({"venv": str(link), "desired": DESIRED, "wheels": []})
    assert not marker.exists(), "root ran the venv's python with a .pth another account owns"
    assert res["install_needed"] is True
    assert res["reason"] == ("%s is not root's alone: %s (owner %s, mode 0644); a new root-owned venv replaces it "
                             "(root never runs code another account can change)"
                             % (link, pth, pwd.getpwuid(65534).pw_name))
    assert res["current"] is None  # the manifest of such a venv is not read either


def test_uv_lock_file_is_closed_to_other_accounts(tmp_path):
    """uv creates <venv>/.lock world-writable; the probe would refuse the venv on every run."""
    marker = tmp_path / "pth-ran"
    venv, link, _pth = real_venv(tmp_path, marker)
    lock = venv / ".lock"
    lock.touch()
    lock.chmod(0o666)
    res = iv.probe({"venv": str(link), "desired": DESIRED, "wheels": []})
    assert "%s (owner %s, mode 0666)" % (lock, pwd.getpwuid(os.geteuid()).pw_name) in res["reason"]
    iv.close_venv(str(venv))
    assert stat.S_IMODE(lock.stat().st_mode) == 0o644
    res = iv.probe({"venv": str(link), "desired": DESIRED, "wheels": []})
    assert "not root's alone" not in res["reason"] and marker.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a directory to another account")
def test_probe_refuses_a_venv_whose_directory_another_account_can_write(tmp_path):
    marker = tmp_path / "pth-ran"
    venv, link, _pth = real_venv(tmp_path, marker)
    os.chmod(str(venv / "lib"), 0o777)
    res = iv.probe({"venv": str(link), "desired": DESIRED, "wheels": []})
    assert not marker.exists()
    assert "%s/lib (owner root, mode 0777)" % venv in res["reason"]


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
    assert "llama-cpp-python==0.3.6 not usable from the wheelhouse" in res["msg"]
    assert "this host is not the one that compiles them" in res["msg"]
    assert not new.exists()


def _install(tmp_path, plan):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    proc = subprocess.run([sys.executable, SCRIPT, "install", str(plan_path)], stdout=subprocess.PIPE,
                          universal_newlines=True, check=False)
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


def quick_python(tmp_path):
    """A base "python" whose `-m venv DIR` makes a venv without pip (seconds faster than ensurepip)."""
    py = tmp_path / "base-python"
    py.write_text("#!/bin/sh\nexec %s -m venv --without-pip \"$3\"\n" % sys.executable)
    py.chmod(0o755)
    return str(py)


def recording_uv(tmp_path):
    """A uv that records its arguments and succeeds."""
    calls = tmp_path / "uv-calls"
    uv = tmp_path / "uv"
    uv.write_text("#!/bin/sh\necho \"$@\" >> %s\n" % calls)
    uv.chmod(0o755)
    return uv, calls


def test_install_trusts_the_controller_record_not_the_sums_beside_the_wheel(tmp_path):
    """A shared wheelhouse whose wheel was swapped (with a SHA256SUMS to match) is refused,
    naming the file and both checksums; the swapped wheel is never installed."""
    uv, calls = recording_uv(tmp_path)
    wheel = wheel_entry(tmp_path, recorded=b"wheel bytes", content=b"swapped wheel")
    new = tmp_path / "venvs" / "v6"
    rc, res = _install(tmp_path, {
        "venv_dir": str(new), "python": quick_python(tmp_path), "installer": "uv", "uv": str(uv),
        "requirements": "/dev/null", "sdists_file": "/dev/null", "wheels": [wheel], "build": False,
        "desired": DESIRED, "log": str(tmp_path / "install.log")})
    assert rc == 1
    path = os.path.join(wheel["dir"], LLAMA_WHEEL)
    assert "%s has sha256 %s, the controller recorded %s" % (
        path, hashlib.sha256(b"swapped wheel").hexdigest(), hashlib.sha256(b"wheel bytes").hexdigest()) in res["msg"]
    assert not calls.exists() or LLAMA_WHEEL not in calls.read_text()
    assert not new.exists()


def test_install_takes_verified_private_copies_of_the_wheelhouse_wheels(tmp_path):
    uv, calls = recording_uv(tmp_path)
    wheel = wheel_entry(tmp_path)
    new = tmp_path / "venvs" / "v7"
    rc, res = _install(tmp_path, {
        "venv_dir": str(new), "python": quick_python(tmp_path), "installer": "uv", "uv": str(uv),
        "requirements": "/dev/null", "sdists_file": "/dev/null", "wheels": [wheel], "build": False,
        "desired": DESIRED, "log": str(tmp_path / "install.log")})
    # fails later (no pip in this venv), after the wheels were installed
    assert rc == 1 and "pip check (as root) failed" in res["msg"], res
    installed = [line for line in calls.read_text().splitlines() if "--no-index" in line]
    assert len(installed) == 1
    staged = installed[0].split()[-1]
    assert staged.endswith("/" + LLAMA_WHEEL) and not staged.startswith(wheel["dir"])
    assert os.path.dirname(os.path.dirname(staged)) == str(tmp_path / "venvs")
    assert not os.path.exists(staged)  # the private copies are removed afterwards


def test_install_keeps_credentials_out_of_argv_and_the_log(tmp_path):
    """The index URL with its password is never on a command line, and the log masks URL credentials."""
    calls = tmp_path / "uv-calls"
    uv = tmp_path / "uv"
    uv.write_text("#!/bin/sh\necho \"$@\" >> %s\necho 'error: https://user:s3cret@proxy.example:3128 refused'\n"
                  "exit 2\n" % calls)
    uv.chmod(0o755)
    new = tmp_path / "venvs" / "v8"
    rc, res = _install(tmp_path, {
        "venv_dir": str(new), "python": quick_python(tmp_path), "installer": "uv", "uv": str(uv),
        "index_url": "https://user:s3cret@pypi.example/simple", "requirements": "/dev/null",
        "sdists_file": "/dev/null", "wheels": [], "build": False, "desired": DESIRED,
        "env": {"HTTPS_PROXY": "http://user:s3cret@proxy.example:3128"},
        "log": str(tmp_path / "install.log")})
    assert rc == 1 and "installing the lock failed" in res["msg"], res
    assert "s3cret" not in calls.read_text()  # argv
    log = (tmp_path / "install.log").read_text()
    assert "s3cret" not in log and "s3cret" not in res["log_tail"]
    assert "https://********@proxy.example:3128 refused" in log


def test_mask():
    assert iv.mask("pip --index-url https://u:p@idx/simple and http://tok@proxy:3128/") == (
        "pip --index-url https://********@idx/simple and http://********@proxy:3128/")
    assert iv.mask("no credentials: https://pypi.org/simple user@host") == (
        "no credentials: https://pypi.org/simple user@host")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to the service user")
def test_verification_runs_as_the_service_user_with_its_own_environment():
    """pip check, the imports and ilab --version run as the service user (here: nobody), with its
    HOME and no variable of root's (proxies, credentials)."""
    base = tempfile.mkdtemp(prefix="lf-verify-", dir="/tmp")
    try:
        os.chmod(base, 0o755)
        venv = os.path.join(base, "venv")
        os.makedirs(os.path.join(venv, "bin"))
        record = os.path.join(base, "ids")
        script = ("#!/bin/sh\necho \"$(id -u) $HOME ${HTTPS_PROXY:-none} $PATH\" >> %s\n"
                  "case \"$*\" in *pip*) echo ok ;; *json*) echo '{\"torch\": \"x\", \"torch_cuda\": null, "
                  "\"llama_cpp\": \"0.3.6\", \"gpu_offload\": false}' ;; *) echo 'ilab, version 0.26.1' ;; esac\n"
                  % record)
        for name in ("python", "ilab"):
            path = os.path.join(venv, "bin", name)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(script)
            os.chmod(path, 0o755)
        os.close(os.open(record, os.O_CREAT | os.O_WRONLY, 0o666))
        os.chmod(record, 0o666)
        os.environ["HTTPS_PROXY"] = "http://user:s3cret@proxy:3128"
        try:
            info = iv.verify(iv.Log(None), {"user": "nobody", "desired": DESIRED}, venv)
        finally:
            del os.environ["HTTPS_PROXY"]
        assert info["ilab_version_output"] == "ilab, version 0.26.1"
        nobody = pwd.getpwnam("nobody")
        with open(record, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        assert lines == ["%d %s none %s/bin:/usr/local/bin:/usr/bin:/bin" % (nobody.pw_uid, nobody.pw_dir, venv)] * 3
    finally:
        subprocess.run(["rm", "-rf", base], check=True)


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
    plan = {"venv_dir": str(new), "python": quick_python(tmp_path), "installer": "uv", "uv": str(uv),
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
    # install continues: no second lock install; it then fails on the checks (no pip in this venv)
    rc, res = run("install")
    assert rc == 1 and "pip check (as root) failed" in res["msg"], res
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
    wheels = [{"name": n, "version": "1.0", "native": n == "native", "dir": str(tmp_path / "wh" / n),
               "record_key": "debian12/%s-1.0-0123" % n} for n in names]
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
    # the sha256 of each wheel as built, for the controller's record (keyed by the entry's record key)
    for wheel in plan["wheels"]:
        name = "%s-1.0-py3-none-any.whl" % wheel["name"].replace("-", "_")
        with open(os.path.join(wheel["dir"], name), "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        assert res["hashes"][wheel["record_key"]]["files"] == {name: digest}
        wheel["files"] = res["hashes"][wheel["record_key"]]["files"]
    times = {}
    for line in calls.read_text().splitlines():
        what, name, when = line.split()
        times[(what, name)] = float(when)
    # both small builds started and ended while the native one was compiling
    assert times[("end", "small-b")] < times[("end", "native")]
    assert times[("start", "small-a")] < times[("end", "native")]
    for wheel in plan["wheels"]:
        assert iv.wheel_dir_ok(wheel), wheel
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
    assert os.path.isfile(os.path.join(plan["wheels"][0]["dir"], "native-1.0-py3-none-any.whl"))


# ---------------------------------------------------------------- the GPU check's causes (cuda)

PLAN = {"desired": {"accelerator": "cuda", "cmake_args": "-DGGML_CUDA=on -DGGML_NATIVE=off"},
        "gpu": {"count": 1, "status": "ok", "driver_version": "565.57.01", "driver_cuda": "12.7",
                "cuda_home": "/opt/cuda-12.4",
                "min_driver": {"11": "450.80.02", "12": "525.60.13", "13": "580.65.06"}}}
NEEDED = ["libggml-base.so", "libcudart.so.12", "libcublas.so.12", "libcuda.so.1", "libstdc++.so.6"]
DIAG_OK = {"cuda_lib": "/v/llama_cpp/lib/libggml-cuda.so", "libdir": "/v/llama_cpp/lib", "needed": NEEDED,
           "libs": {"libcudart.so.12": None, "libcublas.so.12": None, "libcuda.so.1": None},
           "dev_nodes": ["/dev/nvidia0", "/dev/nvidiactl"], "kernel_module": "NVRM version: ... 565.57.01",
           "runtime_version": 12040, "driver_cuda_version": 12070, "cu_init": 0}
NO_LIBCUDA = dict(DIAG_OK, libs={"libcudart.so.12": None, "libcublas.so.12": None,
                                 "libcuda.so.1": "libcuda.so.1: cannot open shared object file: No such file or directory"},
                  libcuda_error="libcuda.so.1: cannot open shared object file: No such file or directory",
                  dev_nodes=[], kernel_module=None, driver_cuda_version=None, cu_init=None)
LLAMA_LOAD_ERROR = {"torch_devices": 0,
                    "llama_error": "RuntimeError: Failed to load shared library '.../libllama.so': libcuda.so.1: "
                                   "cannot open shared object file"}


def test_gpu_check_passes():
    assert iv.gpu_cause(PLAN, {"gpu_offload": True, "torch_devices": 1}, DIAG_OK) is None


def test_cause_simulated_gpu_without_runtime():
    """gpu_sim: nvidia-smi and /proc/driver/nvidia/version say 565, nothing else is there."""
    diag = dict(NO_LIBCUDA, kernel_module="NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  565.57.01")
    cause = iv.gpu_cause(PLAN, LLAMA_LOAD_ERROR, diag)
    assert cause.startswith("the GPU runtime is missing: nvidia-smi reports driver 565.57.01 (CUDA 12.7), but "
                            "libcuda.so.1 (the CUDA driver library that comes with the NVIDIA driver) cannot be loaded")
    assert ("no /dev/nvidia* device nodes (kernel module loaded: NVRM version: NVIDIA UNIX Open Kernel Module for "
            "x86_64  565.57.01)") in cause
    assert "torch.cuda.device_count() is 0, gpu_info found 1 GPU(s)" in cause


def test_cause_no_driver():
    plan = dict(PLAN, gpu={"count": 0, "status": "no_nvidia_smi",
                           "reason": "nvidia-smi not found: no NVIDIA driver is installed on this host"})
    cause = iv.gpu_cause(plan, LLAMA_LOAD_ERROR, NO_LIBCUDA)
    assert cause.startswith("no NVIDIA driver on this host: libcuda.so.1 (the CUDA driver library) cannot be loaded")
    assert "gpu_info: nvidia-smi not found" in cause
    assert "the NVIDIA kernel module is not loaded: no /proc/driver/nvidia/version" in cause


def test_cause_wheel_without_cuda():
    cause = iv.gpu_cause(PLAN, {"gpu_offload": False, "torch_devices": 1}, dict(DIAG_OK, cuda_lib=None))
    assert cause == ("the llama-cpp-python wheel was built without CUDA: /v/llama_cpp/lib has no libggml-cuda.so "
                     "(CMAKE_ARGS '-DGGML_CUDA=on -DGGML_NATIVE=off' did not reach its build)")


def test_cause_driver_older_than_the_runtime():
    """A CUDA 13 build on driver 565: CUDA's own error is only "insufficient driver"."""
    diag = dict(DIAG_OK, runtime_version=13000, cu_init=0)
    cause = iv.gpu_cause(PLAN, {"gpu_offload": False, "torch_devices": 1}, diag)
    assert cause.startswith("driver 565.57.01 (CUDA 12.7) is older than this build's CUDA 13.0 runtime needs "
                            "(driver 580.65.06 or newer)")


def test_cause_runtime_libraries_not_on_the_loader_path():
    diag = dict(DIAG_OK, libs={"libcudart.so.12": "libcudart.so.12: cannot open shared object file",
                               "libcublas.so.12": "libcublas.so.12: cannot open shared object file",
                               "libcuda.so.1": None})
    cause = iv.gpu_cause(PLAN, {"llama_error": "RuntimeError: ...", "torch_devices": 1}, diag)
    assert cause.startswith("the CUDA runtime libraries this build links cannot be found: libcublas.so.12, "
                            "libcudart.so.12 (add the toolkit's library directory, /opt/cuda-12.4/lib64")


def test_cause_torch_sees_fewer_gpus():
    cause = iv.gpu_cause(dict(PLAN, gpu=dict(PLAN["gpu"], count=4)), {"gpu_offload": True, "torch_devices": 2}, DIAG_OK)
    assert cause == "torch.cuda.device_count() is 2, gpu_info found 4 GPU(s)"


def test_gpu_diagnosis_reads_needed_entries_of_a_real_elf(tmp_path):
    """The diagnosis script (run as the service user on hosts) on a fake llama_cpp package whose
    libggml-cuda.so is a copy of a real shared library: its DT_NEEDED list equals readelf's."""
    real = os.path.realpath(sys.executable)
    readelf = shutil.which("readelf")
    if not readelf:
        pytest.skip("no readelf here")
    lib = tmp_path / "site" / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    (tmp_path / "site" / "llama_cpp" / "__init__.py").write_text("raise SystemExit('never imported')\n")
    shutil.copy(real, str(lib / "libggml-cuda.so"))
    out = subprocess.run([sys.executable, "-c", iv.GPU_DIAG_CODE], env=dict(os.environ, PYTHONPATH=str(tmp_path / "site")),
                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    diag = json.loads(out)
    elf = subprocess.run([readelf, "-d", real], stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    expected = [line.split("[", 1)[1].rstrip("]") for line in elf.splitlines() if "(NEEDED)" in line]
    assert diag["cuda_lib"] == str(lib / "libggml-cuda.so")
    assert diag["needed"] == expected and expected
    assert diag["libcuda_error"]  # no driver on the machine that runs unit tests


@pytest.mark.parametrize("with_vllm", [False, True])
def test_verification_imports_the_extras(tmp_path, with_vllm):
    """instructlab_extras [vllm]: the check after the install imports vllm for real (VERIFY_CODE run
    by this interpreter, torch, llama_cpp and instructlab given as small modules) and fails naming it when it
    cannot."""
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "torch.py").write_text("__version__ = '2.6.0'\n\n\nclass version:\n    cuda = '12.4'\n")
    (mods / "instructlab.py").write_text("")
    (mods / "llama_cpp.py").write_text("__version__ = '0.3.6'\n\n\ndef llama_supports_gpu_offload():\n    return False\n")
    if with_vllm:
        (mods / "vllm.py").write_text("__version__ = '0.8.5.post1'\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(
        "#!/bin/sh\ncase \"$*\" in *'pip check'*) echo 'No broken requirements found.' ;;\n"
        "*) PYTHONPATH=%s exec %s \"$@\" ;; esac\n" % (mods, sys.executable))
    (venv / "bin" / "ilab").write_text("#!/bin/sh\necho 'ilab, version 0.26.1'\n")
    for name in ("python", "ilab"):
        (venv / "bin" / name).chmod(0o755)
    me = pwd.getpwuid(os.geteuid()).pw_name
    # the cpu accelerator keeps the CUDA runtime diagnosis (its own tests) out of the way
    plan = {"user": me, "verify_gpu": False, "gpu": {}, "desired": dict(DESIRED, extras=["vllm"])}
    if with_vllm:
        info = iv.verify(iv.Log(None), plan, str(venv))
        assert info["extras"] == {"vllm": "0.8.5.post1"}
        return
    with pytest.raises(iv.Failure) as exc:
        iv.verify(iv.Log(None), plan, str(venv))
    assert ("import torch, llama_cpp, instructlab, vllm (as %s) failed: import vllm: ModuleNotFoundError: "
            "No module named 'vllm'" % me) in str(exc.value)
