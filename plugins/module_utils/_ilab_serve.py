# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for serving models with systemd and talking to served endpoints (private).

Used by ``ilab_model_serve`` (unit and environment file rendering, port owners,
endpoint health), ``ilab_model_chat`` (OpenAI-compatible HTTP calls) and
``ilab_data_generate`` (which model an endpoint serves).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import socket
import stat
import struct
import time
import unicodedata

from ansible.module_utils.urls import open_url
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

from ansible_collections.labforge.instructlab.plugins.module_utils import _fs

UNIT_PREFIX = 'labforge-ilab-serve-'

# systemd sandboxing for a model server (`systemd-analyze security` of the
# rendered unit: 1.6 OK on Debian 12's systemd 252). No capabilities, only
# AF_UNIX/AF_INET/AF_INET6 sockets, the @system-service system calls, its own
# /proc view, IPC and user namespace; devices closed except the NVIDIA ones
# when the host has them (see render_unit). JIT compilers keep W+X memory
# (no MemoryDenyWriteExecute); the network stays (it is a server).
HARDENING = (
    ('NoNewPrivileges', 'yes'),
    ('CapabilityBoundingSet', ''),
    ('AmbientCapabilities', ''),
    ('PrivateTmp', 'yes'),
    ('PrivateMounts', 'yes'),
    ('PrivateIPC', 'yes'),
    ('PrivateUsers', 'yes'),
    ('RemoveIPC', 'yes'),
    ('ProtectSystem', 'strict'),
    ('ProtectHome', 'read-only'),
    ('ProtectKernelTunables', 'yes'),
    ('ProtectKernelModules', 'yes'),
    ('ProtectKernelLogs', 'yes'),
    ('ProtectControlGroups', 'yes'),
    ('ProtectClock', 'yes'),
    ('ProtectHostname', 'yes'),
    ('ProtectProc', 'invisible'),
    ('ProcSubset', 'pid'),
    ('RestrictSUIDSGID', 'yes'),
    ('RestrictRealtime', 'yes'),
    ('RestrictNamespaces', 'yes'),
    ('RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6'),
    ('LockPersonality', 'yes'),
    ('SystemCallArchitectures', 'native'),
    ('SystemCallFilter', '@system-service'),
    ('SystemCallErrorNumber', 'EPERM'),
    ('DevicePolicy', 'closed'),
    ('UMask', '0077'),
)
# A crash loop ends as a failed unit instead of restarting every RestartSec forever.
START_LIMIT = (('StartLimitIntervalSec', '300'), ('StartLimitBurst', '5'))
ENV_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')


class UnitValueError(ValueError):
    """A value that cannot go into a unit file (it names what it came from)."""

    def __init__(self, what, value, pos):
        ValueError.__init__(self, '%s contains the control character %r at position %d: refused, because in a '
                                  'systemd unit it would start a new line (a new directive)' % (what, value[pos], pos))
        self.what = what


def check_value(what, value):
    """``value`` as text; UnitValueError (naming ``what``) for a control character
    (newline, carriage return, NUL, ...) or a Unicode line/paragraph separator."""
    value = str(value)
    for i, c in enumerate(value):
        if ord(c) < 32 or ord(c) == 127 or unicodedata.category(c) in ('Cc', 'Zl', 'Zp'):
            raise UnitValueError(what, value, i)
    return value


def safe_name(text):
    """Letters, digits, '-', '_' and '.' only (a systemd unit name part)."""
    out = re.sub(r'[^A-Za-z0-9_.-]+', '-', text).strip('-.')
    return out[:80] or 'model'


def unit_name(name):
    return UNIT_PREFIX + name + '.service'


def _specifiers(what, text):
    """A unit setting value: checked, ``%`` escaped as ``%%`` (systemd specifiers)."""
    return check_value(what, text).replace('%', '%%')


def _quote_arg(what, arg):
    """Quote one command line or path-list word: ``$`` as ``$$`` (no variable expansion),
    ``%`` as ``%%``, double quotes when needed."""
    arg = _specifiers(what, arg).replace('$', '$$')
    if arg and re.match(r'^[A-Za-z0-9_@%+=:,./-]+$', arg):
        return arg
    return '"%s"' % arg.replace('\\', '\\\\').replace('"', '\\"')


