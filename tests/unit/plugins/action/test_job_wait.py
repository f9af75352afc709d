# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""labforge.instructlab.job_wait: the action's loop against a scripted host (a fake
``_execute_module`` and a fake clock), the module's look at the host (/proc, the log), and
the real ansible-core async_wrapper: what it leaves behind when its job is killed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import posixpath
import shutil
import signal
import subprocess
import sys
import time

import pytest

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.modules import async_wrapper as ansible_async_wrapper

from ansible_collections.labforge.instructlab.plugins.action import job_wait as action_mod
from ansible_collections.labforge.instructlab.plugins.modules import job_wait as module_mod

JID = 'j418206815235.2231'
ASYNC_DIR = '/home/u/.ansible_async'
LOG = '/var/log/labforge/instructlab-install.log'


class FakeClock(object):
    """time.monotonic/time.sleep of the plugin: sleeping advances the clock; each module call
    on the host takes one second."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class FakeHost(object):
    """The host: answers async_status from STATUSES (the last one repeats) and the module's probe
    from PROBES (the last one repeats); records every call."""

    def __init__(self, clock, statuses, probes=None):
        self.clock = clock
        self.statuses = list(statuses)
        self.probes = list(probes or [{'job_pids': [4242, 4243], 'log_tail': ''}])
        self.calls = []

    def execute_module(self, module_name=None, module_args=None, task_vars=None, **kwargs):
        self.clock.now += 1
        self.calls.append((module_name, dict(module_args)))
        if module_name == action_mod.STATUS_MODULE:
            assert module_args == {'jid': JID, 'mode': 'status', '_async_dir': ASYNC_DIR}
            queue = self.statuses
        else:
            assert module_name == 'labforge.instructlab.job_wait'
            queue = self.probes
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return dict(item)

    def count(self, module_name):
        return sum(1 for name, dummy in self.calls if name == module_name)


class FakeTask(object):
    def __init__(self, args, check_mode=False):
        self.args = args
        self.check_mode = check_mode
        self.async_val = 0
        self.action = 'labforge.instructlab.job_wait'


class FakeShell(object):
    tmpdir = None

    @staticmethod
    def join_path(*parts):
        return posixpath.join(*parts)


class FakeConnection(object):
    def __init__(self):
        self._shell = FakeShell()


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(action_mod, 'time', fake)
    return fake


@pytest.fixture
def shown(monkeypatch):
    lines = []
    monkeypatch.setattr(action_mod.display, 'display', lambda msg, *a, **kw: lines.append(msg))
    return lines


def run_action(host, check_mode=False, **args):
    task_args = {'jid': JID}
    task_args.update(args)
    action = action_mod.ActionModule(FakeTask(task_args, check_mode), FakeConnection(), None, None, None)
    action._execute_module = host.execute_module
    action._remote_expand_user = lambda path, **kw: ASYNC_DIR if path == '~/.ansible_async' else path
    action.get_shell_option = lambda option, default=None: default
    action._remove_tmp_path = lambda *a, **kw: None
    return action.run(task_vars={'inventory_hostname': 'lf-host'})


RUNNING = {'ansible_job_id': JID, 'started': 1, 'finished': 0, 'results_file': ASYNC_DIR + '/' + JID}


def done(**result):
    out = {'ansible_job_id': JID, 'finished': 1, 'changed': True, 'rc': 0, 'stdout': '{"hashes": {}}',
           'stderr': '', 'cmd': ['python3', 'instructlab_venv.py', 'locked']}
    out.update(result)
    return out


def tqdm(step, total=40):
    return 'Epoch 1: %d%%|####      | %d/%d [00:%02d<00:30, 1.20it/s]' % (step * 100 // total, step, total, step)


# ----------------------------------------------------------------------------- the action's loop
def test_progress_lines_are_printed_at_most_every_interval_and_the_jobs_result_is_returned(clock, shown):
    tails = ['Collecting torch\nDownloading torch-2.6.0.whl', 'Installed 212 packages in 3.1s',
             'Epoch 0\n' + '\r'.join(tqdm(s) for s in (1, 2, 3)),
             'Epoch 1\r\n' + '\r'.join(tqdm(s) for s in (10, 11, 12)) + '\r',
             '\x1b[32mBUILD START llama-cpp-python==0.3.2\x1b[0m\n[ 12/40] Building C object ggml.c.o']
    host = FakeHost(clock, [RUNNING] * 14 + [done()],
                    [{'job_pids': [4242], 'log_tail': tails[min(i // 3, len(tails) - 1)]} for i in range(14)])
    result = run_action(host, label='Install the lock', log=LOG, poll=10, progress_interval=30)

    assert host.count(action_mod.STATUS_MODULE) == 15
    assert result['rc'] == 0 and result['stdout'] == '{"hashes": {}}' and result['changed'] is True
    assert result['finished'] is True and result['ansible_job_id'] == JID
    assert not result.get('failed') and result['elapsed'] > 100
    # the first checks come quickly (0.5, 1, 2, 4, 8 s apart), then every 10 s (the poll)
    assert clock.sleeps == [0.5, 1, 2, 4, 8] + [10] * 9
    # one line at the first check, then one per 30 s (not one per check), then the end
    progress = [line for line in shown if 'ended after' not in line]
    assert 3 <= len(progress) <= 6, shown
    assert progress[0].startswith('[lf-host] Install the lock: 2s | ') and progress[0].endswith('(log %s)' % LOG)
    assert 'Downloading torch-2.6.0.whl' in progress[0]
    assert all(line.startswith('[lf-host] Install the lock: ') for line in shown)
    assert any('epoch 1, 12/40 (30%)' in line for line in shown), shown
    assert shown[-1].startswith('[lf-host] Install the lock: ended after 2m')


def test_progress_markers_of_the_tools():
    assert action_mod.progress(action_mod.clean_lines('Epoch 2/3\n 30%|###  | 12/40 [00:10<00:30]')) == 'epoch 2/3, 12/40 (30%)'
    assert action_mod.progress(action_mod.clean_lines('Epoch 2/3\n' + tqdm(12))) == 'epoch 1, 12/40 (30%)'
    assert action_mod.progress(['step 7 of 10: loss=0.31']) == '7/10 (70%)'
    assert action_mod.progress(['{"epoch": 0, "step": 35, "total_loss": 1.2}']) == 'epoch 0, step 35'
    assert action_mod.progress(['[ 3/120] Building C object']) == '3/120 (2%)'
    assert action_mod.progress(['gcc -c Objects/abstract.c -o Objects/abstract.o']) == ''
    assert action_mod.milestone(['Resolved 230 packages in 2.0s', 'Installed 212 packages in 3.1s',
                                 'pip check']) == 'Installed 212 packages'
    assert action_mod.milestone(['Building wheel for llama-cpp-python (pyproject.toml): started',
                                 '  -- Configuring done']) == 'Building wheel for llama-cpp-python'
    assert action_mod.milestone(['Downloading Python-3.11.9.tar.xz...', 'Installing Python-3.11.9...',
                                 'gcc -pthread -c x.c']) == 'Installing Python-3.11.9'
    line = action_mod.progress_line('h', 'Build', 75, 'Installing Python-3.11.9...\n' + 'gcc ' + 'x' * 300 + '\n\n')
    assert line.startswith('[h] Build: 1m15s | Installing Python-3.11.9 | gcc xxx') and len(line) < 220
    assert action_mod.fmt_elapsed(3725) == '1h02m'
    assert action_mod.clean_lines('[2026-12-02T01:02:03Z lf-host] $ uv pip install -r lock.txt\n'
                                  '[2026-12-02T01:02:09Z lf-host] rc=0 in 6.0s') == [
        '$ uv pip install -r lock.txt', 'rc=0 in 6.0s']


def test_a_failed_job_fails_at_once_with_its_result_and_the_log_tail(clock, shown):
    failed = done(failed=True, rc=1, msg='non-zero return code', stderr='boom')
    host = FakeHost(clock, [RUNNING, failed],
                    [{'job_pids': [4242], 'log_tail': 'compiling\nerror: no compiler'}])
    result = run_action(host, label='Compile the wheels', log=LOG, poll=5)

    assert result['failed'] is True and result['rc'] == 1 and result['msg'] == 'non-zero return code'
    assert result['stderr'] == 'boom' and result['finished'] is True
    assert result['log'] == LOG and result['log_tail'] == 'compiling\nerror: no compiler'
    assert [args['log'] for name, args in host.calls if name == 'labforge.instructlab.job_wait'] == [LOG, LOG]
    assert host.count(action_mod.STATUS_MODULE) == 2
    assert clock.sleeps == [action_mod.FIRST_PAUSE]


def test_the_log_path_is_expanded_on_the_host_not_on_the_controller(clock, shown):
    host = FakeHost(clock, [RUNNING, done()])
    run_action(host, log='~/.local/state/labforge/logs/ilab-model-train-train.log')
    assert [args['log'] for name, args in host.calls if name == 'labforge.instructlab.job_wait'] == [
        '~/.local/state/labforge/logs/ilab-model-train-train.log']


def test_a_failed_job_without_log_is_returned_as_it_is(clock, shown):
    host = FakeHost(clock, [done(failed=True, rc=3, msg='non-zero return code')])
    result = run_action(host)
    assert result['failed'] is True and result['rc'] == 3 and 'log_tail' not in result
    assert host.count('labforge.instructlab.job_wait') == 0 and shown == []


def test_a_dead_job_fails_within_two_checks_with_the_log_tail(clock, shown):
    host = FakeHost(clock, [RUNNING], [{'job_pids': [], 'log_tail': 'Epoch 1\nKilled'}])
    result = run_action(host, label='Training', log=LOG, poll=60, timeout=86400)

    assert result['failed'] is True and result['job_dead'] is True and result['finished'] is False
    assert host.count(action_mod.STATUS_MODULE) == 2
    assert 'Training on lf-host is dead' in result['msg'] and LOG in result['msg']
    assert result['log_tail'] == 'Epoch 1\nKilled'
    assert clock.sleeps == [action_mod.RECHECK]   # the confirming check comes early, not after a poll


def test_a_job_with_nothing_to_do_is_seen_ended_at_once_not_after_a_poll(clock, shown):
    # a rerun: the background module finds its result in place and ends within a second
    host = FakeHost(clock, [RUNNING, done(changed=False)], [{'job_pids': [4242], 'log_tail': ''}])
    result = run_action(host, label='Training', log=LOG, poll=60)
    assert not result.get('failed') and result['changed'] is False
    assert clock.sleeps == [0.5] and result['elapsed'] < 5


def test_a_job_that_ended_between_the_two_looks_is_not_dead(clock, shown):
    # async_status saw it running, then its process was gone: it wrote its result meanwhile
    host = FakeHost(clock, [RUNNING, done()], [{'job_pids': [], 'log_tail': ''}])
    result = run_action(host, poll=10)
    assert not result.get('failed') and result['rc'] == 0


def test_an_unknown_process_table_is_not_taken_for_a_dead_job(clock, shown):
    host = FakeHost(clock, [RUNNING] * 4 + [done()], [{'job_pids': None, 'log_tail': ''}])
    result = run_action(host, poll=10)
    assert not result.get('failed') and host.count(action_mod.STATUS_MODULE) == 5


def test_an_unreachable_host_propagates_at_once(clock, shown):
    host = FakeHost(clock, [RUNNING, AnsibleConnectionFailure('Failed to connect to the host via ssh')])
    with pytest.raises(AnsibleConnectionFailure):
        run_action(host, poll=10)
    assert host.count(action_mod.STATUS_MODULE) == 2 and clock.sleeps == [action_mod.FIRST_PAUSE]


def test_a_status_that_cannot_be_read_ends_the_wait(clock, shown):
    host = FakeHost(clock, [{'failed': True, 'msg': 'MODULE FAILURE', 'module_stdout': ''}])
    result = run_action(host, poll=10)
    assert result['failed'] is True and result['msg'] == 'MODULE FAILURE' and host.calls[1:] == []


def test_the_timeout_fails_naming_label_log_and_timeout(clock, shown):
    host = FakeHost(clock, [RUNNING], [{'job_pids': [4242], 'log_tail': 'make -j2'}])
    result = run_action(host, label='Build CPython 3.11.9', log='/home/py/build.log', timeout=60, poll=15)

    assert result['failed'] is True and result['finished'] is False and 'job_dead' not in result
    assert result['msg'] == ('Build CPython 3.11.9 on lf-host did not end within the timeout of 60 s (job %s '
                             'still running); log /home/py/build.log, its last lines are in log_tail' % JID)
    assert result['log_tail'] == 'make -j2' and 60 <= result['elapsed'] <= 80
    # quick first checks (0.5, 1, 2, 4, 8 s apart), then one per poll
    assert host.count(action_mod.STATUS_MODULE) <= 9


def test_check_mode_without_a_started_job_is_skipped_without_waiting(clock, shown):
    host = FakeHost(clock, [RUNNING])
    result = run_action(host, check_mode=True, jid='', label='Training')
    assert result['skipped'] is True and 'Training was not started (check mode)' in result['msg']
    assert host.calls == [] and clock.sleeps == []

    host = FakeHost(clock, [{'failed': True, 'msg': 'could not find job', 'started': 1, 'finished': 1}])
    result = run_action(host, check_mode=True)
    assert result['skipped'] is True and not result.get('failed') and len(host.calls) == 1


def test_check_mode_waits_for_a_job_that_was_started(clock, shown):
    host = FakeHost(clock, [RUNNING, done(changed=False, msg='skipped, since /x exists')])
    result = run_action(host, check_mode=True, poll=3)
    assert not result.get('skipped') and result['msg'] == 'skipped, since /x exists'


def test_bad_input_fails_before_any_check(clock, shown):
    host = FakeHost(clock, [RUNNING])
    with pytest.raises(AnsibleActionFail, match='jid is empty'):
        run_action(host, jid=' ')
    with pytest.raises(AnsibleActionFail, match='poll must be at least 1'):
        run_action(host, poll=0)
    with pytest.raises(AnsibleActionFail, match='timeout'):
        run_action(host, timeout='soon')
    with pytest.raises(AnsibleActionFail, match='bogus'):
        run_action(host, bogus=1)
    assert host.calls == []


# ---------------------------------------------------------------------- the module on the host
def test_the_module_finds_the_wrapper_processes_of_the_job(tmp_path):
    proc = tmp_path / 'proc'
    for pid, argv in ((10, ['/usr/bin/python3', '/root/.ansible/tmp/ansible-tmp-1/AnsiballZ_async_wrapper.py',
                            'j418206815235', '3600', '/root/.ansible/tmp/ansible-tmp-1/AnsiballZ_command.py', '_']),
                      (11, ['/usr/bin/python3', '/tmp/x/async_wrapper.py', 'j999', '60', 'm', '_']),
                      (12, ['/bin/sh', '-c', 'python3 async_wrapper.py j418206815235 3600 m _']),
                      (13, [])):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / 'cmdline').write_bytes(b'\0'.join(a.encode() for a in argv) + b'\0')
    (proc / 'self').mkdir()
    assert module_mod.job_pids(JID, proc=str(proc)) == [10]
    assert module_mod.job_pids('j123.1', proc=str(proc)) == []
    assert module_mod.job_pids(JID, proc=str(tmp_path / 'none')) is None


def test_the_module_reads_the_log_tail_as_a_terminal_shows_it(tmp_path):
    log = tmp_path / 'train.log'
    log.write_bytes(b'x\n' * 100 + b'Epoch 0\n' + b'\r'.join(tqdm(s).encode() for s in (1, 2)) + b'\r\n\n')
    tail, error = module_mod.log_tail(str(log), 2)
    assert error is None and tail == 'Epoch 0\n' + tqdm(2)
    assert module_mod.log_tail(str(tmp_path / 'missing.log'), 5) == ('', None)
    (tmp_path / 'fifo').mkdir()
    tail, error = module_mod.log_tail(str(tmp_path / 'fifo'), 5)
    assert tail == '' and error


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root (the waits of the roles run as root)')
def test_the_module_as_root_never_returns_a_file_that_the_log_owner_linked_in(tmp_path):
    """The privilege rule: the service account owns the log directory and replaces its log by a
    link to a root-only file; root's look at the log returns nothing of that file."""
    os.chmod(str(tmp_path), 0o755)
    secret = tmp_path / 'root-only'
    secret.write_text('root-only canary 1e9a\n')
    secret.chmod(0o600)
    logs = tmp_path / 'logs'
    logs.mkdir()
    os.chown(str(logs), 65534, 65534)
    os.symlink(str(secret), str(logs / 'train.log'))
    os.lchown(str(logs / 'train.log'), 65534, 65534)
    tail, error = module_mod.log_tail(str(logs / 'train.log'), 20)
    assert tail == '' and error and 'canary' not in error
    (logs / 'train.log').unlink()
    (logs / 'train.log').write_text('Epoch 1\n')
    os.chown(str(logs / 'train.log'), 65534, 65534)
    assert module_mod.log_tail(str(logs / 'train.log'), 20) == ('Epoch 1', None)


