# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one file layer (private API): every file operation of every
module and module_util goes through it.

Why: the modules run as root (``become: true``) and work inside directories that
the InstructLab service account owns, the account that also runs the
network-facing model servers. Whatever that account plants there (a symbolic
link, a hard link, a FIFO) must not make root write, chown, chmod, read-and-return
or remove anything the account could not have touched itself. The rules:

* Paths are resolved one component at a time from ``/`` with directory file
  descriptors and ``O_NOFOLLOW`` (``*at()`` calls through ``dir_fd=``).
  A symbolic link is followed where only root can change the directory holding
  it. In a directory that an account controls (owns, or can write), a link is
  followed only when it leads to an object owned by that same account (a user's
  ``~/models -> /data/models`` keeps working; ``-> /etc`` is refused). A step
  from such a directory into one owned by anybody else is refused.
* Files are never opened for writing by name. A new file gets an ``O_EXCL``
  random temporary name in the target's directory, is written, ``fchmod``-ed and
  ``fchown``-ed through its descriptor, and renamed over the target: a planted
  link or hard link is replaced, never written through.
* Nothing is chowned or chmodded by name; only objects this layer just created,
  through their descriptors.
* Files read in a directory that an account controls must be regular files
  owned by that account (no FIFO, device, or hard link to one of root's files).
* Trees are walked, digested, copied and removed with descriptors, never
  following links, so a walk never leaves its tree and a link cycle cannot loop.
* State that the service account must not control (run records, locks, digest
  caches, download records, serving records, serve environment files) lives in
  ``STATE_ROOT`` (``/var/lib/labforge``, root, 0700 directories, 0600 files).

API::

    from ansible_collections.labforge.instructlab.plugins.module_utils import _fs

    _fs.makedirs(path, mode=0o755, owner=(uid, gid))   # missing parts created, owned
    _fs.write(path, data, mode=0o644, owner=None)       # atomic replace
    _fs.write_json(path, data, mode=0o644, owner=None)
    _fs.read_bytes(path, limit=None) / read_text / read_json(path, default=None)
    _fs.current(path)                                    # bytes of a managed file, None if missing/refused
    _fs.lstat(path) / stat(path)                         # None when missing
    _fs.readlink(path)                                   # a link's target text, None when missing
    _fs.exists(path) / isfile(path) / isdir(path)
    _fs.listdir(path) / scandir(path) -> [(name, lstat)]
    _fs.rename(src, dst) / replace(src, dst) / remove(path) / symlink(target, path)
    _fs.adopt(path, mode, owner) / move_in(src, dst, mode, owner)   # what root made in its own dir
    _fs.export(src, dst)                                  # the account's file, named in root's dir
    _fs.mkdtemp(parent, prefix, mode=0o700, owner=None)
    _fs.open_log(path, mode=0o640, owner=None)           # LogFile: write/flush/tail/text/close
    _fs.copy_file(src, dst, mode=0o644, owner=None)      # -> sha256 hex of what was copied
    _fs.copy_tree(src, dst, owner=None)                  # -> {rel: {sha256, size} | {link}}
    _fs.walk(root, exclude=('.git',))                    # (rel, kind, stat, link target)
    _fs.file_sha256(path) / DigestCache(path) / tree_digest(root) / path_digest(path)
    _fs.count_lines(path)
    _fs.state_dir(user, home)                            # STATE_ROOT/users/USER (root) or ~/.local/state/labforge
    _fs.owner_for(uid, gid)                              # (uid, gid) when root makes it for that account, else None
    with _fs.lock(state, key): ...                       # flock, serialises runs on one host
    _fs.signal_group_as(uid, gid, pgid, sig)             # kill as the account: never a foreign process

Errors are ``OSError`` (``UnsafePathError`` for a refused link or transition),
with the path in the message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import hashlib
import json
import os
import posixpath
import stat
import binascii

STATE_ROOT = '/var/lib/labforge'
TMPDIR = '/tmp'
TMP_MARK = '.labforge-tmp-'
MAX_LINKS = 40
BUFSIZE = 1024 * 1024

_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)
_O_PATH = getattr(os, 'O_PATH', os.O_RDONLY)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC

# Who controls a directory's entries (besides root).
TRUSTED = 'trusted'   # owned by root, writable by root only
STICKY = 'sticky'     # root's sticky world-writable directory (/tmp): names are their owners'
ANYONE = 'anyone'     # writable by a group or by everybody: nothing in it is followed


class UnsafePathError(OSError):
    """A link or directory that root must not follow (the message names it)."""

    def __init__(self, msg, path=None):
        OSError.__init__(self, errno.EPERM, msg, path)
        self.msg = msg

    def __str__(self):
        return self.msg


