# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runner: builds and runs the collection's command lines (private API).

It only runs commands: argv, secret masking, run/start, logs. InstructLab's
directories are named in ``_ilab_paths``, YAML and config.yaml are read in
``_ilab_yaml``, and every file (logs, status files, directories) is made by
``_fs``, the collection's file layer.

Two kinds of command:

* ``ilab`` and the venv's python, as the InstructLab service user:
  :class:`IlabRunner`. Every ``labforge.instructlab.ilab_*`` module builds its
  ``ilab`` command lines with it and runs them through it. It

  * builds argv from a declarative option list (``ilab --config CFG SUB... FLAGS``);
  * runs the command as the InstructLab service user (the module runs as root
    with become; the runner drops to ``user`` with ``user=``/``group=``/
    ``extra_groups=[]``), with that user's ``HOME``/``XDG_*`` directories,
    ``VIRTUAL_ENV`` and ``PATH`` with ``<venv>/bin`` first (ilab shells out to
    tools of its own venv, e.g. ``yamllint``), and a clean environment (only a
    short allow-list of proxy/CA/HF/CUDA variables passes through);
  * passes secrets ONLY through the environment (``secret_env``), never argv; all
    secret values are registered with ``module.no_log_values`` and masked in the
    command, outputs, log file and log tail;
  * streams the combined output to a log file under ``log_dir`` (path returned,
    so long steps can be followed with ``tail -f``);
  * on failure, :meth:`IlabRunner.fail` reports the step, the masked command,
    rc and the log tail (failing ilab steps can exit 1 with no message).

* Tools of the host, as the module's own user (root): ``systemctl``,
  ``journalctl``, ``nvidia-smi``: :class:`HostTool`, through
  ``module.run_command`` (quick calls whose output the module parses; no
  secrets, no user switch, no log file).

We do not use community.general's ``cmd_runner`` for ilab: it runs through
``module.run_command``, which cannot switch users, stream to a log file or
start a background process. The small option spec below mirrors its
``cmd_runner_fmt`` ideas.

API summary (stable; only additions from now on)::

    from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import (
        IlabRunner, ilab_argument_spec, IlabResult, run_guarded, HostTool)

    module = AnsibleModule(argument_spec=dict(ilab_argument_spec(), ...))
    run_guarded(module, body)                   # body(module); a refused path fails cleanly
    runner = IlabRunner.from_module(module)      # reads user/venv/config_path/log_dir params
    runner = IlabRunner.checked(module, venv=True)   # the same, after check_user() and check_venv()
    # or IlabRunner(module, user='instructlab', venv='/opt/instructlab/venv',
    #               config_path=None, log_dir=None)

    argv = runner.argv(['model', 'serve'],
                       [('--model-path', '/m.gguf'),      # flag + value
                        ('--gpu-layers', -1),
                        ('--quiet', True),                 # bare flag when True
                        ('--backend', None),               # omitted when None/False
                        ('--tag', ['a', 'b']),             # repeated: --tag a --tag b
                        ('--x/--no-x', False)],            # click boolean pair -> --no-x
                       args=['positional'], config=True)
    res = runner.run('serve model', argv, env={'K': 'v'}, secret_env={'HF_TOKEN': tok},
                     cwd=None, log_name='serve', timeout=None, changes_state=True,
                     data=None, log=True, as_user=True)
    if res.rc != 0:
        runner.fail('serve model', res)               # never returns
    res.rc, res.stdout, res.stderr, res.cmd (masked str), res.argv (masked list),
    res.log_path, res.log_tail, res.log_text (last 8 MiB, read through the runner's
    own descriptor), res.skipped (check mode), res.duration

    job = runner.start('train', argv, log_name='train')  # Popen-style, returns at once
                                     # (IlabRunnerError when the program cannot start)
    job.log_path, job.status_path    # status JSON written next to the log at start
    res = job.wait(timeout=None)     # IlabResult; status JSON updated with rc/finished

    runner.python('step', script, args=[...], changes_state=False, **run_kwargs)
                                         # `venv/bin/python -c script args` as the user
                                         # (IlabResult; log=False unless given)
    runner.ilab_version()                # '0.26.1' or None
    runner.paths                         # _ilab_paths.IlabPaths of the user's home
    runner.default_config_path, runner.home, runner.ilab, runner.venv_python
    runner.env(extra=None)               # the environment every command gets
    runner.mask(text)                    # mask every registered secret
    runner.add_secret(value)
    runner.ensure_dir(path, mode=0o755)  # _fs.makedirs, owned by the service user
    runner.owner                         # (uid, gid) of the service user when switching, else None
    runner.state                         # private state directory (_fs.state_dir)
    runner.log_path_for(log_name)        # <log_dir>/<log_name>.log, known before a step starts
    runner.check_user(), runner.check_venv()   # fail_json with a clear message

    tool = HostTool(module, 'systemctl', required=False, path=None, opt_dirs=None,
                    env={'LC_ALL': 'C'})     # found with module.get_bin_path unless path is given
    tool.path                            # None when not found (and not required)
    rc, out, err = tool.run('is-active', unit, **run_command_kwargs)
    tool.commands                        # every argv run, in order