@pytest.mark.skipif(not os.path.isdir('/proc/self'), reason='needs /proc')
def test_what_async_wrapper_leaves_when_its_job_is_killed(tmp_path):
    """The real async_wrapper of ansible-core: while the job runs, its job file says finished=0
    and the module finds its processes; once they are killed (OOM killer, kill -9), the job file
    still says finished=0 forever and the module finds no process: a dead job."""
    job = tmp_path / 'job.py'
    job.write_text('#!%s\nimport time\ntime.sleep(60)\nprint(\'{"rc": 0}\')\n' % sys.executable)
    job.chmod(0o755)
    # as Ansible runs it: a copy in a directory of its own (not beside ansible's other modules)
    wrapper = tmp_path / 'remote' / 'AnsiballZ_async_wrapper.py'
    wrapper.parent.mkdir()
    shutil.copy(ansible_async_wrapper.__file__, str(wrapper))
    env = dict(os.environ, ANSIBLE_ASYNC_DIR=str(tmp_path / 'async'))
    out = subprocess.run([sys.executable, str(wrapper), 'j77001', '120', str(job), '_'],
                         env=env, capture_output=True, text=True, timeout=30, check=True).stdout
    started = json.loads(out)
    jid = started['ansible_job_id']
    assert jid.startswith('j77001.') and started['finished'] is False
    job_file = tmp_path / 'async' / jid
    pids, runner = [], []
    for dummy in range(100):
        pids = module_mod.job_pids(jid)
        # the module's runner leads its own process group (the watcher kills that group on timeout)
        runner = [pid for pid in pids if os.getpgid(pid) == pid]
        if job_file.exists() and len(pids) == 2 and runner:
            break
        time.sleep(0.1)
    assert json.loads(job_file.read_text()) == {'started': True, 'finished': False, 'ansible_job_id': jid}
    assert len(pids) == 2 and len(runner) == 1, pids   # the watcher and the module's runner
    os.killpg(runner[0], signal.SIGKILL)   # the runner and the job: what the OOM killer or kill -9 does
    for dummy in range(100):
        if module_mod.job_pids(jid) == []:
            break
        time.sleep(0.1)
    # the watcher saw its child end and left; nobody wrote a result
    assert module_mod.job_pids(jid) == []
    assert json.loads(job_file.read_text())['finished'] is False


