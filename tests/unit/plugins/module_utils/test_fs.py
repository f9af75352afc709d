# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Behavioural tests of module_utils._fs, the file layer: what a service account
plants in the directories it owns (links at the target, links in a parent, hard
links to root's files, FIFOs, link cycles, taken temporary names) never makes
root write, chown, chmod or read-and-return a file the account could not touch.

The tests run as root (like the modules) with an "account" directory owned by
uid 65534; the canary is a root-owned 0600 file with known content.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import errno
import os
import signal
import stat
import subprocess
import time

import pytest

from ansible_collections.labforge.instructlab.plugins.module_utils import _fs

UID = GID = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root (the modules run as root)')
SECRET = b'root-only canary 7f3c\n'


@pytest.fixture
def bed(tmp_path):
    """home: the account's directory; canary: a root 0600 file outside it."""
    class Bed(object):
        pass
    b = Bed()
    os.chmod(str(tmp_path), 0o755)
    b.root = str(tmp_path / 'root-only')
    os.mkdir(b.root, 0o700)
    b.canary = os.path.join(b.root, 'canary')
    with open(b.canary, 'wb') as f:
        f.write(SECRET)
    os.chmod(b.canary, 0o600)
    b.home = str(tmp_path / 'home')
    os.mkdir(b.home, 0o755)
    os.chown(b.home, UID, GID)
    b.owner = (UID, GID)
    return b


def as_account(path, *more):
    for p in (path,) + more:
        os.lchown(p, UID, GID)


def canary_intact(b):
    st = os.stat(b.canary)
    with open(b.canary, 'rb') as f:
        return (f.read(), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (SECRET, 0, 0, 0o600)


# ------------------------------------------------------------- writing
def test_symlink_at_the_target_is_replaced_not_followed(bed):
    target = os.path.join(bed.home, 'ilab-taxonomy-diff.log')
    os.symlink(bed.canary, target)
    _fs.write(target, 'log\n', 0o640, bed.owner)
    assert canary_intact(bed)
    st = os.lstat(target)
    assert stat.S_ISREG(st.st_mode) and (st.st_uid, st.st_gid) == bed.owner and stat.S_IMODE(st.st_mode) == 0o640


def test_hardlink_to_a_root_file_is_replaced_not_written_or_chowned(bed):
    target = os.path.join(bed.home, 'status.json')
    os.link(bed.canary, target)   # the account could do this where fs.protected_hardlinks=0
    _fs.write_json(target, {'state': 'running'}, 0o640, bed.owner)
    assert canary_intact(bed)
    assert os.stat(target).st_ino != os.stat(bed.canary).st_ino


def test_log_is_a_new_file_not_a_truncated_link(bed):
    for kind in ('symlink', 'hardlink'):
        target = os.path.join(bed.home, '%s.log' % kind)
        (os.symlink if kind == 'symlink' else os.link)(bed.canary, target)
        log = _fs.open_log(target, 0o640, bed.owner)
        log.write('# step\n')
        assert 'step' in log.text()
        log.close()
        assert canary_intact(bed)
        assert os.stat(target).st_uid == UID


def test_symlink_in_a_parent_is_refused(bed):
    logs = os.path.join(bed.home, 'logs')
    os.symlink(bed.root, logs)
    with pytest.raises(_fs.UnsafePathError) as e:
        _fs.write(os.path.join(logs, 'canary'), 'x', 0o644, bed.owner)
    assert logs in str(e.value) and "belongs to uid 0" in str(e.value)
    with pytest.raises(_fs.UnsafePathError):
        _fs.makedirs(os.path.join(logs, 'new'), owner=bed.owner)
    assert canary_intact(bed) and os.listdir(bed.root) == ['canary']


def test_symlink_to_a_directory_of_the_same_account_is_followed(bed, tmp_path):
    """A user's own ~/models -> /data/models keeps working."""
    data = str(tmp_path / 'data')
    os.mkdir(data)
    os.chown(data, UID, GID)
    link = os.path.join(bed.home, 'models')
    os.symlink(data, link)
    _fs.write(os.path.join(link, 'm.gguf'), 'weights', 0o644, bed.owner)
    assert open(os.path.join(data, 'm.gguf')).read() == 'weights'
    assert _fs.read_text(os.path.join(link, 'm.gguf')) == 'weights'


def test_makedirs_owns_only_what_it_creates(bed):
    path = os.path.join(bed.home, 'a', 'b')
    _fs.makedirs(path, 0o750, bed.owner)
    for p in (os.path.join(bed.home, 'a'), path):
        st = os.stat(p)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (UID, 0o750)


def test_taken_temporary_names_are_skipped(bed, monkeypatch):
    """O_EXCL: a temporary name the account planted (a link to the canary) is never opened."""
    names = iter(['aaaa', 'aaaa', 'bbbb'])
    monkeypatch.setattr(_fs, '_random', lambda: next(names))
    target = os.path.join(bed.home, 'manifest.json')
    planted = os.path.join(bed.home, '.manifest.json' + _fs.TMP_MARK + 'aaaa')
    os.symlink(bed.canary, planted)
    _fs.write(target, '{}', 0o644, bed.owner)
    assert canary_intact(bed) and os.path.islink(planted)
    assert open(target).read() == '{}'


def test_remove_does_not_follow_links(bed):
    tree = os.path.join(bed.home, 'staging')
    os.makedirs(os.path.join(tree, 'sub'))
    os.symlink(bed.root, os.path.join(tree, 'sub', 'to-root'))
    os.link(bed.canary, os.path.join(tree, 'hard'))
    assert _fs.remove(tree)
    assert not os.path.exists(tree) and canary_intact(bed)
    assert _fs.remove(tree) is False


def test_replace_puts_a_tree_in_place_of_a_planted_link(bed):
    final = os.path.join(bed.home, 'model')
    os.symlink(bed.root, final)
    new = os.path.join(bed.home, '.model.new')
    os.mkdir(new)
    _fs.write(os.path.join(new, 'w'), 'x')
    _fs.replace(new, final)
    assert os.path.isdir(final) and not os.path.islink(final) and canary_intact(bed)
    assert os.listdir(bed.root) == ['canary'] and sorted(os.listdir(bed.home)) == ['model']


# ------------------------------------------------------------- reading
def test_reads_refuse_links_and_hardlinks_to_root_files(bed):
    cfg = os.path.join(bed.home, 'config.yaml')
    os.symlink(bed.canary, cfg)
    with pytest.raises(_fs.UnsafePathError):
        _fs.read_bytes(cfg)
    os.unlink(cfg)
    os.link(bed.canary, cfg)
    with pytest.raises(_fs.UnsafePathError) as e:
        _fs.read_bytes(cfg)
    assert 'belongs to uid 0' in str(e.value)
    assert _fs.read_json(cfg, 'default') == 'default'


def test_reads_refuse_a_fifo_without_blocking(bed):
    fifo = os.path.join(bed.home, 'config.yaml')
    os.mkfifo(fifo)
    as_account(fifo)
    with pytest.raises(_fs.UnsafePathError):
        _fs.read_bytes(fifo)


def test_reads_of_the_accounts_own_files_work(bed):
    f = os.path.join(bed.home, 'config.yaml')
    with open(f, 'w') as fh:
        fh.write('a: 1\n')
    as_account(f)
    assert _fs.read_text(f) == 'a: 1\n' and _fs.isfile(f) and _fs.count_lines(f) == 1


def test_stat_and_exists_refuse_planted_links(bed):
    link = os.path.join(bed.home, 'model.gguf')
    os.symlink(bed.canary, link)
    with pytest.raises(_fs.UnsafePathError):
        _fs.exists(link)
    assert _fs.lstat(link) is not None
    assert _fs.exists(os.path.join(bed.home, 'missing')) is False


def test_readlink_reads_a_planted_link_without_following_one_on_the_way(bed):
    """run_state's probe reads the venv link's target; a link planted in a parent directory the
    account controls is refused, not followed."""
    link = os.path.join(bed.home, 'venv')
    os.symlink(bed.canary, link)
    as_account(link)
    assert _fs.readlink(link) == bed.canary
    assert _fs.readlink(os.path.join(bed.home, 'missing')) is None
    os.symlink(bed.root, os.path.join(bed.home, 'up'))
    as_account(os.path.join(bed.home, 'up'))
    with pytest.raises(_fs.UnsafePathError):
        _fs.readlink(os.path.join(bed.home, 'up', 'canary'))


def test_symlinks_in_root_only_directories_are_followed(tmp_path):
    d = str(tmp_path / 'srv')
    os.makedirs(os.path.join(d, 'student-abc'))
    with open(os.path.join(d, 'student-abc', 'config.json'), 'w') as f:
        f.write('{}')
    os.symlink('student-abc', os.path.join(d, 'student'))
    os.chmod(str(tmp_path), 0o755)
    assert _fs.isdir(os.path.join(d, 'student'))
    assert _fs.read_text(os.path.join(d, 'student', 'config.json')) == '{}'


# --------------------------------------------------------------- trees
def test_walk_and_digest_never_leave_the_tree_and_survive_cycles(bed):
    tree = os.path.join(bed.home, 'taxonomy')
    os.makedirs(os.path.join(tree, 'a', 'b'))
    for rel, text in (('a/qna.yaml', 'one\n'), ('b.txt', 'two\n')):
        with open(os.path.join(tree, rel), 'w') as f:
            f.write(text)
    os.symlink('..', os.path.join(tree, 'a', 'b', 'up'))          # a cycle
    os.symlink(tree, os.path.join(tree, 'a', 'self'))              # another
    os.symlink(bed.root, os.path.join(tree, 'out'))                # out of the tree
    os.makedirs(os.path.join(tree, '.git'))
    for dirpath, dirnames, filenames in os.walk(tree):
        for n in dirnames + filenames + [dirpath]:
            os.lchown(os.path.join(dirpath, n), UID, GID)
    digest, info = _fs.tree_digest(tree)
    assert sorted(info) == ['a/b/up', 'a/qna.yaml', 'a/self', 'b.txt', 'out']
    assert info['a/qna.yaml']['sha256'] == hashlib.sha256(b'one\n').hexdigest()
    assert info['out'] == {'link': bed.root}
    lines = ''.join('%s  %s\n' % (hashlib.sha256(t).hexdigest(), n)
                    for n, t in (('a/qna.yaml', b'one\n'), ('b.txt', b'two\n')))
    plain = dict((k, v) for k, v in info.items() if 'sha256' in v)
    assert _fs.digest_of(plain) == 'sha256:' + hashlib.sha256(lines.encode()).hexdigest()
    assert digest != _fs.digest_of(plain)   # the links count too
    with open(os.path.join(tree, 'b.txt'), 'w') as f:
        f.write('two!\n')
    assert _fs.tree_digest(tree)[0] != digest


def test_walk_refuses_a_root_file_hardlinked_into_the_tree(bed):
    tree = os.path.join(bed.home, 'model')
    os.mkdir(tree)
    as_account(tree)
    os.link(bed.canary, os.path.join(tree, 'weights.bin'))
    with pytest.raises(_fs.UnsafePathError):
        _fs.tree_digest(tree)


def test_copy_tree_copies_links_as_links_and_files_owned(bed, tmp_path):
    src = str(tmp_path / 'src')
    os.makedirs(os.path.join(src, 'sub'))
    with open(os.path.join(src, 'sub', 'w.bin'), 'wb') as f:
        f.write(b'w')
    os.symlink(bed.canary, os.path.join(src, 'link'))
    dst = os.path.join(bed.home, 'copy')
    info = _fs.copy_tree(src, dst, bed.owner)
    assert info == {'sub/w.bin': dict(sha256=hashlib.sha256(b'w').hexdigest(), size=1), 'link': {'link': bed.canary}}
    assert os.stat(os.path.join(dst, 'sub', 'w.bin')).st_uid == UID and os.readlink(os.path.join(dst, 'link')) == bed.canary
    assert canary_intact(bed)


def test_export_names_the_checked_file_in_roots_directory(bed):
    model = os.path.join(bed.home, 'model.gguf')
    with open(model, 'w') as f:
        f.write('GGUF')
    as_account(model)
    dst = os.path.join(bed.root, 'export', 'train.gguf')
    _fs.export(model, dst)
    assert os.stat(dst).st_ino == os.stat(model).st_ino and open(dst).read() == 'GGUF'
    os.unlink(model)
    os.symlink(bed.canary, model)               # swapped for a link to root's file
    with pytest.raises(_fs.UnsafePathError):
        _fs.export(model, dst)
    assert open(dst).read() == 'GGUF' and canary_intact(bed)


def _hf_checkpoint(bed):
    ckpt = os.path.join(bed.home, 'samples_16')
    os.makedirs(os.path.join(ckpt, 'sub'))
    for rel, data in (('config.json', '{}'), ('model.safetensors', 'W' * 64), ('sub/tokenizer.json', 'T')):
        with open(os.path.join(ckpt, rel), 'w') as f:
            f.write(data)
    as_account(ckpt, os.path.join(ckpt, 'sub'),
               *[os.path.join(ckpt, r) for r in ('config.json', 'model.safetensors', 'sub/tokenizer.json')])
    return ckpt


def test_export_tree_links_the_checked_files_and_keeps_a_current_export(bed):
    ckpt = _hf_checkpoint(bed)
    dst = os.path.join(bed.root, 'export', 'train-hf')
    assert _fs.export_tree(ckpt, dst) == ['config.json', 'model.safetensors', 'sub/tokenizer.json']
    for rel in ('config.json', 'model.safetensors', 'sub/tokenizer.json'):
        assert os.stat(os.path.join(dst, rel)).st_ino == os.stat(os.path.join(ckpt, rel)).st_ino
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o700 and os.stat(dst).st_uid == 0
    ino = os.stat(dst).st_ino
    _fs.export_tree(ckpt, dst)                       # a rerun: the export is current, kept
    assert os.stat(dst).st_ino == ino
    os.unlink(os.path.join(ckpt, 'config.json'))     # the checkpoint changed: a new export, whole
    _fs.export_tree(ckpt, dst)
    assert os.stat(dst).st_ino != ino and sorted(os.listdir(dst)) == ['model.safetensors', 'sub']
    assert [n for n in os.listdir(os.path.dirname(dst)) if n != 'train-hf'] == []   # no temporary left


def test_export_tree_refuses_a_link_in_the_tree_and_keeps_the_old_export(bed):
    ckpt = _hf_checkpoint(bed)
    dst = os.path.join(bed.root, 'export', 'train-hf')
    _fs.export_tree(ckpt, dst)
    link = os.path.join(ckpt, 'sub', 'tokenizer.json')
    os.unlink(link)
    os.symlink(bed.canary, link)                     # the account points a name at root's file
    as_account(link)
    with pytest.raises(_fs.UnsafePathError, match='tokenizer.json is a symbolic link'):
        _fs.export_tree(ckpt, dst)
    assert open(os.path.join(dst, 'sub', 'tokenizer.json')).read() == 'T' and canary_intact(bed)


def test_export_tree_copies_across_file_systems_keep_the_time(bed, monkeypatch):
    ckpt = _hf_checkpoint(bed)
    dst = os.path.join(bed.root, 'export', 'train-hf')
    real_link = os.link

    def cross_device(*a, **kw):
        raise OSError(errno.EXDEV, 'Invalid cross-device link')
    monkeypatch.setattr(os, 'link', cross_device)
    _fs.export_tree(ckpt, dst)
    st = os.stat(os.path.join(dst, 'model.safetensors'))
    src = os.stat(os.path.join(ckpt, 'model.safetensors'))
    assert st.st_ino != src.st_ino and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_mtime_ns == src.st_mtime_ns
    ino = os.stat(dst).st_ino
    _fs.export_tree(ckpt, dst)                       # current copies are not copied again
    assert os.stat(dst).st_ino == ino
    monkeypatch.setattr(os, 'link', real_link)


def test_digest_cache_reuses_and_invalidates(tmp_path, monkeypatch):
    model = str(tmp_path / 'm.gguf')
    with open(model, 'w') as f:
        f.write('weights')
    calls = []
    real = _fs.sha256_fd

    def counting(fd):
        calls.append(fd)
        return real(fd)
    monkeypatch.setattr(_fs, 'sha256_fd', counting)
    cache_path = os.path.join(_fs.state_dir('svc', '/nonexistent'), 'digests.json')
    c = _fs.DigestCache(cache_path)
    d1 = c.sha256(model)
    assert c.sha256(model) == d1 and len(calls) == 1
    c.save()
    assert stat.S_IMODE(os.stat(cache_path).st_mode) == 0o600
    c2 = _fs.DigestCache(cache_path)  # persisted
    assert c2.sha256(model) == d1 and len(calls) == 1
    time.sleep(0.01)
    with open(model, 'w') as f:
        f.write('weights, trained')
    assert c2.sha256(model) != d1 and len(calls) == 2
    assert c2.sha256(model, verify=True) and len(calls) == 3


# ---------------------------------------------------------- processes
def test_signals_reach_only_the_accounts_processes():
    mine = subprocess.Popen(['sleep', '60'], start_new_session=True,
                            user=UID, group=GID)
    root = subprocess.Popen(['sleep', '60'], start_new_session=True)
    try:
        assert _fs.process_start(mine.pid) is not None
        assert not _fs.signal_group_as(UID, GID, root.pid, signal.SIGKILL)
        assert _fs.signal_group_as(UID, GID, mine.pid, signal.SIGKILL)
        assert mine.wait(timeout=10) == -9
        time.sleep(0.2)
        assert root.poll() is None
    finally:
        for p in (mine, root):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_state_dir_is_private(tmp_path):
    path = _fs.private_dir(_fs.state_dir('svc', '/nonexistent'))
    st = os.stat(path)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700)
    os.chmod(path, 0o755)
    with pytest.raises(_fs.UnsafePathError):
        _fs.private_dir(path)
