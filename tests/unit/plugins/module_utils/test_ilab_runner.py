# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils._ilab_runner: argv building, environment,
secret handling, logs, check mode, failure reports, background jobs. Commands
really run (small shell scripts), so the environment and argv seen by the
child process are checked, not just what the runner meant to pass."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import getpass
import json
import os
import pwd
import time

import pytest

from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_runner as R

ME = getpass.getuser()
SECRET = 'hf_S3cretT0kenValue'


class FakeModule(object):
    def __init__(self, check_mode=False):
        self.check_mode = check_mode
        self.no_log_values = set()
        self.failed = None

    def fail_json(self, **kw):
        self.failed = kw
        raise RuntimeError(kw['msg'])


@pytest.fixture
def runner(tmp_path):
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    return R.IlabRunner(FakeModule(), user=ME, venv=str(venv), log_dir=str(tmp_path / 'logs'))


def script(tmp_path, name, body):
    p = tmp_path / name
    p.write_text('#!/bin/sh\n' + body)
    p.chmod(0o755)
    return str(p)


def test_argv_spec(runner):
    argv = runner.argv(['model', 'serve'],
                       [('--model-path', '/m.gguf'), ('--gpu-layers', -1), ('--quiet', True),
                        ('--backend', None), ('--off', False), ('--tag', ['a', 'b']),
                        ('--x/--no-x', False), ('--y/--no-y', True), ('--z/--no-z', None)],
                       args=['pos'])
    assert argv == [runner.venv + '/bin/ilab', '--config', runner.config_path, 'model', 'serve',
                    '--model-path', '/m.gguf', '--gpu-layers', '-1', '--quiet', '--tag', 'a',
                    '--tag', 'b', '--no-x', '--y', 'pos']


def test_argv_without_config_and_string_subcommand(runner):
    assert runner.argv('config init', {'--non-interactive': True}, config=False) == [
        runner.venv + '/bin/ilab', 'config', 'init', '--non-interactive']


def test_defaults_follow_the_users_home(tmp_path):
    r = R.IlabRunner(FakeModule(), user=ME, venv=str(tmp_path) + '/')
    home = pwd.getpwnam(ME).pw_dir
    assert r.default_config_path == home + '/.config/instructlab/config.yaml'
    assert r.config_path == r.default_config_path
    assert r.log_dir == home + '/.local/state/labforge/logs'
    assert r.ilab == str(tmp_path) + '/bin/ilab'


def test_env_is_clean_and_venv_first(runner, monkeypatch):
    monkeypatch.setenv('HTTPS_PROXY', 'http://proxy:3128')
    monkeypatch.setenv('ILAB_GLOBAL_CONFIG', '/x.yaml')
    monkeypatch.setenv('ROOT_ONLY_SECRET', 'nope')
    monkeypatch.setenv('PYTHONPATH', '/evil')
    env = runner.env({'EXTRA': 1, 'DROP': None})
    assert env['PATH'].split(':')[0] == runner.venv + '/bin'
    assert env['VIRTUAL_ENV'] == runner.venv
    assert env['HOME'] == runner.home
    assert env['XDG_CONFIG_HOME'] == runner.home + '/.config'
    assert env['XDG_DATA_HOME'] == runner.home + '/.local/share'
    assert env['XDG_CACHE_HOME'] == runner.home + '/.cache'
    assert env['HTTPS_PROXY'] == 'http://proxy:3128'
    assert env['ILAB_GLOBAL_CONFIG'] == '/x.yaml'
    assert env['EXTRA'] == '1'
    assert 'ROOT_ONLY_SECRET' not in env and 'PYTHONPATH' not in env and 'DROP' not in env


