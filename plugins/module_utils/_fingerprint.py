# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input fingerprints and run manifests (private API).

Long ilab steps (``ilab data generate``, ``ilab model train``) are made
idempotent by a *fingerprint* of everything that determines their result: the
content of the inputs (taxonomy files, model files, datasets), the parameters
and the InstructLab version. A step writes into a temporary directory and,
only when it succeeded, writes a *manifest* (``labforge-manifest.json``: the
fingerprint, the inputs, the result paths and row counts) into it and renames
it to its final, per-fingerprint directory. A final directory with a valid
manifest is therefore a complete result; anything else (a leftover temporary
directory of a killed run) is never taken as done.

API::

    from ansible_collections.labforge.instructlab.plugins.module_utils._fingerprint import (
        fingerprint, short, file_sha256, path_digest, tree_digest, DigestCache,
        read_manifest, write_manifest, valid_manifest, count_rows,
        staging_dir, clean_stale_staging, read_pointer, write_pointer, MANIFEST)

    cache = DigestCache(path)                  # sha256 of big files, keyed by stat
    d = path_digest('/m.gguf', cache)          # 'sha256:...' of a file or a tree
    fp = fingerprint({'model': d, 'params': {...}, 'ilab_version': '0.26.1'})
    short(fp)                                  # 16 hex chars for directory names
    m = read_manifest(final_dir)               # dict or None
    valid_manifest(m, fp, files=[...])         # complete result for this fingerprint?
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import shutil
import signal
import time

MANIFEST = 'labforge-manifest.json'
MANIFEST_VERSION = 1
STAGING_MARK = '.tmp-'


# ------------------------------------------------------------ fingerprints
def canonical(data):
    """Canonical JSON text of ``data`` (sorted keys, no whitespace)."""
    return json.dumps(data, sort_keys=True, separators=(',', ':'), default=str)


def fingerprint(inputs):
    """``'sha256:<hex>'`` of the canonical JSON of ``inputs``."""
    return 'sha256:' + hashlib.sha256(canonical(inputs).encode('utf-8')).hexdigest()


def short(fp, length=16):
    """The first ``length`` hex characters of a fingerprint (directory names)."""
    return fp.split(':', 1)[-1][:length]


def file_sha256(path, bufsize=1024 * 1024):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            chunk = f.read(bufsize)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


class DigestCache(object):
    """sha256 of files keyed by (path, size, mtime_ns, inode).

    A 4 GB teacher model takes ~10 s to hash; the cache makes a second run with
    unchanged files read only their ``stat``. ``path`` None keeps it in memory.
    """

    def __init__(self, path=None):
        self.path = path
        self.data = {}
        self.dirty = False
        if path:
            try:
                with open(path) as f:
                    self.data = json.load(f)
            except (IOError, OSError, ValueError):
                self.data = {}

    @staticmethod
    def _key(path, st):
        return '%s|%d|%d|%d' % (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino)

    def sha256(self, path):
        st = os.stat(path)
        key = self._key(path, st)
        hit = self.data.get(key)
        if hit:
            return hit
        digest = file_sha256(path)
        # forget older entries of the same path
        prefix = os.path.abspath(path) + '|'
        for k in [k for k in self.data if k.startswith(prefix)]:
            del self.data[k]
        self.data[key] = digest
        self.dirty = True
        return digest

    def save(self, uid=None, gid=None):
        if not self.path or not self.dirty:
            return
        d = os.path.dirname(self.path)
        try:
            if not os.path.isdir(d):
                os.makedirs(d, 0o755)
                if uid is not None and os.geteuid() == 0:
                    os.chown(d, uid, gid)
            tmp = self.path + '.%d.tmp' % os.getpid()
            with open(tmp, 'w') as f:
                json.dump(self.data, f, sort_keys=True)
            if uid is not None and os.geteuid() == 0:
                os.chown(tmp, uid, gid)
            os.rename(tmp, self.path)
            self.dirty = False
        except (IOError, OSError):  # a cache only: never fail the module for it
            pass