Every file the runner touches (logs, status files, directories) goes through
``_fs``: a log is a new file renamed over the old one, never a truncated path.

In check mode (``module.check_mode``) :meth:`run` and :meth:`start` refuse to
run steps with ``changes_state=True`` (the default): they return an
``IlabResult`` with ``skipped=True`` and ``rc=None``. Read-only steps pass
``changes_state=False``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd
import selectors
import shlex
import signal
import subprocess
import sys
import threading
import time

from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_paths import IlabPaths

MASK = '********'
LOG_TAIL_LINES = 40

# Environment variables that pass from the module's environment (the task's
# `environment:` keyword) to the ilab process. Everything else is dropped so
# that root's environment never leaks into the service user's commands.
PASSTHROUGH_ENV = (
    'http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY',
    'SSL_CERT_FILE', 'SSL_CERT_DIR', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE',
    'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'HF_HUB_DISABLE_TELEMETRY', 'HF_HUB_ENABLE_HF_TRANSFER',
    'TRANSFORMERS_OFFLINE', 'CUDA_VISIBLE_DEVICES', 'CUDA_HOME', 'LD_LIBRARY_PATH',
    'TMPDIR', 'TZ',
)
PASSTHROUGH_PREFIXES = ('ILAB_', 'INSTRUCTLAB_')

SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
LOG_TEXT_BYTES = 8 * 1024 * 1024


def ilab_argument_spec():
    """The options every ilab_* module shares (see doc fragment labforge.instructlab.ilab)."""
    return dict(
        user=dict(type='str', default='instructlab'),
        venv=dict(type='path', default='/opt/instructlab/venv'),
        config_path=dict(type='path'),
        log_dir=dict(type='path'),
    )


class IlabRunnerError(Exception):
    pass


def run_guarded(module, body):
    """Run ``body(module)``; a path the file layer refuses (a link or directory the
    service user planted) fails the module with the layer's message."""
    try:
        body(module)
    except _fs.UnsafePathError as e:
        module.fail_json(msg=str(e), path=e.filename)


