"""Shared testinfra fixtures for every molecule scenario.

Hosts come from molecule's inventory (``MOLECULE_INVENTORY_FILE``); they are
reached with testinfra's podman backend, which is much faster than going
through ansible for every check.
"""

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
