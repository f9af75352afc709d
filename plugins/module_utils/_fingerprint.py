# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input fingerprints, manifests and the run-once-per-fingerprint skeleton (private API).

Long steps (``ilab data generate``, ``ilab model train``, model downloads) are made
idempotent by a *fingerprint* of everything that determines their result: the
content of the inputs (taxonomy files, model files, datasets), the parameters,
the effective configuration and the InstructLab version. A step runs in a
*staging* directory next to its final place and, only when it succeeded,
writes a *manifest* (``labforge-manifest.json``: the fingerprint, the inputs,
the result paths and row counts) and is renamed to its final, per-fingerprint
name. A final directory with a valid manifest is therefore a complete result;
anything else (a leftover staging directory of a killed run) is never taken as
done.

:class:`Once` is that skeleton, shared by ilab_data_generate, ilab_model_train
and ilab_model_download. It holds a per-host ``flock`` for the output (two runs
writing the same output wait for each other), keeps its run record (module pid,
ilab pid, their start times) in the private state directory that only root can
write, and removes a staging directory only while holding that lock, i.e. when
its owner is dead. An orphaned ilab process of a killed module is signalled with
the service account's credentials, after its start time matched the record, so
no process outside the account's own can be reached.

API::

    from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu

    fp = fpu.fingerprint({'model': digest, 'params': {...}, 'ilab_version': '0.26.1'})
    fpu.short(fp)                                   # 16 hex chars for directory names
    m = fpu.read_manifest(final_dir)                # dict or None
    fpu.valid_manifest(m, fp, files=[...])          # complete result for this fingerprint?
    with fpu.Once(state, owner, final, family_re) as once:   # lock held
        once.clean_stale()                          # kill orphans of dead runs, remove their staging
        staging = once.stage()                      # new staging dir (owned by the service account)
        once.started(child_pid)                     # record the ilab process
        fpu.write_manifest(staging, data, owner)
        once.place(staging)                         # rename into place (an old result is replaced)

    # the whole skeleton around Once (look for the stored result, predict in check mode, run, take a
    # result another run placed meanwhile): ilab_data_generate, ilab_model_train, ilab_model_convert,
    # ilab_model_evaluate
    step = fpu.RunOnce(runner, final, fp, family_re, files=lambda m: [m.get('gguf_path')], force=False)
    manifest, ran = step.run(module.check_mode, output_dir, lambda once: work(once))
    result['diff'] = fpu.diff(step.existing, dict(gguf_path=path, fingerprint=fp), final)   # diff mode
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import posixpath
import re
import signal
import time

from ansible_collections.labforge.instructlab.plugins.module_utils import _fs

MANIFEST = 'labforge-manifest.json'
MANIFEST_VERSION = 1
STAGING_MARK = _fs.TMP_MARK
GENERATE_POINTER = 'labforge-generate-latest.json'


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


# -------------------------------------------------------------- manifests
def manifest_path(directory):
    return posixpath.join(directory, MANIFEST)


def read_manifest(directory):
    data = _fs.read_json(manifest_path(directory))
    return data if isinstance(data, dict) else None


