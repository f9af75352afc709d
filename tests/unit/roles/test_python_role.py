"""The python role's plan for platforms CI has no image of (EL9), and its
refusal of bad input, without touching a real host.

Each test runs ``ansible-playbook`` against localhost with the platform facts
set (``set_fact cacheable`` fills ``ansible_facts``), in check mode unless the
role must fail before changing anything. The package manager (``dnf``) is a
recording test double found first on ANSIBLE_LIBRARY: the ``package`` action
resolves ``ansible.legacy.dnf``, so the double receives exactly what the role
would install on an EL9 host. Everything else is the real role.
"""

# Tuples from _results() are unpacked with "_" for the fields a test ignores.
# pylint: disable=disallowed-name

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
# pyenv v2.6.30 as the role pins it (vars/main.yml), and the commit the test bed's offline copy holds
# (tests/testbed/make-python-mirror.sh: four CI-only commits later). Both have the same tree of
# python-build definitions (DEFINITIONS_TREE), which is what the role's python_version depends on.
ROLE_PYENV_COMMIT = "40dba8256f482e648dc3d170d0cc18aca9bb313e"
PINNED_PYENV_COMMIT = "f6a5b409e9fd1ad78aa4350ddc1fc5fc3d0fa666"
DEFINITIONS_TREE = "aa7b488bfd219061d62742a713e2232e8f1ec3cb"
ROLE_PYENV_ARCHIVE_SHA256 = "7b158ec6b45200a62db9450ad3ac2141dacd25b2fe5605dcf44f3b2252dc2660"

EL9_BUILD_PACKAGES = [
    "gcc", "make", "patch", "pkgconf-pkg-config", "openssl-devel", "zlib-devel", "bzip2", "bzip2-devel",
    "readline-devel", "sqlite", "sqlite-devel", "ncurses-devel", "xz", "xz-devel", "tk-devel",
    "libffi-devel", "libuuid-devel", "gdbm-libs", "libnsl2", "git", "tar", "gzip",
]
EL9_SYSTEM_PACKAGES = ["python3.11", "python3.11-devel", "python3.11-pip"]
DEBIAN12_BUILD_PACKAGES = [
    "gcc", "make", "patch", "libc6-dev", "pkg-config", "libssl-dev", "zlib1g-dev", "libbz2-dev",
    "libreadline-dev", "libsqlite3-dev", "libncurses-dev", "liblzma-dev", "xz-utils", "tk-dev",
    "libffi-dev", "uuid-dev", "libgdbm-dev", "git", "tar", "gzip", "bzip2", "ca-certificates",
]
EL9_FAMILY = ["RedHat", "CentOS", "Rocky", "AlmaLinux"]

# Recording stand-in for the dnf module: writes its arguments to a file and
# reports what dnf would report in check mode for packages not yet installed.
DNF_DOUBLE = '''#!/usr/bin/python
import json, os
from ansible.module_utils.basic import AnsibleModule
m = AnsibleModule(argument_spec=dict(name=dict(type="list", elements="str"), state=dict()),
                  supports_check_mode=True)
with open(os.environ["LF_DNF_RECORD"], "a") as fh:
    fh.write(json.dumps({"name": m.params["name"], "state": m.params["state"],
                         "check_mode": m.check_mode}) + "\\n")
m.exit_json(changed=True, results=["Installed: %s" % n for n in m.params["name"]])
'''


def _facts(distribution, major, os_family, pkg_mgr):
    return {"distribution": distribution, "distribution_major_version": str(major),
            "os_family": os_family, "pkg_mgr": pkg_mgr}