def _controller(st):
    if st.st_uid == 0 and not st.st_mode & 0o022:
        return TRUSTED
    if st.st_uid == 0 and st.st_mode & stat.S_ISVTX and st.st_mode & 0o002:
        return STICKY
    if st.st_uid != 0 and not st.st_mode & 0o002:
        return st.st_uid   # its owner (and at most the owner's group)
    return ANYONE


def _euid():
    return os.geteuid()


def _random():
    return binascii.hexlify(os.urandom(6)).decode('ascii')


def _split(path):
    if not path or not path.startswith('/'):
        path = os.path.abspath(path or '.')
    return [p for p in posixpath.normpath(path).split('/') if p]


def _describe(ctl):
    if ctl == ANYONE:
        return 'other accounts'
    if ctl == STICKY:
        return 'every account (sticky)'
    try:
        import pwd
        return 'uid %d (%s)' % (ctl, pwd.getpwuid(ctl).pw_name)
    except (KeyError, TypeError, ImportError):
        return 'uid %s' % ctl


class _Dir(object):
    """An open directory: descriptor, the real path it was reached by, and who controls it."""

    def __init__(self, fd, path, st):
        self.fd = fd
        self.path = path
        self.st = st
        self.ctl = _controller(st)

    @classmethod
    def root(cls):
        fd = os.open('/', _DIR_FLAGS)
        return cls(fd, '/', os.fstat(fd))

    def join(self, name):
        return posixpath.join(self.path, name)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ checks
    def check_child(self, st, name):
        """Refuse a step from a directory an account controls into an object owned by someone
        else. A directory only root can write is fine anywhere (root's own staging directory
        in the account's tree: nobody else can put anything in it); a file is not (it may be
        a hard link to one of root's files)."""
        ctl = self.ctl
        if ctl in (TRUSTED, STICKY):
            return
        if stat.S_ISDIR(st.st_mode) and _controller(st) == TRUSTED:
            return
        if ctl == ANYONE:
            if st.st_uid != 0:
                raise UnsafePathError('refusing %s: its directory %s is writable by other accounts'
                                      % (self.join(name), self.path), self.join(name))
            return
        if st.st_uid != ctl:
            raise UnsafePathError('refusing %s: it belongs to uid %d but sits in %s, which %s controls'
                                  % (self.join(name), st.st_uid, self.path, _describe(ctl)), self.join(name))

    def link_owner(self, name, lst):
        """``(uid, link path)``: the account a link in this directory must lead to (None:
        any), or raise."""
        if self.ctl == TRUSTED or (self.ctl == STICKY and lst.st_uid == 0):
            return None
        if self.ctl in (STICKY, ANYONE):
            raise UnsafePathError('refusing to follow the symbolic link %s: %s is writable by %s'
                                  % (self.join(name), self.path, _describe(self.ctl)), self.join(name))
        return (self.ctl, self.join(name))


def _check_owner(path, st, must_own):
    if must_own is not None and st.st_uid != must_own[0]:
        raise UnsafePathError('refusing to follow the symbolic link %s: it leads to %s, which belongs to uid %d, '
                              'not to %s who controls the link' % (must_own[1], path, st.st_uid,
                                                                   _describe(must_own[0])), must_own[1])


def _open_dir(path, create=False, mode=0o755, owner=None, must_own=None, depth=0):
    """Open directory ``path`` safely (see the module docstring); returns a _Dir."""
    parts = _split(path)
    d = _Dir.root()
    try:
        i = 0
        while i < len(parts):
            name = parts[i]
            nxt = _child_dir(d, name, create, mode, owner, depth)
            d.close()
            d = nxt
            i += 1
        _check_owner(d.path, d.st, must_own)
        return d
    except BaseException:
        d.close()
        raise


def _child_dir(d, name, create, mode, owner, depth):
    created = False
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=d.fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            lst = os.lstat(name, dir_fd=d.fd)
            if stat.S_ISLNK(lst.st_mode):
                return _follow_dir(d, name, lst, create, mode, owner, depth)
            raise OSError(errno.ENOTDIR, 'not a directory', d.join(name))
        if e.errno != errno.ENOENT or not create:
            raise OSError(e.errno, e.strerror, d.join(name))
        try:
            os.mkdir(name, 0o700, dir_fd=d.fd)
            created = True
        except OSError as e2:
            if e2.errno != errno.EEXIST:
                raise OSError(e2.errno, e2.strerror, d.join(name))
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=d.fd)
        except OSError as e3:
            raise OSError(e3.errno, '%s (changed while being created)' % e3.strerror, d.join(name))
    try:
        st = os.fstat(fd)
        if created and st.st_uid == _euid():
            if owner is not None and _euid() == 0:
                os.fchown(fd, owner[0], owner[1])
            os.fchmod(fd, mode)
            st = os.fstat(fd)
        d.check_child(st, name)
    except BaseException:
        os.close(fd)
        raise
    return _Dir(fd, d.join(name), st)


