# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Markdown view of a run report (private API of the run_report callback).

``render_markdown(report)`` turns the JSON document the callback builds
(format ``labforge.instructlab.run_report/v1``) into the Markdown report: a summary
table of the hosts, then per host its facts, failed steps, artifacts, the facts the
roles published and every step. It reads the document only; what is recorded, and
what is kept out of it (secrets, arguments, output), is the callback's business.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.module_utils.common.text.converters import to_text

try:
    from collections import OrderedDict
except ImportError:  # pragma: no cover
    OrderedDict = dict


def _cell(value):
    if value is None or value == '':
        return ''
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=False, default=to_text)
    value = value.replace('\r', ' ').replace('\n', ' ').replace('|', '\\|')
    if len(value) > 300:
        value = value[:300] + '...'
    return value


def _fmt_duration(seconds):
    if seconds is None:
        return ''
    if seconds < 60:
        return '%.1fs' % seconds
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return '%dm %02ds' % (minutes, sec)
    hours, minutes = divmod(minutes, 60)
    return '%dh %02dm %02ds' % (hours, minutes, sec)


def _os_text(o):
    if not o:
        return ''
    text = ' '.join(to_text(o[k]) for k in ('distribution', 'distribution_version') if o.get(k))
    if o.get('distribution_release'):
        text += ' (%s)' % o['distribution_release']
    extra = ', '.join(to_text(o[k]) for k in ('architecture', 'kernel') if o.get(k))
    return text + (', ' + extra if extra else '')


def _python_text(p):
    if not p:
        return ''
    if p.get('interpreter'):
        text = to_text(p['interpreter'])
        if p.get('version'):
            text += ' (%s)' % p['version']
    else:
        text = 'none published'
    if p.get('ansible_version'):
        text += '; Ansible used Python %s' % p['ansible_version']
        if p.get('ansible_executable'):
            text += ' (%s)' % p['ansible_executable']
    return text


def _gpu_text(g):
    if not g:
        return ''
    gpus = g.get('gpus') or []
    if gpus:
        names = OrderedDict()
        for d in gpus:
            names[d.get('name')] = names.get(d.get('name'), 0) + 1
        text = ', '.join('%dx %s' % (n, name) for name, n in names.items())
    else:
        text = 'no GPU'
    labels = (('status', 'status'), ('driver_version', 'driver'), ('cuda_version', 'CUDA'))
    details = ', '.join('%s %s' % (label, g[k]) for k, label in labels if g.get(k))
    if details:
        text += ' (%s)' % details
    if not gpus and g.get('reason'):
        text += ': %s' % g['reason']
    drv = g.get('driver_role')
    if drv:
        if drv.get('reboot_pending'):
            text += '; driver role: reboot pending'
        elif drv.get('skipped'):
            text += '; driver role: nothing to install'
        elif drv.get('installed'):
            text += '; driver role: installed'
    return text


def _profile_text(g):
    if not g or ('profile' not in g and 'profile_reason' not in g):
        return ''
    text = to_text(g.get('profile') or 'none')
    if g.get('profile_reason'):
        text += ' - %s' % g['profile_reason']
    return text


def render_markdown(report):
    run = report['run']
    lines = ['# InstructLab run report `%s`' % run['id'], '']
    mode = ' (check mode: nothing was changed)' if run['check_mode'] else ''
    lines.append('- Result: **%s**%s' % (run['status'].upper(), mode))
    lines.append('- Playbooks: %s' % (', '.join('`%s`' % p for p in run['playbooks']) or '-'))
    if run.get('inventory'):
        lines.append('- Inventory: %s' % ', '.join('`%s`' % i for i in run['inventory']))
    if run.get('limit'):
        lines.append('- Limit: `%s`' % run['limit'])
    if run.get('tags'):
        lines.append('- Tags: %s' % ', '.join(run['tags']))
    lines.append('- Started %s, finished %s (%s)' % (
        run['started'], run['finished'], _fmt_duration(run['duration_s'])))
    lines.append('- Controller `%s`, ansible-core %s' % (run['controller'], run['ansible_core']))
    t = report['totals']
    lines.append('- Hosts: %d (%d ok, %d failed, %d unreachable)' % (t['hosts'], t['ok'], t['failed'],
                                                                     t['unreachable']))
    lines += ['', '## Summary', '',
              '| Host | Result | OS | Python | GPUs | Profile | InstructLab | Endpoint | ok | changed | failed '
              '| skipped | unreachable |',
              '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for name, h in report['hosts'].items():
        s = h['stats']
        lines.append('| %s |' % ' | '.join(_cell(v) for v in (
            name, h['status'], _os_text(h['os']), (h['python'] or {}).get('version') or
            (h['python'] or {}).get('ansible_version'), _gpu_text(h['gpu']).split(' (')[0] if h['gpu'] else '',
            (h['gpu'] or {}).get('profile'), h['versions'].get('instructlab'), h['endpoint'], s.get('ok'),
            s.get('changed'), s.get('failures'), s.get('skipped'), s.get('unreachable'))))
    for name, h in report['hosts'].items():
        lines += ['', '## Host `%s`: %s' % (name, h['status']), '']
        rows = [('OS', _os_text(h['os'])), ('Python', _python_text(h['python'])), ('GPUs', _gpu_text(h['gpu'])),
                ('Profile', _profile_text(h['gpu'])),
                ('Versions', ', '.join('%s %s' % (k, v) for k, v in h['versions'].items())),
                ('Endpoint', h['endpoint'])]
        lines += ['| | |', '|---|---|']
        lines += ['| %s | %s |' % (k, _cell(v) or '-') for k, v in rows]
        failed = [s for s in h['steps'] if s['index'] in h['failed_steps']]
        if failed:
            lines += ['', '### Failed', '']
            for s in failed:
                lines.append('- step %d, %s `%s` (%s): %s' % (
                    s['index'], s['status'], _cell(s['task']), s['action'], _cell(s.get('msg', 'no message'))))
        if h['artifacts']:
            lines += ['', '### Artifacts', '']
            for a in h['artifacts']:
                lines.append('- step %d `%s` (%s, %s)' % (a['step'], _cell(a['task']), a['action'], a['status']))
                for key, value in a.items():
                    if key in ('step', 'task', 'action', 'status'):
                        continue
                    lines.append('  - %s: `%s`' % (key, _cell(value).replace('`', "'")))
        facts = [(k, v) for k, v in h['facts'].items() if k != 'gpu_info']
        if facts:
            lines += ['', '### Facts published by the roles', '']
            for key, value in facts:
                lines.append('- %s: `%s`' % (key, _cell(value).replace('`', "'")))
        lines += ['', '### Steps', '', '| # | Play | Task | Action | Status | Duration |', '|---|---|---|---|---|---|']
        for s in h['steps']:
            status = s['status'] + ''.join(' (%s)' % k for k in ('ignored', 'rescued', 'no_log') if s.get(k))
            lines.append('| %s |' % ' | '.join(_cell(v) for v in (
                s['index'], s.get('play'), s['task'], s['action'], status, _fmt_duration(s['duration_s']))))
    lines.append('')
    return '\n'.join(lines)