# ---------------------------------------------------------------- a real ansible-playbook run
# Run by the job: up from itself to async_wrapper's runner, then kills the runner's group.
KILL_RUNNER = '''
import os, signal
pid = os.getpid()
while pid > 1:
    with open('/proc/%d/cmdline' % pid, 'rb') as f:
        if b'async_wrapper' in f.read():
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    with open('/proc/%d/stat' % pid) as f:
        pid = int(f.read().rsplit(')', 1)[1].split()[1])
'''

PLAYBOOK = r'''
- name: Wait for background jobs with job_wait
  hosts: all
  gather_facts: false
  vars:
    logdir: "%(logdir)s"
  tasks:
    - name: Start a job that reports progress
      ansible.builtin.shell: |
        for i in 1 2 3 4; do echo "Epoch 1: $i/4 [00:0$i<00:04]" >> {{ logdir }}/good.log; sleep 1; done
        echo all done
      async: 60
      poll: 0
      register: good_job

    - name: Wait for it, follow {{ logdir }}/good.log
      labforge.instructlab.job_wait:
        jid: "{{ good_job.ansible_job_id }}"
        label: Good job
        log: "{{ logdir }}/good.log"
        poll: 1
        progress_interval: 0
      register: good

    - name: Start a job that fails
      ansible.builtin.shell: echo "error - no compiler" >> {{ logdir }}/bad.log; exit 3
      async: 60
      poll: 0
      register: bad_job

    - name: Wait for the failing job
      labforge.instructlab.job_wait:
        jid: "{{ bad_job.ansible_job_id }}"
        log: "{{ logdir }}/bad.log"
        poll: 1
      register: bad
      failed_when: false

    # The job kills async_wrapper's runner and its process group (the module, the shell, itself),
    # as the OOM killer or kill -9 would: the job file keeps finished=0 and no process of the job
    # is left (the watcher sees its child end and leaves).
    - name: Start a job that gets killed
      ansible.builtin.shell: |
        echo started >> {{ logdir }}/dead.log
        sleep 1
        {{ ansible_python_interpreter }} {{ logdir }}/kill_runner.py
      async: 120
      poll: 0
      register: dead_job

    - name: Wait for the killed job
      labforge.instructlab.job_wait:
        jid: "{{ dead_job.ansible_job_id }}"
        label: Doomed job
        log: "{{ logdir }}/dead.log"
        poll: 3
      register: dead
      failed_when: false

    - name: Start a job to wait for over a connection that fails
      ansible.builtin.command: sleep 1
      async: 60
      poll: 0
      register: lost_job

    - name: Wait for it over a connection that fails
      labforge.instructlab.job_wait:
        jid: "{{ lost_job.ansible_job_id }}"
        poll: 1
      vars:
        ansible_connection: ssh
        ansible_host: 127.0.0.1
        ansible_port: 1
        ansible_ssh_timeout: 5
      register: lost
      ignore_unreachable: true

    - name: Show the results
      ansible.builtin.copy:
        content: "{{ {'good': good, 'bad': bad, 'dead': dead, 'lost': lost} | to_json }}"
        dest: "{{ logdir }}/results.json"
        mode: "0600"
'''