def tree_files(root, exclude_dirs=('.git',)):
    """Sorted relative paths of the regular files under ``root`` (symlinks followed
    to files; directories in ``exclude_dirs`` skipped)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d not in exclude_dirs)
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.isfile(full):
                out.append(os.path.relpath(full, root))
    return sorted(out)


def tree_digest(root, cache=None, exclude_dirs=('.git',), files=None):
    """``('sha256:<hex>', {relpath: sha256})`` over ``"<sha256>  <relpath>\\n"`` lines."""
    cache = cache or DigestCache()
    files = files if files is not None else tree_files(root, exclude_dirs)
    h = hashlib.sha256()
    info = {}
    for rel in sorted(files):
        d = cache.sha256(os.path.join(root, rel))
        info[rel] = d
        h.update(('%s  %s\n' % (d, rel)).encode('utf-8'))
    return 'sha256:' + h.hexdigest(), info


def path_digest(path, cache=None, exclude_dirs=('.git',)):
    """Digest of a file (``sha256:<hex>`` of its bytes) or a directory tree."""
    cache = cache or DigestCache()
    if os.path.isdir(path):
        return tree_digest(path, cache, exclude_dirs)[0]
    return 'sha256:' + cache.sha256(path)


# -------------------------------------------------------------- datasets
def count_rows(path):
    """Number of non-empty lines of a JSONL file (None when missing)."""
    try:
        n = 0
        with open(path, 'rb') as f:
            for line in f:
                if line.strip():
                    n += 1
        return n
    except (IOError, OSError):
        return None


# -------------------------------------------------------------- manifests
def manifest_path(directory):
    return os.path.join(directory, MANIFEST)


def read_manifest(directory):
    try:
        with open(manifest_path(directory)) as f:
            data = json.load(f)
    except (IOError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(directory, data, uid=None, gid=None):
    data = dict(data)
    data.setdefault('manifest_version', MANIFEST_VERSION)
    data.setdefault('created', time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
    path = manifest_path(directory)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write('\n')
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    if uid is not None and os.geteuid() == 0:
        os.chown(tmp, uid, gid)
    os.rename(tmp, path)
    return data


def valid_manifest(manifest, fp, files=()):
    """True when ``manifest`` records fingerprint ``fp`` and every path in
    ``files`` (absolute, or relative to nothing) still exists."""
    if not manifest or manifest.get('fingerprint') != fp:
        return False
    for p in files:
        if not p or not os.path.exists(p):
            return False
    return True


# ---------------------------------------------------------------- staging
def staging_dir(final):
    """``<parent>/.<name>.tmp-<pid>-<time>``: where a run writes before the rename."""
    parent, name = os.path.split(os.path.abspath(final))
    return os.path.join(parent, '.%s%s%d-%d' % (name, STAGING_MARK, os.getpid(), int(time.time())))


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    return True


def clean_stale_staging(final, family=None):
    """Remove temporary directories of earlier runs for ``final`` whose process
    is gone (a killed run); with ``family`` (e.g. ``'train-'``) those of every
    result named ``family*`` in the same directory. Returns the removed paths."""
    parent, name = os.path.split(os.path.abspath(final))
    removed = []
    try:
        entries = os.listdir(parent)
    except OSError:
        return removed
    for entry in sorted(entries):
        if family:
            if not entry.startswith('.' + family) or STAGING_MARK not in entry:
                continue
            rest = entry.split(STAGING_MARK, 1)[1]
        else:
            prefix = '.%s%s' % (name, STAGING_MARK)
            if not entry.startswith(prefix):
                continue
            rest = entry[len(prefix):]
        try:
            pid = int(rest.split('-', 1)[0])
        except ValueError:
            pid = None
        if pid is not None and pid != os.getpid() and _pid_alive(pid):
            continue
        path = os.path.join(parent, entry)
        kill_orphan(path)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


OWNER = '.labforge-run.json'


def write_owner(staging, child_pid):
    """Record the module's pid and the ilab process (its own session, so it
    outlives a killed module) in the staging directory."""
    with open(os.path.join(staging, OWNER), 'w') as f:
        json.dump(dict(module_pid=os.getpid(), child_pid=child_pid), f)


def kill_orphan(staging):
    """Kill the ilab process group of a run whose module died (e.g. ``async``
    timeout or SIGKILL): it would otherwise keep writing into a directory that
    is being removed. Returns the pid killed, or None."""
    try:
        with open(os.path.join(staging, OWNER)) as f:
            owner = json.load(f)
        child = int(owner.get('child_pid'))
        module_pid = int(owner.get('module_pid'))
    except (IOError, OSError, ValueError, TypeError):
        return None
    if module_pid != os.getpid() and _pid_alive(module_pid):
        return None
    if not _pid_alive(child):
        return None
    try:
        os.killpg(child, signal.SIGKILL)
    except OSError:
        try:
            os.kill(child, signal.SIGKILL)
        except OSError:
            return None
    deadline = time.time() + 10
    while time.time() < deadline and _pid_alive(child):
        time.sleep(0.1)
    return child


# --------------------------------------------------------------- pointers
def read_pointer(path):
    """A small JSON file naming the latest result (``{"dir": ..., "fingerprint": ...}``)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (IOError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_pointer(path, data, uid=None, gid=None):
    tmp = path + '.%d.tmp' % os.getpid()
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write('\n')
    os.chmod(tmp, 0o644)
    if uid is not None and os.geteuid() == 0:
        os.chown(tmp, uid, gid)
    os.rename(tmp, path)


def chown_tree(root, uid, gid):
    if uid is None or os.geteuid() != 0:
        return
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


# ------------------------------------------- shared by generate and train
GENERATE_POINTER = 'labforge-generate-latest.json'


def latest_dataset(datasets_dir):
    """The manifest of the latest complete ``ilab_data_generate`` result in
    ``datasets_dir`` (None when there is none or it is incomplete)."""
    ptr = read_pointer(os.path.join(datasets_dir, GENERATE_POINTER))
    if not ptr or not ptr.get('dir'):
        return None
    m = read_manifest(ptr['dir'])
    if not m or m.get('fingerprint') != ptr.get('fingerprint'):
        return None
    files = m.get('files') or {}
    if not files.get('train') or not os.path.isfile(files['train']):
        return None
    return m
