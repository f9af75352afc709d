"""Make ``ansible_collections.labforge.instructlab`` importable for unit tests.

The collection must sit under ``<dir>/ansible_collections/labforge/instructlab``
to be imported by its FQCN. When the checkout is not already laid out like that
(a plain clone), a link is made in a private directory and put on sys.path.
The directory is per checkout: two checkouts (git worktrees) tested at the same
time must not re-point one shared link under each other.
"""

import hashlib
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collections_dir():
    parent = os.path.dirname(ROOT)
    if (os.path.basename(ROOT) == "instructlab"
            and os.path.basename(parent) == "labforge"
            and os.path.basename(os.path.dirname(parent)) == "ansible_collections"):
        return os.path.dirname(os.path.dirname(parent))
    base = os.path.join(tempfile.gettempdir(), "labforge-unit-%d-%s"
                        % (os.getuid(), hashlib.sha256(ROOT.encode()).hexdigest()[:12]))
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