def exec_line(argv):
    return ' '.join(_quote_arg('ExecStart argument %d' % i, a) for i, a in enumerate(argv))


def render_env_file(env):
    """The content of an ``EnvironmentFile=``: ``KEY="value"`` lines (backslash, double
    quote, ``$`` and backquote escaped; no expansion happens)."""
    lines = ['# Managed by labforge.instructlab.ilab_model_serve; local changes are overwritten.']
    for key in sorted(env):
        if not ENV_NAME.match(key):
            raise UnitValueError('environment variable name %r' % key, key, 0)
        value = check_value('environment variable %s' % key, env[key])
        value = re.sub(r'([\\"$`])', r'\\\1', value)
        lines.append('%s="%s"' % (key, value))
    return '\n'.join(lines) + '\n'


def render_unit(description, user, group, workdir, env_file, argv, rw_paths, hardening=True,
                restart_sec=3, devices=(), extra=None):
    """The unit file. Every value is checked (UnitValueError names the setting) and
    escaped; the environment lives in the root-only ``env_file``."""
    lines = [
        '# Managed by labforge.instructlab.ilab_model_serve; local changes are overwritten.',
        '[Unit]',
        'Description=%s' % _specifiers('Description', description),
        'After=network-online.target',
        'Wants=network-online.target',
    ]
    lines += ['%s=%s' % kv for kv in START_LIMIT]
    lines += [
        '',
        '[Service]',
        'Type=simple',
        'User=%s' % _specifiers('User', user),
        'Group=%s' % _specifiers('Group', group),
        'WorkingDirectory=%s' % _specifiers('WorkingDirectory', workdir),
        'EnvironmentFile=%s' % _specifiers('EnvironmentFile', env_file),
        'ExecStart=%s' % exec_line(argv),
        'Restart=on-failure',
        'RestartSec=%d' % restart_sec,
        'TimeoutStopSec=30',
        'KillMode=mixed',
    ]
    if hardening:
        lines += ['%s=%s' % kv for kv in HARDENING]
        for dev in devices:
            lines.append('DeviceAllow=%s rw' % _quote_arg('DeviceAllow', dev))
        lines.append('ReadWritePaths=%s' % ' '.join(_quote_arg('ReadWritePaths', p) for p in sorted(set(rw_paths))))
    for key, value in sorted((extra or {}).items()):
        lines.append('%s=%s' % (key, _specifiers(key, value)))
    lines += ['', '[Install]', 'WantedBy=multi-user.target', '']
    return '\n'.join(lines)


def gpu_devices(dev='/dev'):
    """The NVIDIA device nodes of this host (``DeviceAllow=`` when a server may use GPUs)."""
    out = []
    try:
        entries = _fs.scandir(dev)
    except OSError:
        return out
    for name, st in entries:
        if name.startswith('nvidia') and stat.S_ISCHR(st.st_mode):
            out.append(dev + '/' + name)
        elif name == 'nvidia-caps' and stat.S_ISDIR(st.st_mode):
            out.extend(dev + '/nvidia-caps/' + n for n, cst in _fs.scandir(dev + '/nvidia-caps')
                       if stat.S_ISCHR(cst.st_mode))
    return out


