# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""labforge.instructlab.run_state on the host: the record (root-only, 0600 in a 0700 directory,
written atomically, changed only when its content differs, check and diff mode), and the check
against it - the inputs that changed and the drift of the host (a path, a serve unit, the
kernel), each named in the reason."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible.module_utils import basic

from ansible_collections.labforge.instructlab.plugins.module_utils import _run_state as rs
from ansible_collections.labforge.instructlab.plugins.modules import run_state
from ansible_collections.labforge.instructlab.tests.unit.plugins.modules.ilab_testlib import run_module

UNIT = 'labforge-ilab-serve-main.service'
PARTS = {'collection': 'sha256:c1', 'playbook': 'sha256:p1', 'var:labforge_train': 'sha256:t1',
         'files:labforge_taxonomy_dir': 'sha256:x1'}


class Host(object):
    """The host's serve units as systemctl shows them (None: no systemctl), and its kernel."""

    def __init__(self, monkeypatch, tmp_path):
        self.units = {}
        self.kernel = '6.1.0-28-amd64'
        self.systemctl = True
        self.calls = []
        self.unit_dir = tmp_path / 'units'
        self.unit_dir.mkdir()
        host = self

        def get_bin_path(module, name, required=False, opt_dirs=None):
            return '/usr/bin/systemctl' if name == 'systemctl' and host.systemctl else None

        def run_command(module, argv, **kw):
            host.calls.append(list(argv))
            assert argv[:3] == ['/usr/bin/systemctl', 'show', '-p'] and argv[4] == '--', argv
            blocks = ['Id=%s\nActiveState=%s\nUnitFileState=%s\n' % ((u,) + host.units.get(u, ('inactive', '')))
                      for u in argv[5:]]
            return 0, '\n'.join(blocks), ''

        monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', get_bin_path)
        monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
        monkeypatch.setattr(run_state.os, 'uname', lambda: ('Linux', 'h', host.kernel, '#1', 'x86_64'))

    def add_unit(self, name, active='active', enabled='enabled'):
        (self.unit_dir / name).write_text('[Service]\n')
        self.units[name] = (active, enabled)


@pytest.fixture
def host(monkeypatch, tmp_path):
    return Host(monkeypatch, tmp_path)


@pytest.fixture
def state_dir(private_state_root):
    return os.path.join(private_state_root, 'run-state')


def call(monkeypatch, host, state_dir, state, check=False, diff=False, **args):
    full = dict(state=state, playbook='site', fingerprint=rs.fingerprint(PARTS), parts=PARTS,
                state_dir=state_dir, unit_dir=str(host.unit_dir))
    full.update(args)
    return run_module(monkeypatch, run_state.main, full, check_mode=check, diff=diff, ilab_options=False)


@pytest.fixture
def managed(tmp_path):
    """A venv link to a venv, an interpreter file, a model directory."""
    root = tmp_path / 'opt'
    (root / 'venvs' / 'v1').mkdir(parents=True)
    (root / 'venvs' / 'v2').mkdir(parents=True)
    os.symlink(str(root / 'venvs' / 'v1'), str(root / 'venv'))
    (root / 'python3.11').write_text('#!python\n')
    (root / 'models').mkdir()
    return root


def paths_of(root):
    return [str(root / 'venv'), str(root / 'python3.11'), str(root / 'models'), str(root / 'missing')]


# ------------------------------------------------------------------ the record
def test_the_record_is_root_only_and_written_once(monkeypatch, host, state_dir, managed):
    host.add_unit(UNIT)
    res = call(monkeypatch, host, state_dir, 'record', paths=paths_of(managed))
    assert res['changed'] is True and res['record'] == os.path.join(state_dir, 'site.json')
    st, dst = os.lstat(res['record']), os.lstat(state_dir)
    assert (stat.S_IMODE(st.st_mode), stat.S_IMODE(dst.st_mode)) == (0o600, 0o700)
    assert (st.st_uid, dst.st_uid) == (os.geteuid(), os.geteuid())
    assert sorted(os.listdir(state_dir)) == ['site.json']   # no temporary file left behind
    with open(res['record']) as f:
        record = json.load(f)
    assert (record['fingerprint'], record['parts'], record['playbook']) == (rs.fingerprint(PARTS), PARTS, 'site')
    assert record['probe']['units'] == {UNIT: {'active': 'running', 'enabled': 'enabled'}}
    assert record['probe']['paths'][str(managed / 'venv')]['target'] == str(managed / 'venvs' / 'v1')
    assert record['probe']['paths'][str(managed / 'missing')] == {'kind': 'absent'}
    assert str(host.unit_dir / UNIT) in record['probe']['paths']   # the unit files are always probed
    # the same run recorded again: nothing changes
    again = call(monkeypatch, host, state_dir, 'record', paths=paths_of(managed))
    assert again['changed'] is False and os.lstat(res['record']).st_ino == st.st_ino


