# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of labforge.instructlab.job_wait (documentation in plugins/modules/job_wait.py):
waits for a background job in ONE task and shows its progress.

Each check runs ``ansible.builtin.async_status`` with the task's privilege settings, then (while the
job runs) the module ``labforge.instructlab.job_wait`` on the host, which lists the job's
async_wrapper processes and reads the end of the job's log through the collection's file layer.
A connection failure propagates (the host is marked unreachable at once); a job that ended
returns its own result; a job without process and without result for two checks is dead.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

from ansible_collections.labforge.instructlab.plugins.modules.job_wait import ARGUMENT_SPEC

display = Display()

# Validated on the controller as the module validates it on the host, except that the log path is
# expanded (~, $VAR) on the host only.
ACTION_SPEC = dict(ARGUMENT_SPEC, log=dict(ARGUMENT_SPEC['log'], type='str'))

MODULE = 'labforge.instructlab.job_wait'
STATUS_MODULE = 'ansible.builtin.async_status'
# Seconds before the check that confirms a job found without process (instead of a full poll).
RECHECK = 2
# Seconds before the second check; each later pause doubles up to the poll interval. A job that has
# nothing to do (a rerun: the module finds its result in place) ends within a second or two, and is
# then seen ended at once instead of after a whole poll interval.
FIRST_PAUSE = 0.5
LINE_MAX = 120

_ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07')
_WORDY = re.compile(r'[A-Za-z]{2}')
# '[2026-12-02T01:02:03Z host] ' before each line of the instructlab role's install log
_STAMP = re.compile(r'^\[\d{4}-\d\d-\d\d[T ][\d:.,]+Z?(?: [^\]]*)?\]\s*')
_EPOCH = re.compile(r'\bepoch\b[\s:=#"\x27]*(\d+)(?:\s*(?:/|of)\s*(\d+))?', re.I)
_COUNTS = (
    re.compile(r'(\d+)\s*/\s*(\d+)\s*\['),                                  # tqdm: 12/40 [00:10<00:30
    re.compile(r'\bsteps?\b[\s:=#"\x27]*(\d+)\s*(?:/|of)\s*(\d+)', re.I),        # step 12/40, Step 12 of 40
    re.compile(r'\[\s*(\d+)\s*/\s*(\d+)\s*\]'),                              # [12/40] (ninja, cmake)
    re.compile(r'\(\s*(\d+)\s*/\s*(\d+)\s*\)'),                              # (12/40)
)
_STEP = re.compile(r'\bstep\b[\s:=#"\x27]*(\d+)', re.I)
_STAGE = re.compile(
    r'((?:Installed|Prepared|Resolved|Built|Downloaded|Uninstalled|Audited) \d+ packages?'
    r'|Successfully (?:installed|built)\b.{0,60}'
    r'|Building wheels? for [\w.\-]+|Building wheels for collected packages'
    r'|BUILD (?:START|DONE) [\w.=\-]+'
    r'|(?:Installing|Installed|Downloading) Python-\d+(?:\.\d+)*\w*'
    r'|={3,} .{0,80})')


