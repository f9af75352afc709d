"""Make ``ansible_collections.labforge.instructlab`` importable for unit tests.

The collection must sit under ``<dir>/ansible_collections/labforge/instructlab``
to be imported by its FQCN. When the checkout is not already laid out like that
(a plain clone), a link is made in a private directory and put on sys.path.
"""

import hashlib
import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collections_dir():
    parent = os.path.dirname(ROOT)
    if (os.path.basename(ROOT) == "instructlab"
            and os.path.basename(parent) == "labforge"
            and os.path.basename(os.path.dirname(parent)) == "ansible_collections"):
        return os.path.dirname(os.path.dirname(parent))
    # one link per checkout: several worktrees may run their unit tests at once
    key = hashlib.sha256(ROOT.encode("utf-8")).hexdigest()[:12]
    base = os.path.join(tempfile.gettempdir(), "labforge-unit-%d-%s" % (os.getuid(), key))
    link = os.path.join(base, "ansible_collections", "labforge", "instructlab")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.realpath(link) != ROOT:
        tmp = link + ".%d" % os.getpid()
        os.symlink(ROOT, tmp)
        os.replace(tmp, link)
    return base


COLLECTIONS_DIR = _collections_dir()
if COLLECTIONS_DIR not in sys.path:
    sys.path.insert(0, COLLECTIONS_DIR)
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS_DIR)


@pytest.fixture(autouse=True)
def private_state_root(tmp_path_factory, monkeypatch):
    """The file layer's private state directory (/var/lib/labforge on hosts) in a
    temporary directory, so that unit tests run as root never touch the real one."""
    from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
    root = tmp_path_factory.mktemp("state")
    os.chmod(str(root), 0o700)
    monkeypatch.setattr(_fs, "STATE_ROOT", str(root))
    return str(root)