def test_a_planted_link_is_replaced_never_written_through(monkeypatch, host, state_dir, tmp_path):
    victim = tmp_path / 'victim'
    victim.write_text('root-owned content\n')
    os.makedirs(state_dir, mode=0o700)
    os.symlink(str(victim), os.path.join(state_dir, 'site.json'))
    res = call(monkeypatch, host, state_dir, 'record')
    assert res['changed'] is True
    assert victim.read_text() == 'root-owned content\n'
    assert stat.S_ISREG(os.lstat(os.path.join(state_dir, 'site.json')).st_mode)


def test_check_mode_predicts_the_record_and_writes_nothing_diff_shows_it(monkeypatch, host, state_dir, managed):
    res = call(monkeypatch, host, state_dir, 'record', check=True, diff=True, paths=paths_of(managed))
    assert res['changed'] is True and not os.path.exists(state_dir)
    assert res['diff']['before'] == {} and res['diff']['after']['fingerprint'] == rs.fingerprint(PARTS)
    call(monkeypatch, host, state_dir, 'record', paths=paths_of(managed))
    res = call(monkeypatch, host, state_dir, 'record', check=True, diff=True, paths=paths_of(managed))
    assert res['changed'] is False and 'diff' not in res


def test_the_check_reads_only_in_check_mode_as_in_a_real_run(monkeypatch, host, state_dir, managed):
    call(monkeypatch, host, state_dir, 'record', paths=paths_of(managed))
    before = os.lstat(os.path.join(state_dir, 'site.json'))
    for check in (False, True):
        res = call(monkeypatch, host, state_dir, 'check', check=check)
        assert (res['current'], res['changed']) == (True, False), res['reason']
    assert os.lstat(os.path.join(state_dir, 'site.json')).st_mtime_ns == before.st_mtime_ns


# ------------------------------------------------------------------ the check
def test_without_a_record_the_run_is_not_current(monkeypatch, host, state_dir):
    res = call(monkeypatch, host, state_dir, 'check')
    assert (res['current'], res['reason']) == (False, 'no record of a complete run of this playbook')
    assert not os.path.exists(state_dir)


def test_a_record_of_another_playbook_does_not_count(monkeypatch, host, state_dir):
    call(monkeypatch, host, state_dir, 'record', playbook='provision')
    assert call(monkeypatch, host, state_dir, 'check')['current'] is False
    assert call(monkeypatch, host, state_dir, 'check', playbook='provision')['current'] is True


@pytest.mark.parametrize('change,named', [
    ({'var:labforge_train': 'sha256:t2'}, 'inventory variable labforge_train'),
    ({'files:labforge_taxonomy_dir': 'sha256:x2'}, 'the controller files of labforge_taxonomy_dir'),
    ({'collection': 'sha256:c2'}, "the collection's files"),
    ({'extra:labforge_verify': 'sha256:e1'}, 'extra variable labforge_verify'),
])
def test_changed_inputs_are_named(monkeypatch, host, state_dir, change, named):
    call(monkeypatch, host, state_dir, 'record')
    parts = dict(PARTS, **change)
    res = call(monkeypatch, host, state_dir, 'check', parts=parts, fingerprint=rs.fingerprint(parts))
    assert res['current'] is False
    assert res['changed_inputs'] == sorted(change) and res['drift'] == []
    assert res['reason'] == 'inputs changed: ' + named


def test_a_removed_input_is_named(monkeypatch, host, state_dir):
    call(monkeypatch, host, state_dir, 'record')
    parts = dict((k, v) for k, v in PARTS.items() if k != 'var:labforge_train')
    res = call(monkeypatch, host, state_dir, 'check', parts=parts, fingerprint=rs.fingerprint(parts))
    assert res['reason'] == 'inputs changed: inventory variable labforge_train'


def test_the_venv_link_pointing_elsewhere_is_drift(monkeypatch, host, state_dir, managed):
    call(monkeypatch, host, state_dir, 'record', paths=paths_of(managed))
    os.unlink(str(managed / 'venv'))
    os.symlink(str(managed / 'venvs' / 'v2'), str(managed / 'venv'))
    res = call(monkeypatch, host, state_dir, 'check')
    assert res['current'] is False and res['changed_inputs'] == []
    assert res['drift'] == ['path:%s' % (managed / 'venv')]
    assert res['reason'].startswith('the host changed: %s (' % (managed / 'venv')) and 'target' in res['reason']


