"""Checks of role labforge.instructlab.instructlab on the fleet lfil-1, lfil-2."""

import json
import os
import shlex

import pytest
import testinfra

HOSTS = ["lfil-1", "lfil-2"]
VENV = "/opt/instructlab/venv"
USER = "instructlab"


def as_user(host, cmd):
    """Run cmd in a login shell of the service user (its PATH, its HOME). The account has no
    login shell of its own (nologin): root names one."""
    return host.run("su -s /bin/bash - %s -c %s" % (USER, shlex.quote(cmd)))


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


def test_venv_is_roots_and_only_readable_by_the_service_user(host):
    link = host.file(VENV)
    assert link.is_symlink
    target = link.linked_to
    assert target.startswith("/opt/instructlab/venvs/0.26.1-cpu-")
    assert host.file(target).user == "root"
    assert host.file(target + "/bin/ilab").user == "root"
    # nothing in it belongs to another account or is writable by one
    foreign = host.run("find %s \\( ! -user root -o -perm /002 -o \\( -perm /020 ! -group root \\) \\) "
                       "! -type l -print -quit" % target)
    assert foreign.rc == 0 and foreign.stdout == "", foreign.stdout
    # the service user cannot plant a .pth (or anything) in it
    site = target + "/lib/python3.11/site-packages"
    out = as_user(host, "touch %s/lf-planted.pth" % site)
    assert out.rc != 0 and "Permission denied" in out.stderr
    assert not host.file(site + "/lf-planted.pth").exists
    # byte code was compiled at install time (the user cannot write __pycache__)
    assert host.file(site + "/instructlab/__pycache__").is_directory
    # only the active build is kept
    assert host.run("ls /opt/instructlab/venvs").stdout.split() == [target.rsplit("/", 1)[1]]


def test_service_user_has_no_login_shell(host):
    entry = host.run("getent passwd %s" % USER).stdout.strip().split(":")
    assert entry[6] == "/usr/sbin/nologin"
    assert host.run("su - %s -c true" % USER).rc != 0


def test_path_comes_from_a_root_owned_snippet_not_the_home(host):
    snippet = host.file("/etc/profile.d/labforge-instructlab.sh")
    assert snippet.user == "root" and snippet.mode == 0o644
    assert VENV + "/bin" in snippet.content_string
    for name in (".profile", ".bashrc"):
        home_file = host.file("/var/lib/instructlab/" + name)
        assert not home_file.exists or "labforge.instructlab" not in home_file.content_string


def test_installer_settings_are_root_only(host):
    etc = host.file("/opt/instructlab/etc")
    assert etc.user == "root" and etc.mode == 0o700
    for name in ("pip.conf", "uv.toml"):
        conf = host.file("/opt/instructlab/etc/" + name)
        assert conf.user == "root" and conf.mode == 0o600, name
    assert "cert = /etc/ssl/certs/labforge-host-ca.crt" in host.file("/opt/instructlab/etc/pip.conf").content_string


def test_uv_came_from_its_pinned_sha256(host):
    req = host.file("/opt/instructlab/etc/uv-requirements.txt").content_string
    assert req.splitlines()[2] == "uv==0.13.9 \\"
    # uv 0.13.9's manylinux x86_64 wheel on PyPI
    assert "--hash=sha256:d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19" in req
    assert host.run("/opt/instructlab/tools/bin/uv --version").stdout.split()[1] == "0.13.9"


def test_install_checks_ran_as_the_service_user(host):
    log = host.file("/var/log/labforge/instructlab-install.log").content_string
    for step in ("pip check", "verify imports", "ilab --version"):
        assert "%s (as instructlab) rc=0" % step in log, step


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


def test_wheels_match_the_controllers_record():
    """Every wheelhouse wheel the venvs were built from has the sha256 the controller recorded
    when it was compiled (the record lives on the controller, not in the shared wheelhouse)."""
    cache = os.environ.get("LABFORGE_CACHE", "/var/cache/labforge")
    run = os.environ.get("LABFORGE_WHEELHOUSE_RUN") or "shared"
    with open(os.path.join(cache, "wheelhouse-records", run + ".json"), encoding="utf-8") as fh:
        record = json.load(fh)
    h = testinfra.get_host("podman://" + HOSTS[0])
    wheels = manifest(h)["installed"]["wheels"]
    assert sorted(wheels) == ["llama-cpp-python", "pylatexenc", "rouge-score", "sqlitedict", "word2number"]
    for pkg, entry in wheels.items():
        files = record[entry["dir"]]["files"]
        assert len(files) == 1 and list(files)[0].endswith(".whl"), (pkg, files)
        for name, digest in files.items():
            assert h.file(entry["dir"] + "/" + name).sha256sum == digest
