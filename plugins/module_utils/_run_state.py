# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run state of a playbook (private API): what labforge.instructlab.run_state
compares to tell a no-op rerun from a run that has work to do.

A run is *current* on a host when

* the fingerprint of the run's inputs, computed on the controller at the start of
  the run (``parts``: one digest per input, so that a mismatch names the inputs
  that changed), equals the one recorded at the end of the last complete run, and
* a cheap probe of the host (``lstat`` of the paths the roles manage, the state of
  the collection's serve units, the kernel release) equals the probe taken when
  that run was recorded (``drift``).

The record lives in ``STATE_DIR/<playbook>.json`` (root, directory 0700, file
0600), written atomically through the file layer.

API::

    from ansible_collections.labforge.instructlab.plugins.module_utils import _run_state as rs

    rs.is_input(name)                         # an inventory variable that is a run input
    fp = rs.fingerprint(parts)                # 'sha256:...' of {part: digest}
    rs.digest(value)                          # 'sha256:...' of any JSON-able value
    rs.changed_parts(old_parts, new_parts)    # sorted names that differ (added, removed, changed)
    rs.describe_part(name)                    # 'inventory variable labforge_train', ...
    rs.record_path(state_dir, playbook)
    rs.probe_path(path)                       # {'kind': 'link', 'target': ..., 'resolved': {...}} ...
    rs.drift(old_probe, new_probe)            # ['kernel', 'path:/opt/instructlab/venv', 'unit:...']
    current, reasons, inputs, drifted = rs.compare(record, fp, parts, probe)
    rs.build_record(playbook, fp, parts, paths, probe)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re
import stat

from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.module_utils._systemd import RUNNING_STATES

RECORD_VERSION = 1
STATE_DIR = posixpath.join(_fs.STATE_ROOT, 'run-state')
PLAYBOOK = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$')

# The inventory variables that are inputs of a run: the roles' public variables
# (labforge_* of the pipeline role, instructlab_*, python_*, nvidia_driver_*) and
# how a host is reached. Controls of the check itself are not inputs: setting
# labforge_full_run once must not make the next run a full one as well.
PREFIXES = ('labforge_', 'instructlab_', 'python_', 'nvidia_driver_')
NAMED = ('ansible_host',)
NOT_INPUTS = ('labforge_full_run',)

# Part names and how a reason names them.
FIXED_PARTS = {
    'collection': "the collection's files",
    'ansible_core': 'the ansible-core version',
    'playbook': 'the playbook',
    'run_options': "the run's tags, skipped tags or limit",
    'hosts': 'the hosts, their groups or ansible_host',
}
KINDS = {
    'var': 'inventory variable %s',
    'extra': 'extra variable %s',
    'files': 'the controller files of %s',
}


def is_input(name):
    """Whether the inventory variable ``name`` is an input of a run."""
    return name not in NOT_INPUTS and (name in NAMED or name.startswith(PREFIXES))


def digest(value):
    """``'sha256:<hex>'`` of the canonical JSON of ``value``."""
    return fpu.fingerprint(value)


def fingerprint(parts):
    """The fingerprint of a run: the digest of its parts (``{name: digest}``)."""
    return fpu.fingerprint(dict(parts))


def changed_parts(old, new):
    """Sorted names of the parts that differ between two ``{name: digest}`` (added, removed or
    changed)."""
    old = old if isinstance(old, dict) else {}
    new = new if isinstance(new, dict) else {}
    return sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))


def describe_part(name):
    if name in FIXED_PARTS:
        return FIXED_PARTS[name]
    kind, sep, rest = name.partition(':')
    if sep and kind in KINDS:
        return KINDS[kind] % rest
    return name


def record_path(state_dir, playbook):
    if not PLAYBOOK.match(playbook or ''):
        raise ValueError('playbook must be a name of letters, digits, _ . - (at most 100), got %r' % (playbook,))
    return posixpath.join(state_dir, playbook + '.json')


