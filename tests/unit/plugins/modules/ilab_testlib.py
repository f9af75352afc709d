# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared helpers for the ilab_* module unit tests: run a module's main() with
arguments, capture exit_json/fail_json, and record (or answer) every command
the shared runner would run."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import getpass
import json

from ansible.module_utils import basic

from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_runner
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import IlabResult

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    import contextlib
    from ansible.module_utils.common.text.converters import to_bytes

    @contextlib.contextmanager
    def patch_module_args(args):
        old = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = old

ME = getpass.getuser()


class Exit(Exception):
    pass


class Fail(Exception):
    pass


def raiser(exc):
    """An exit_json/fail_json replacement that raises ``exc`` with the result."""
    def throw(self, **kw):
        raise exc(kw)
    return throw


class Recorder(object):
    """Replaces IlabRunner.run; ``responder(step, argv, kw)`` returns
    (rc, stdout, stderr) or None (rc 0, no output)."""

    def __init__(self, responder=None):
        self.responder = responder
        self.calls = []

    def steps(self):
        return [c['step'] for c in self.calls if not c['skipped']]

    def argvs(self):
        return [c['argv'] for c in self.calls if not c['skipped']]

    def install(self, monkeypatch):
        rec = self

        def fake_run(runner, step, argv, env=None, secret_env=None, cwd=None, log_name=None,
                     timeout=None, changes_state=True, data=None, log=True, as_user=True):
            runner._check_secret_env(argv, secret_env)
            skipped = bool(changes_state and runner.module.check_mode)
            call = dict(step=step, argv=list(argv), env=dict(runner.env(env)), secret_env=secret_env or {},
                        cwd=cwd, data=data, as_user=as_user, changes_state=changes_state,
                        skipped=skipped, log_name=log_name, timeout=timeout)
            rec.calls.append(call)
            if skipped:
                return IlabResult(step, runner.mask_argv(argv), rc=None, skipped=True)
            out = rec.responder(step, list(argv), call) if rec.responder else None
            rc, stdout, stderr = out if out is not None else (0, '', '')
            return IlabResult(step, runner.mask_argv(argv), rc=rc, stdout=runner.mask(stdout),
                              stderr=runner.mask(stderr), log_path='/logs/%s.log' % (log_name or step),
                              log_tail=runner.mask((stdout + stderr)[-2000:]))
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'run', fake_run)
        return self


def run_module(monkeypatch, main, args, check_mode=False, diff=False, ilab_options=True):
    """``ilab_options=False`` for a module without the shared user/venv options."""
    def exit_json(self, **kw):
        kw.setdefault('changed', False)
        raise Exit(kw)

    def fail_json(self, msg, **kw):
        kw['msg'] = msg
        kw['failed'] = True
        raise Fail(kw)
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', exit_json)
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', fail_json)
    full = dict(args)
    if ilab_options:
        full.setdefault('user', ME)
    return run_main(main, full, check_mode, diff)[1]


def run_main(main, args, check=False, diff=False):
    """Run a module's ``main()`` with ARGS (check/diff mode on request) and return
    ``('exit' | 'fail', result)``; exit_json and fail_json must raise Exit and
    Fail (``raiser``)."""
    args = dict(args)
    if check:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    with patch_module_args(args):
        try:
            main()
        except Exit as e:
            return 'exit', e.args[0]
        except Fail as e:
            return 'fail', e.args[0]
    raise AssertionError('module did not exit')


SMI = '/usr/bin/nvidia-smi'
# the query of the one GPU reader (_gpu.read_gpus), then plain nvidia-smi for the CUDA version
GPU_COMMANDS = [[SMI, '--query-gpu=index,name,uuid,memory.total,memory.used,driver_version,compute_cap',
                 '--format=csv,noheader,nounits'], [SMI]]


def fake_nvidia_smi(monkeypatch, name, count, mib, cap):
    """nvidia-smi on PATH listing ``count`` GPUs ``name``; returns the command lines it is asked."""
    seen = []

    def run_command(self, argv, **kw):
        seen.append(argv)
        if len(argv) == 1:
            return 0, 'Driver Version: 550.54.15      CUDA Version: 12.4\n', ''
        return 0, ''.join('%d, %s, GPU-%d, %d, 0, 550.54.15, %s\n' % (i, name, i, mib, cap)
                          for i in range(count)), ''
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, tool, required=False, opt_dirs=None: SMI)
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', run_command)
    return seen


def make_venv(tmp_path, python_script=None):
    """A fake venv with executable bin/ilab and bin/python (shell scripts)."""
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    for name, body in (('ilab', 'echo ilab "$@"\n'),
                       ('python', python_script or 'echo 0.26.1\n')):
        p = venv / 'bin' / name
        p.write_text('#!/bin/sh\n' + body)
        p.chmod(0o755)
    return str(venv)
