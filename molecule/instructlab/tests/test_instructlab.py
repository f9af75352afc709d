"""Checks of role labforge.instructlab.instructlab on the fleet lfil-1, lfil-2."""

import json
import shlex

import pytest
import testinfra

HOSTS = ["lfil-1", "lfil-2"]
VENV = "/opt/instructlab/venv"
USER = "instructlab"


def as_user(host, cmd):
    """Run cmd in the service user's login shell (its PATH, its HOME)."""
    return host.run("su - %s -c %s" % (USER, shlex.quote(cmd)))


def manifest(host):
    return json.loads(host.file(VENV + "/labforge-manifest.json").content_string)


def test_ilab_version_as_service_user(host):
    out = as_user(host, "command -v ilab && ilab --version")
    assert out.rc == 0, out.stderr
    assert out.stdout.splitlines()[0] == VENV + "/bin/ilab"
    assert "ilab, version 0.26.1" in out.stdout


def test_imports_as_service_user(host):
    out = as_user(host, "python -c 'import torch, llama_cpp, instructlab; print(llama_cpp.__version__)'")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "0.3.6"


def test_pip_check_as_service_user(host):
    out = as_user(host, "python -m pip check")
    assert out.rc == 0, out.stdout + out.stderr
    assert "No broken requirements found" in out.stdout


def test_locked_versions_installed(host):
    out = as_user(host, "python -m pip freeze")
    assert out.rc == 0
    pins = dict(line.split("==", 1) for line in out.stdout.splitlines() if "==" in line)
    # a few pins of the tested lock that an unpinned install gets wrong today
    assert pins["numpy"] == "1.26.4"
    assert pins["transformers"] == "4.52.4"
    assert pins["torch"] == "2.7.0"
    assert pins["instructlab"] == "0.26.1"


def test_venv_is_an_owned_symlinked_build(host):
    link = host.file(VENV)
    assert link.is_symlink
    target = link.linked_to
    assert target.startswith("/opt/instructlab/venvs/0.26.1-cpu-")
    assert host.file(target).user == USER
    assert host.file(target + "/bin/ilab").user == USER
    assert host.file(target + "/lib/python3.11/site-packages/instructlab").user == USER
    # only the active build is kept
    assert host.run("ls /opt/instructlab/venvs").stdout.split() == [target.rsplit("/", 1)[1]]


def test_manifest_records_the_install(host):
    data = manifest(host)
    desired = data["desired"]
    assert desired["instructlab_version"] == "0.26.1"
    assert desired["accelerator"] == "cpu"
    assert desired["cmake_args"] == "-DGGML_NATIVE=off"
    assert desired["python"] == "/usr/bin/python3.11"
    assert len(desired["lock_sha256"]) == 64
    assert data["installed"]["versions"]["instructlab"] == "0.26.1"
    # cpu: informational only, and a CPU build must not claim GPU offload
    assert data["installed"]["gpu_offload"] is False
    top = json.loads(host.file("/opt/instructlab/manifest.json").content_string)
    assert top == desired


def test_wrapper_runs_the_venv_ilab(host):
    out = host.run("/usr/local/bin/ilab --version")
    assert out.rc == 0
    assert "0.26.1" in out.stdout


def test_system_packages(host):
    for pkg in ("build-essential", "cmake", "git", "skopeo"):
        assert host.package(pkg).is_installed, pkg


def test_install_log_left_on_host(host):
    log = host.file("/var/log/labforge/instructlab-install.log")
    assert log.exists
    assert "==== done in" in log.content_string


def _log(h):
    return h.file("/var/log/labforge/instructlab-install.log").content_string


def test_wheelhouse_compiled_once_for_the_fleet(wheelhouse_compiled_once):
    """Each source-only package was compiled at most once in the fleet, before the others used it."""
    wheels = wheelhouse_compiled_once(HOSTS)
    assert sorted(wheels) == ["llama-cpp-python", "pylatexenc", "rouge-score", "sqlitedict", "word2number"]
    assert wheels["llama-cpp-python"]["cmake_args"] == "-DGGML_NATIVE=off"


@pytest.mark.parametrize("name", HOSTS)
def test_install_log_names_the_steps(name):
    log = _log(testinfra.get_host("podman://" + name))
    assert "WHEELHOUSE HIT llama-cpp-python==0.3.6" in log
    assert "--require-hashes --only-binary :all:" in log
    assert "==== done in" in log