def test_run_passes_secret_by_env_and_masks_it(runner, tmp_path):
    dump = tmp_path / 'seen.json'
    cmd = script(tmp_path, 'probe', 'python3 -c "import json,os,sys; json.dump({\'argv\': sys.argv, '
                 '\'env\': dict(os.environ)}, open(\'%s\', \'w\'))" "$@"\n'
                 'echo "token is $HF_TOKEN"; echo "err $HF_TOKEN" >&2; exit 0\n' % dump)
    res = runner.run('probe', [cmd, 'a b'], env={'A': 'x'}, secret_env={'HF_TOKEN': SECRET},
                     log_name='probe')
    seen = json.loads(dump.read_text())
    assert seen['env']['HF_TOKEN'] == SECRET           # the child got it ...
    assert SECRET not in ' '.join(seen['argv'])         # ... never on its command line
    assert seen['env']['A'] == 'x'
    assert res.rc == 0
    assert res.stdout == 'token is ********\n' and res.stderr == 'err ********\n'
    log = open(res.log_path).read()
    assert SECRET not in log and 'token is ********' in log and "'a b'" in log
    assert SECRET not in res.log_tail and SECRET not in res.cmd
    assert SECRET in runner.module.no_log_values
    assert res.log_path == str(tmp_path / 'logs' / 'probe.log')


def test_secret_on_argv_is_refused(runner):
    with pytest.raises(R.IlabRunnerError):
        runner.run('x', ['/bin/true', '--hf-token', SECRET], secret_env={'HF_TOKEN': SECRET})


def test_check_mode_runs_nothing_that_changes_state(tmp_path):
    r = R.IlabRunner(FakeModule(check_mode=True), user=ME, venv=str(tmp_path), log_dir=str(tmp_path / 'l'))
    marker = tmp_path / 'marker'
    res = r.run('touch', ['/usr/bin/touch', str(marker)])
    assert res.skipped and res.rc is None and not marker.exists()
    assert not (tmp_path / 'l').exists()
    res = r.run('read', ['/bin/echo', 'hi'], changes_state=False, log=False)
    assert res.rc == 0 and res.stdout == 'hi\n'
    assert r.start('bg', ['/usr/bin/touch', str(marker)]).skipped and not marker.exists()


def test_fail_reports_step_command_rc_and_log_tail(runner, tmp_path):
    cmd = script(tmp_path, 'boom', 'for i in $(seq 1 60); do echo line$i; done\n'
                 'echo "LINUX_TRAIN.PY: FINISHED $HF_TOKEN"\nexit 1\n')
    res = runner.run('train model', [cmd, '--flag'], secret_env={'HF_TOKEN': SECRET}, log_name='train')
    assert res.rc == 1
    with pytest.raises(RuntimeError):
        runner.fail('train model', res)
    f = runner.module.failed
    assert f['step'] == 'train model' and f['rc'] == 1 and f['cmd'] == cmd + ' --flag'
    assert 'train model failed (rc=1): ' + cmd + ' --flag' in f['msg']
    assert 'LINUX_TRAIN.PY: FINISHED ********' in f['msg'] and SECRET not in f['msg']
    assert 'line60' in f['log_tail'] and 'line5\n' not in f['log_tail']  # a tail, not the whole log
    assert f['log_path'] == res.log_path


def test_silent_failure_says_so(runner, tmp_path):
    res = runner.run('quiet', [script(tmp_path, 'q', 'exit 1\n')], log=False)
    with pytest.raises(RuntimeError):
        runner.fail('quiet', res)
    assert '(no output)' in runner.module.failed['msg']


def test_missing_program_is_rc_127(runner):
    res = runner.run('missing', ['/nonexistent/ilab'], log=False)
    assert res.rc == 127


def test_timeout_kills(runner, tmp_path):
    t0 = time.time()
    res = runner.run('slow', [script(tmp_path, 's', 'echo start; sleep 30\n')], timeout=1, log_name='slow')
    assert res.timed_out and res.rc != 0 and time.time() - t0 < 10
    assert 'TIMEOUT' in open(res.log_path).read()


def test_stdin_data(runner):
    res = runner.run('cat', ['/bin/cat'], data='{"a": 1}', log=False)
    assert res.stdout == '{"a": 1}'


