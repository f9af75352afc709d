"""Shared testinfra fixtures for every molecule scenario.

Hosts come from molecule's inventory (``MOLECULE_INVENTORY_FILE``); they are
reached with testinfra's podman backend, which is much faster than going
through ansible for every check.
"""

import json
import os

import pytest
import testinfra
import yaml


def _inventory_hosts():
    path = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not path or not os.path.exists(path):
        raise RuntimeError("MOLECULE_INVENTORY_FILE is not set: run these tests through molecule verify")
    with open(path, encoding="utf-8") as fh:
        inv = yaml.safe_load(fh) or {}
    hosts = set()

    def walk(group):
        hosts.update((group.get("hosts") or {}).keys())
        for child in (group.get("children") or {}).values():
            walk(child or {})

    for group in inv.values():
        walk(group or {})
    return sorted(hosts)


def pytest_generate_tests(metafunc):
    if "host" in metafunc.fixturenames:
        names = _inventory_hosts()
        metafunc.parametrize("host", names, indirect=True, ids=names)


@pytest.fixture(scope="module")
def host(request):
    return testinfra.get_host("podman://" + request.param)


INSTALL_LOG = "/var/log/labforge/instructlab-install.log"
MANIFEST = "/opt/instructlab/venv/labforge-manifest.json"


def _stamp(log, marker):
    """Timestamp of the first install-log line containing marker (None when absent)."""
    for line in log.splitlines():
        if marker in line:
            return line[1:21]
    return None


@pytest.fixture
def wheelhouse_compiled_once():
    """A check for hosts sharing a wheelhouse: each source-only package of the
    InstructLab venv was compiled by at most one of them, before any host took
    it from the wheelhouse, and all installed the same wheel. Returns the
    wheelhouse entries the venv manifest records."""

    def check(names):
        hosts = {name: testinfra.get_host("podman://" + name) for name in names}
        manifests = {name: json.loads(h.file(MANIFEST).content_string) for name, h in hosts.items()}
        logs = {name: h.file(INSTALL_LOG).content_string for name, h in hosts.items()}
        wheels = manifests[names[0]]["installed"]["wheels"]
        assert wheels, "the venv manifest lists no wheelhouse entry"
        for pkg in wheels:
            entries = {(m["installed"]["wheels"][pkg]["dir"], m["installed"]["wheels"][pkg]["built_by"])
                       for m in manifests.values()}
            assert len(entries) == 1, entries
            builds = [name for name, log in logs.items() if "BUILD START %s==" % pkg in log]
            assert len(builds) <= 1, "%s compiled on %s" % (pkg, builds)
            if builds:
                # compiled in this run: before any host took it from the wheelhouse
                done = _stamp(logs[builds[0]], "BUILD DONE %s " % pkg)
                assert done
                for name, log in logs.items():
                    hit = _stamp(log, "WHEELHOUSE HIT %s==" % pkg)
                    assert hit and hit >= done, (name, hit, done)
            sums = {h.run("sha256sum %s/*.whl" % wheels[pkg]["dir"]).stdout for h in hosts.values()}
            assert len(sums) == 1 and sums != {""}, (pkg, sums)
        return wheels

    return check