def _follow_dir(d, name, lst, create, mode, owner, depth):
    if depth >= MAX_LINKS:
        raise OSError(errno.ELOOP, 'too many levels of symbolic links', d.join(name))
    must_own = d.link_owner(name, lst)
    target = os.readlink(name, dir_fd=d.fd)
    return _open_dir(posixpath.join(d.path, target), create, mode, owner, must_own, depth + 1)


def _open_parent(path, create=False, mode=0o755, owner=None):
    parts = _split(path)
    if not parts:
        raise OSError(errno.EINVAL, 'not a file path', path)
    return _open_dir('/' + '/'.join(parts[:-1]), create, mode, owner), parts[-1]


def _open_in(d, name, flags, must_own=None, depth=0, kind='file'):
    """Open ``name`` in directory ``d`` (following allowed links). ``kind``: 'file' (a
    regular file to read), 'dir' or 'any' (for stat; ``flags`` then O_PATH). Returns
    (fd, stat, real path)."""
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | _CLOEXEC | os.O_NONBLOCK, dir_fd=d.fd)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.EMLINK):
            raise OSError(e.errno, e.strerror, d.join(name))
        fd = None
    if fd is not None:
        st = os.fstat(fd)
        if stat.S_ISLNK(st.st_mode):   # O_PATH | O_NOFOLLOW opens the link itself
            os.close(fd)
            fd = None
    if fd is None:
        lst = os.lstat(name, dir_fd=d.fd)
        if not stat.S_ISLNK(lst.st_mode):
            raise OSError(errno.ELOOP, 'not openable', d.join(name))
        if depth >= MAX_LINKS:
            raise OSError(errno.ELOOP, 'too many levels of symbolic links', d.join(name))
        link_owner = d.link_owner(name, lst)
        target = posixpath.join(d.path, os.readlink(name, dir_fd=d.fd))
        parent, tname = _open_parent(target)
        with parent:
            return _open_in(parent, tname, flags, link_owner or must_own, depth + 1, kind)
    try:
        real = d.join(name)
        if kind == 'dir' and not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, 'not a directory', real)
        if kind == 'file' and not stat.S_ISREG(st.st_mode):
            raise UnsafePathError('refusing to read %s: not a regular file' % real, real)
        d.check_child(st, name)
        if d.ctl in (STICKY, ANYONE) and st.st_uid not in (0, _euid()):
            raise UnsafePathError('refusing %s: it belongs to uid %d in %s, which %s can write'
                                  % (real, st.st_uid, d.path, _describe(d.ctl)), real)
        _check_owner(real, st, must_own)
        if kind == 'file':
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd, st, real


def open_read(path):
    """(fd, stat) of the regular file ``path``, opened safely for reading."""
    parent, name = _open_parent(path)
    with parent:
        fd, st, _real = _open_in(parent, name, os.O_RDONLY)
    return fd, st


# ------------------------------------------------------------------- reading
def read_bytes(path, limit=None):
    """Content of ``path`` (the last ``limit`` bytes when given)."""
    fd, st = open_read(path)
    try:
        offset = max(0, st.st_size - limit) if limit else 0
        return _read_fd(fd, offset)
    finally:
        os.close(fd)


def _chunks(fd, offset=0):
    """The content of ``fd`` from ``offset``, in chunks (pread: the descriptor's offset stays)."""
    while True:
        chunk = os.pread(fd, BUFSIZE, offset)
        if not chunk:
            return
        yield chunk
        offset += len(chunk)


def _read_fd(fd, offset=0):
    return b''.join(_chunks(fd, offset))


def read_text(path, limit=None, errors='strict'):
    return read_bytes(path, limit).decode('utf-8', errors)


def current(path):
    """The bytes of a file a module manages and is about to replace, for comparing; None when
    it is missing or not a file this layer reads (a planted link or hard link is then simply
    replaced by the module's write)."""
    try:
        return read_bytes(path)
    except (IOError, OSError):
        return None


def read_json(path, default=None):
    """Parsed JSON of ``path``; ``default`` when it is missing, unsafe or not JSON."""
    try:
        return json.loads(read_bytes(path).decode('utf-8'))
    except (IOError, OSError, ValueError):
        return default


