#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: job_wait
short_description: Wait for a background job and show its progress
version_added: 0.1.0
description:
  - Waits for a job started with C(async) and C(poll) V(0), in one task, and prints a progress line through
    Ansible's display at most every O(progress_interval) seconds (visible without C(-v)) - the host, the
    O(label), the time waited, the last meaningful line of the job's O(log), and the epoch, step or
    done/total count where the tool prints one (C(tqdm) bars, C(Epoch 2), C(12/40)).
  - Each check runs M(ansible.builtin.async_status) with the task's privilege settings (the job's status
    lives in the home of the user the job ran as), so use the same C(become)/C(become_user) as the task
    that started the job.
  - Fails at once when the host becomes unreachable (the host is marked unreachable), when the job ended
    with a failure (the job's result is returned, with the tail of O(log)), and when the job is dead - its
    processes are gone without a result (killed, out of memory, host rebooted). C(async_wrapper) writes
    C(finished=0) into the job file when the job starts and the result only when it ends, so a job with
    no process left for two checks in a row is dead.
  - Fails when the job has not ended after O(timeout) seconds; the message names the O(label), the O(log)
    and the timeout. The job itself keeps its own C(async) limit.
  - Returns the job's own result (C(rc), C(stdout), the module's return values, C(failed), C(changed)), so
    tasks that read the registered result of M(ansible.builtin.async_status) keep working.
  - On the host, each check also runs this module, which looks for the job's C(async_wrapper) processes
    in C(/proc) and reads the end of O(log) through the collection's file layer, without following a link
    that the privilege rule forbids.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.attributes
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  async:
    description: Supports being used with the C(async) keyword.
    support: none
  check_mode:
    support: full
    details: Waiting only reads. A job that was not started (O(jid) empty, or the job unknown on the
      host) is reported as skipped without waiting.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Returns the job's own result, so C(changed) is the job's on every call.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
options:
  jid:
    description:
      - The C(ansible_job_id) of the job, registered from the task that started it with C(async) and
        C(poll) V(0).
      - Empty only in check mode, when that task did not start a job (it is then reported as skipped).
    type: str
    required: true
  timeout:
    description:
      - Seconds to wait at most. When the job has not ended by then, the task fails (the job keeps running
        until its own C(async) limit).
    type: int
    default: 3600
  poll:
    description:
      - Seconds between two checks of the job (each is one short connection to the host).
      - The first checks come sooner (after 0.5 s, then twice as long each time, up to O(poll)), so
        that a job with nothing to do is seen ended at once.
    type: int
    default: 10
  log:
    description:
      - The job's log on the host. Its last meaningful line is shown in the progress lines and its tail is
        returned when the job fails or is dead.
    type: path
  label:
    description:
      - What the job does, for the progress lines and messages (for example C(Build CPython 3.11.9)).
        Defaults to the job id.
    type: str
  progress_interval:
    description:
      - At most one progress line per this many seconds. V(0) prints one at every check.
    type: int
    default: 30
  tail_lines:
    description:
      - Lines of O(log) returned in RV(log_tail) when the job fails, is dead or times out.
    type: int
    default: 20
notes:
  - The progress lines name the log file; follow it on the host with C(tail -f) for every line.
  - The host must be a POSIX host with C(/proc) (Linux) for a dead job to be told from a running one;
    without it a dead job is only found by O(timeout).
seealso:
  - module: ansible.builtin.async_status
'''

EXAMPLES = r'''
- name: Build CPython into its prefix, logging to /var/log/pyenv-build.log
  ansible.builtin.shell:
    cmd: exec pyenv install --verbose 3.11.9 > /var/log/pyenv-build.log 2>&1
  async: 3600
  poll: 0
  register: build_job
  changed_when: false

- name: Wait for the build to end (log /var/log/pyenv-build.log)
  labforge.instructlab.job_wait:
    jid: "{{ build_job.ansible_job_id }}"
    label: Build CPython 3.11.9
    log: /var/log/pyenv-build.log
    timeout: 3600
    poll: 15
  register: build

- name: Train in the background
  labforge.instructlab.ilab_model_train:
    name: granite-skills
  become: true
  async: 86400
  poll: 0
  register: train_job

- name: Wait for the training; keep the module's return values
  labforge.instructlab.job_wait:
    jid: "{{ train_job.ansible_job_id }}"
    label: Training
    log: /var/lib/instructlab/.local/state/labforge/logs/ilab-model-train-granite-skills.log
    timeout: 86400
    poll: 60
    progress_interval: 300
  become: true
  register: train_result

