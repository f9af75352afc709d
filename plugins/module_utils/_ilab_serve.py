# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for serving models with systemd and talking to served endpoints (private).

Used by ``ilab_model_serve`` (unit and per-service config rendering, endpoint
health) and ``ilab_model_chat`` (OpenAI-compatible HTTP calls).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import socket
import time

from ansible.module_utils.urls import open_url
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

UNIT_PREFIX = 'labforge-ilab-serve-'

# systemd sandboxing that a model server does not need to do without; devices
# stay visible (GPUs), JIT compilers keep W+X memory.
HARDENING = (
    ('NoNewPrivileges', 'yes'),
    ('PrivateTmp', 'yes'),
    ('ProtectSystem', 'strict'),
    ('ProtectHome', 'read-only'),
    ('ProtectKernelTunables', 'yes'),
    ('ProtectKernelModules', 'yes'),
    ('ProtectKernelLogs', 'yes'),
    ('ProtectControlGroups', 'yes'),
    ('RestrictSUIDSGID', 'yes'),
    ('RestrictRealtime', 'yes'),
    ('LockPersonality', 'yes'),
    ('RestrictNamespaces', 'yes'),
    ('SystemCallArchitectures', 'native'),
    ('UMask', '0027'),
)


def safe_name(text):
    """Letters, digits, '-', '_' and '.' only (a systemd unit name part)."""
    out = re.sub(r'[^A-Za-z0-9_.-]+', '-', text).strip('-.')
    return out[:80] or 'model'


def unit_name(name):
    return UNIT_PREFIX + name + '.service'


def _quote_arg(arg):
    """Quote one ExecStart argument for systemd (``%`` escaped as ``%%``)."""
    arg = str(arg).replace('%', '%%')
    if arg and re.match(r'^[A-Za-z0-9_@%+=:,./-]+$', arg):
        return arg
    return '"%s"' % arg.replace('\\', '\\\\').replace('"', '\\"')


def exec_line(argv):
    return ' '.join(_quote_arg(a) for a in argv)


def env_line(key, value):
    text = '%s=%s' % (key, value)
    return '"%s"' % text.replace('\\', '\\\\').replace('"', '\\"').replace('%', '%%')


def render_unit(description, user, group, workdir, env, argv, rw_paths, hardening=True,
                restart_sec=3, extra=None):
    lines = [
        '# Managed by labforge.instructlab.ilab_model_serve; local changes are overwritten.',
        '[Unit]',
        'Description=%s' % description.replace('%', '%%'),
        'After=network-online.target',
        'Wants=network-online.target',
        '',
        '[Service]',
        'Type=simple',
        'User=%s' % user,
        'Group=%s' % group,
        'WorkingDirectory=%s' % workdir,
    ]
    for key in sorted(env):
        lines.append('Environment=%s' % env_line(key, env[key]))
    lines += [
        'ExecStart=%s' % exec_line(argv),
        'Restart=on-failure',
        'RestartSec=%d' % restart_sec,
        'TimeoutStopSec=30',
        'KillMode=mixed',
    ]
    if hardening:
        lines += ['%s=%s' % kv for kv in HARDENING]
        lines.append('ReadWritePaths=%s' % ' '.join(sorted(set(rw_paths))))
    for key, value in sorted((extra or {}).items()):
        lines.append('%s=%s' % (key, value))
    lines += ['', '[Install]', 'WantedBy=multi-user.target', '']
    return '\n'.join(lines)


def connect_host(host):
    """The address a client on this host uses for a server bound to ``host``."""
    if host in (None, '', '0.0.0.0'):
        return '127.0.0.1'
    if host in ('::', '[::]'):
        return '::1'
    return host


def base_url(host, port):
    h = connect_host(host)
    if ':' in h and not h.startswith('['):
        h = '[%s]' % h
    return 'http://%s:%d' % (h, port)


def http_json(url, data=None, timeout=5.0, headers=None, **open_kwargs):
    """GET (or POST ``data`` as JSON) and decode the JSON answer (``open_kwargs``:
    more options of ``open_url``, e.g. ``validate_certs``, ``ca_path``)."""
    body = None
    hdrs = {'Accept': 'application/json'}
    if data is not None:
        body = json.dumps(data).encode('utf-8')
        hdrs['Content-Type'] = 'application/json'
    hdrs.update(headers or {})
    host = re.sub(r'^[a-z]+://(\[[^]]*\]|[^/:]*).*$', r'\1', url)
    loopback = host in ('127.0.0.1', 'localhost', '[::1]') or host.startswith('127.')
    resp = open_url(url, data=body, headers=hdrs, method='POST' if body is not None else 'GET',
                    timeout=timeout, use_proxy=not loopback, **open_kwargs)
    try:
        return json.loads(resp.read().decode('utf-8'))
    finally:
        resp.close()


def probe_models(url, timeout=3.0):
    """(ok, model_ids or error text) for ``URL/v1/models``."""
    try:
        data = http_json(url.rstrip('/') + '/v1/models', timeout=timeout)
    except HTTPError as e:
        return False, 'HTTP %s' % e.code
    except (URLError, socket.error, socket.timeout, ValueError) as e:
        return False, str(getattr(e, 'reason', e))
    ids = [m.get('id') for m in (data.get('data') or []) if isinstance(m, dict)]
    return True, ids


def wait_models(url, timeout, interval=1.0, alive=None):
    """Poll ``/v1/models`` until it answers or ``timeout`` seconds passed.

    ``alive`` (callable) may return False to stop early (the unit failed).
    Returns (ok, ids_or_error, waited_seconds).
    """
    start = time.time()
    last = 'not tried'
    while True:
        ok, info = probe_models(url)
        if ok:
            return True, info, time.time() - start
        last = info
        if time.time() - start >= timeout:
            return False, last, time.time() - start
        if alive is not None and not alive():
            return False, 'the service stopped: %s' % last, time.time() - start
        time.sleep(interval)