def write_manifest(directory, data, owner=None):
    data = dict(data)
    data.setdefault('manifest_version', MANIFEST_VERSION)
    data.setdefault('created', time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
    _fs.write_json(manifest_path(directory), data, mode=0o644, owner=owner)
    return data


def valid_manifest(manifest, fp, files=()):
    """True when ``manifest`` records fingerprint ``fp`` and every path in ``files`` still exists."""
    if not manifest or manifest.get('fingerprint') != fp:
        return False
    for p in files:
        try:
            if not p or not _fs.exists(p):
                return False
        except OSError:
            return False
    return True


def read_pointer(path):
    """A small JSON file naming the latest result (``{"dir": ..., "fingerprint": ...}``)."""
    data = _fs.read_json(path)
    return data if isinstance(data, dict) else None


def latest_dataset(datasets_dir):
    """The manifest of the latest complete ``ilab_data_generate`` result in
    ``datasets_dir`` (None when there is none or it is incomplete)."""
    ptr = read_pointer(posixpath.join(datasets_dir, GENERATE_POINTER))
    if not ptr or not ptr.get('dir'):
        return None
    m = read_manifest(ptr['dir'])
    if not m or m.get('fingerprint') != ptr.get('fingerprint'):
        return None
    files = m.get('files') or {}
    try:
        if not files.get('train') or not _fs.isfile(files['train']):
            return None
    except OSError:
        return None
    return m


# ---------------------------------------------------------------- staging
class Once(object):
    """Run a step once per fingerprint: lock, clean up after dead runs, stage, place.

    ``state`` is the private state directory (:func:`_fs.state_dir`), ``owner``
    the ``(uid, gid)`` of the service account (None: keep the module's own),
    ``final`` the result's final path, ``family`` a regular expression of the
    final names whose leftovers this step may remove (default: ``final``'s own
    name). The lock and the run record are keyed by the directory and family.
    """

    def __init__(self, state, owner, final, family=None):
        self.state = state
        self.owner = owner
        self.final = os.path.abspath(final)
        self.parent, self.name = posixpath.split(self.final)
        self.family = family or re.escape(self.name)
        key = '%s\n%s' % (self.parent, self.family)
        self._lock = _fs.lock(state, key)
        self.record_path = posixpath.join(state, 'runs', hashlib.sha256(key.encode('utf-8')).hexdigest()[:32] + '.json')
        self.staging = None
        self.record = None
        self.orphan = None

    def __enter__(self):
        self._lock.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if self.staging:
                _fs.remove(self.staging)
            _fs.remove(self.record_path)
        finally:
            self._lock.__exit__(exc_type, exc, tb)

    def staging_re(self):
        return re.compile(r'^\.(%s)%s[0-9a-z-]+$' % (self.family, re.escape(STAGING_MARK)))

    def clean_stale(self):
        """Remove the leftovers of earlier runs of this family (their owners are dead: this
        run holds the lock), after stopping an ilab process a killed module left running.
        Returns the removed paths."""
        self.orphan = self.stop_orphan()
        removed = []
        pattern = self.staging_re()
        try:
            entries = _fs.listdir(self.parent)
        except OSError:
            return removed
        for entry in entries:
            if pattern.match(entry):
                path = posixpath.join(self.parent, entry)
                _fs.remove(path)
                removed.append(path)
        return removed

    def stop_orphan(self, grace=10):
        """SIGKILL the process group of the ilab process a dead run recorded, as the service
        account, if that very process (same start time) still runs. Returns its pid or None."""
        rec = _fs.read_json(self.record_path)
        if not isinstance(rec, dict):
            return None
        _fs.remove(self.record_path)
        try:
            child, start = int(rec['child_pid']), int(rec['child_start'])
        except (KeyError, TypeError, ValueError):
            return None
        now = _fs.process_start(child)
        if now is not None and now != start:
            return None   # the pid belongs to another process now
        uid, gid = (self.owner if self.owner else (None, None))
        if not _fs.signal_group_as(uid, gid, child, signal.SIGKILL):
            return None   # not a process of the account (or gone): nothing to wait for
        deadline = time.time() + grace
        while time.time() < deadline and _fs.process_start(child) == start:
            time.sleep(0.1)
        return child

    def stage(self, private=False):
        """A new, empty staging directory ``.<name>.labforge-tmp-<random>`` next to the final
        place: the service account's (0755), or with ``private`` root's own (0700), for
        steps that run as root (what they produce is adopted before it is placed)."""
        _fs.makedirs(self.parent, owner=self.owner)
        self.staging = _fs.mkdtemp(self.parent, '.%s%s' % (self.name, STAGING_MARK),
                                   0o700 if private else 0o755, None if private else self.owner)
        self._write_record(dict(staging=self.staging))
        return self.staging

    def started(self, child_pid):
        """Record the ilab process (its own session) so that a later run can stop it when this
        module dies before it."""
        self._write_record(dict(child_pid=child_pid, child_start=_fs.process_start(child_pid)))

    def _write_record(self, data):
        rec = dict(self.record or {}, module_pid=os.getpid(), module_start=_fs.process_start(os.getpid()))
        rec.update(data)
        self.record = rec
        _fs.private_dir(posixpath.dirname(self.record_path))
        _fs.write_json(self.record_path, rec, mode=0o600)

    def place(self, src=None):
        """Rename ``src`` (default: the staging directory) to the final path, replacing an
        older result there."""
        _fs.replace(src or self.staging, self.final)
        if src is None or src == self.staging:
            self.staging = None


# ------------------------------------------------------- run once per fingerprint
def stored(final, fp, files=None, accept=None):
    """The manifest at ``final`` when it is a complete result for ``fp`` (None otherwise): it
    records ``fp``, every path ``files(manifest)`` names exists and ``accept(manifest)`` holds."""
    m = read_manifest(final)
    if not m or not valid_manifest(m, fp, files(m) if files else ()):
        return None
    return m if accept is None or accept(m) else None


class RunOnce(object):
    """The skeleton of a step that runs once per fingerprint (ilab_data_generate,
    ilab_model_train, ilab_model_convert, ilab_model_evaluate): look for the stored result of ``fp`` at
    ``final``, tell what check mode predicts, run under the output's lock (taking a result
    another run finished meanwhile) and return the manifest.

    ``runner`` gives ``state``, ``owner`` and ``ensure_dir`` (the module's IlabRunner);
    ``files``/``accept`` are those of :func:`stored`; ``family`` that of :class:`Once`::

        step = fpu.RunOnce(runner, final, fp, family, files=lambda m: [m.get('gguf_path')], force=p['force'])
        step.existing       # manifest of the stored result, or None
        step.would_run      # force, or no stored result (what check mode reports)
        manifest, ran = step.run(module.check_mode, output_dir, lambda once: work(once))
    """

    def __init__(self, runner, final, fp, family=None, files=None, accept=None, force=False):
        self.runner, self.final, self.fp, self.family = runner, final, fp, family
        self.files, self.accept, self.force = files, accept, bool(force)
        self.existing = self.stored()
        self.would_run = self.force or not self.existing

    def stored(self):
        return stored(self.final, self.fp, self.files, self.accept)

    def run(self, check_mode, output_dir, work):
        """``(manifest, ran)``. ``work(once)`` runs the step inside :class:`Once` (the lock held)
        and returns the manifest of the placed result; it runs only when the step would run,
        not in check mode, and no other run placed the result meanwhile. Without a run the
        manifest is the stored one (None in check mode when there is none)."""
        if not self.would_run or check_mode:
            return self.existing, self.would_run
        self.runner.ensure_dir(output_dir)
        with Once(self.runner.state, self.runner.owner, self.final, self.family) as once:
            manifest = None if self.force else self.stored()   # another run may have finished meanwhile
            if manifest is not None:
                return manifest, False
            return work(once), True


def diff(manifest, after, header, **names):
    """Ansible's ``diff`` of a run-once step at ``header``: ``after`` (what the result is now; its
    first key names the result) against the same keys of ``manifest``, the result stored before
    (without one, only the first key, None). ``names`` gives the manifest's key for a key of
    ``after`` where they differ (``model_dir='dir'``)."""
    if manifest:
        before = dict((k, manifest.get(names.get(k, k))) for k in after)
    else:
        before = {next(iter(after)): None}
    return dict(before=before, after=after, before_header=header, after_header=header)
