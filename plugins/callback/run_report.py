# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
name: run_report
type: aggregate
short_description: Writes one Markdown and one JSON report per playbook run
version_added: "0.1.0"
author:
  - labforge engineers (@labforge)
description:
  - Records, per host, every task result of the run (task, role, action, status, start, end and duration)
    and what the collection's roles and modules tell about the host, then writes at the end of the run
    one JSON and one Markdown report on the controller,
    C(<report_dir>/<report_name>-<UTC timestamp>.json) and C(.md), and points C(latest.json) and
    C(latest.md) in the same directory at them. The path of the report is printed after the recap.
    Reports are written with mode 0600 (a new report directory gets 0700), since they name hosts, paths and
    versions of the fleet.
  - "Per host the report holds: the operating system and the Python that Ansible found (from gathered facts),
    the Python the C(labforge.instructlab.python) role published (fact C(python_interpreter),
    C(python_interpreter_version)), the GPUs and the InstructLab system profile chosen for them (fact
    C(gpu_info) of M(labforge.instructlab.gpu_info), fact C(nvidia_driver_status)), the versions installed
    (fact C(instructlab_version_installed), C(ilab_version) of the modules, the driver and CUDA versions),
    the public facts of the collection's roles (names starting with C(python_), C(nvidia_driver_),
    C(instructlab_), C(ilab_), C(labforge_) or C(gpu_info)), the status and duration of each step, the
    artifacts and the serving endpoint."
  - "Artifacts are what a task result returns under the key C(report): every module of the collection returns
    there the paths, URLs, digests, row counts, losses and versions of its result a reader needs (see C(report) in
    the RETURN documentation of each module); a role or another module may do the same. The dict is recorded,
    sanitised as below, as the step's artifact entry (one per loop item in C(items)); a result without C(report)
    has none. A C(report.endpoint), C(report.url) or C(report.base_url) becomes the host's endpoint, a
    C(report.ilab_version) the host's InstructLab version when no role published one.
    A module started in the background (C(async) with C(poll: 0)) has its artifacts read from the
    M(ansible.builtin.async_status) or M(labforge.instructlab.job_wait) result that ends its job; that artifact
    entry names the module."
  - "Contract for modules and roles: C(report) is a flat dict C({name: value}); put there only what a reader of the
    report needs (paths, digests, row counts, losses, URLs), never a secret, a command line or command output.
    The collection's modules build it with C(module_utils._report)."
  - "What is never recorded: results of tasks with C(no_log) (only the step, its status and its time are
    kept), module arguments (C(invocation)), C(stdout)/C(stderr), extra vars, and any key, at any depth,
    whose name looks like a credential (C(password), C(passwd), C(secret), C(token), C(api_key),
    C(private_key), C(credential), C(authorization), C(auth), C(cookie)). In the strings kept,
    C(user:password@) in URLs and Hugging Face tokens (C(hf_...)) are replaced by C(***)."
  - Works in check mode (the report says so) and when hosts fail or are unreachable (the host is listed
    with its failed step and the message of the failure).
  - Long strings and lists are shortened so that a report stays readable.
requirements:
  - Enable it, for example with C(callbacks_enabled = labforge.instructlab.run_report) in the
    C([defaults]) section of C(ansible.cfg) or with E(ANSIBLE_CALLBACKS_ENABLED).
options:
  report_dir:
    description:
      - The directory the reports are written to, created when missing.
      - A relative path is relative to the directory C(ansible-playbook) runs in.
    type: path
    default: ./reports
    env:
      - name: LABFORGE_REPORT_DIR
    ini:
      - section: labforge_run_report
        key: report_dir
  report_name:
    description:
      - The first part of the file names; the UTC time at which the run started follows it,
        for example C(run-20261125T210000Z.json).
    type: str
    default: run
    env:
      - name: LABFORGE_REPORT_NAME
    ini:
      - section: labforge_run_report
        key: report_name
  latest:
    description:
      - Whether to point C(latest.json) and C(latest.md) at the newest report (symbolic links, or copies
        where links cannot be made).
    type: bool
    default: true
    env:
      - name: LABFORGE_REPORT_LATEST
    ini:
      - section: labforge_run_report
        key: latest
