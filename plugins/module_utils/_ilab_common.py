# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the ilab_* modules (private): digests, atomic file
operations, dotted config keys and download state records."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import shutil
import tempfile

_MISSING = object()


# ------------------------------------------------------------------ digests
def sha256_file(path, bufsize=1024 * 1024):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            chunk = f.read(bufsize)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def tree_files(root):
    """Sorted relative paths of the regular files under ``root``."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                out.append(os.path.relpath(full, root))
    return sorted(out)


def tree_digest(root, files=None):
    """sha256 over ``"<sha256>  <relpath>\\n"`` lines (sha256sum format) of a tree.

    Returns (digest, {relpath: {'sha256':..., 'size':...}}).
    """
    files = files if files is not None else tree_files(root)
    h = hashlib.sha256()
    info = {}
    for rel in sorted(files):
        full = os.path.join(root, rel)
        d = sha256_file(full)
        info[rel] = dict(sha256=d, size=os.path.getsize(full))
        h.update(('%s  %s\n' % (d, rel)).encode('utf-8'))
    return 'sha256:' + h.hexdigest(), info


def normalize_sha256(value):
    """'sha256:HEX' or 'HEX' -> lowercase HEX (None when empty)."""
    if not value:
        return None
    value = value.strip().lower()
    if value.startswith('sha256:'):
        value = value[len('sha256:'):]
    if len(value) != 64 or any(c not in '0123456789abcdef' for c in value):
        raise ValueError('not a sha256 digest: %r' % value)
    return value


# ------------------------------------------------------------- file ops
def chown_like(path, uid, gid):
    if uid is None or os.geteuid() != 0:
        return
    os.lchown(path, uid, gid)


def chown_tree(root, uid, gid):
    if uid is None or os.geteuid() != 0:
        return
    chown_like(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            chown_like(os.path.join(dirpath, name), uid, gid)


def atomic_write(path, data, mode=0o644, uid=None, gid=None):
    """Write ``data`` (bytes/str) to a temp file next to ``path`` and rename."""
    if isinstance(data, str):
        data = data.encode('utf-8')
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=d)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        chown_like(tmp, uid, gid)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def replace_path(tmp, final):
    """Move ``tmp`` (file or dir) to ``final``; an existing ``final`` is replaced.

    Files are replaced atomically (rename). A directory target is first renamed
    aside, then the new one renamed in, then the old one removed: the final
    path never holds a partial tree.
    """
    if os.path.isdir(final) and not os.path.islink(final):
        old = tempfile.mkdtemp(prefix='.%s.old-' % os.path.basename(final),
                               dir=os.path.dirname(final))
        os.rmdir(old)
        os.rename(final, old)
        try:
            os.rename(tmp, final)
        except BaseException:
            os.rename(old, final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        if os.path.islink(final) and os.path.isdir(tmp):
            os.unlink(final)
        os.rename(tmp, final)


def remove_path(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


# ---------------------------------------------------------- dotted keys
def dotted_get(data, key, default=_MISSING):
    cur = data
    for part in key.split('.'):
        if not isinstance(cur, dict) or part not in cur:
            return None if default is _MISSING else default
        cur = cur[part]
    return cur


def dotted_has(data, key):
    cur = data
    for part in key.split('.'):
        if not isinstance(cur, dict) or part not in cur:
            return False
        cur = cur[part]
    return True


def dotted_set(data, key, value):
    parts = key.split('.')
    cur = data
    for part in parts[:-1]:
        if not isinstance(cur.get(part), dict):
            cur[part] = {}
        cur = cur[part]
    cur[parts[-1]] = value


def flatten(data, prefix=''):
    out = {}
    for k, v in (data or {}).items():
        key = '%s.%s' % (prefix, k) if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


# --------------------------------------------------------- state records
def state_dir(home):
    return os.path.join(home, '.local', 'state', 'labforge', 'downloads')


def state_path(home, target):
    key = hashlib.sha256(os.path.abspath(target).encode('utf-8')).hexdigest()[:24]
    return os.path.join(state_dir(home), key + '.json')


def read_state(home, target):
    try:
        with open(state_path(home, target)) as f:
            return json.load(f)
    except (IOError, OSError, ValueError):
        return None


def write_state(home, target, record, uid=None, gid=None):
    d = state_dir(home)
    missing = []
    p = d
    while not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    for m in reversed(missing):
        os.mkdir(m, 0o755)
        chown_like(m, uid, gid)
    atomic_write(state_path(home, target), json.dumps(record, indent=2, sort_keys=True) + '\n',
                 mode=0o644, uid=uid, gid=gid)