# ------------------------------------------------------------ backends
# What each backend of ``ilab model serve`` (InstructLab 0.26.1) serves and which
# settings act on it. llama-cpp: one GGUF file (ilab's is_model_gguf: the first four
# bytes are the GGUF magic); serve.llama_cpp.* settings. vLLM: a Hugging Face model
# directory (ilab's is_model_safetensors wants config.json and *.safetensors or *.bin
# weights beside it); serve.vllm.* settings, where serve.vllm.gpus (--gpus) makes ilab
# append ``--tensor-parallel-size GPUS`` to serve.vllm.vllm_args
# (instructlab/model/serve_backend.py).
LLAMA_CPP = 'llama-cpp'
VLLM = 'vllm'
GGUF_MAGIC = b'GGUF'
HF_WEIGHTS = ('.safetensors', '.bin')
# module option -> why it cannot act on the other backend
BACKEND_OPTIONS = {
    LLAMA_CPP: {
        'gpu_layers': 'the layers llama-cpp offloads to the GPU (serve.llama_cpp.gpu_layers); vLLM puts the '
                      'whole model on the GPUs given by gpus',
        'max_ctx_size': 'llama-cpp\'s context size (serve.llama_cpp.max_ctx_size); for vLLM use '
                        'vllm_args: [--max-model-len, N]',
    },
    VLLM: {
        'gpus': 'vLLM\'s tensor parallelism (serve.vllm.gpus, --tensor-parallel-size); llama-cpp uses one '
                'GPU and offloads layers to it with gpu_layers - use backend=vllm to serve on several GPUs',
        'vllm_args': 'arguments of the vLLM server (serve.vllm.vllm_args)',
    },
}
SETTINGS_SECTION = {LLAMA_CPP: 'llama_cpp', VLLM: 'vllm'}
# vLLM arguments the module sets itself: given in vllm_args they would override what the
# module configures and checks (the port it watches, the model it waits for).
VLLM_MANAGED_ARGS = (
    ('--host', 'host'),
    ('--port', 'port'),
    ('--model', 'model_path'),
    ('--served-model-name', 'model_path (the health check waits for the model ids ilab gives it)'),
    ('--tensor-parallel-size', 'gpus'),
    ('-tp', 'gpus'),
)


def contains_argument(flag, args):
    """ilab's own test (instructlab.utils.contains_argument): ``--foo value`` or ``--foo=value``."""
    return any(a == flag or a.startswith(flag + '=') for a in args or ())


def get_argument(flag, args):
    """The value of the LAST ``flag`` in ``args`` (ilab's get_argument), or None."""
    args = list(args or ())
    for i in range(len(args) - 1, -1, -1):
        if args[i] == flag:
            return args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith('-') else None
        if args[i].startswith(flag + '='):
            return args[i][len(flag) + 1:]
    return None


def without_argument(flag, args):
    """``args`` without ``flag`` and its value (both spellings)."""
    out = []
    skip = False
    for a in args or ():
        if skip:
            skip = False
            if not a.startswith('-'):
                continue
        if a == flag:
            skip = True
            continue
        if a.startswith(flag + '='):
            continue
        out.append(a)
    return out


def backend_setting_errors(backend, params, gpu_count=None):
    """Messages (each naming the option) for settings that cannot act on ``backend``.
    ``params``: the module options (gpu_layers, max_ctx_size, gpus, vllm_args, settings).
    ``gpu_count``: the host's NVIDIA GPUs (None: not checked)."""
    errors = []
    for owner in (LLAMA_CPP, VLLM):
        if owner == backend:
            continue
        for opt in sorted(BACKEND_OPTIONS[owner]):
            if params.get(opt) is not None:
                errors.append('%s: not used by backend %s - it sets %s. Remove it, or use backend=%s'
                              % (opt, backend, BACKEND_OPTIONS[owner][opt], owner))
        section = SETTINGS_SECTION[owner]
        for key in sorted(params.get('settings') or {}):
            rel = key[len('serve.'):] if key.startswith('serve.') else key
            if rel == section or rel.startswith(section + '.'):
                errors.append('settings.%s: a %s setting, not used by backend %s' % (key, owner, backend))
    if backend == VLLM:
        gpus = params.get('gpus')
        if gpus is not None and gpus < 1:
            errors.append('gpus: %d is not a GPU count for vLLM (ilab passes --tensor-parallel-size only for '
                          '1 or more); leave gpus out to keep the configuration\'s value' % gpus)
        elif gpus is not None and gpu_count is not None and gpus > gpu_count:
            errors.append('gpus: %d, but this host has %d NVIDIA GPU(s) (/dev/nvidiaN): vLLM would fail '
                          'to start with --tensor-parallel-size %d' % (gpus, gpu_count, gpus))
        for flag, option in VLLM_MANAGED_ARGS:
            if contains_argument(flag, params.get('vllm_args')):
                errors.append('vllm_args: %s is set by the module from %s; remove it from vllm_args'
                              % (flag, option))
    return errors