def test_start_writes_status_and_log(runner, tmp_path):
    cmd = script(tmp_path, 'bg', 'echo begin $HF_TOKEN; sleep 1; echo end; exit 3\n')
    job = runner.start('generate', [cmd], secret_env={'HF_TOKEN': SECRET}, log_name='gen')
    status = json.load(open(job.status_path))
    assert status['state'] == 'running' and status['pid'] == job.pid
    assert status['log_path'] == job.log_path == str(tmp_path / 'logs' / 'gen.log')
    assert job.status_path == str(tmp_path / 'logs' / 'gen.status.json')
    res = job.wait()
    status = json.load(open(job.status_path))
    assert res.rc == 3 and status['rc'] == 3 and status['state'] == 'failed'
    log = open(job.log_path).read()
    assert 'begin ********' in log and 'end' in log and SECRET not in log


def test_switch_user_uses_user_group_and_no_extra_groups(runner, monkeypatch):
    class PW(object):
        pw_uid, pw_gid, pw_dir = 4242, 4343, '/var/lib/instructlab'
    runner.pw = PW()
    monkeypatch.setattr(os, 'geteuid', lambda: 0)
    assert runner.switch_user
    kw = runner._popen_kwargs({}, None)
    assert kw['user'] == 4242 and kw['group'] == 4343 and kw['extra_groups'] == []
    assert kw['start_new_session'] is True
    kw = runner._popen_kwargs({}, None, as_user=False)
    assert 'user' not in kw and kw['cwd'] == '/'
    # what root makes for the account is the account's (_fs.owner_for); as the account: no chown
    assert runner.owner == (4242, 4343)
    monkeypatch.setattr(os, 'geteuid', lambda: 4242)
    assert not runner.switch_user and runner.owner is None


def test_check_user_fails_for_missing_user(tmp_path):
    r = R.IlabRunner(FakeModule(), user='no-such-user-lfm6', venv=str(tmp_path))
    with pytest.raises(RuntimeError, match='does not exist'):
        r.check_user()


def test_checked_checks_the_user_then_the_venv(tmp_path):
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    module = FakeModule()
    module.params = dict(user=ME, venv=str(venv), config_path=None, log_dir=str(tmp_path / 'logs'))
    r = R.IlabRunner.checked(module)   # no ilab in the venv: only the user is checked
    assert (r.user, r.venv, r.log_dir) == (ME, str(venv), str(tmp_path / 'logs'))
    with pytest.raises(RuntimeError, match='ilab not found at %s' % r.ilab):
        R.IlabRunner.checked(module, venv=True)
    script(venv / 'bin', 'ilab', 'exit 0\n')
    assert R.IlabRunner.checked(module, venv=True).ilab == r.ilab
    module.params['user'] = 'no-such-user-lfm6'
    with pytest.raises(RuntimeError, match='does not exist'):
        R.IlabRunner.checked(module, venv=True)


def test_ilab_version(tmp_path):
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    py = venv / 'bin' / 'python'
    py.write_text('#!/bin/sh\n[ "$1" = "-c" ] && case "$2" in *importlib.metadata*) echo 0.26.1;; esac\n')
    py.chmod(0o755)
    r = R.IlabRunner(FakeModule(), user=ME, venv=str(venv))
    assert r.ilab_version() == '0.26.1'
    r2 = R.IlabRunner(FakeModule(), user=ME, venv=str(tmp_path / 'none'))
    assert r2.ilab_version() is None


def test_mask_longest_first(runner):
    runner.add_secret('abc')
    runner.add_secret('abcdef')
    assert runner.mask('x abcdef y abc') == 'x ******** y ********'


def test_start_missing_program_raises(runner):
    with pytest.raises(R.IlabRunnerError, match='cannot start'):
        runner.start('bg', ['/nonexistent/ilab'], log_name='missing')
    assert 'cannot start' in open(runner.log_path_for('missing')).read()