- name: Use what the job returned
  ansible.builtin.debug:
    msg: "{{ train_result.gguf_path }} after {{ train_result.elapsed }} s"
'''

RETURN = r'''
elapsed:
  description: Seconds waited by this task.
  returned: always
  type: float
  sample: 312.4
ansible_job_id:
  description: The job's id.
  returned: always
  type: str
  sample: j418206815235.2231
finished:
  description: Whether the job ended (with success or failure). False when it is dead or ran past O(timeout).
  returned: always
  type: bool
  sample: true
job_dead:
  description: True when the job's processes are gone without a result.
  returned: when the job is dead
  type: bool
  sample: true
log:
  description: The job's log (O(log)).
  returned: when O(log) is set
  type: str
  sample: /var/log/pyenv-build.log
log_tail:
  description: The last O(tail_lines) lines of O(log).
  returned: when the job failed, is dead or ran past O(timeout), and O(log) is set
  type: str
  sample: "make: *** [Makefile:2052: install] Error 2"
job_pids:
  description: Internal (the module's own result on the host) - the pids of the job's C(async_wrapper)
    processes; null when C(/proc) cannot be read.
  returned: from the module only
  type: list
  elements: int
  sample: [2231, 2232]
'''

import errno

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.labforge.instructlab.plugins.module_utils import _fs

# Bytes read from the end of the log: enough for the tail lines and for a progress bar
# that rewrites one line with carriage returns.
TAIL_BYTES = 64 * 1024
LINE_CHARS = 2000

ARGUMENT_SPEC = dict(
    jid=dict(type='str', required=True),
    timeout=dict(type='int', default=3600),
    poll=dict(type='int', default=10),
    log=dict(type='path'),
    label=dict(type='str'),
    progress_interval=dict(type='int', default=30),
    tail_lines=dict(type='int', default=20),
)


def wrapper_key(jid):
    """The argument async_wrapper runs with for job JID: the controller's id, before the '.<pid>'
    that async_wrapper appends to form the job id."""
    return jid.rsplit('.', 1)[0] if '.' in jid else jid


def is_wrapper(argv, key):
    """Whether ARGV (a process's command line) is async_wrapper running the job KEY
    (``python .../AnsiballZ_async_wrapper.py KEY LIMIT MODULE ARGS``)."""
    for i in range(len(argv) - 1):
        if 'async_wrapper' in argv[i].rsplit('/', 1)[-1] and argv[i + 1] == key:
            return True
    return False


def job_pids(jid, proc='/proc'):
    """Pids of the processes running job JID (async_wrapper's supervisor and the module's
    runner); None when the process table cannot be read."""
    key = wrapper_key(jid)
    try:
        names = _fs.listdir(proc)
    except (IOError, OSError):
        return None
    pids = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            raw = _fs.read_bytes('%s/%s/cmdline' % (proc, name))
        except (IOError, OSError):
            continue   # gone meanwhile, or not ours to read
        argv = [to_text(a, errors='surrogate_or_replace') for a in raw.split(b'\0') if a]
        if is_wrapper(argv, key):
            pids.append(int(name))
    return pids


def log_tail(path, lines):
    """(the last LINES lines of the log, error): read without following links the file layer
    refuses; ('', None) when it does not exist yet."""
    try:
        data = _fs.read_bytes(path, limit=TAIL_BYTES)
    except (IOError, OSError) as e:
        if getattr(e, 'errno', None) in (errno.ENOENT, errno.ENOTDIR):
            return '', None
        return '', to_text(e)
    text = to_text(data, errors='surrogate_or_replace')
    shown = [screen_line(line) for line in text.split('\n')]
    while shown and not shown[-1]:
        shown.pop()
    return '\n'.join(shown[-max(lines, 1):]), None


def screen_line(line):
    """LINE as a terminal shows it: a progress bar rewrites its line with carriage returns, so
    only the last non-empty rewrite counts (and at most LINE_CHARS of it)."""
    parts = [part for part in line.split('\r') if part.strip()]
    return parts[-1].rstrip()[-LINE_CHARS:] if parts else ''


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    result = dict(changed=False, job_pids=job_pids(p['jid']) if p['jid'] else [])
    if p['log']:
        result['log'] = p['log']
        result['log_tail'], error = log_tail(p['log'], p['tail_lines'])
        if error:
            result['log_error'] = error
    module.exit_json(**result)


if __name__ == '__main__':
    main()