def _run_hosts(tmp_path, hosts, role_vars, check=True, tasks_from=None, after=""):
    """Apply the role to local pseudo-hosts {name: facts} in one run.

    Returns (rc, json output, {host: [dnf calls]}).
    """
    library = tmp_path / "library"
    library.mkdir(exist_ok=True)
    (library / "dnf.py").write_text(DNF_DOUBLE)
    records = tmp_path / "dnf-calls"
    records.mkdir(exist_ok=True)
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {
        name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
               "ansible_become_method": "ansible.builtin.su", "lf_facts": facts}
        for name, facts in hosts.items()}}}))
    include = "        tasks_from: %s\n" % tasks_from if tasks_from else ""
    playbook = tmp_path / "play.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: all
          gather_facts: false
          environment:
            LF_DNF_RECORD: "{records}/{{{{ inventory_hostname }}}}.jsonl"
          tasks:
            - name: Pretend to be the platform under test
              ansible.builtin.set_fact:
                cacheable: true
                distribution: "{{{{ lf_facts.distribution }}}}"
                distribution_major_version: "{{{{ lf_facts.distribution_major_version }}}}"
                os_family: "{{{{ lf_facts.os_family }}}}"
                pkg_mgr: "{{{{ lf_facts.pkg_mgr }}}}"
            - name: Apply the role
              ansible.builtin.include_role:
                name: labforge.instructlab.python
        {include}      vars: {role_vars}
        """).format(records=records, include=include, role_vars=json.dumps(role_vars))
        + textwrap.indent(textwrap.dedent(after), "    "))
    env = dict(os.environ)
    env.update({
        "ANSIBLE_LIBRARY": str(library),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_COLLECTIONS_PATH": os.environ["ANSIBLE_COLLECTIONS_PATH"],
        "ANSIBLE_FORKS": "10",
    })
    cmd = [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook)] + (["--check"] if check else [])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(tmp_path), timeout=300, check=False)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("no JSON from ansible-playbook (rc %d): %s %s" % (proc.returncode, proc.stdout, proc.stderr))
    calls = {}
    for name in hosts:
        record = records / ("%s.jsonl" % name)
        calls[name] = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return proc.returncode, out, calls


def _run(tmp_path, facts, role_vars, check=True, tasks_from=None, after=""):
    """Apply the role to localhost with ``facts``; return (rc, plays json, dnf calls)."""
    rc, out, calls = _run_hosts(tmp_path, {"localhost": facts}, role_vars, check, tasks_from, after)
    return rc, out, calls["localhost"]


def _results(out, host="localhost"):
    """(task name, action, result) for every task of the play, in order."""
    rows = []
    for play in out["plays"]:
        for task in play["tasks"]:
            res = task["hosts"].get(host, {})
            name = task["task"]["name"].replace("labforge.instructlab.python : ", "", 1)
            rows.append((name, res.get("action"), res))
    return rows


def _steps(out, host="localhost"):
    """Tasks that would change the host (ran, not skipped, changed)."""
    return [(name, action) for name, action, res in _results(out, host)
            if res and not res.get("skipped") and res.get("changed")]


def _failure(out):
    failed = [res.get("msg", "") for _, _, res in _results(out) if res.get("failed")]
    assert failed, "the role did not fail"
    return " ".join(failed[-1].split())


@pytest.fixture
def pyenv_repo(tmp_path):
    """A local git repository standing in for pyenv's (the check-mode plan only ls-remotes it)."""
    repo = tmp_path / "pyenv-src"
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    subprocess.run(["git", "init", "-q", "-b", "master", str(repo)], check=True, env=env)
    (repo / "README").write_text("stand-in\n")
    subprocess.run(["git", "-C", str(repo), "add", "README"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "init"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "tag", "v2.6.30"], check=True, env=env)
    return str(repo)


def test_el9_pyenv_plan(tmp_path, pyenv_repo):
    """RHEL/CentOS/Rocky/Alma 9: the exact packages and the steps check mode reports."""
    root = str(tmp_path / "opt-pyenv")
    hosts = {d.lower() + "9": _facts(d, 9, "RedHat", "dnf") for d in EL9_FAMILY}
    rc, out, all_calls = _run_hosts(tmp_path, hosts, {
        "python_pyenv_root": root,
        "python_pyenv_source": pyenv_repo,
        "python_build_mirror_url": "https://mirror.example/pythons",
        "python_link_dir": str(tmp_path / "bin"),
    })
    assert rc == 0, out
    for host in hosts:
        calls = all_calls[host]
        # exactly one package transaction, with exactly EL9's build dependencies
        assert calls == [{"name": EL9_BUILD_PACKAGES, "state": "present", "check_mode": True}], host
        steps = _steps(out, host)
        assert steps[:5] == [
            ("Install the packages pyenv needs to build CPython 3.11.15", "ansible.builtin.package"),
            ("Create the world-readable pyenv root, owned by python_user, %s" % root, "ansible.builtin.file"),
            ("Trust the local pyenv repository for the checkout %s" % pyenv_repo, "ansible.builtin.copy"),
            ("Check out pyenv v2.6.30 (commit %s) from %s" % (ROLE_PYENV_COMMIT, pyenv_repo), "ansible.builtin.git"),
            ("Report what check mode would build", "ansible.builtin.debug"),
        ], host
        msg = [res for name, _, res in _results(out, host) if name == steps[4][0]][0]["msg"]
        assert msg == ("Would build CPython 3.11.15 into %s/versions/3.11.15 as root with pyenv v2.6.30 "
                       "(mirror https://mirror.example/pythons, tgz tarball; log %s/logs/python-build-3.11.15.log)."
                       % (root, root))
        # then only the local fact file remains to write
        assert [a for _, a in steps[5:]] in (["ansible.builtin.copy"],
                                             ["ansible.builtin.file", "ansible.builtin.copy"]), steps
        # no apt step on EL9, and the build itself never ran in check mode
        ran = [action for _, action, res in _results(out, host) if res and not res.get("skipped")]
        assert "ansible.builtin.apt" not in ran
        assert "ansible.builtin.shell" not in ran
    assert not os.path.exists(root), "check mode created the pyenv root"


