# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils._fingerprint (fingerprints, digests, manifests, staging)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import subprocess
import sys
import time

from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu


def write(path, text):
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        os.makedirs(d)
    with open(path, 'w') as f:
        f.write(text)


def test_fingerprint_is_canonical_and_sensitive():
    a = fpu.fingerprint({'b': 1, 'a': {'y': [1, 2], 'x': None}})
    b = fpu.fingerprint({'a': {'x': None, 'y': [1, 2]}, 'b': 1})
    assert a == b
    assert a == 'sha256:' + hashlib.sha256(b'{"a":{"x":null,"y":[1,2]},"b":1}').hexdigest()
    assert fpu.fingerprint({'a': {'x': None, 'y': [2, 1]}, 'b': 1}) != a
    assert fpu.fingerprint({'a': {'x': 0, 'y': [1, 2]}, 'b': 1}) != a
    assert fpu.short(a) == a[7:23] and len(fpu.short(a)) == 16


def test_file_and_tree_digest(tmp_path):
    root = str(tmp_path / 'tax')
    write(os.path.join(root, 'a', 'qna.yaml'), 'one\n')
    write(os.path.join(root, 'b.txt'), 'two\n')
    write(os.path.join(root, '.git', 'HEAD'), 'ref: refs/heads/main\n')
    digest, files = fpu.tree_digest(root)
    assert sorted(files) == ['a/qna.yaml', 'b.txt']  # .git is not content
    lines = ''.join('%s  %s\n' % (hashlib.sha256(t).hexdigest(), n)
                    for n, t in (('a/qna.yaml', b'one\n'), ('b.txt', b'two\n')))
    assert digest == 'sha256:' + hashlib.sha256(lines.encode()).hexdigest()
    # a change in .git does not matter, a change in a file does, a rename does
    write(os.path.join(root, '.git', 'HEAD'), 'ref: refs/heads/other\n')
    assert fpu.tree_digest(root)[0] == digest
    write(os.path.join(root, 'b.txt'), 'two!\n')
    d2 = fpu.tree_digest(root)[0]
    assert d2 != digest
    os.rename(os.path.join(root, 'b.txt'), os.path.join(root, 'c.txt'))
    assert fpu.tree_digest(root)[0] not in (digest, d2)
    f = os.path.join(root, 'c.txt')
    assert fpu.path_digest(f) == 'sha256:' + hashlib.sha256(b'two!\n').hexdigest()


def test_digest_cache_reuses_and_invalidates(tmp_path, monkeypatch):
    model = str(tmp_path / 'm.gguf')
    write(model, 'weights')
    calls = []
    real = fpu.file_sha256

    def counting(path, bufsize=1024 * 1024):
        calls.append(path)
        return real(path, bufsize)
    monkeypatch.setattr(fpu, 'file_sha256', counting)
    cache_path = str(tmp_path / 'state' / 'digests.json')
    c = fpu.DigestCache(cache_path)
    d1 = c.sha256(model)
    assert c.sha256(model) == d1 and len(calls) == 1
    c.save()
    c2 = fpu.DigestCache(cache_path)  # persisted
    assert c2.sha256(model) == d1 and len(calls) == 1
    time.sleep(0.01)
    write(model, 'weights, trained')  # size and mtime change
    d2 = c2.sha256(model)
    assert d2 != d1 and len(calls) == 2
    assert len([k for k in c2.data if k.startswith(os.path.abspath(model) + '|')]) == 1