def test_a_rewritten_a_removed_and_a_new_path_are_drift(monkeypatch, host, state_dir, managed):
    call(monkeypatch, host, state_dir, 'record', paths=paths_of(managed))
    (managed / 'python3.11').write_text('#!python, another build\n')
    os.rmdir(str(managed / 'models'))
    (managed / 'missing').write_text('now here\n')
    res = call(monkeypatch, host, state_dir, 'check')
    assert res['drift'] == ['path:%s' % (managed / p) for p in ('missing', 'models', 'python3.11')]
    assert '%s is file (was absent)' % (managed / 'missing') in res['reason']
    assert '%s is absent (was dir)' % (managed / 'models') in res['reason']


def test_a_file_added_inside_a_probed_directory_is_not_drift(monkeypatch, host, state_dir, managed):
    """A directory's mtime moves with every temporary file made in it: the probe keeps its kind,
    owner, mode and inode only (a cheap probe, see the module's notes)."""
    call(monkeypatch, host, state_dir, 'record', paths=paths_of(managed))
    (managed / 'models' / 'tmp').write_text('x')
    assert call(monkeypatch, host, state_dir, 'check')['current'] is True


@pytest.mark.parametrize('active,enabled,current', [
    ('active', 'enabled', True), ('activating', 'enabled', True), ('failed', 'enabled', False),
    ('inactive', 'enabled', False), ('active', 'disabled', False)])
def test_a_serve_unit_that_stopped_or_was_disabled_is_drift(monkeypatch, host, state_dir, active, enabled, current):
    host.add_unit(UNIT)
    call(monkeypatch, host, state_dir, 'record')
    host.units[UNIT] = (active, enabled)
    res = call(monkeypatch, host, state_dir, 'check')
    assert res['current'] is current, res['reason']
    if not current:
        assert res['drift'] == ['unit:' + UNIT]
        assert 'unit %s is' % UNIT in res['reason'] and '(was running/enabled)' in res['reason']
    # one systemctl call per probe, for all the units
    assert host.calls[-1] == ['/usr/bin/systemctl', 'show', '-p', 'Id,ActiveState,UnitFileState', '--', UNIT]


def test_a_new_or_removed_serve_unit_is_drift(monkeypatch, host, state_dir):
    host.add_unit(UNIT)
    call(monkeypatch, host, state_dir, 'record')
    host.add_unit('labforge-ilab-serve-teacher.service')
    res = call(monkeypatch, host, state_dir, 'check')
    assert 'unit:labforge-ilab-serve-teacher.service' in res['drift']
    assert 'unit labforge-ilab-serve-teacher.service is new' in res['reason']
    (host.unit_dir / 'other.service').write_text('')   # not one of the collection's units
    call(monkeypatch, host, state_dir, 'record')
    assert call(monkeypatch, host, state_dir, 'check')['current'] is True


def test_a_new_kernel_is_drift(monkeypatch, host, state_dir):
    call(monkeypatch, host, state_dir, 'record')
    host.kernel = '6.1.0-30-amd64'
    res = call(monkeypatch, host, state_dir, 'check')
    assert (res['current'], res['drift']) == (False, ['kernel'])
    assert res['reason'] == 'the host changed: the kernel release 6.1.0-30-amd64 (was 6.1.0-28-amd64)'


def test_without_systemctl_the_probe_still_works(monkeypatch, host, state_dir):
    host.systemctl = False
    host.add_unit(UNIT)
    call(monkeypatch, host, state_dir, 'record')
    res = call(monkeypatch, host, state_dir, 'check')
    assert res['current'] is True and res['probe']['systemctl'] is False and host.calls == []


def test_inputs_and_drift_together_are_both_named(monkeypatch, host, state_dir):
    call(monkeypatch, host, state_dir, 'record')
    host.kernel = 'new'
    parts = dict(PARTS, playbook='sha256:p2')
    res = call(monkeypatch, host, state_dir, 'check', parts=parts, fingerprint=rs.fingerprint(parts))
    assert res['reason'] == 'inputs changed: the playbook; the host changed: the kernel release new (was 6.1.0-28-amd64)'


def test_an_unreadable_or_foreign_record_is_no_record(monkeypatch, host, state_dir):
    os.makedirs(state_dir, mode=0o700)
    with open(os.path.join(state_dir, 'site.json'), 'w') as f:
        f.write('{"version": 99}')
    assert call(monkeypatch, host, state_dir, 'check')['reason'] == 'no record of a complete run of this playbook'


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize('args,words', [
    (dict(playbook='../etc/passwd'), 'playbook: playbook must be a name'),
    (dict(playbook=''), 'playbook: playbook must be a name'),
    (dict(fingerprint=None), 'fingerprint and parts are required'),
    (dict(parts=None), 'fingerprint and parts are required'),
    (dict(paths=['relative/path']), 'paths must be absolute, got relative/path'),
])
def test_bad_input_fails_naming_it_before_anything_is_written(monkeypatch, host, state_dir, args, words):
    res = call(monkeypatch, host, state_dir, 'record', **args)
    assert res.get('failed') and words in res['msg'], res
    assert not os.path.exists(state_dir)