notes:
  - One report per C(ansible-playbook) run, written when the run ends normally (also when hosts
    failed). A run stopped by Ctrl-C writes none.
  - The JSON document has C(format) V(labforge.instructlab.run_report/v1).
seealso:
  - module: labforge.instructlab.gpu_info
'''

EXAMPLES = r'''
# ansible.cfg
# [defaults]
# callbacks_enabled = labforge.instructlab.run_report
# [labforge_run_report]
# report_dir = ./reports

# or for one run:
# ANSIBLE_CALLBACKS_ENABLED=labforge.instructlab.run_report LABFORGE_REPORT_DIR=/tmp/reports \
#   ansible-playbook labforge.instructlab.site -i inventories/local

# A module returning report data (the collection's modules use module_utils._report for it):
# module.exit_json(changed=True, path=out, rows=120, report={'path': out, 'rows': 120, 'final_loss': 0.42})
'''

import copy
import datetime
import json
import os
import re
import socket
import time

from ansible import context
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.callback import CallbackBase

from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.plugin_utils._run_report_markdown import render_markdown
from ansible.release import __version__ as ansible_version

try:
    from collections import OrderedDict
except ImportError:  # pragma: no cover
    OrderedDict = dict

FORMAT = 'labforge.instructlab.run_report/v1'
ENDPOINT_KEYS = ('endpoint', 'url', 'base_url')
FACT_PREFIXES = ('python_', 'nvidia_driver_', 'instructlab_', 'ilab_', 'labforge_', 'gpu_info')
OS_FACTS = ('distribution', 'distribution_version', 'distribution_release', 'os_family', 'kernel',
            'architecture')
SECRET_KEY = re.compile(r'(^|[_-])(pass|password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key|'
                        r'credentials?|authorization|auth|cookie)s?($|[_-])', re.I)
# Credentials inside strings: user:password@ in URLs, Hugging Face tokens.
SECRET_TEXT = (
    (re.compile(r'(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@', re.I), r'\1***@'),
    (re.compile(r'\bhf_[A-Za-z0-9]{20,}\b'), 'hf_***'),
)
DROPPED_KEYS = frozenset(('invocation', 'stdout', 'stderr', 'stdout_lines', 'stderr_lines', 'module_stdout',
                          'module_stderr', 'exception', 'diff', 'cmd', 'command', 'commands', 'argv'))
STATUSES = ('ok', 'changed', 'failed', 'skipped', 'unreachable')
MAX_STR = 2000
MAX_ITEMS = 100
MAX_DEPTH = 6


def _utc(ts):
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def sanitize(value, depth=0):
    """Copy VALUE as plain JSON data without credential-like keys, internal keys or oversized parts."""
    if depth > MAX_DEPTH:
        return '...'
    if isinstance(value, dict):
        out = OrderedDict()
        for key in value:
            name = to_text(key)
            if name.startswith('_ansible') or name in DROPPED_KEYS or SECRET_KEY.search(name):
                continue
            if len(out) >= MAX_ITEMS:
                out['...'] = '%d more keys' % (len(value) - MAX_ITEMS)
                break
            out[name] = sanitize(value[key], depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        out = [sanitize(v, depth + 1) for v in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            out.append('... %d more items' % (len(items) - MAX_ITEMS))
        return out
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = to_text(value, errors='surrogate_or_replace')
    for pattern, replacement in SECRET_TEXT:
        text = pattern.sub(replacement, text)
    if len(text) > MAX_STR:
        text = text[:MAX_STR] + '... (%d characters cut)' % (len(text) - MAX_STR)
    return text


def _is_censored(data):
    return bool(data.get('_ansible_no_log')) or 'censored' in data


def _result_parts(result):
    """(host, task, data) of a callback task result, on ansible-core 2.16 to 2.19+."""
    host = getattr(result, 'host', None) or getattr(result, '_host', None)
    task = getattr(result, 'task', None) or getattr(result, '_task', None)
    data = None
    try:
        data = result.result
    except AttributeError:
        data = getattr(result, '_result', None)
    return host, task, data if isinstance(data, dict) else {}


def _action(task):
    """The task's action, as an FQCN when it is already resolved (never triggers resolution)."""
    resolved = getattr(task, '_resolved_action', None)
    action = to_text(resolved or getattr(task, 'action', '') or '')
    return action


def in_rescued_block(task):
    """Whether a failure of TASK goes to the rescue section of a block around it."""
    child, parent = task, getattr(task, '_parent', None)
    for dummy in range(100):
        if parent is None:
            return False
        body, rescue = getattr(parent, 'block', None), getattr(parent, 'rescue', None)
        uuid = getattr(child, '_uuid', None)
        if rescue and isinstance(body, list) and uuid is not None and \
                any(getattr(t, '_uuid', None) == uuid for t in body):
            return True
        child, parent = parent, getattr(parent, '_parent', None)
    return False


def _role_name(task):
    role = getattr(task, '_role', None)
    if role is None:
        return None
    try:
        return to_text(role.get_name(include_role_fqcn=True))
    except TypeError:
        return to_text(role.get_name())
    except Exception:
        return None


def _task_name(task):
    name = getattr(task, 'name', None)
    if name:
        return to_text(name)
    try:
        return to_text(task.get_name(include_role_fqcn=True))
    except Exception:
        return _action(task)


def new_host(name):
    return OrderedDict((
        ('name', name),
        ('status', None),
        ('os', OrderedDict()),
        ('python', OrderedDict()),
        ('gpu', OrderedDict()),
        ('versions', OrderedDict()),
        ('facts', OrderedDict()),
        ('endpoint', None),
        ('stats', OrderedDict()),
        ('failed_steps', []),
        ('artifacts', []),
        ('steps', []),
    ))


def absorb_facts(record, facts):
    """Fold ansible_facts (gathered, set_fact, module facts) into the host RECORD."""
    if not isinstance(facts, dict):
        return
    for key in OS_FACTS:
        if facts.get('ansible_' + key):
            record['os'][key] = sanitize(facts['ansible_' + key])
    apy = facts.get('ansible_python')
    if isinstance(apy, dict):
        if apy.get('executable'):
            record['python']['ansible_executable'] = sanitize(apy['executable'])
        ver = apy.get('version')
        if isinstance(ver, dict) and 'major' in ver:
            record['python']['ansible_version'] = '%s.%s.%s' % (ver.get('major'), ver.get('minor'), ver.get('micro'))
    if facts.get('ansible_python_version'):
        record['python']['ansible_version'] = sanitize(facts['ansible_python_version'])
    local = facts.get('ansible_local')
    if isinstance(local, dict) and isinstance(local.get('labforge_python'), dict):
        lp = local['labforge_python']
        record['python'].setdefault('interpreter', sanitize(lp.get('interpreter')))
        record['python'].setdefault('version', sanitize(lp.get('version')))
    for name in facts:
        if name.startswith('_') or name.startswith('ansible_') or not name.startswith(FACT_PREFIXES):
            continue
        if SECRET_KEY.search(name):
            continue
        record['facts'][name] = sanitize(facts[name])
    if facts.get('python_interpreter'):
        record['python']['interpreter'] = sanitize(facts['python_interpreter'])
    if facts.get('python_interpreter_version'):
        record['python']['version'] = sanitize(facts['python_interpreter_version'])
        record['versions']['python'] = record['python']['version']
    if facts.get('instructlab_version_installed'):
        record['versions']['instructlab'] = sanitize(facts['instructlab_version_installed'])
    if facts.get('instructlab_venv'):
        record['versions']['instructlab_venv'] = sanitize(facts['instructlab_venv'])
    gpu = facts.get('gpu_info')
    if isinstance(gpu, dict):
        absorb_gpu(record, gpu)
    drv = facts.get('nvidia_driver_status')
    if isinstance(drv, dict):
        record['gpu']['driver_role'] = sanitize(OrderedDict(
            (k, drv[k]) for k in ('installed', 'skipped', 'reboot_pending', 'driver_version', 'reason')
            if k in drv))
        if drv.get('driver_version'):
            record['versions'].setdefault('nvidia_driver', sanitize(drv['driver_version']))


def absorb_gpu(record, gpu):
    g = record['gpu']
    for src, dst in (('status', 'status'), ('reason', 'reason'), ('gpu_count', 'count'),
                     ('total_memory_mib', 'total_memory_mib'), ('driver_version', 'driver_version'),
                     ('cuda_version', 'cuda_version'), ('ilab_profile', 'profile'),
                     ('ilab_profile_reason', 'profile_reason'), ('ilab_version', 'profile_for_ilab')):
        if src in gpu:
            g[dst] = sanitize(gpu[src])
    if isinstance(gpu.get('gpus'), list):
        g['gpus'] = [sanitize(OrderedDict((k, d.get(k)) for k in ('index', 'name', 'memory_total_mib', 'uuid')))
                     for d in gpu['gpus'] if isinstance(d, dict)]
    if gpu.get('driver_version'):
        record['versions']['nvidia_driver'] = sanitize(gpu['driver_version'])
    if gpu.get('cuda_version'):
        record['versions']['cuda'] = sanitize(gpu['cuda_version'])


def extract_artifacts(data):
    """The sanitised ``report`` dict of one task result (a dict), or an empty dict."""
    report = data.get('report')
    return sanitize(report) if isinstance(report, dict) else OrderedDict()


class CallbackModule(CallbackBase):
    """Aggregate callback writing one JSON and one Markdown run report."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'labforge.instructlab.run_report'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.started = time.time()
        self.playbooks = []
        self.play_name = None
        self.hosts = OrderedDict()
        self.task_started = {}
        self.host_task_started = {}
        # (host, async job id) -> action of the task that started the job
        self.async_jobs = {}
        self.report_paths = None

    # -- recording -------------------------------------------------------------------------------------

    def _host(self, name):
        name = to_text(name)
        if name not in self.hosts:
            self.hosts[name] = new_host(name)
        return self.hosts[name]

    def v2_playbook_on_start(self, playbook):
        name = getattr(playbook, '_file_name', None)
        if name:
            self.playbooks.append(to_text(name))

    def v2_playbook_on_play_start(self, play):
        self.play_name = to_text(play.get_name()).strip() or None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.task_started.setdefault(getattr(task, '_uuid', id(task)), time.time())

    def v2_playbook_on_handler_task_start(self, task):
        self.task_started.setdefault(getattr(task, '_uuid', id(task)), time.time())

    def v2_runner_on_start(self, host, task):
        self.host_task_started[(to_text(host.get_name()), getattr(task, '_uuid', id(task)))] = time.time()

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed', ignored=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')

    def _record(self, result, status, ignored=False):
        try:
            self._record_unsafe(result, status, ignored)
        except Exception as e:  # never let the report break a run
            self._display.warning('labforge.instructlab.run_report: could not record a result: %s' % to_text(e))

    def _record_unsafe(self, result, status, ignored):
        host, task, data = _result_parts(result)
        if host is None or task is None:
            raise ValueError('a result without host or task')
        hostname = to_text(host.get_name() if hasattr(host, 'get_name') else host)
        record = self._host(hostname)
        uuid = getattr(task, '_uuid', id(task))
        end = time.time()
        start = self.host_task_started.pop((hostname, uuid), None) or self.task_started.get(uuid) or end
        censored = _is_censored(data)
        action = _action(task)
        source = self._async_source(hostname, action, data)
        if status == 'ok' and data.get('changed'):
            status = 'changed'

        step = OrderedDict((
            ('index', len(record['steps']) + 1),
            ('play', self.play_name),
            ('role', _role_name(task)),
            ('task', _task_name(task)),
            ('action', action),
            ('status', status),
            ('start', _utc(start)),
            ('end', _utc(end)),
            ('duration_s', round(max(end - start, 0.0), 3)),
        ))
        if getattr(task, '_role', None) is None:
            del step['role']
        if status == 'failed' and ignored:
            step['ignored'] = True
        elif status == 'failed' and in_rescued_block(task):
            step['rescued'] = True
        if type(task).__name__ == 'Handler':
            step['handler'] = True
        if getattr(task, 'implicit', False) or action in ('gather_facts', 'ansible.builtin.gather_facts'):
            step['implicit'] = True
        delegated = data.get('_ansible_delegated_vars')
        if isinstance(delegated, dict) and delegated.get('ansible_host'):
            step['delegated_to'] = sanitize(delegated.get('ansible_host'))
        if censored:
            step['no_log'] = True
        loop = data.get('results') if isinstance(data.get('results'), list) else None
        if loop is not None:
            step['items'] = len(loop)
        if status in ('failed', 'unreachable') and not censored:
            msg = data.get('msg')
            if not msg and loop:
                msgs = [to_text(r.get('msg')) for r in loop
                        if isinstance(r, dict) and r.get('failed') and r.get('msg') and not _is_censored(r)]
                msg = '; '.join(msgs)
            if msg:
                step['msg'] = sanitize(msg if isinstance(msg, str) else to_text(msg))
        if status in ('failed', 'unreachable') and not (ignored or step.get('rescued')):
            record['failed_steps'].append(step['index'])
        record['steps'].append(step)

        if censored or status in ('skipped', 'unreachable'):
            return
        parts = [data] + [r for r in (loop or []) if isinstance(r, dict) and not _is_censored(r)]
        for part in parts:
            absorb_facts(record, part.get('ansible_facts'))
        if source != action and status in ('ok', 'changed', 'failed'):
            action = source
        elif data.get('ansible_job_id') and not data.get('finished'):
            return  # a job just started: its result comes with async_status
        values = [v for v in (extract_artifacts(p) for p in parts) if v]
        if values:
            entry = OrderedDict((('step', step['index']), ('task', step['task']), ('action', action),
                                 ('status', status)))
            if len(values) == 1:
                entry.update(values[0])
            else:
                entry['items'] = values
            record['artifacts'].append(entry)
            if action.endswith('gpu_info') and isinstance(data.get('gpus'), list):
                absorb_gpu(record, data)
            if 'ilab_version' in values[-1] and not record['versions'].get('instructlab'):
                record['versions']['instructlab'] = values[-1]['ilab_version']
            for v in values:
                for key in ENDPOINT_KEYS:
                    if isinstance(v.get(key), str) and v[key]:
                        if action.endswith('ilab_model_serve') or 'endpoint' in v or not record['endpoint']:
                            record['endpoint'] = v[key]
                        break

    def _async_source(self, hostname, action, data):
        """The action that started the async job DATA belongs to (ACTION itself when none)."""
        jid = data.get('ansible_job_id')
        if not jid:
            return action
        key = (hostname, to_text(jid))
        if action.endswith(('async_status', 'job_wait')):
            return self.async_jobs.get(key, action)
        if data.get('started') and not data.get('finished'):
            self.async_jobs[key] = action
        return action

    # -- the end -----------------------------------------------------------------------------------------

    def v2_playbook_on_stats(self, stats):
        try:
            report = self.build_report(stats)
            self.report_paths = self.write_report(report)
        except Exception as e:
            self._display.warning('labforge.instructlab.run_report: no report written: %s' % to_text(e))
            return
        self._display.display('RUN REPORT: %s (JSON: %s)' % self.report_paths)

    def build_report(self, stats):
        finished = time.time()
        processed = sorted(getattr(stats, 'processed', {}) or {})
        for name in processed:
            self._host(name)
        run_status = 'ok'
        counts = OrderedDict((k, 0) for k in ('hosts', 'ok', 'failed', 'unreachable'))
        for name, record in self.hosts.items():
            summary = stats.summarize(name) if name in processed else {}
            record['stats'] = OrderedDict(
                (k, summary.get(k, 0)) for k in ('ok', 'changed', 'failures', 'unreachable', 'skipped',
                                                 'rescued', 'ignored'))
            if name in processed:
                unreachable, failed = summary.get('unreachable'), summary.get('failures')
            else:
                unreachable = any(s['status'] == 'unreachable' for s in record['steps'])
                failed = bool(record['failed_steps'])
            if unreachable:
                record['status'] = 'unreachable'
            elif failed:
                record['status'] = 'failed'
            else:
                record['status'] = 'ok'
                # failures Ansible does not count for the host: a block's rescue handled them
                for step in record['steps']:
                    if step['index'] in record['failed_steps']:
                        step['rescued'] = True
                record['failed_steps'] = []
            counts['hosts'] += 1
            counts[record['status']] += 1
            if record['status'] != 'ok':
                run_status = 'failed'
        cli = {}
        try:
            cli = dict(context.CLIARGS)
        except Exception:
            pass
        run = OrderedDict((
            ('id', None),
            ('status', run_status),
            ('check_mode', bool(cli.get('check', False))),
            ('diff_mode', bool(cli.get('diff', False))),
            ('playbooks', self.playbooks),
            ('inventory', [to_text(i) for i in (cli.get('inventory') or ())]),
            ('limit', to_text(cli['subset']) if cli.get('subset') else None),
            ('tags', [to_text(t) for t in (cli.get('tags') or ()) if t != 'all']),
            ('started', _utc(self.started)),
            ('finished', _utc(finished)),
            ('duration_s', round(finished - self.started, 3)),
            ('controller', to_text(socket.gethostname())),
            ('ansible_core', ansible_version),
        ))
        return OrderedDict((('format', FORMAT), ('run', run), ('totals', counts),
                            ('hosts', copy.deepcopy(self.hosts))))

    def _unique_base(self, directory):
        name = self.get_option('report_name') or 'run'
        stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(self.started))
        base = '%s-%s' % (name, stamp)
        n = 1
        while _fs.lstat(os.path.join(directory, base + '.json')) or _fs.lstat(os.path.join(directory, base + '.md')):
            n += 1
            base = '%s-%s-%d' % (name, stamp, n)
        return base

    def write_report(self, report):
        directory = os.path.abspath(os.path.expanduser(to_text(self.get_option('report_dir'))))
        _fs.makedirs(directory, 0o700)
        base = self._unique_base(directory)
        report['run']['id'] = base
        json_path = os.path.join(directory, base + '.json')
        md_path = os.path.join(directory, base + '.md')
        # reports name hosts, paths and versions: only their owner reads them
        _fs.write(json_path, json.dumps(report, indent=2, default=to_text) + '\n', REPORT_MODE)
        _fs.write(md_path, render_markdown(report), REPORT_MODE)
        if self.get_option('latest'):
            for path, latest in ((json_path, 'latest.json'), (md_path, 'latest.md')):
                _point_latest(directory, os.path.basename(path), latest)
        return md_path, json_path


REPORT_MODE = 0o600


def _point_latest(directory, target, latest):
    dest = os.path.join(directory, latest)
    try:
        _fs.symlink(target, dest)
    except OSError:
        _fs.write(dest, _fs.read_bytes(os.path.join(directory, target)), REPORT_MODE)