def test_el9_system_plan_packages(tmp_path):
    hosts = {d.lower() + "9": _facts(d, 9, "RedHat", "dnf") for d in EL9_FAMILY}
    rc, out, all_calls = _run_hosts(tmp_path, hosts, {"python_provider": "system"})
    for host in hosts:
        assert all_calls[host] == [{"name": EL9_SYSTEM_PACKAGES, "state": "present", "check_mode": True}], host
        facts = [res for name, _, res in _results(out, host) if name == "Publish the interpreter as facts"]
        assert facts and facts[0]["ansible_facts"]["python_interpreter"] == "/usr/bin/python3.11"


VARS_CASES = {
    "rhel9": (_facts("RedHat", 9, "RedHat", "dnf"), EL9_BUILD_PACKAGES, EL9_SYSTEM_PACKAGES),
    "centos9": (_facts("CentOS", 9, "RedHat", "dnf"), EL9_BUILD_PACKAGES, EL9_SYSTEM_PACKAGES),
    "rocky9": (_facts("Rocky", 9, "RedHat", "dnf"), EL9_BUILD_PACKAGES, EL9_SYSTEM_PACKAGES),
    "alma9": (_facts("AlmaLinux", 9, "RedHat", "dnf"), EL9_BUILD_PACKAGES, EL9_SYSTEM_PACKAGES),
    "debian12": (_facts("Debian", 12, "Debian", "apt"), DEBIAN12_BUILD_PACKAGES,
                 ["python3.11", "python3.11-venv", "python3.11-dev"]),
    "debian13": (_facts("Debian", 13, "Debian", "apt"), DEBIAN12_BUILD_PACKAGES, []),
    "ubuntu24": (_facts("Ubuntu", 24, "Debian", "apt"), DEBIAN12_BUILD_PACKAGES, []),
    "rhel8": (_facts("RedHat", 8, "RedHat", "dnf"), [], []),
    "freebsd14": (_facts("FreeBSD", 14, "FreeBSD", "pkgng"), [], []),
}


def test_vars_resolution(tmp_path):
    dump = """\
        - name: Dump the resolved variables
          ansible.builtin.debug:
            msg: "{{ {'build': __python_build_packages, 'system': __python_system_packages} }}"
        """
    rc, out, _ = _run_hosts(tmp_path, {h: c[0] for h, c in VARS_CASES.items()}, {},
                            tasks_from="set_vars.yml", after=dump)
    assert rc == 0, out
    for host, (_, build, system) in VARS_CASES.items():
        dumped = [res for name, _, res in _results(out, host) if name == "Dump the resolved variables"][0]["msg"]
        assert dumped == {"build": build, "system": system}, host


@pytest.mark.parametrize("role_vars,expected", [
    ({"python_user": "lf-no-such-user"}, "python_user 'lf-no-such-user' does not exist"),
    ({"python_version": "3.10.14"}, "python_version '3.10.14' is not supported"),
    ({"python_version": "latest"}, "python_version 'latest' is not supported"),
    ({"python_version": "3.11"}, "python_version '3.11' is not supported"),
    ({"python_provider": "conda"}, "conda"),
    ({"python_build_tarball": "zip"}, "zip"),
    ({"python_build_mirror_url": "/srv/mirror"}, "python_build_mirror_url '/srv/mirror' must be an http://"),
], ids=["missing-user", "old-version", "not-a-version", "no-patch", "bad-provider", "bad-tarball", "mirror-not-url"])
def test_bad_input_fails_before_any_change(tmp_path, role_vars, expected):
    root = str(tmp_path / "opt-pyenv")
    rc, out, calls = _run(tmp_path, _facts("Rocky", 9, "RedHat", "dnf"),
                          dict({"python_pyenv_root": root}, **role_vars), check=False)
    assert rc != 0
    assert expected in _failure(out)
    assert calls == [], "packages were installed before the input was checked"
    assert not os.path.exists(root)