def model_format(path):
    """``(format, detail)`` of the model at ``path`` as InstructLab 0.26.1 tells them
    apart: ``('gguf', ...)`` for a file starting with the GGUF magic, ``('hf', ...)`` for
    a directory with config.json and weights, ``(None, why not)`` otherwise. Read through
    the file layer (links followed only where the service user's own)."""
    st = _fs.stat_path(path)
    if st is None:
        return None, '%s does not exist' % path
    if stat.S_ISDIR(st.st_mode):
        names = _fs.listdir(path)
        if 'config.json' not in names:
            return None, 'the directory %s has no config.json (not a Hugging Face model directory)' % path
        if not any(n.endswith(HF_WEIGHTS) for n in names):
            return None, 'the directory %s has no weights (*.safetensors or *.bin)' % path
        try:
            json.loads(_fs.read_text(os.path.join(path, 'config.json')))
        except ValueError as e:
            return None, '%s/config.json is not valid JSON: %s' % (path, e)
        return 'hf', 'a Hugging Face model directory'
    if not stat.S_ISREG(st.st_mode):
        return None, '%s is neither a file nor a directory' % path
    fd, _st = _fs.open_read(path)
    try:
        head = os.read(fd, 4)
    finally:
        os.close(fd)
    if head != GGUF_MAGIC:
        return None, '%s is not a GGUF file (it does not start with the GGUF magic)' % path
    return 'gguf', 'a GGUF file'


def model_error(backend, path):
    """Why ``backend`` cannot serve the model at ``path`` (None when it can)."""
    fmt, detail = model_format(path)
    want = 'gguf' if backend == LLAMA_CPP else 'hf'
    if fmt == want:
        return None
    if backend == LLAMA_CPP:
        need = 'backend llama-cpp serves one GGUF file'
        other = 'serve a Hugging Face directory with backend=vllm, or convert it to GGUF first'
    else:
        need = 'backend vllm serves a Hugging Face model directory (config.json and *.safetensors weights)'
        other = 'serve a GGUF file with backend=llama-cpp'
    if fmt is None:
        return 'model_path: %s; %s' % (detail, need)
    return 'model_path: %s is %s, but %s: %s' % (path, detail, need, other)


def vllm_effective_args(cfg):
    """``(args, tensor_parallel_size)``: what ilab 0.26.1 adds to the vLLM command line
    after its own flags, from a configuration's ``serve.vllm`` (serve_backend: with
    ``gpus``, ``--tensor-parallel-size GPUS`` is appended to ``vllm_args``); the size is
    the last ``--tensor-parallel-size`` (vLLM's default 1 when none)."""
    vcfg = ((cfg or {}).get('serve') or {}).get('vllm') or {}
    args = [str(a) for a in (vcfg.get('vllm_args') or [])]
    if vcfg.get('gpus'):
        args += ['--tensor-parallel-size', str(vcfg['gpus'])]
    tps = get_argument('--tensor-parallel-size', args) or get_argument('-tp', args) or '1'
    try:
        return args, int(tps)
    except ValueError:
        return args, None


def gpu_count():
    """The number of NVIDIA GPUs (``/dev/nvidiaN`` device nodes) of this host."""
    return len([d for d in gpu_devices() if re.match(r'^.*/nvidia[0-9]+$', d)])


# ------------------------------------------------------------------ ports
def _tcp_listen_inodes(port):
    """{socket inode: local address} of the TCP sockets listening on ``port``."""
    found = {}
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            text = _fs.read_text(table)
        except (IOError, OSError):
            continue
        for line in text.splitlines()[1:]:
            cols = line.split()
            if len(cols) < 10 or cols[3] != '0A':   # 0A: LISTEN
                continue
            addr, hexport = cols[1].rsplit(':', 1)
            if int(hexport, 16) == port:
                found[cols[9]] = addr
    return found


def _wildcard(addr):
    return addr.strip('0') == ''