def test_a_real_playbook_shows_progress_and_fails_dead_and_failed_jobs_at_once(tmp_path):
    logdir = tmp_path / 'logs'
    logdir.mkdir()
    (logdir / 'kill_runner.py').write_text(KILL_RUNNER)
    (tmp_path / 'playbook.yml').write_text(PLAYBOOK.replace('%(logdir)s', str(logdir)))
    (tmp_path / 'inventory').write_text('localhost ansible_connection=local ansible_python_interpreter=%s\n'
                                        % sys.executable)
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='False',
               ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'), ANSIBLE_ASYNC_DIR=str(tmp_path / 'async'),
               ANSIBLE_CONFIG=str(tmp_path / 'ansible.cfg'))
    (tmp_path / 'ansible.cfg').write_text('[defaults]\n')
    env.pop('ANSIBLE_STDOUT_CALLBACK', None)
    exe = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    proc = subprocess.run([exe if os.path.exists(exe) else 'ansible-playbook', '-i', str(tmp_path / 'inventory'),
                           str(tmp_path / 'playbook.yml')], cwd=str(tmp_path), env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    results = json.loads((logdir / 'results.json').read_text())

    good, bad, dead = results['good'], results['bad'], results['dead']
    assert good['rc'] == 0 and good['stdout'] == 'all done' and good['finished'] is True, good
    assert good['elapsed'] >= 2
    progress = [line for line in out.splitlines() if line.startswith('[localhost] Good job: ')]
    assert len(progress) >= 2, out
    assert any('epoch 1, ' in line and '/4 (' in line for line in progress), progress
    assert 'FAILED - RETRYING' not in out

    # failed_when: false (as the instructlab role does) keeps the job's result for later tasks
    assert bad['failed_when_result'] is False and bad['rc'] == 3 and 'error - no compiler' in bad['log_tail'], bad

    assert dead['job_dead'] is True and dead['finished'] is False, dead
    assert 'Doomed job on localhost is dead' in dead['msg'] and 'started' in dead['log_tail']
    # two checks (the second one early), far below the job's async limit of 120 s (slack for a busy CI)
    assert dead['elapsed'] < 60

    # a connection failure propagates: Ansible marks the host unreachable at the first check
    assert results['lost']['unreachable'] is True and 'elapsed' not in results['lost'], results['lost']
