"""Module and module_utils tests never touch the controller's real private
state: ``_fs.STATE_ROOT`` (``/var/lib/labforge``) points into the test's own
temporary directory, so tests of several checkouts running at once (or a
developer's real labforge state) cannot see each other."""

import pytest

from ansible_collections.labforge.instructlab.plugins.module_utils import _fs


@pytest.fixture(autouse=True)
def private_state_root(tmp_path, monkeypatch):
    root = tmp_path / "var-lib-labforge"
    root.mkdir(mode=0o700)
    monkeypatch.setattr(_fs, "STATE_ROOT", str(root))
    return str(root)
