"""What the python role leaves on its hosts (molecule/python).

lf-python: CPython 3.11.2 built by pyenv from the offline mirror for the
service user ``pyenv``; lf-python-system: Debian's python3.11.
"""

import json

import pytest

MODULES = "ssl, sqlite3, bz2, lzma, ctypes, readline, zlib"
PYENV_INTERPRETER = "/opt/pyenv/versions/3.11.2/bin/python3.11"
SYSTEM_INTERPRETER = "/usr/bin/python3.11"


def _name(host):
    return host.backend.name


def _expected_interpreter(host):
    return SYSTEM_INTERPRETER if _name(host) == "lf-python-system" else PYENV_INTERPRETER


def test_python311_imports_the_modules_a_pyenv_build_can_drop(host):
    # the role's interpreter: pyenv's build (its tree belongs to the service
    # account, so the role puts no link to it on root's PATH) or Debian's.
    cmd = host.run("%s -c 'import ssl, sqlite3, bz2, lzma, ctypes, readline, zlib; "
                   "import sys; print(sys.executable, sys.version.split()[0])'" % _expected_interpreter(host))
    assert cmd.rc == 0, cmd.stderr
    executable, version = cmd.stdout.split()
    assert version.startswith("3.11.")
    if _name(host) == "lf-python":
        assert version == "3.11.2"
        assert not host.file("/usr/local/bin/python3.11").exists, "a link on root's PATH to the service account's interpreter"


def test_local_fact_names_the_interpreter(host):
    fact = host.file("/etc/ansible/facts.d/labforge_python.fact")
    assert fact.is_file
    assert fact.mode == 0o644
    data = json.loads(fact.content_string)
    assert data["interpreter"] == _expected_interpreter(host)
    assert data["provider"] == ("system" if _name(host) == "lf-python-system" else "pyenv")
    assert host.file(data["interpreter"]).is_file or host.file(data["interpreter"]).is_symlink


def test_any_user_can_run_the_interpreter_and_make_a_venv(host):
    interp = _expected_interpreter(host)
    cmd = host.run(
        "setpriv --reuid=65534 --regid=65534 --clear-groups -- "
        "%s -c 'import ssl, sqlite3, bz2, lzma, ctypes, readline; import ssl; print(ssl.OPENSSL_VERSION)'", interp)
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.startswith("OpenSSL 3")
    venv = host.run("rm -rf /tmp/lf-venv && setpriv --reuid=65534 --regid=65534 --clear-groups -- "
                    "%s -m venv /tmp/lf-venv && /tmp/lf-venv/bin/python -c 'import ssl, sys; print(sys.prefix)'",
                    interp)
    assert venv.rc == 0, venv.stderr
    assert venv.stdout.strip() == "/tmp/lf-venv"
    host.run("rm -rf /tmp/lf-venv")


def test_pyenv_tree_belongs_to_the_service_user_and_is_world_readable(host):
    if _name(host) != "lf-python":
        pytest.skip("pyenv host only")
    root = host.file("/opt/pyenv")
    assert root.user == "pyenv"
    assert root.mode == 0o755
    prefix = host.file("/opt/pyenv/versions/3.11.2")
    assert prefix.user == "pyenv"
    assert prefix.mode & 0o005 == 0o005
    # python-build's umask 022: nothing in the prefix is group/world-writable
    writable = host.run("find /opt/pyenv/versions/3.11.2 -perm /022 -not -type l -print -quit")
    assert writable.stdout == ""
    # pinned pyenv commit, and only the one version built
    head = host.run("git -C /opt/pyenv -c safe.directory=/opt/pyenv rev-parse HEAD")
    assert head.stdout.strip() == "f6a5b409e9fd1ad78aa4350ddc1fc5fc3d0fa666"
    versions = host.run("PYENV_ROOT=/opt/pyenv /opt/pyenv/bin/pyenv versions --bare")
    assert versions.stdout.split() == ["3.11.2"]


def test_pyenv_build_came_from_the_offline_mirror(host):
    if _name(host) != "lf-python":
        pytest.skip("pyenv host only")
    # the role fetched the .tgz named by its sha256 into pyenv's cache ...
    cached = host.file("/opt/pyenv/cache/Python-3.11.2.tar.gz")
    assert cached.sha256sum == "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"
    # ... python-build reused it (no download) and cleaned its working tree
    log = host.file("/opt/pyenv/logs/python-build-3.11.2.log").content_string
    assert "Installed Python-3.11.2 to /opt/pyenv/versions/3.11.2" in log
    assert "Downloading" not in log
    assert not host.file("/opt/pyenv/cache/build-3.11.2").exists


def test_system_provider_uses_debian_packages_and_no_pyenv(host):
    if _name(host) != "lf-python-system":
        pytest.skip("system host only")
    for pkg in ("python3.11", "python3.11-venv", "python3.11-dev"):
        assert host.package(pkg).is_installed, pkg
    assert not host.file("/opt/pyenv").exists
    assert not host.package("gcc").is_installed