def _missing(e):
    return e.errno in (errno.ENOENT, errno.ENOTDIR)


def _at(path, fn, missing=None):
    """``fn(directory, name)`` for the last component of ``path`` (its directory reached
    safely); ``missing`` when it, or a directory on the way, is not there."""
    try:
        parent, name = _open_parent(path)
    except OSError as e:
        if _missing(e):
            return missing
        raise
    with parent:
        try:
            return fn(parent, name)
        except UnsafePathError:
            raise
        except OSError as e:
            if _missing(e):
                return missing
            raise


def lstat(path):
    """lstat of ``path`` reached safely (the last component not followed); None when missing."""
    return _at(path, lambda d, name: os.lstat(name, dir_fd=d.fd))


def readlink(path):
    """The target text of the symbolic link ``path`` (its directory reached safely, nothing
    followed); None when missing."""
    return _at(path, lambda d, name: os.readlink(name, dir_fd=d.fd))


def _stat_in(d, name):
    fd, st, _real = _open_in(d, name, _O_PATH, kind='any')
    os.close(fd)
    return st


def stat_path(path):
    """stat of ``path``, following only the links this layer follows (UnsafePathError for
    one it refuses); None when missing."""
    return _at(path, _stat_in)


def exists(path):
    return stat_path(path) is not None


def isfile(path):
    st = stat_path(path)
    return st is not None and stat.S_ISREG(st.st_mode)


def isdir(path):
    st = stat_path(path)
    return st is not None and stat.S_ISDIR(st.st_mode)


def open_dir(path, create=False, mode=0o755, owner=None):
    """The directory ``path`` as an open _Dir (a context manager)."""
    return _open_dir(path, create, mode, owner)


def scandir(path):
    """Sorted ``[(name, lstat)]`` of a directory's entries (nothing followed)."""
    with _open_dir(path) as d:
        return _scan(d.fd)


def _scan(fd):
    out = []
    for name in sorted(os.listdir(fd)):
        try:
            out.append((name, os.lstat(name, dir_fd=fd)))
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
    return out


def listdir(path):
    return [name for name, _st in scandir(path)]


# ------------------------------------------------------------------- writing
def makedirs(path, mode=0o755, owner=None):
    """Create ``path`` and its missing parents (new ones get ``mode`` and ``owner``)."""
    _open_dir(path, create=True, mode=mode, owner=owner).close()
    return path


def _create_temp(d, name, mode):
    """(fd, temp name) of a new file next to ``name`` in ``d`` (O_EXCL, never an existing one)."""
    for _i in range(100):
        tmp = '.%s%s%s' % (name[:80], TMP_MARK, _random())
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC, 0o600, dir_fd=d.fd)
        except OSError as e:
            if e.errno == errno.EEXIST:
                continue
            raise OSError(e.errno, e.strerror, d.join(tmp))
        return fd, tmp
    raise OSError(errno.EEXIST, 'no free temporary name', d.join(name))


def _finish(fd, mode, owner):
    os.fchmod(fd, mode)
    if owner is not None and _euid() == 0:
        os.fchown(fd, owner[0], owner[1])


class _Writer(object):
    """A new file written under a temporary name and renamed over ``path`` on commit."""

    def __init__(self, path, mode=0o644, owner=None, mkdirs=False, dir_owner=None):
        if mkdirs:
            makedirs(posixpath.dirname(os.path.abspath(path)), owner=dir_owner if dir_owner is not None else owner)
        self.dir, self.name = _open_parent(path)
        self.path = self.dir.join(self.name)
        self.mode = mode
        self.owner = owner
        try:
            self.fd, self.tmp = _create_temp(self.dir, self.name, mode)
        except BaseException:
            self.dir.close()
            raise
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        self.sha.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def commit(self):
        try:
            _finish(self.fd, self.mode, self.owner)
            os.fsync(self.fd)
            os.rename(self.tmp, self.name, src_dir_fd=self.dir.fd, dst_dir_fd=self.dir.fd)
            self.tmp = None
        finally:
            self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.tmp is not None:
            try:
                os.unlink(self.tmp, dir_fd=self.dir.fd)
            except OSError:
                pass
            self.tmp = None
        self.dir.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.close()


def open_write(path, mode=0o644, owner=None, mkdirs=False):
    """A new file for ``path``: ``.write(bytes)``, ``.sha`` (hashlib of what was written);
    renamed over ``path`` when the ``with`` block ends without an error."""
    return _Writer(path, mode, owner, mkdirs)


def write(path, data, mode=0o644, owner=None, mkdirs=False):
    """Atomically replace ``path`` with ``data`` (str or bytes): O_EXCL temp, fchmod/fchown, rename."""
    with _Writer(path, mode, owner, mkdirs) as w:
        w.write(data)
    return path