def test_common_helpers():
    """module_utils._ilab_common: dotted keys, sha256 notation (file operations: test_fs.py)."""
    from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_common as C
    d = {'a': {'b': None, 'c': {'d': 1}}}
    assert C.dotted_has(d, 'a.b') and not C.dotted_has(d, 'a.x') and not C.dotted_has(d, 'a.b.c')
    assert C.dotted_get(d, 'a.c.d') == 1 and C.dotted_get(d, 'a.x') is None and C.dotted_get(d, 'a.x', 5) == 5
    C.dotted_set(d, 'a.b.e', 2)
    assert d['a']['b'] == {'e': 2}
    assert C.flatten(d) == {'a.b.e': 2, 'a.c.d': 1}
    assert C.normalize_sha256('SHA256:' + 'A' * 64) == 'a' * 64
    with pytest.raises(ValueError):
        C.normalize_sha256('sha256:xyz')


def test_log_replaces_a_planted_link_and_status_follows_the_job(runner, tmp_path):
    """The runner's log and status files go through the file layer: a link at the log's
    name is replaced, not truncated through."""
    canary = tmp_path / 'canary'
    canary.write_text('keep')
    path = runner.log_path_for('step')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(str(canary), path)
    os.symlink(str(canary), path[:-len('.log')] + '.status.json')
    res = runner.run('step', ['sh', '-c', 'echo hello'], log_name='step')
    assert res.rc == 0 and 'hello' in res.log_text and canary.read_text() == 'keep'
    assert not os.path.islink(path) and 'hello' in open(path).read()
    job = runner.start('bg', ['sh', '-c', 'echo bye'], log_name='step')
    job.wait()
    assert canary.read_text() == 'keep' and not os.path.islink(job.status_path)
    import json
    assert json.load(open(job.status_path))['state'] == 'finished'


class ToolModule(FakeModule):
    """get_bin_path/run_command of AnsibleModule, recorded."""

    def __init__(self, found):
        FakeModule.__init__(self)
        self.found = found
        self.calls = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        self.calls.append(('which', name, required, opt_dirs))
        path = self.found.get(name)
        if not path and required:
            self.fail_json(msg='Failed to find required executable "%s"' % name)
        return path

    def run_command(self, argv, **kw):
        self.calls.append(('run', argv, kw))
        return 0, 'active\n', ''


def test_host_tool_runs_through_run_command():
    """systemctl, journalctl and nvidia-smi: found once, run as the module's user with run_command."""
    m = ToolModule({'nvidia-smi': '/usr/local/nvidia/bin/nvidia-smi'})
    smi = R.HostTool(m, 'nvidia-smi', opt_dirs=['/usr/local/nvidia/bin'], env={'LC_ALL': 'C'})
    assert smi.path == '/usr/local/nvidia/bin/nvidia-smi'
    assert smi.run('-q', 1) == (0, 'active\n', '')
    smi.run(environ_update={'X': '1'})
    assert m.calls == [('which', 'nvidia-smi', False, ['/usr/local/nvidia/bin']),
                       ('run', ['/usr/local/nvidia/bin/nvidia-smi', '-q', '1'], {'environ_update': {'LC_ALL': 'C'}}),
                       ('run', ['/usr/local/nvidia/bin/nvidia-smi'], {'environ_update': {'LC_ALL': 'C', 'X': '1'}})]
    assert smi.commands == [['/usr/local/nvidia/bin/nvidia-smi', '-q', '1'], ['/usr/local/nvidia/bin/nvidia-smi']]
    # an explicit path is not searched; no env: run_command's own environment
    m.calls = []
    tool = R.HostTool(m, 'systemctl', path='/bin/systemctl')
    tool.run('is-active', 'x.service', check_rc=False)
    assert m.calls == [('run', ['/bin/systemctl', 'is-active', 'x.service'], {'check_rc': False})]
    assert R.HostTool(m, 'journalctl').path is None
    with pytest.raises(RuntimeError, match='required executable'):
        R.HostTool(m, 'nope', required=True)
