# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils._fingerprint (fingerprints, manifests, the run-once skeleton)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import subprocess
import threading
import time

import pytest

from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs

NOBODY = 65534
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason='needs root (the modules run as root)')


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


def test_latest_dataset(tmp_path):
    ds = str(tmp_path / 'datasets')
    os.makedirs(ds)
    assert fpu.latest_dataset(ds) is None
    d = os.path.join(ds, 'generate-1')
    os.makedirs(d)
    train = os.path.join(d, 'train_x.jsonl')
    write(train, '{}\n')
    fpu.write_manifest(d, dict(fingerprint='sha256:1', dir=d, files=dict(train=train)))
    _fs.write_json(os.path.join(ds, fpu.GENERATE_POINTER), dict(dir=d, fingerprint='sha256:1'))
    assert fpu.latest_dataset(ds)['dir'] == d
    _fs.write_json(os.path.join(ds, fpu.GENERATE_POINTER), dict(dir=d, fingerprint='sha256:2'))
    assert fpu.latest_dataset(ds) is None  # pointer and manifest disagree


def state(tmp_path):
    return _fs.state_dir('svc', str(tmp_path / 'home'))


def test_once_stages_places_and_cleans(tmp_path):
    out = str(tmp_path / 'datasets')
    os.makedirs(out)
    final = os.path.join(out, 'generate-00000000000000aa')
    # leftovers: of this family (removed), of another family and a finished result (kept)
    mine = os.path.join(out, '.generate-00000000000000bb.labforge-tmp-x1')
    legacy_aside = os.path.join(out, '.generate-00000000000000bb.labforge-tmp-old-x2')
    other = os.path.join(out, '.train-00000000000000bb.labforge-tmp-x3')
    done = os.path.join(out, 'generate-00000000000000cc')
    for d in (mine, legacy_aside, other, done):
        os.makedirs(d)
    with fpu.Once(state(tmp_path), None, final, 'generate-[0-9a-f]{16}') as once:
        assert sorted(once.clean_stale()) == sorted([mine, legacy_aside])
        staging = once.stage()
        assert os.path.basename(staging).startswith('.generate-00000000000000aa.labforge-tmp-')
        rec = json.load(open(once.record_path))
        assert rec['staging'] == staging and rec['module_pid'] == os.getpid()
        assert oct(os.stat(once.record_path).st_mode & 0o777) == '0o600'
        write(os.path.join(staging, 'x'), 'result')
        once.place()
    assert open(os.path.join(final, 'x')).read() == 'result'
    assert sorted(os.listdir(out)) == sorted(['.train-00000000000000bb.labforge-tmp-x3', 'generate-00000000000000aa',
                                              'generate-00000000000000cc'])
    assert not os.path.exists(once.record_path)


def test_once_failure_leaves_nothing(tmp_path):
    out = str(tmp_path / 'o')
    final = os.path.join(out, 'train-00000000000000aa')
    with pytest.raises(RuntimeError):
        with fpu.Once(state(tmp_path), None, final) as once:
            staging = once.stage()
            write(os.path.join(staging, 'half'), '...')
            raise RuntimeError('ilab failed')
    assert os.listdir(out) == []


def test_once_serialises_runs_of_one_output(tmp_path):
    final = str(tmp_path / 'o' / 'model')
    st = state(tmp_path)
    events = []

    def second():
        with fpu.Once(st, None, final):
            events.append('second in')
    with fpu.Once(st, None, final):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)
        events.append('first out')
    t.join(10)
    assert events == ['first out', 'second in']


class FakeRunner(object):
    """What RunOnce needs of an IlabRunner."""

    def __init__(self, tmp_path):
        self.state, self.owner, self.dirs = state(tmp_path), None, []

    def ensure_dir(self, path):
        self.dirs.append(path)
        _fs.makedirs(path)


def files(manifest):
    return manifest.get('files') or [None]


def _work(fp, names, calls):
    def work(once):
        calls.append(once)
        staging = once.stage()
        for name in names:
            write(os.path.join(staging, name), name)
        m = fpu.write_manifest(staging, dict(fingerprint=fp, files=[os.path.join(once.final, n) for n in names]))
        once.place()
        return m
    return work