# ------------------------------------------------------------------ the probe
def _stat_info(st):
    """What a probe keeps of a stat result: no access or change times (reading a file or a
    no-op chmod must not count as drift), no directory mtime (a directory's mtime moves with
    every temporary file made in it)."""
    info = dict(mode='%o' % stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, ino=st.st_ino)
    if stat.S_ISDIR(st.st_mode):
        info['kind'] = 'dir'
    elif stat.S_ISREG(st.st_mode):
        info.update(kind='file', size=st.st_size, mtime_ns=st.st_mtime_ns)
    elif stat.S_ISLNK(st.st_mode):
        info['kind'] = 'link'
    else:
        info['kind'] = 'other'
    return info


def probe_path(path):
    """``lstat`` of ``path`` through the file layer (nothing followed that the privilege rule
    forbids): a link with its target text and what it leads to; ``{'kind': 'absent'}`` when
    missing; ``{'kind': 'refused', 'error': ...}`` when the layer refuses a step."""
    try:
        st = _fs.lstat(path)
        if st is None:
            return dict(kind='absent')
        info = _stat_info(st)
        if info['kind'] == 'link':
            info['target'] = _fs.readlink(path)
            try:
                resolved = _fs.stat_path(path)
            except (IOError, OSError) as e:
                info['resolved'] = dict(kind='refused', error=str(e))
            else:
                info['resolved'] = _stat_info(resolved) if resolved is not None else dict(kind='absent')
        return info
    except (IOError, OSError) as e:
        return dict(kind='refused', error=str(e))


def unit_state(active, enabled):
    """A serve unit's state as the probe keeps it: a unit on its way up counts as running."""
    return dict(active='running' if active in RUNNING_STATES else (active or 'unknown'), enabled=enabled or 'unknown')


def drift(old, new):
    """Sorted keys of what differs between two probes: ``kernel``, ``path:<path>``,
    ``unit:<unit>``, ``systemctl``."""
    old = old if isinstance(old, dict) else {}
    new = new if isinstance(new, dict) else {}
    keys = []
    for key in ('kernel', 'systemctl'):
        if old.get(key) != new.get(key):
            keys.append(key)
    for kind in ('paths', 'units'):
        a, b = old.get(kind) or {}, new.get(kind) or {}
        keys.extend('%s:%s' % (kind[:-1], name) for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name))
    return keys


def _describe_drift(key, old, new):
    kind, sep, name = key.partition(':')
    if not sep:
        return '%s %s (was %s)' % ('the kernel release' if kind == 'kernel' else 'systemctl',
                                   new.get(kind), old.get(kind))
    before = (old.get(kind + 's') or {}).get(name)
    after = (new.get(kind + 's') or {}).get(name)
    if kind == 'unit':
        if before is None:
            return 'unit %s is new' % name
        if after is None:
            return 'unit %s is gone' % name
        return 'unit %s is %s/%s (was %s/%s)' % (name, after['active'], after['enabled'],
                                                 before['active'], before['enabled'])
    if before is None or after is None:
        return '%s (not probed before)' % name
    if after.get('kind') != before.get('kind'):
        return '%s is %s (was %s)' % (name, after.get('kind'), before.get('kind'))
    what = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return '%s (%s changed)' % (name, ', '.join(what))


# ------------------------------------------------------------------ compare
def compare(record, fp, parts, probe):
    """``(current, reasons, changed_inputs, drifted)`` of this run against ``record`` (the last
    recorded run, None when there is none)."""
    if not isinstance(record, dict) or record.get('version') != RECORD_VERSION:
        return False, ['no record of a complete run of this playbook'], [], []
    inputs = changed_parts(record.get('parts'), parts)
    if not inputs and record.get('fingerprint') != fp:
        inputs = ['fingerprint']
    drifted = drift(record.get('probe'), probe)
    reasons = []
    if inputs:
        reasons.append('inputs changed: ' + ', '.join(describe_part(n) for n in inputs))
    if drifted:
        reasons.append('the host changed: ' + ', '.join(_describe_drift(k, record.get('probe') or {}, probe)
                                                        for k in drifted))
    return not reasons, reasons, inputs, drifted


def build_record(playbook, fp, parts, paths, probe):
    return dict(version=RECORD_VERSION, playbook=playbook, fingerprint=fp, parts=dict(parts),
                paths=list(paths), probe=probe)