def test_system_provider_refused_where_no_python311_package(tmp_path):
    rc, out, calls = _run(tmp_path, _facts("Debian", 13, "Debian", "apt"), {"python_provider": "system"}, check=False)
    assert rc != 0
    assert "Debian 13 (os_family Debian) has no python3.11 package the system provider can use" in _failure(out)
    assert calls == []


def test_pyenv_refused_on_unknown_platform_unless_deps_are_managed_elsewhere(tmp_path, pyenv_repo):
    facts = _facts("FreeBSD", 14, "FreeBSD", "pkgng")
    rc, out, _ = _run(tmp_path, facts, {"python_pyenv_root": str(tmp_path / "r")}, check=False)
    assert rc != 0
    assert "FreeBSD 14 (os_family FreeBSD) has no build-dependency list" in _failure(out)
    rc, out, _ = _run(tmp_path, facts, {"python_pyenv_root": str(tmp_path / "r"), "python_manage_build_deps": False,
                                        "python_pyenv_source": pyenv_repo})
    assert rc == 0, _results(out)


def _pinned_pyenv_git_dir():
    cache = os.environ.get("LABFORGE_CACHE", "/var/cache/labforge")
    for path in (os.path.join(cache, "python-mirror", "pyenv.git"), os.path.expanduser("~/.pyenv")):
        if subprocess.run(["git", "-C", path, "cat-file", "-e", PINNED_PYENV_COMMIT + "^{commit}"],
                          capture_output=True, check=False).returncode == 0:
            return path
    return None


