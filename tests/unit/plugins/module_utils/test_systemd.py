# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for _systemd: the exact systemctl/journalctl command lines."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.labforge.instructlab.plugins.module_utils._systemd import RUNNING_STATES, Systemd

U = 'x.service'


class Failed(Exception):
    pass


class FakeModule(object):
    def __init__(self, answers=None, journalctl=True):
        self.calls = []
        self.answers = answers or {}
        self.journalctl = journalctl

    def get_bin_path(self, name, required=False):
        if name == 'journalctl' and not self.journalctl:
            return None
        return '/usr/bin/' + name

    def run_command(self, argv, **kw):
        self.calls.append(list(argv))
        return self.answers.get(tuple(argv[1:3]), (0, '', ''))

    def fail_json(self, **kw):
        raise Failed(kw['msg'])


def test_changes_are_exact_command_lines():
    m = FakeModule()
    sd = Systemd(m)
    sd.daemon_reload()
    sd.enable(U)
    sd.start(U)
    sd.restart(U)
    sd.stop(U)
    sd.disable(U)
    sd.forget(U)
    S = '/usr/bin/systemctl'
    assert m.calls == [[S, 'daemon-reload'], [S, 'enable', U], [S, 'reset-failed', U], [S, 'start', U],
                       [S, 'restart', U], [S, 'stop', U], [S, 'disable', U], [S, 'daemon-reload'],
                       [S, 'reset-failed', U]]


def test_a_failed_change_fails_naming_it_but_reset_failed_may_fail():
    m = FakeModule({('reset-failed', U): (1, '', 'not loaded'), ('start', U): (1, '', 'Unit x.service not found.\n')})
    with pytest.raises(Failed) as e:
        Systemd(m).start(U)
    assert str(e.value) == 'systemctl start x.service failed (rc=1): Unit x.service not found.'


def test_queries():
    m = FakeModule({('is-active', U): (3, 'activating\n', ''), ('is-enabled', U): (1, 'disabled\n', ''),
                    ('show', U): (0, 'MainPID=42\nNRestarts=2\n', '')})
    sd = Systemd(m)
    assert sd.is_active(U) == 'activating' and sd.is_running(U) and 'activating' in RUNNING_STATES
    assert not sd.is_enabled(U)
    assert sd.show(U, 'MainPID', 'NRestarts') == dict(MainPID='42', NRestarts='2')
    assert m.calls[-1] == ['/usr/bin/systemctl', 'show', U, '-p', 'MainPID,NRestarts']
    assert Systemd(FakeModule()).is_active(U) == 'unknown'


def test_show_many_asks_once_for_every_unit():
    out = ('Id=a.service\nActiveState=active\nUnitFileState=enabled\n\n'
           'Id=b.service\nActiveState=failed\nUnitFileState=\n')
    m = FakeModule({('show', '-p'): (0, out, '')})
    assert Systemd(m).show_many(['a.service', 'b.service'], 'ActiveState', 'UnitFileState') == {
        'a.service': dict(Id='a.service', ActiveState='active', UnitFileState='enabled'),
        'b.service': dict(Id='b.service', ActiveState='failed', UnitFileState='')}
    assert m.calls == [['/usr/bin/systemctl', 'show', '-p', 'Id,ActiveState,UnitFileState', '--', 'a.service',
                        'b.service']]
    assert Systemd(m).show_many([]) == {} and len(m.calls) == 1


def test_journal_tail():
    m = FakeModule({('-u', U): (0, 'boom\n', '')})
    assert Systemd(m).journal(U, 5) == 'boom\n'
    assert m.calls == [['/usr/bin/journalctl', '-u', U, '-n', '5', '--no-pager', '-o', 'cat']]
    assert Systemd(FakeModule(journalctl=False)).journal(U) == ''