def test_manifest_roundtrip_and_validity(tmp_path):
    d = str(tmp_path / 'out')
    os.mkdir(d)
    assert fpu.read_manifest(d) is None
    f = os.path.join(d, 'train.jsonl')
    write(f, '{"a": 1}\n\n{"a": 2}\n')
    m = fpu.write_manifest(d, dict(fingerprint='sha256:abc', files={'train': f}))
    assert m['manifest_version'] == 1 and 'created' in m
    assert fpu.read_manifest(d)['files'] == {'train': f}
    assert fpu.valid_manifest(fpu.read_manifest(d), 'sha256:abc', [f])
    assert not fpu.valid_manifest(fpu.read_manifest(d), 'sha256:abd', [f])
    os.unlink(f)
    assert not fpu.valid_manifest(fpu.read_manifest(d), 'sha256:abc', [f])
    with open(fpu.manifest_path(d), 'w') as fh:
        fh.write('{half')
    assert fpu.read_manifest(d) is None


def test_count_rows(tmp_path):
    f = str(tmp_path / 'x.jsonl')
    write(f, '{"a": 1}\n\n{"a": 2}\n  \n{"a": 3}')
    assert fpu.count_rows(f) == 3
    assert fpu.count_rows(str(tmp_path / 'missing.jsonl')) is None


def test_clean_stale_staging_keeps_live_runs(tmp_path):
    final = str(tmp_path / 'generate-0123')
    dead = str(tmp_path / '.generate-0123.tmp-999999999-1')
    live = str(tmp_path / ('.generate-0123.tmp-%d-1' % os.getppid()))
    other = str(tmp_path / '.generate-9999.tmp-999999999-1')
    for d in (dead, live, other):
        os.makedirs(d)
    removed = fpu.clean_stale_staging(final)
    assert removed == [dead]
    assert os.path.isdir(live) and os.path.isdir(other) and not os.path.exists(dead)
    s = fpu.staging_dir(final)
    assert os.path.basename(s).startswith('.generate-0123.tmp-%d-' % os.getpid())


def test_kill_orphan_of_a_dead_module(tmp_path):
    staging = str(tmp_path / '.train-x.tmp-999999999-1')
    os.makedirs(staging)
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)
    try:
        with open(os.path.join(staging, fpu.OWNER), 'w') as f:
            json.dump(dict(module_pid=999999999, child_pid=child.pid), f)
        removed = fpu.clean_stale_staging(str(tmp_path / 'train-x'))
        assert removed == [staging]
        assert child.wait(timeout=10) == -9
    finally:
        if child.poll() is None:
            child.kill()


def test_kill_orphan_spares_a_live_module(tmp_path):
    staging = str(tmp_path / 's')
    os.makedirs(staging)
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)
    try:
        with open(os.path.join(staging, fpu.OWNER), 'w') as f:
            json.dump(dict(module_pid=os.getppid(), child_pid=child.pid), f)
        assert fpu.kill_orphan(staging) is None
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()


def test_latest_dataset(tmp_path):
    ds = str(tmp_path / 'datasets')
    os.makedirs(ds)
    assert fpu.latest_dataset(ds) is None
    d = os.path.join(ds, 'generate-1')
    os.makedirs(d)
    train = os.path.join(d, 'train_x.jsonl')
    write(train, '{}\n')
    fpu.write_manifest(d, dict(fingerprint='sha256:1', dir=d, files=dict(train=train)))
    fpu.write_pointer(os.path.join(ds, fpu.GENERATE_POINTER), dict(dir=d, fingerprint='sha256:1'))
    assert fpu.latest_dataset(ds)['dir'] == d
    fpu.write_pointer(os.path.join(ds, fpu.GENERATE_POINTER), dict(dir=d, fingerprint='sha256:2'))
    assert fpu.latest_dataset(ds) is None  # pointer and manifest disagree


def test_clean_stale_staging_of_a_whole_family(tmp_path):
    old_inputs = str(tmp_path / '.train-aaaa.tmp-999999999-1')
    other_name = str(tmp_path / '.other-bbbb.tmp-999999999-1')
    result = str(tmp_path / 'train-aaaa')
    for d in (old_inputs, other_name, result):
        os.makedirs(d)
    assert fpu.clean_stale_staging(str(tmp_path / 'train-cccc'), family='train-') == [old_inputs]
    assert os.path.isdir(other_name) and os.path.isdir(result)
