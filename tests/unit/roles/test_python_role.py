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

import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
PINNED_PYENV_COMMIT = "f6a5b409e9fd1ad78aa4350ddc1fc5fc3d0fa666"  # pyenv v2.6.30, the role's default ref

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
            ("Check out pyenv %s@v2.6.30" % pyenv_repo, "ansible.builtin.git"),
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


def test_default_version_is_the_newest_311_of_the_pinned_pyenv():
    import yaml

    with open(os.path.join(ROOT, "roles", "python", "defaults", "main.yml"), encoding="utf-8") as fh:
        defaults = yaml.safe_load(fh)
    assert defaults["python_pyenv_version"] == "v2.6.30"
    git_dir = _pinned_pyenv_git_dir()
    if git_dir is None:
        pytest.skip("no copy of pyenv %s here (run tests/testbed/make-python-mirror.sh)" % PINNED_PYENV_COMMIT)
    version = subprocess.run(["git", "-C", git_dir, "show", PINNED_PYENV_COMMIT + ":libexec/pyenv---version"],
                             capture_output=True, text=True, check=False)
    if version.returncode == 0:
        assert "2.6.30" in version.stdout
    names = subprocess.run(["git", "-C", git_dir, "ls-tree", "--name-only", PINNED_PYENV_COMMIT,
                            "plugins/python-build/share/python-build/"],
                           capture_output=True, text=True, check=True).stdout.split()
    releases = sorted((tuple(int(p) for p in n.rsplit("/", 1)[1].split(".")) for n in names
                       if n.rsplit("/", 1)[1].startswith("3.11.") and n.rsplit("/", 1)[1].replace(".", "").isdigit()))
    assert defaults["python_version"] == ".".join(map(str, releases[-1]))


def test_archive_source_is_unpacked_and_unknown_version_named(tmp_path):
    """Real run on the controller (no packages, no build): pyenv from a release
    archive, then a python_version the pinned pyenv does not know."""
    git_dir = _pinned_pyenv_git_dir()
    if git_dir is None:
        pytest.skip("no copy of pyenv %s here (run tests/testbed/make-python-mirror.sh)" % PINNED_PYENV_COMMIT)
    archive = tmp_path / "pyenv-2.6.30.tar.gz"
    subprocess.run(["git", "-C", git_dir, "archive", "--format=tar.gz", "--prefix=pyenv-2.6.30/",
                    "-o", str(archive), PINNED_PYENV_COMMIT], check=True)
    root = tmp_path / "opt-pyenv"
    rc, out, calls = _run(tmp_path, _facts("Rocky", 9, "RedHat", "dnf"), {
        "python_pyenv_root": str(root), "python_pyenv_source": str(archive),
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