def test_run_once_runs_then_finds_the_stored_result(tmp_path):
    out = str(tmp_path / 'out')
    fp = fpu.fingerprint({'step': 'x'})
    final = os.path.join(out, 'x-' + fpu.short(fp))
    runner, calls = FakeRunner(tmp_path), []
    step = fpu.RunOnce(runner, final, fp, 'x-[0-9a-f]{16}', files=files)
    assert (step.existing, step.would_run) == (None, True)
    # check mode predicts, runs nothing
    assert step.run(True, out, _work(fp, ['a'], calls)) == (None, True)
    assert calls == [] and runner.dirs == [] and not os.path.exists(out)
    manifest, ran = step.run(False, out, _work(fp, ['a'], calls))
    assert ran is True and len(calls) == 1 and runner.dirs == [out]
    assert manifest['files'] == [os.path.join(final, 'a')] and fpu.read_manifest(final) == manifest
    # a second run of the same fingerprint: the stored result, nothing runs
    again = fpu.RunOnce(runner, final, fp, 'x-[0-9a-f]{16}', files=files)
    assert again.existing == manifest and again.would_run is False
    assert again.run(False, out, _work(fp, ['a'], calls)) == (manifest, False)
    assert again.run(True, out, _work(fp, ['a'], calls)) == (manifest, False)
    assert len(calls) == 1
    # force runs again; a result whose file is gone, or another fingerprint's, is no result
    forced = fpu.RunOnce(runner, final, fp, files=files, force=True)
    assert forced.existing == manifest and forced.would_run is True
    assert forced.run(False, out, _work(fp, ['b'], calls))[1] is True and len(calls) == 2
    os.remove(os.path.join(final, 'b'))
    assert fpu.RunOnce(runner, final, fp, files=files).existing is None
    assert fpu.stored(final, fpu.fingerprint({'step': 'y'})) is None
    assert fpu.stored(final, fp, accept=lambda m: 'score' in m) is None
    assert fpu.stored(final, fp) == fpu.read_manifest(final)


def test_run_once_takes_a_result_placed_while_it_waited(tmp_path):
    out = str(tmp_path / 'out')
    fp = fpu.fingerprint({'step': 'x'})
    final = os.path.join(out, 'x-' + fpu.short(fp))
    runner, calls = FakeRunner(tmp_path), []
    step = fpu.RunOnce(runner, final, fp)
    assert step.would_run
    with fpu.Once(runner.state, None, final) as other:   # another run, done meanwhile
        _work(fp, ['a'], [])(other)
    manifest, ran = step.run(False, out, _work(fp, ['a'], calls))
    assert ran is False and calls == [] and manifest == fpu.read_manifest(final)


def test_diff_shows_the_stored_result_against_the_new_one():
    after = dict(model_dir='/o/train-1', fingerprint='f2', gguf_path='/o/train-1/m.gguf')
    assert fpu.diff(None, after, '/o/train-1') == dict(
        before=dict(model_dir=None), after=after, before_header='/o/train-1', after_header='/o/train-1')
    stored = dict(dir='/o/train-0', fingerprint='f1', gguf_path='/o/train-0/m.gguf', cmd='ilab model train')
    assert fpu.diff(stored, after, 'H', model_dir='dir')['before'] == dict(
        model_dir='/o/train-0', fingerprint='f1', gguf_path='/o/train-0/m.gguf')
    assert fpu.diff(stored, dict(score=0.5, fingerprint='f2'), 'H')['before'] == dict(score=None, fingerprint='f1')


def sleeper(**kw):
    return subprocess.Popen(['sleep', '60'], start_new_session=True, **kw)


@ROOT_ONLY
def test_orphan_of_a_dead_module_is_stopped_as_the_account(tmp_path):
    final = str(tmp_path / 'o' / 'train-00000000000000aa')
    st = state(tmp_path)
    child = sleeper(user=NOBODY, group=NOBODY)
    try:
        with fpu.Once(st, (NOBODY, NOBODY), final) as once:
            once.stage()
            once.started(child.pid)
            record = open(once.record_path).read()
        # the module was killed: its record is still there
        _fs.private_dir(os.path.dirname(once.record_path))
        _fs.write(once.record_path, record, 0o600)
        with fpu.Once(st, (NOBODY, NOBODY), final) as again:
            again.clean_stale()
            assert again.orphan == child.pid
        assert child.wait(timeout=10) == -9
    finally:
        if child.poll() is None:
            child.kill()


@ROOT_ONLY
def test_a_forged_record_never_reaches_a_foreign_process(tmp_path):
    """A record naming a process of root (pid and start time right) is still signalled only with
    the account's credentials: the kernel refuses, the process lives."""
    final = str(tmp_path / 'o' / 'train-00000000000000aa')
    st = state(tmp_path)
    victim = sleeper()
    try:
        once = fpu.Once(st, (NOBODY, NOBODY), final)
        _fs.private_dir(os.path.dirname(once.record_path))
        _fs.write_json(once.record_path, dict(child_pid=victim.pid, child_start=_fs.process_start(victim.pid)), 0o600)
        with once:
            once.clean_stale()
        time.sleep(0.3)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_a_record_of_a_reused_pid_is_ignored(tmp_path):
    final = str(tmp_path / 'o' / 'x')
    st = state(tmp_path)
    victim = sleeper()
    try:
        once = fpu.Once(st, None, final)
        _fs.private_dir(os.path.dirname(once.record_path))
        _fs.write_json(once.record_path, dict(child_pid=victim.pid, child_start=1), 0o600)
        with once:
            once.clean_stale()
            assert once.orphan is None
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()