def write_json(path, data, mode=0o644, owner=None, mkdirs=False):
    return write(path, json.dumps(data, indent=2, sort_keys=True, default=str) + '\n', mode, owner, mkdirs)


def copy_file(src, dst, mode=0o644, owner=None):
    """Copy the regular file ``src`` to a new ``dst`` (atomic). Returns the sha256 hex of the bytes copied."""
    fd, _st = open_read(src)
    try:
        return _copy_fd(fd, dst, mode, owner)
    finally:
        os.close(fd)


def _copy_fd(fd, dst, mode, owner):
    with _Writer(dst, mode, owner) as w:
        for chunk in _chunks(fd):
            w.write(chunk)
    return w.sha.hexdigest()


class LogFile(object):
    """A log replaced (not truncated) at open; written and read through its own descriptor."""

    def __init__(self, path, mode=0o640, owner=None):
        w = _Writer(path, mode, owner)
        try:
            _finish(w.fd, mode, owner)
            os.rename(w.tmp, w.name, src_dir_fd=w.dir.fd, dst_dir_fd=w.dir.fd)
            w.tmp = None
            self.fd, w.fd = w.fd, None
        finally:
            w.close()
        self.path = w.path

    def write(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        view = memoryview(data)
        while view and self.fd is not None:
            n = os.write(self.fd, view)
            view = view[n:]

    def flush(self):
        pass

    def text(self, max_bytes=8 * 1024 * 1024):
        """The last ``max_bytes`` of the log, decoded."""
        if self.fd is None:
            return ''
        size = os.fstat(self.fd).st_size
        return _read_fd(self.fd, max(0, size - max_bytes)).decode('utf-8', 'replace')

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def open_log(path, mode=0o640, owner=None):
    return LogFile(path, mode, owner)


def mkdtemp(parent, prefix='labforge-', mode=0o700, owner=None):
    """A new directory in ``parent`` (mkdir is exclusive); returns its path."""
    with _open_dir(parent) as d:
        for _i in range(100):
            name = '%s%s' % (prefix, _random())
            try:
                os.mkdir(name, 0o700, dir_fd=d.fd)
            except OSError as e:
                if e.errno == errno.EEXIST:
                    continue
                raise OSError(e.errno, e.strerror, d.join(name))
            fd = os.open(name, _DIR_FLAGS, dir_fd=d.fd)
            try:
                _finish(fd, mode, owner)
            finally:
                os.close(fd)
            return d.join(name)
    raise OSError(errno.EEXIST, 'no free temporary name', parent)


def adopt(path, mode, owner=None):
    """Give a file or directory that this run made in a directory only root can write (e.g.
    what a tool running as root wrote into root's private staging directory) its final
    mode and owner, through a descriptor."""
    parent, name = _open_parent(path)
    with parent:
        if parent.ctl != TRUSTED:
            raise UnsafePathError('refusing to chown %s: %s is not a directory only root can write'
                                  % (parent.join(name), parent.path), parent.join(name))
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | _CLOEXEC | os.O_NONBLOCK, dir_fd=parent.fd)
        try:
            _finish(fd, mode, owner)
        finally:
            os.close(fd)


def symlink(target, path):
    """Make ``path`` a symbolic link to ``target`` (a new link renamed over ``path``)."""
    parent, name = _open_parent(path)
    with parent:
        for _i in range(100):
            tmp = '.%s%s%s' % (name[:80], TMP_MARK, _random())
            try:
                os.symlink(target, tmp, dir_fd=parent.fd)
                break
            except OSError as e:
                if e.errno != errno.EEXIST:
                    raise
        try:
            os.rename(tmp, name, src_dir_fd=parent.fd, dst_dir_fd=parent.fd)
        except BaseException:
            os.unlink(tmp, dir_fd=parent.fd)
            raise


def move_in(src, dst, mode, owner=None):
    """Move a file this run made in a directory only root can write to ``dst`` (in the
    account's tree), owned by ``owner``: adopted then renamed, or copied across file
    systems."""
    adopt(src, mode, owner)
    try:
        rename(src, dst)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        copy_file(src, dst, mode, owner)
        remove(src)