class IlabResult(object):
    """Outcome of one command. ``cmd``/``argv``/outputs are already masked."""

    def __init__(self, step, argv, rc=None, stdout='', stderr='', log_path=None,
                 log_tail='', skipped=False, duration=0.0, timed_out=False, cmd=None, log_text=None):
        self.step = step
        self.argv = list(argv)
        self.cmd = cmd if cmd is not None else ' '.join(shlex.quote(a) for a in self.argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.log_path = log_path
        self.log_tail = log_tail
        self.skipped = skipped
        self.duration = duration
        self.timed_out = timed_out
        self.log_text = log_text if log_text is not None else log_tail

    @property
    def ok(self):
        return self.rc == 0

    def as_dict(self):
        return dict(step=self.step, cmd=self.cmd, rc=self.rc, log_path=self.log_path,
                    log_tail=self.log_tail, duration=round(self.duration, 3),
                    skipped=self.skipped, timed_out=self.timed_out)

    def __repr__(self):
        return 'IlabResult(step=%r, rc=%r, cmd=%r)' % (self.step, self.rc, self.cmd)


def _tail(text, lines=LOG_TAIL_LINES):
    parts = text.splitlines()
    return '\n'.join(parts[-lines:])


def _iso_now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def _format_flag(flag, value):
    """One (flag, value) pair of the declarative spec -> list of argv items."""
    if '/' in flag:  # click boolean pair "--x/--no-x"
        on, off = flag.split('/', 1)
        if value is None:
            return []
        return [on] if value else [off]
    if value is None or value is False:
        return []
    if value is True:
        return [flag]
    if isinstance(value, (list, tuple)):
        out = []
        for item in value:
            out.extend([flag, str(item)])
        return out
    return [flag, str(value)]


class IlabJob(object):
    """A command started in the background with :meth:`IlabRunner.start`."""

    def __init__(self, runner, step, argv, proc, log, status_path, status, pump, started):
        self.runner = runner
        self.step = step
        self.argv = argv
        self.proc = proc
        self.pid = proc.pid
        self.log = log
        self.log_path = log.path
        self.status_path = status_path
        self.status = status
        self._pump = pump
        self._started = started
        self.result = None

    def poll(self):
        return self.proc.poll()

    def terminate(self, grace=10):
        """SIGTERM the whole process group, SIGKILL after ``grace`` seconds."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except OSError:
            return
        deadline = time.time() + grace
        while time.time() < deadline and self.proc.poll() is None:
            time.sleep(0.2)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass

    def wait(self, timeout=None):
        timed_out = False
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.terminate()
            rc = self.proc.wait()
        self._pump.join()
        duration = time.time() - self._started
        text = self.runner.mask(self.log.text(LOG_TEXT_BYTES))
        self.log.close()
        tail = _tail(text)
        self.result = IlabResult(self.step, self.runner.mask_argv(self.argv), rc=rc,
                                 log_path=self.log_path, log_tail=tail,
                                 duration=duration, timed_out=timed_out,
                                 stdout=tail, log_text=text)
        self.status.update(state='timed_out' if timed_out else ('finished' if rc == 0 else 'failed'),
                           rc=rc, finished=_iso_now(), duration=round(duration, 3))
        self.runner._write_status(self.status_path, self.status)
        return self.result


class IlabRunner(object):
    """Builds and runs ilab command lines as the InstructLab service user."""

    def __init__(self, module, user='instructlab', venv='/opt/instructlab/venv',
                 config_path=None, log_dir=None):
        self.module = module
        self.user = user or 'instructlab'
        self.venv = (venv or '/opt/instructlab/venv').rstrip('/') or '/'
        try:
            self.pw = pwd.getpwnam(self.user)
        except KeyError:
            self.pw = None
        self.home = self.pw.pw_dir if self.pw else os.path.join('/home', self.user)
        self.paths = IlabPaths(self.home)
        self.default_config_path = self.paths.config_path
        self.config_path = config_path or self.default_config_path
        self.log_dir = log_dir or self.paths.logs
        self.ilab = os.path.join(self.venv, 'bin', 'ilab')
        self.venv_python = os.path.join(self.venv, 'bin', 'python')
        self._secrets = []

    @classmethod
    def from_module(cls, module):
        p = module.params
        return cls(module, user=p.get('user'), venv=p.get('venv'),
                   config_path=p.get('config_path'), log_dir=p.get('log_dir'))

    @classmethod
    def checked(cls, module, venv=False):
        """The runner of ``module`` (:meth:`from_module`) after :meth:`check_user` and, with
        ``venv``, :meth:`check_venv`: how every module that runs ilab starts."""
        runner = cls.from_module(module)
        runner.check_user()
        if venv:
            runner.check_venv()
        return runner

    # ------------------------------------------------------------ identity
    @property
    def switch_user(self):
        """True when commands must drop from root to the service user."""
        if self.pw is None:
            return False
        return os.geteuid() != self.pw.pw_uid

    def check_user(self):
        """Fail the module unless the service user exists and can be switched to."""
        if self.pw is None:
            self.module.fail_json(msg='The InstructLab service user %r does not exist' % self.user)
        if self.switch_user and os.geteuid() != 0:
            self.module.fail_json(msg='Running ilab as %r needs root (become: true); running as uid %d'
                                  % (self.user, os.geteuid()))

    def check_venv(self):
        if not os.access(self.ilab, os.X_OK):
            self.module.fail_json(msg='ilab not found at %s: is InstructLab installed in venv %s?'
                                  % (self.ilab, self.venv))

    # ------------------------------------------------------------- secrets
    def add_secret(self, value):
        if value:
            value = str(value)
            if value not in self._secrets:
                self._secrets.append(value)
                # longest first, so a secret containing another one masks whole
                self._secrets.sort(key=len, reverse=True)
            try:
                self.module.no_log_values.add(value)
            except AttributeError:
                pass

    def mask(self, text):
        if text is None:
            return text
        if isinstance(text, bytes):
            text = text.decode('utf-8', 'replace')
        for s in self._secrets:
            text = text.replace(s, MASK)
        return text

    def mask_argv(self, argv):
        return [self.mask(str(a)) for a in argv]

    # ----------------------------------------------------------- argv/env
    def argv(self, subcommand, options=None, args=None, config=True):
        """``[venv/bin/ilab, --config, CFG, *subcommand, *flags, *args]``.

        ``options`` is a list of ``(flag, value)`` pairs (or a dict, order kept):
        value None/False -> omitted, True -> bare flag, list -> flag repeated,
        ``'--x/--no-x'`` -> click boolean pair. ``config=False`` leaves out the
        global ``--config`` (needed by ``ilab config init``, which always writes
        the default config path of the user).
        """
        cmd = [self.ilab]
        if config:
            cmd.extend(['--config', self.config_path])
        if isinstance(subcommand, str):
            subcommand = subcommand.split()
        cmd.extend(subcommand)
        if isinstance(options, dict):
            options = list(options.items())
        for flag, value in options or []:
            cmd.extend(_format_flag(flag, value))
        cmd.extend(str(a) for a in (args or []))
        return cmd

    def env(self, extra=None):
        home = self.home
        env = {
            'HOME': home,
            'USER': self.user,
            'LOGNAME': self.user,
            'LANG': 'C.UTF-8',
            'LC_ALL': 'C.UTF-8',
            'PATH': os.path.join(self.venv, 'bin') + ':' + SYSTEM_PATH,
            'VIRTUAL_ENV': self.venv,
            'PYTHONUNBUFFERED': '1',
            'NO_COLOR': '1',
            'TERM': 'dumb',
        }
        env.update(self.paths.xdg)
        for key, value in os.environ.items():
            if key in PASSTHROUGH_ENV or key.startswith(PASSTHROUGH_PREFIXES):
                env[key] = value
        if extra:
            env.update(dict((k, str(v)) for k, v in extra.items() if v is not None))
        return env

    # --------------------------------------------------------------- files
    @property
    def owner(self):
        """``(uid, gid)`` files created for the service user get (None when not switching)."""
        return _fs.owner_for(self.pw.pw_uid, self.pw.pw_gid) if self.pw else None

    @property
    def state(self):
        """The private state directory for this user (root's, see ``_fs.state_dir``; not created here)."""
        return _fs.state_dir(self.user, self.home)

    def ensure_dir(self, path, mode=0o755):
        """Create ``path`` and its missing parents, owned by the service user."""
        return _fs.makedirs(path, mode, self.owner)

    def log_path_for(self, log_name):
        """Where a step named ``log_name`` logs (predictable, for ``tail -f``)."""
        safe = ''.join(c if c.isalnum() or c in '-_.' else '-' for c in log_name)
        return os.path.join(self.log_dir, safe + '.log')

    def _open_log(self, step, log_name, argv_masked):
        self.ensure_dir(self.log_dir, 0o750)
        name = log_name or ('%s-%s' % (step, time.strftime('%Y%m%dT%H%M%S')))
        log = _fs.open_log(self.log_path_for(name), 0o640, self.owner)
        log.write('# %s  step: %s\n# $ %s\n' % (_iso_now(), step, ' '.join(shlex.quote(a) for a in argv_masked)))
        return log, log.path

    def _write_status(self, path, data):
        _fs.write_json(path, data, 0o640, self.owner)

    # ----------------------------------------------------------- processes
    def _popen_kwargs(self, env, cwd, as_user=True):
        if not cwd:
            cwd = self.home if os.path.isdir(self.home) and as_user else '/'
        kw = dict(env=env, cwd=cwd, close_fds=True, start_new_session=True)
        if self.switch_user and as_user:
            if sys.version_info >= (3, 9):
                kw.update(user=self.pw.pw_uid, group=self.pw.pw_gid, extra_groups=[])
            else:  # pragma: no cover - old controllers' targets
                uid, gid = self.pw.pw_uid, self.pw.pw_gid

                def demote():
                    os.setgroups([])
                    os.setgid(gid)
                    os.setuid(uid)
                kw['preexec_fn'] = demote
        return kw

    def _check_secret_env(self, argv, secret_env):
        for value in (secret_env or {}).values():
            self.add_secret(value)
        for a in argv:
            for s in self._secrets:
                if s and s in str(a):
                    raise IlabRunnerError('refusing to put a secret on a command line')

    def _prepare(self, argv, env, secret_env):
        """The masked argv and the full environment (secrets registered, refused on the command line)."""
        self._check_secret_env(argv, secret_env)
        full_env = self.env(env)
        full_env.update(dict((k, str(v)) for k, v in (secret_env or {}).items()))
        return self.mask_argv(argv), full_env

    def run(self, step, argv, env=None, secret_env=None, cwd=None, log_name=None,
            timeout=None, changes_state=True, data=None, log=True, as_user=True):
        """Run ``argv`` as the service user and wait; returns :class:`IlabResult`.

        ``secret_env`` values reach the process only through its environment
        and are masked everywhere. ``data`` (str) is written to stdin.
        ``log=False`` keeps quick probes out of the log directory.
        ``as_user=False`` runs the helper tool (e.g. ``skopeo`` reading a
        root-only auth file) as the module's own user, same environment rules.
        """
        masked, full_env = self._prepare(argv, env, secret_env)
        if changes_state and self.module.check_mode:
            return IlabResult(step, masked, rc=None, skipped=True)
        logf, log_path = (None, None)
        if log:
            logf, log_path = self._open_log(step, log_name, masked)
        started = time.time()
        out, err = [], []
        timed_out = False
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    **self._popen_kwargs(full_env, cwd, as_user))
        except OSError as e:
            if logf:
                logf.close()
            return IlabResult(step, masked, rc=127, stderr=self.mask(str(e)), log_path=log_path,
                              log_tail=self.mask(str(e)), duration=time.time() - started)
        if data is not None:
            try:
                proc.stdin.write(data.encode('utf-8') if not isinstance(data, bytes) else data)
                proc.stdin.close()
            except (IOError, OSError):
                pass
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        pending = {id(out): b'', id(err): b''}
        deadline = started + timeout if timeout else None
        while sel.get_map():
            wait = None
            if deadline:
                wait = deadline - time.time()
                if wait <= 0:
                    timed_out = True
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except OSError:
                        pass
                    deadline = None
                    wait = None
            for key, _ev in sel.select(timeout=wait if wait is None else max(wait, 0.05)):
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    rest = pending[id(key.data)]
                    if rest:
                        key.data.append(rest)
                        if logf:
                            logf.write(self.mask(rest).encode('utf-8'))
                    continue
                buf = pending[id(key.data)] + chunk
                # write whole lines only, so a secret split across reads is still masked
                cut = buf.rfind(b'\n') + 1
                pending[id(key.data)] = buf[cut:]
                if cut:
                    key.data.append(buf[:cut])
                    if logf:
                        logf.write(self.mask(buf[:cut]).encode('utf-8'))
                        logf.flush()
        rc = proc.wait()
        duration = time.time() - started
        stdout = self.mask(b''.join(out))
        stderr = self.mask(b''.join(err))
        text = None
        if logf:
            logf.write(('\n# rc=%s duration=%.1fs%s\n' % (rc, duration, ' TIMEOUT' if timed_out else '')).encode('utf-8'))
            text = self.mask(logf.text(LOG_TEXT_BYTES))
            logf.close()
            tail = _tail(text)
        else:
            tail = _tail(stdout + ('\n' if stdout and stderr else '') + stderr)
        return IlabResult(step, masked, rc=rc, stdout=stdout, stderr=stderr, log_path=log_path,
                          log_tail=tail, duration=duration, timed_out=timed_out, log_text=text)

    def start(self, step, argv, env=None, secret_env=None, cwd=None, log_name=None,
              changes_state=True):
        """Start ``argv`` in the background (Popen-style) and return an :class:`IlabJob`.

        The log path is known at once and a status JSON (``<log>.status.json``:
        step, cmd, pid, log_path, state, started; then rc/finished) is written
        next to the log, so a caller running under ``async`` can be followed.
        In check mode returns an ``IlabResult`` with ``skipped=True`` instead.
        """
        masked, full_env = self._prepare(argv, env, secret_env)
        if changes_state and self.module.check_mode:
            return IlabResult(step, masked, rc=None, skipped=True)
        logf, log_path = self._open_log(step, log_name, masked)
        status_path = log_path[:-len('.log')] + '.status.json'
        started = time.time()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, **self._popen_kwargs(full_env, cwd))
        except OSError as e:
            logf.write(('cannot start: %s\n' % e).encode('utf-8'))
            logf.close()
            raise IlabRunnerError('%s: cannot start %s: %s' % (step, masked[0], e))

        def pump():
            try:
                for line in iter(proc.stdout.readline, b''):
                    logf.write(self.mask(line).encode('utf-8'))
            finally:
                proc.stdout.close()
        t = threading.Thread(target=pump)
        t.daemon = True
        t.start()
        status = dict(step=step, cmd=' '.join(shlex.quote(a) for a in masked), pid=proc.pid,
                      log_path=log_path, state='running', started=_iso_now())
        self._write_status(status_path, status)
        return IlabJob(self, step, argv, proc, logf, status_path, status, t, started)

    def python(self, step, script, args=None, changes_state=False, **kwargs):
        """Run ``<venv>/bin/python -c script args...`` as the service user."""
        argv = [self.venv_python, '-c', script] + [str(a) for a in (args or [])]
        kwargs.setdefault('log', False)
        return self.run(step, argv, changes_state=changes_state, **kwargs)

    # -------------------------------------------------------------- errors
    def fail(self, step, result=None, msg=None, **extra):
        """fail_json with the step, masked command, rc and log tail. Never returns."""
        if result is None:
            text = msg or '%s failed' % step
            self.module.fail_json(msg=self.mask(text), step=step, **extra)
        detail = 'rc=%s' % result.rc
        if result.timed_out:
            detail += ', timed out'
        text = '%s failed (%s): %s' % (step, detail, result.cmd)
        if msg:
            text = '%s: %s' % (msg, text)
        tail = result.log_tail or _tail(result.stderr or result.stdout or '')
        if tail:
            text += '\n--- log tail (%s) ---\n%s' % (result.log_path or 'output', tail)
        else:
            text += ' (no output)'
        data = dict(step=step, cmd=result.cmd, rc=result.rc, log_path=result.log_path,
                    log_tail=tail, stdout=result.stdout, stderr=result.stderr)
        data.update(extra)
        self.module.fail_json(msg=self.mask(text), **data)

    # --------------------------------------------------------------- facts
    def ilab_version(self):
        """Installed InstructLab version from the venv's metadata, or None."""
        if not os.path.exists(self.venv_python):
            return None
        res = self.python('ilab version',
                          'import importlib.metadata as m; print(m.version("instructlab"))')
        if res.rc != 0:
            return None
        return res.stdout.strip() or None


class HostTool(object):
    """A tool of the host (``systemctl``, ``journalctl``, ``nvidia-smi``) run as the
    module's own user through ``module.run_command``.

    ``path`` wins over the search; ``opt_dirs`` are searched after ``PATH``;
    ``required=True`` fails the module when the tool is missing. ``env`` is added
    to every call's environment (``environ_update``).
    """

    def __init__(self, module, name, path=None, opt_dirs=None, required=False, env=None):
        self.module = module
        self.name = name
        if not path:
            search = dict(opt_dirs=list(opt_dirs)) if opt_dirs else {}
            path = module.get_bin_path(name, required=required, **search)
        self.path = path
        self.env = dict(env or {})
        self.commands = []

    def argv(self, *args):
        return [self.path] + [str(a) for a in args]

    def run(self, *args, **kwargs):
        """``module.run_command([path, *args])``: ``(rc, stdout, stderr)``."""
        argv = self.argv(*args)
        self.commands.append(argv)
        if self.env:
            env = dict(self.env)
            env.update(kwargs.get('environ_update') or {})
            kwargs['environ_update'] = env
        return self.module.run_command(argv, **kwargs)