def fmt_elapsed(seconds):
    """'45s', '2m05s', '1h02m'."""
    seconds = int(seconds)
    if seconds < 60:
        return '%ds' % seconds
    if seconds < 3600:
        return '%dm%02ds' % (seconds // 60, seconds % 60)
    return '%dh%02dm' % (seconds // 3600, seconds % 3600 // 60)


def clean_lines(tail):
    """The lines of a log tail as a terminal shows them: no colour codes, a line rewritten with
    carriage returns (a progress bar) as its last rewrite, blank lines left out; without the
    time stamp a log line may start with."""
    out = []
    for line in to_text(tail or '').split('\n'):
        parts = [p for p in _ANSI.sub('', line).split('\r') if p.strip()]
        if parts:
            out.append(_STAMP.sub('', parts[-1].strip()))
    return out


def shorten(line, width=LINE_MAX):
    if len(line) <= width:
        return line
    head = width // 2
    return line[:head] + ' ... ' + line[-(width - head - 5):]


def last_meaningful(lines):
    """The last line that says something (has a word), else the last line, else ''."""
    for line in reversed(lines):
        if _WORDY.search(line):
            return line
    return lines[-1] if lines else ''


def progress(lines):
    """Epoch, step or done/total and the last install/build milestone, as far as the tool printed
    them in the tail LINES (latest first): e.g. 'epoch 2/3, 12/40 (30%)'."""
    found = []
    for line in reversed(lines):
        m = _EPOCH.search(line)
        if m:
            found.append('epoch %s/%s' % m.groups() if m.group(2) else 'epoch %s' % m.group(1))
            break
    for line in reversed(lines):
        count = _count(line)
        if count:
            found.append(count)
            break
        m = _STEP.search(line)
        if m:
            found.append('step %s' % m.group(1))
            break
    return ', '.join(found)


def _count(line):
    for pattern in _COUNTS:
        for m in reversed(list(pattern.finditer(line))):
            done, total = int(m.group(1)), int(m.group(2))
            if 0 < total and done <= total:
                return '%d/%d (%d%%)' % (done, total, done * 100 // total)
    return None


def milestone(lines):
    """The last install/build milestone in LINES ('Installed 212 packages', 'Building wheel for
    llama-cpp-python', 'BUILD START ...'), or ''."""
    for line in reversed(lines):
        m = _STAGE.search(line)
        if m:
            return m.group(1).strip()
    return ''


def progress_line(host, label, elapsed, tail):
    """One progress line: host, label, time waited, progress markers and the last meaningful line."""
    lines = clean_lines(tail)
    last = last_meaningful(lines)
    parts = [fmt_elapsed(elapsed)]
    marks = progress(lines)
    if marks:
        parts.append(marks)
    stage = milestone(lines)
    if stage and stage not in last:
        parts.append(shorten(stage, 60))
    if last:
        parts.append(shorten(last))
    return '[%s] %s: %s' % (host, label, ' | '.join(parts))


def ended(status):
    """Whether an async_status result ends the wait: the job finished (well or not), or the status
    could not be read at all (no 'finished' key: a module failure)."""
    if status.get('finished'):
        return True
    return 'finished' not in status and bool(status.get('failed'))


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        dummy, args = self.validate_argument_spec(argument_spec=ACTION_SPEC)
        for name, least in (('timeout', 1), ('poll', 1), ('progress_interval', 0), ('tail_lines', 1)):
            if args[name] < least:
                raise AnsibleActionFail('job_wait: %s must be at least %d, got %d' % (name, least, args[name]))
        try:
            return self._wait(args, task_vars, result)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    # -- one check ---------------------------------------------------------------------------------

    def _status(self, jid, async_dir, task_vars):
        """async_status of the job (its own result once it ended), as async_status's action shapes it."""
        base = {'ansible_job_id': jid, 'started': True, 'finished': False,
                'results_file': self._connection._shell.join_path(async_dir, jid)}
        status = self._execute_module(module_name=STATUS_MODULE, task_vars=task_vars,
                                      module_args={'jid': jid, 'mode': 'status', '_async_dir': async_dir})
        status = merge_hash(base, status) if 'finished' in status or not status.get('failed') else status
        for key in ('started', 'finished'):
            if key in status:
                status[key] = bool(status[key])
        return status

    def _probe(self, args, task_vars):
        """The module's look at the host: the job's pids (None: unknown) and the log's tail."""
        probe = self._execute_module(module_name=MODULE, task_vars=task_vars,
                                     module_args=dict((k, v) for k, v in args.items() if v is not None))
        if probe.get('failed') or probe.get('unreachable'):
            return {'job_pids': None, 'log_tail': '', 'log_error': to_text(probe.get('msg', 'probe failed'))}
        return probe

    # -- the loop ----------------------------------------------------------------------------------

    def _wait(self, args, task_vars, result):
        host = to_text(task_vars.get('inventory_hostname', '?'))
        jid = (args['jid'] or '').strip()
        label = args['label'] or ('job %s' % jid if jid else 'the background job')
        log = args['log']
        if not jid:
            if self._task.check_mode:
                result.update(skipped=True, changed=False, finished=False, elapsed=0.0,
                              msg='No job to wait for: %s was not started (check mode)' % label)
                return result
            raise AnsibleActionFail('job_wait: jid is empty, no job to wait for (%s): did the task that '
                                    'starts it run?' % label)

        async_dir = self._remote_expand_user(self.get_shell_option('async_dir', default='~/.ansible_async'))
        start = time.monotonic()
        shown = None
        dead = 0
        probe = {}
        pause = FIRST_PAUSE
        while True:
            status = self._status(jid, async_dir, task_vars)
            elapsed = time.monotonic() - start
            if status.get('unreachable'):
                return merge_hash(result, status)
            if ended(status):
                return self._ended(result, status, args, task_vars, label, host, elapsed, shown)
            probe = self._probe(args, task_vars)
            dead = dead + 1 if probe.get('job_pids') == [] else 0
            elapsed = time.monotonic() - start
            if dead >= 2:
                return self._failed(result, status, probe, args, elapsed, job_dead=True, msg=(
                    '%s on %s is dead: job %s has no process left and no result (killed, out of memory '
                    'or the host restarted)%s' % (label, host, jid, self._log_note(log))))
            if elapsed >= args['timeout']:
                return self._failed(result, status, probe, args, elapsed, msg=(
                    '%s on %s did not end within the timeout of %d s (job %s still running)%s'
                    % (label, host, args['timeout'], jid, self._log_note(log))))
            now = time.monotonic()
            if shown is None or now - shown >= args['progress_interval']:
                line = progress_line(host, label, elapsed, probe.get('log_tail', ''))
                if shown is None and log:
                    line += '  (log %s)' % log
                display.display(line)
                shown = now
            wait = RECHECK if dead else min(pause, args['poll'])
            pause *= 2
            time.sleep(max(0, min(wait, args['timeout'] - elapsed)))

    @staticmethod
    def _log_note(log):
        return '; log %s, its last lines are in log_tail' % log if log else ''

    def _ended(self, result, status, args, task_vars, label, host, elapsed, shown):
        if self._task.check_mode and status.get('msg') == 'could not find job':
            result.update(skipped=True, changed=False, finished=False, elapsed=round(elapsed, 1),
                          ansible_job_id=status.get('ansible_job_id'),
                          msg='No job to wait for: %s was not started (check mode)' % label)
            return result
        result = merge_hash(result, status)
        result['elapsed'] = round(elapsed, 1)
        failed = bool(status.get('failed'))
        if failed and args['log']:
            probe = self._probe(args, task_vars)
            result['log'] = args['log']
            result['log_tail'] = probe.get('log_tail', '')
        if shown is not None:
            display.display('[%s] %s: %s after %s' % (host, label, 'failed' if failed else 'ended',
                                                      fmt_elapsed(elapsed)))
        return result

    @staticmethod
    def _failed(result, status, probe, args, elapsed, msg, job_dead=False):
        result = merge_hash(result, status)
        result.update(failed=True, finished=False, msg=msg, elapsed=round(elapsed, 1))
        if job_dead:
            result['job_dead'] = True
        if args['log']:
            result['log'] = args['log']
            result['log_tail'] = probe.get('log_tail', '')
        return result