def export(src, dst):
    """Give the account's regular file ``src`` a name ``dst`` in root's private directory,
    for root to read or ship later without following anything the account can swap: a
    hard link to the very file checked here (same file system) or a copy (0600)."""
    fd, st = open_read(src)
    try:
        sdir, sname = _open_parent(src)
        with sdir:
            ddir, dname = _open_parent(dst, create=True, mode=0o700)
            with ddir:
                tmp = '.%s%s%s' % (dname[:80], TMP_MARK, _random())
                try:
                    os.link(sname, tmp, src_dir_fd=sdir.fd, dst_dir_fd=ddir.fd, follow_symlinks=False)
                except OSError as e:
                    if e.errno not in (errno.EXDEV, errno.EPERM):
                        raise
                    tmp = None
                if tmp is not None:
                    lst = os.lstat(tmp, dir_fd=ddir.fd)
                    if (lst.st_dev, lst.st_ino) != (st.st_dev, st.st_ino):
                        os.unlink(tmp, dir_fd=ddir.fd)
                        raise UnsafePathError('refusing to export %s: it was replaced while being exported'
                                              % src, src)
                    os.rename(tmp, dname, src_dir_fd=ddir.fd, dst_dir_fd=ddir.fd)
                    return dst
        _copy_fd(fd, dst, 0o600, None)
        return dst
    finally:
        os.close(fd)


def export_tree(src, dst, skip=None):
    """Give the account's directory ``src`` (regular files and directories only: a link or
    device in it is refused) the place ``dst`` in root's private directory, file by file as
    `export` does: hard links to the files checked here, or 0600 copies that keep the
    file's modification time. Files whose relative path ``skip(rel)`` accepts are left out.
    An export that already holds files of the same names, sizes and modification times is
    kept (a rerun costs a walk); otherwise a new tree replaces it whole. Returns the sorted
    relative paths of the files."""
    entries = [e for e in walk(src, exclude=()) if not (skip and e[1] == 'file' and skip(e[0]))]
    for rel, kind, _st, _link in entries:
        if kind not in ('file', 'dir'):
            raise UnsafePathError('refusing to export %s: %s is a %s, not a regular file or directory'
                                  % (src, posixpath.join(src, rel), 'symbolic link' if kind == 'link' else kind),
                                  posixpath.join(src, rel))
    stats = dict((rel, st) for rel, kind, st, _l in entries if kind == 'file')
    want = dict((rel, (st.st_size, st.st_mtime_ns)) for rel, st in stats.items())
    dirs = [rel for rel, kind, _st, _l in entries if kind == 'dir']
    try:
        have = dict((rel, (st.st_size, st.st_mtime_ns)) for rel, kind, st, _l in walk(dst, exclude=())
                    if kind == 'file')
    except OSError as e:
        if not _missing(e):
            raise
        have = None
    if have == want:
        return sorted(want)
    parent, name = posixpath.split(dst.rstrip('/'))
    makedirs(parent, 0o700)
    tmp = mkdtemp(parent, prefix='.%s%s' % (name[:80], TMP_MARK))
    try:
        for rel in dirs:
            makedirs(posixpath.join(tmp, rel), 0o700)
        for rel, st in stats.items():
            target = posixpath.join(tmp, rel)
            export(posixpath.join(src, rel), target)
            if os.lstat(target).st_ino != st.st_ino:
                # a copy (another file system) keeps the time that tells a rerun it is
                # current: root's own new file in root's own temporary directory
                os.utime(target, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)
        replace(tmp, dst)
    except BaseException:
        remove(tmp)
        raise
    return sorted(want)


def rename(src, dst):
    """Rename ``src`` to ``dst`` (whatever ``dst`` is: a link there is replaced, not followed)."""
    sdir, sname = _open_parent(src)
    with sdir:
        ddir, dname = _open_parent(dst)
        with ddir:
            os.rename(sname, dname, src_dir_fd=sdir.fd, dst_dir_fd=ddir.fd)


def replace(src, dst):
    """Put ``src`` (file or directory) at ``dst``. An existing ``dst`` is renamed aside first
    and removed after, so ``dst`` never holds a partial tree."""
    sdir, sname = _open_parent(src)
    with sdir:
        ddir, dname = _open_parent(dst)
        with ddir:
            try:
                os.lstat(dname, dir_fd=ddir.fd)
                old = None
                for _i in range(100):
                    cand = '.%s%sold-%s' % (dname[:80], TMP_MARK, _random())
                    try:
                        os.lstat(cand, dir_fd=ddir.fd)
                    except OSError:
                        old = cand
                        break
                os.rename(dname, old, src_dir_fd=ddir.fd, dst_dir_fd=ddir.fd)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
                old = None
            try:
                os.rename(sname, dname, src_dir_fd=sdir.fd, dst_dir_fd=ddir.fd)
            except BaseException:
                if old:
                    os.rename(old, dname, src_dir_fd=ddir.fd, dst_dir_fd=ddir.fd)
                raise
            if old:
                _remove_in(ddir.fd, old)