def _role_yaml(*parts):
    import yaml

    with open(os.path.join(ROOT, "roles", "python", *parts), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def test_pyenv_pins():
    """One pin per pyenv release the role knows: the tag's commit and its archive's sha256."""
    pins = _role_yaml("vars", "main.yml")["__python_pyenv_pins"]
    assert pins == {"v2.6.30": {"commit": ROLE_PYENV_COMMIT, "archive_sha256": ROLE_PYENV_ARCHIVE_SHA256}}
    assert _role_yaml("defaults", "main.yml")["python_pyenv_version"] in pins


def test_default_version_is_the_newest_311_of_the_pinned_pyenv():
    defaults = _role_yaml("defaults", "main.yml")
    assert defaults["python_pyenv_version"] == "v2.6.30"
    git_dir = _pinned_pyenv_git_dir()
    if git_dir is None:
        pytest.skip("no copy of pyenv %s here (run tests/testbed/make-python-mirror.sh)" % PINNED_PYENV_COMMIT)
    version = subprocess.run(["git", "-C", git_dir, "show", PINNED_PYENV_COMMIT + ":libexec/pyenv---version"],
                             capture_output=True, text=True, check=False)
    if version.returncode == 0:
        assert "2.6.30" in version.stdout
    # the definitions are those of the role's pinned commit
    tree = subprocess.run(["git", "-C", git_dir, "rev-parse", PINNED_PYENV_COMMIT + ":plugins/python-build/share/python-build"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert tree == DEFINITIONS_TREE
    names = subprocess.run(["git", "-C", git_dir, "ls-tree", "--name-only", PINNED_PYENV_COMMIT,
                            "plugins/python-build/share/python-build/"],
                           capture_output=True, text=True, check=True).stdout.split()
    releases = sorted((tuple(int(p) for p in n.rsplit("/", 1)[1].split(".")) for n in names
                       if n.rsplit("/", 1)[1].startswith("3.11.") and n.rsplit("/", 1)[1].replace(".", "").isdigit()))
    assert defaults["python_version"] == ".".join(map(str, releases[-1]))


def _local_pyenv_archive(path):
    """A release-style archive (top directory pyenv-2.6.30/) of the test bed's pyenv commit, at PATH."""
    git_dir = _pinned_pyenv_git_dir()
    if git_dir is None:
        pytest.skip("no copy of pyenv %s here (run tests/testbed/make-python-mirror.sh)" % PINNED_PYENV_COMMIT)
    subprocess.run(["git", "-C", git_dir, "archive", "--format=tar.gz", "--prefix=pyenv-2.6.30/",
                    "-o", str(path), PINNED_PYENV_COMMIT], check=True)
    return path


def test_archive_source_is_unpacked_and_unknown_version_named(tmp_path):
    """Real run on the controller (no packages, no build): pyenv from a release
    archive, then a python_version the pinned pyenv does not know."""
    archive = _local_pyenv_archive(tmp_path / "pyenv-2.6.30.tar.gz")
    root = tmp_path / "opt-pyenv"
    rc, out, calls = _run(tmp_path, _facts("Rocky", 9, "RedHat", "dnf"), {
        "python_pyenv_root": str(root), "python_pyenv_source": str(archive),
        "python_pyenv_archive_sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
        "python_manage_build_deps": False, "python_version": "3.11.99", "python_link_dir": ""}, check=False)
    assert rc != 0
    ran = [action for _, action, res in _results(out) if res and not res.get("skipped")]
    assert "ansible.builtin.unarchive" in ran and "ansible.builtin.git" not in ran
    assert (root / "bin" / "pyenv").is_file()
    msg = _failure(out)
    assert "python_version '3.11.99' is unknown to pyenv v2.6.30 in %s" % root in msg
    assert "3.11.14, 3.11.15" in msg
    assert calls == []
    versions = root / "versions"
    assert not versions.exists() or os.listdir(versions) == []


def test_archive_with_another_sha256_is_refused_before_unpacking(tmp_path):
    """Real run on the controller: an archive whose sha256 is not the pinned one is never unpacked;
    the message names the file and both checksums."""
    archive = _local_pyenv_archive(tmp_path / "v2.6.30.tar.gz")
    got = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert got != ROLE_PYENV_ARCHIVE_SHA256  # a local archive of another commit, not GitHub's v2.6.30
    root = tmp_path / "opt-pyenv"
    rc, out, calls = _run(tmp_path, _facts("Rocky", 9, "RedHat", "dnf"), {
        "python_pyenv_root": str(root), "python_pyenv_source": str(archive),
        "python_manage_build_deps": False, "python_link_dir": ""}, check=False)
    assert rc != 0
    assert _failure(out) == (
        "The pyenv archive %s has sha256 %s, not the pinned %s (pyenv v2.6.30 in the role's vars/main.yml). "
        "Nothing was unpacked." % (archive, got, ROLE_PYENV_ARCHIVE_SHA256))
    assert not (root / "bin").exists()
    ran = [action for _, action, res in _results(out) if res and not res.get("skipped")]
    assert "ansible.builtin.unarchive" not in ran
    assert calls == []


@pytest.mark.parametrize("role_vars,expected", [
    ({"python_pyenv_version": "v2.6.31"},
     "python_pyenv_version v2.6.31 is neither a 40-hex commit nor a tag the role pins (v2.6.30 in vars/main.yml)"),
    ({"python_pyenv_version": "master"}, "python_pyenv_version master is neither a 40-hex commit"),
    ({"python_pyenv_version": "v2.6.31", "python_pyenv_source": "https://example.org/pyenv-2.6.31.tar.gz"},
     "pyenv from the archive https://example.org/pyenv-2.6.31.tar.gz has no sha256 to check"),
    ({"python_pyenv_source": "/srv/pyenv.tgz", "python_pyenv_archive_sha256": "abc"},
     "set python_pyenv_archive_sha256 (64 hex digits, not abc)"),
    ({"python_proxy_env": {"https_proxy": "http://bob:s3cret@proxy:3128", "no_proxy": ".corp"}},
     "python_proxy_env holds a proxy URL with credentials (https_proxy)"),
], ids=["unpinned-tag", "branch", "archive-without-sha256", "bad-sha256", "proxy-credentials"])
def test_unpinned_or_leaking_sources_fail_before_any_change(tmp_path, role_vars, expected):
    root = str(tmp_path / "opt-pyenv")
    rc, out, calls = _run(tmp_path, _facts("Rocky", 9, "RedHat", "dnf"),
                          dict({"python_pyenv_root": root}, **role_vars), check=False)
    assert rc != 0
    msg = _failure(out)
    assert expected in msg
    assert "s3cret" not in json.dumps(out)
    assert calls == [], "packages were installed before the input was checked"
    assert not os.path.exists(root)
