# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place that runs ``systemctl`` and ``journalctl`` (private).

Every call goes through the runner's ``HostTool`` (``module.run_command`` with an
argv list, no shell), so a module that manages a unit reads its state
(``is-active``, ``is-enabled``, ``show``), changes it (``daemon-reload``,
``enable``, ``start``, ...) and reads its journal here and nowhere else.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import HostTool

# The ActiveState values of a unit that runs (or is on its way to it: systemd's
# auto-restart after a crash is 'activating').
RUNNING_STATES = ('active', 'activating', 'reloading')


class Systemd(object):
    """systemctl/journalctl for one module. ``must`` fails the module (naming the verb,
    rc and output) when systemctl does; the queries never fail."""

    def __init__(self, module, required=True):
        self.module = module
        self.tool = HostTool(module, 'systemctl', required=required)
        self.systemctl = self.tool.path   # None: no systemctl on the host (required=False only)

    def run(self, *args, **kw):
        return self.tool.run(*args, **kw)

    def must(self, *args):
        rc, out, err = self.run(*args)
        if rc != 0:
            self.module.fail_json(msg='systemctl %s failed (rc=%d): %s' % (' '.join(args), rc, (err or out).strip()))
        return out

    # ------------------------------------------------------------ queries
    def is_active(self, unit):
        """The unit's ActiveState (``active``, ``inactive``, ``failed``, ...; ``unknown``
        when systemctl says nothing)."""
        rc, out, err = self.run('is-active', unit)
        return out.strip() or 'unknown'

    def is_running(self, unit):
        return self.is_active(unit) in RUNNING_STATES

    def is_enabled(self, unit):
        rc, out, err = self.run('is-enabled', unit)
        return out.strip() == 'enabled'

    def show(self, unit, *props):
        """``{property: value}`` of ``systemctl show UNIT -p PROPS``."""
        rc, out, err = self.run('show', unit, '-p', ','.join(props))
        data = {}
        for line in out.splitlines():
            if '=' in line:
                k, v = line.split('=', 1)
                data[k] = v
        return data

    def show_many(self, units, *props):
        """``{unit: {property: value}}`` of several units in one ``systemctl show`` call (the
        property ``Id`` names each block; it is always asked for)."""
        if not units:
            return {}
        props = ('Id',) + tuple(p for p in props if p != 'Id')
        rc, out, err = self.run('show', '-p', ','.join(props), '--', *units)
        data, block = {}, {}
        for line in out.splitlines() + ['']:
            if not line.strip():
                if block.get('Id'):
                    data[block['Id']] = block
                block = {}
            elif '=' in line:
                k, v = line.split('=', 1)
                block[k] = v
        return data

    def journal(self, unit, lines=40):
        """The last ``lines`` lines of the unit's journal ('' without journalctl)."""
        journalctl = HostTool(self.module, 'journalctl')
        if not journalctl.path:
            return ''
        rc, out, err = journalctl.run('-u', unit, '-n', lines, '--no-pager', '-o', 'cat')
        return out

    # ------------------------------------------------------------ changes
    def daemon_reload(self):
        self.must('daemon-reload')

    def enable(self, unit):
        self.must('enable', unit)

    def disable(self, unit):
        self.must('disable', unit)

    def start(self, unit):
        """Start ``unit``, clearing a failed state (and its start limit) first."""
        self.run('reset-failed', unit)
        self.must('start', unit)

    def stop(self, unit):
        self.must('stop', unit)

    def restart(self, unit):
        self.must('restart', unit)

    def forget(self, unit):
        """After the unit file was removed: reload, and drop a failed state systemd keeps."""
        self.must('daemon-reload')
        self.run('reset-failed', unit)