def remove(path):
    """Remove a file, link or whole tree (descriptor-based, nothing followed). False when missing."""
    return _at(path, lambda d, name: _remove_in(d.fd, name, missing_ok=False) or True, missing=False)


def _remove_in(dfd, name, missing_ok=True):
    try:
        os.unlink(name, dir_fd=dfd)
        return
    except OSError as e:
        if e.errno == errno.ENOENT and missing_ok:
            return
        if e.errno not in (errno.EISDIR, errno.EPERM):
            raise
    fd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
    try:
        for entry in os.listdir(fd):
            _remove_in(fd, entry)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dfd)


# --------------------------------------------------------------------- trees
def walk(root, exclude=('.git',)):
    """``(rel, kind, stat, link)`` for every entry under the directory ``root``, sorted;
    kind is 'file', 'dir', 'link' or 'other'. Links are reported, never followed;
    a directory reached twice (a bind-mount loop) is skipped."""
    out = []
    with _open_dir(root) as d:
        seen = set([(d.st.st_dev, d.st.st_ino)])
        _walk(d, '', exclude, seen, out)
    return out


def _walk(d, prefix, exclude, seen, out):
    for name, lst in _scan(d.fd):
        rel = prefix + name
        if stat.S_ISLNK(lst.st_mode):
            out.append((rel, 'link', lst, os.readlink(name, dir_fd=d.fd)))
        elif stat.S_ISDIR(lst.st_mode):
            if name in exclude:
                continue
            try:
                sub = _child_dir(d, name, False, 0, None, MAX_LINKS)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    continue
                raise
            with sub:
                key = (sub.st.st_dev, sub.st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
                out.append((rel, 'dir', sub.st, None))
                _walk(sub, rel + '/', exclude, seen, out)
        elif stat.S_ISREG(lst.st_mode):
            d.check_child(lst, name)
            out.append((rel, 'file', lst, None))
        else:
            out.append((rel, 'other', lst, None))
    return out


def copy_tree(src, dst, owner=None, mode=0o644, dir_mode=0o755):
    """Copy the directory tree ``src`` to the new directory ``dst`` (which must not exist).
    Links are copied as links. Returns ``{rel: {sha256, size}}`` for files (hashed as read)
    and ``{rel: {link: target}}`` for links."""
    entries = walk(src, exclude=())
    makedirs(dst, dir_mode, owner)
    info = {}
    for rel, kind, st, link in entries:
        target = posixpath.join(dst, rel)
        if kind == 'dir':
            makedirs(target, dir_mode, owner)
        elif kind == 'file':
            sha = copy_file(posixpath.join(src, rel), target, mode, owner)
            info[rel] = dict(sha256=sha, size=st.st_size)
        elif kind == 'link':
            parent, name = _open_parent(target)
            with parent:
                os.symlink(link, name, dir_fd=parent.fd)
            info[rel] = dict(link=link)
    return info


# ------------------------------------------------------------------- digests
def sha256_fd(fd):
    h = hashlib.sha256()
    for chunk in _chunks(fd):
        h.update(chunk)
    return h.hexdigest()


def file_sha256(path):
    fd, _st = open_read(path)
    try:
        return sha256_fd(fd)
    finally:
        os.close(fd)


class DigestCache(object):
    """sha256 of files keyed by (path, device, inode, size, mtime_ns), kept by root.

    A 4 GB teacher model takes ~10 s to hash; the cache lets an unchanged file cost
    one ``fstat``. ``path`` None keeps it in memory. The file lives in the private
    state directory (the service account cannot forge its entries).
    """

    def __init__(self, path=None):
        self.path = path
        self.data = {}
        self.dirty = False
        if path:
            data = read_json(path, {})
            self.data = data if isinstance(data, dict) else {}

    def sha256(self, path, verify=False):
        fd, st = open_read(path)
        try:
            apath = os.path.abspath(path)
            key = '%s|%d|%d|%d|%d' % (apath, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            hit = None if verify else self.data.get(key)
            if hit:
                return hit
            digest = sha256_fd(fd)
        finally:
            os.close(fd)
        prefix = apath + '|'
        for k in [k for k in self.data if k.startswith(prefix)]:
            del self.data[k]
        self.data[key] = digest
        self.dirty = True
        return digest

    def save(self):
        if not self.path or not self.dirty:
            return
        try:
            private_dir(posixpath.dirname(self.path))
            write_json(self.path, self.data, mode=0o600)
            self.dirty = False
        except (IOError, OSError):  # a cache only: never fail a module for it
            pass


def file_info(path, cache=None, verify=False):
    """``{'sha256', 'size'}`` of a regular file."""
    cache = cache or DigestCache()
    sha = cache.sha256(path, verify)
    st = stat_path(path)
    return dict(sha256=sha, size=st.st_size if st else None)


def tree_info(root, cache=None, verify=False, exclude=('.git',)):
    """``{rel: {'sha256', 'size'} | {'link': target}}`` of a directory tree."""
    cache = cache or DigestCache()
    info = {}
    for rel, kind, st, link in walk(root, exclude):
        if kind == 'file':
            info[rel] = dict(sha256=cache.sha256(posixpath.join(root, rel), verify), size=st.st_size)
        elif kind == 'link':
            info[rel] = dict(link=link)
    return info


def digest_of(info):
    """``sha256:`` of ``"<sha256>  <relpath>"`` lines (sha256sum format; links as
    ``symlink:<sha256 of the target text>``), sorted by path."""
    h = hashlib.sha256()
    for rel in sorted(info):
        v = info[rel]
        d = v.get('sha256') or 'symlink:' + hashlib.sha256(v.get('link', '').encode('utf-8')).hexdigest()
        h.update(('%s  %s\n' % (d, rel)).encode('utf-8'))
    return 'sha256:' + h.hexdigest()


def tree_digest(root, cache=None, exclude=('.git',)):
    """``('sha256:<hex>', info)`` of a directory tree (see digest_of, tree_info)."""
    info = tree_info(root, cache, exclude=exclude)
    return digest_of(info), info


def path_digest(path, cache=None, exclude=('.git',)):
    """Digest of a file (``sha256:`` of its bytes) or of a directory tree."""
    cache = cache or DigestCache()
    if isdir(path):
        return tree_digest(path, cache, exclude)[0]
    return 'sha256:' + cache.sha256(path)


def count_lines(path):
    """Number of non-empty lines of a file (None when missing or unsafe)."""
    try:
        data = read_bytes(path)
    except (IOError, OSError):
        return None
    return sum(1 for line in data.splitlines() if line.strip())


# ---------------------------------------------------------------- accounts
def owner_for(uid, gid):
    """The owner of what root makes for the account ``uid``/``gid``: ``(uid, gid)`` when
    running as root for another account, None otherwise (what is made is already the
    account's own, or root's own)."""
    if _euid() == 0 and uid is not None and uid != 0:
        return (uid, gid)
    return None


# ----------------------------------------------------------- private state
def state_dir(user, home):
    """Where the collection keeps state about ``user`` that the account must not control:
    ``STATE_ROOT/users/USER`` when running as root, else the account's own
    ``~/.local/state/labforge/private``. Nothing is created here (see private_dir)."""
    if _euid() == 0:
        return posixpath.join(STATE_ROOT, 'users', user)
    return posixpath.join(home, '.local', 'state', 'labforge', 'private')


def private_dir(path):
    """Create ``path`` (missing parts 0700) and check that only this process's user
    controls it. Returns ``path``."""
    with _open_dir(path, create=True, mode=0o700) as d:
        if d.st.st_uid != _euid() or d.st.st_mode & 0o077:
            raise UnsafePathError('the private state directory %s must belong to uid %d with mode 0700'
                                  % (d.path, _euid()), d.path)
    return path


class lock(object):
    """An exclusive ``flock`` on ``STATE_DIR/locks/<sha256(key)>.lock``: serialises the runs
    on one host that write the same output."""

    def __init__(self, state, key):
        self.key = key
        self.path = posixpath.join(state, 'locks', hashlib.sha256(key.encode('utf-8')).hexdigest()[:32] + '.lock')
        self.fd = None

    def __enter__(self):
        private_dir(posixpath.dirname(self.path))
        d, name = _open_parent(self.path)
        with d:
            self.fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | _CLOEXEC, 0o600, dir_fd=d.fd)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# ----------------------------------------------------------------- processes
def process_start(pid):
    """The start time of process ``pid`` (clock ticks since boot), None when it is gone."""
    try:
        data = read_bytes('/proc/%d/stat' % int(pid)).decode('ascii', 'replace')
    except (IOError, OSError, ValueError):
        return None
    try:
        return int(data[data.rindex(')') + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def signal_group_as(uid, gid, pgid, sig):
    """Send ``sig`` to process group ``pgid`` with the credentials of ``uid``/``gid`` (a forked
    child drops to them first), so that only the account's own processes can be reached.
    Returns True when the signal was delivered."""
    if _euid() != 0 or uid is None or uid == 0:
        try:
            os.killpg(pgid, sig)
            return True
        except OSError:
            return False
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.killpg(pgid, sig)
            code = 0
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    os.close(r)
    _pid, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