def listeners(port, host=None):
    """Processes listening on TCP ``port`` (where their address overlaps ``host``):
    ``[{'pid', 'comm', 'uid', 'unit'}]`` (``unit``: the systemd unit of its cgroup)."""
    inodes = _tcp_listen_inodes(port)
    if host not in (None, '', '0.0.0.0', '::', '[::]'):
        inodes = dict((i, a) for i, a in inodes.items() if _wildcard(a) or _addr_is(a, host))
    if not inodes:
        return []
    want = set('socket:[%s]' % i for i in inodes)
    out = []
    for name, st in _fs.scandir('/proc'):
        if not name.isdigit():
            continue
        try:
            links = [link for _rel, kind, _st, link in _fs.walk('/proc/%s/fd' % name, exclude=())
                     if kind == 'link']
        except (IOError, OSError):
            continue
        if want.intersection(links):
            out.append(_process(int(name), st.st_uid))
    return out


def _addr_is(hexaddr, host):
    try:
        if len(hexaddr) == 8:
            return socket.inet_ntoa(struct.pack('<I', int(hexaddr, 16))) == socket.gethostbyname(host)
        packed = b''.join(struct.pack('<I', int(hexaddr[i:i + 8], 16)) for i in range(0, 32, 8))
        return socket.inet_ntop(socket.AF_INET6, packed) == host.strip('[]')
    except (ValueError, OSError, socket.error):
        return True   # unknown: count it as a conflict


def _process(pid, uid):
    info = dict(pid=pid, uid=uid, comm=None, unit=None, user=str(uid))
    try:
        info['comm'] = _fs.read_text('/proc/%d/comm' % pid).strip()
        for line in _fs.read_text('/proc/%d/cgroup' % pid).splitlines():
            path = line.split(':', 2)[-1]
            leaf = path.rstrip('/').rsplit('/', 1)[-1]
            if leaf.endswith(('.service', '.scope')):
                info['unit'] = leaf
                break
    except (IOError, OSError):
        pass
    try:
        import pwd
        info['user'] = pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        pass
    return info


def describe_process(info):
    return 'pid %d (%s, user %s%s)' % (info['pid'], info.get('comm') or '?', info.get('user'),
                                       ', unit %s' % info['unit'] if info.get('unit') else '')


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


def endpoint_models(endpoint_url, timeout=3.0):
    """(ok, model_ids or error text) for an OpenAI base URL (``http://HOST:PORT/v1``)."""
    url = endpoint_url.rstrip('/')
    return probe_models(url[:-len('/v1')] if url.endswith('/v1') else url, timeout)


def serves(ids, model_path):
    """Whether the model ids a server lists name ``model_path`` (ilab's llama-cpp and vLLM
    servers list the model path they were given)."""
    want = set([os.path.normpath(model_path), os.path.realpath(model_path)])
    for mid in ids or []:
        if not isinstance(mid, str):
            continue
        if os.path.normpath(mid) in want or os.path.basename(mid.rstrip('/')) == os.path.basename(model_path.rstrip('/')):
            return True
    return False


def wait_healthy(url, port, host, unit, model_path, timeout, interval=1.0, alive=None):
    """Wait until the unit's own process listens on ``port`` and ``/v1/models`` lists
    ``model_path``. Returns (ok, ids_or_error, waited_seconds, foreign) where ``foreign``
    is the listener of another process (then it returns at once, not ok).

    ``alive`` (callable) may return False to stop early (the unit failed).
    """
    start = time.time()
    last = 'not tried'
    while True:
        held = listeners(port, host)
        foreign = [p for p in held if p.get('unit') != unit]
        if foreign:
            return False, 'port %d is held by %s' % (port, describe_process(foreign[0])), time.time() - start, foreign[0]
        ok, info = probe_models(url)
        if ok and not held:
            ok, info = False, 'an answer on port %d, but no process of %s listens there' % (port, unit)
        elif ok and not serves(info, model_path):
            ok, info = False, '/v1/models lists %r, not %s' % (info, model_path)
        if ok:
            return True, info, time.time() - start, None
        last = info
        if time.time() - start >= timeout:
            return False, last, time.time() - start, None
        if alive is not None and not alive():
            return False, 'the service stopped: %s' % last, time.time() - start, None
        time.sleep(interval)
