# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the labforge.instructlab.run_report callback.

The first group runs real ``ansible-playbook`` commands against this machine
(one reachable host that succeeds, one that fails, one unreachable) with the
callback enabled, in apply and in check mode, and reads the reports written.
The second group feeds the plugin's helpers with result dicts shaped like the
RETURN documentation of the collection's modules.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import shutil
import subprocess
import sys
import textwrap
import types

import pytest
import yaml

from ansible import constants as C
from ansible.module_utils import basic
from ansible.executor.stats import AggregateStats

from ansible_collections.labforge.instructlab.plugins.callback import run_report
from ansible_collections.labforge.instructlab.plugins.modules import gpu_info
from ansible_collections.labforge.instructlab.tests.unit.plugins.modules.ilab_testlib import (
    Exit, Fail, raiser, run_main)

SECRET = 'sEcReT-0token-value-do-not-leak'
ARG_MARKER = 'module-argument-marker-4711'

PLAYBOOK = textwrap.dedent('''\
    - name: Report fixture play
      hosts: all
      gather_facts: true
      vars:
        hf_token: "%(secret)s"
      tasks:
        - name: Publish the facts the python and instructlab roles publish
          ansible.builtin.set_fact:
            python_interpreter: /opt/pyenv/versions/3.11.2/bin/python3.11
            python_interpreter_version: 3.11.2
            instructlab_version_installed: 0.26.1
            instructlab_venv: /opt/instructlab/venv

        - name: Read the GPUs
          labforge.instructlab.gpu_info:

        - name: Read the GPUs in the background
          labforge.instructlab.gpu_info:
          async: 60
          poll: 0
          register: gpu_job
          changed_when: false

        - name: Wait for the background GPU read
          ansible.builtin.async_status:
            jid: "{{ gpu_job.ansible_job_id }}"
          register: gpu_done
          until: gpu_done is finished
          retries: 60
          delay: 1

        - name: Read the GPUs in the background again
          labforge.instructlab.gpu_info:
          async: 60
          poll: 0
          register: gpu_job2
          changed_when: false

        - name: Wait for it with job_wait
          labforge.instructlab.job_wait:
            jid: "{{ gpu_job2.ansible_job_id }}"
            poll: 1

        - name: Keep a note in a role fact
          ansible.builtin.set_fact:
            instructlab_public_note: visible

        - name: Keep a secret in a role fact
          ansible.builtin.set_fact:
            instructlab_download_note: "{{ hf_token }}"
          no_log: true

        - name: Print the secret without logging it
          ansible.builtin.debug:
            msg: "{{ hf_token }}"
          no_log: true

        - name: Produce report data
          report_probe:
            token: "{{ hf_token }}"
            marker: %(marker)s
          register: probe
          notify: Restart the served model

        - name: A step that fails but is ignored
          ansible.builtin.command: /bin/false
          changed_when: false
          ignore_errors: true

        - name: A failure a rescue handles
          block:
            - name: Fail inside a block
              ansible.builtin.fail:
                msg: handled by the rescue
          rescue:
            - name: Rescue it
              ansible.builtin.debug:
                msg: rescued

        - name: Loop over items
          ansible.builtin.debug:
            msg: "{{ item }}"
          loop: [one, two]

        - name: Never runs
          ansible.builtin.debug:
            msg: skipped
          when: false

        - name: Fail on the failing host only
          ansible.builtin.fail:
            msg: this host is meant to fail
          when: inventory_hostname == 'failing'

        - name: After the failure
          ansible.builtin.debug:
            msg: still here

      handlers:
        - name: Restart the served model
          ansible.builtin.debug:
            msg: restarted
''') % {'secret': SECRET, 'marker': ARG_MARKER}

PROBE_MODULE = textwrap.dedent('''\
    #!/usr/bin/python
    from ansible.module_utils.basic import AnsibleModule

    def main():
        module = AnsibleModule(
            argument_spec=dict(token=dict(type='str', no_log=True), marker=dict(type='str')),
            supports_check_mode=True)
        module.exit_json(
            changed=not module.check_mode,
            final_loss=0.4321,
            model_path='/returned/but/not/in/the/report',
            stdout='stdout is never recorded ' + module.params['marker'],
            password='never-recorded-password',
            report=dict(final_loss=0.4321, rows=7, endpoint='http://127.0.0.1:8000/v1', api_token='never-recorded-api-token',
                        nested=dict(secret='never-recorded-nested', digest='sha256:abc')))

    if __name__ == '__main__':
        main()
''')


def _ansible_playbook():
    exe = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    return exe if os.path.exists(exe) else shutil.which('ansible-playbook')


def _run(workdir, *extra):
    env = dict(os.environ)
    env.update(
        ANSIBLE_CALLBACKS_ENABLED='labforge.instructlab.run_report',
        LABFORGE_REPORT_DIR=str(workdir / 'reports'),
        ANSIBLE_LIBRARY=str(workdir / 'library'),
        ANSIBLE_HOST_KEY_CHECKING='False',
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_RETRY_FILES_ENABLED='False',
        ANSIBLE_LOCAL_TEMP=str(workdir / 'tmp'),
        ANSIBLE_CONFIG=str(workdir / 'ansible.cfg'),
    )
    env.pop('ANSIBLE_STDOUT_CALLBACK', None)
    proc = subprocess.run(
        [_ansible_playbook(), '-i', str(workdir / 'inventory'), str(workdir / 'playbook.yml')] + list(extra),
        cwd=str(workdir), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
        timeout=600, check=False)
    return proc


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp('run_report')
    (d / 'library').mkdir()
    (d / 'library' / 'report_probe.py').write_text(PROBE_MODULE)
    (d / 'playbook.yml').write_text(PLAYBOOK)
    (d / 'ansible.cfg').write_text('[defaults]\n')
    py = sys.executable
    (d / 'inventory').write_text(
        'good ansible_connection=local ansible_python_interpreter=%s\n'
        'failing ansible_connection=local ansible_python_interpreter=%s\n'
        'gone ansible_connection=ssh ansible_host=127.0.0.1 ansible_port=1 ansible_ssh_timeout=5\n' % (py, py))
    return d


@pytest.fixture(scope='module')
def applied(workdir):
    proc = _run(workdir)
    return _load(workdir, proc)


@pytest.fixture(scope='module')
def checked(workdir, applied):
    proc = _run(workdir, '--check')
    return _load(workdir, proc)


def _load(workdir, proc):
    # a failed and an unreachable host: ansible-playbook exits 4 (unreachable wins)
    assert proc.returncode in (2, 4), proc.stdout
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith('RUN REPORT: ')]
    assert len(line) == 1, proc.stdout
    md_path = line[0].split('RUN REPORT: ', 1)[1].split(' (JSON: ')[0]
    json_path = line[0].split(' (JSON: ', 1)[1].rstrip(')')
    with open(json_path) as f:
        text = f.read()
    with open(md_path) as f:
        md = f.read()
    return types.SimpleNamespace(proc=proc, json_path=json_path, md_path=md_path, text=text,
                                 data=json.loads(text), md=md)


def _iso(value):
    return datetime.datetime.strptime(value, '%Y-%m-%dT%H:%M:%S.%fZ')


def _step(host, task):
    found = [s for s in host['steps'] if s['task'] == task]
    assert len(found) == 1, [s['task'] for s in host['steps']]
    return found[0]


def test_files_and_latest_links(workdir, applied):
    reports = workdir / 'reports'
    base = os.path.basename(applied.json_path)[:-len('.json')]
    assert base.startswith('run-') and applied.data['run']['id'] == base
    assert os.path.basename(applied.md_path) == base + '.md'
    assert os.path.dirname(applied.json_path) == str(reports)
    assert applied.data['format'] == 'labforge.instructlab.run_report/v1'
    # reports name the fleet's hosts, paths and versions: their owner only
    for path in (applied.json_path, applied.md_path):
        assert oct(os.stat(path).st_mode & 0o777) == '0o600', path
    assert oct(os.stat(str(reports)).st_mode & 0o777) == '0o700'


def test_latest_points_at_newest(workdir, checked):
    reports = workdir / 'reports'
    assert len(list(reports.glob('run-*.json'))) == 2
    with open(str(reports / 'latest.json')) as f:
        assert json.load(f)['run']['id'] == checked.data['run']['id']
    with open(str(reports / 'latest.md')) as f:
        assert f.read() == checked.md


def test_run_summary(applied):
    run = applied.data['run']
    assert run['status'] == 'failed'
    assert run['check_mode'] is False
    assert run['playbooks'] and run['playbooks'][0].endswith('playbook.yml')
    assert _iso(run['started']) <= _iso(run['finished'])
    assert run['duration_s'] > 0
    assert applied.data['totals'] == {'hosts': 3, 'ok': 1, 'failed': 1, 'unreachable': 1}


def test_host_statuses(applied):
    hosts = applied.data['hosts']
    assert sorted(hosts) == ['failing', 'gone', 'good']
    assert hosts['good']['status'] == 'ok' and hosts['good']['failed_steps'] == []
    assert hosts['failing']['status'] == 'failed'
    assert hosts['gone']['status'] == 'unreachable'
    failed = [s for s in hosts['failing']['steps'] if s['index'] in hosts['failing']['failed_steps']]
    assert [(s['task'], s['status'], s['msg']) for s in failed] == [
        ('Fail on the failing host only', 'failed', 'this host is meant to fail')]
    assert hosts['failing']['stats']['failures'] == 1
    gone = hosts['gone']['steps']
    assert len(gone) == 1 and gone[0]['status'] == 'unreachable' and gone[0]['implicit'] is True
    assert 'Connection refused' in gone[0]['msg'] or 'connect' in gone[0]['msg'].lower()
    assert hosts['gone']['failed_steps'] == [1]


def test_steps_have_status_and_time(applied):
    good = applied.data['hosts']['good']
    tasks = [s['task'] for s in good['steps']]
    assert tasks[0] == 'Gathering Facts'
    assert 'After the failure' in tasks
    for i, step in enumerate(good['steps'], 1):
        assert step['index'] == i
        assert step['status'] in run_report.STATUSES
        assert step['play'] == 'Report fixture play'
        assert step['duration_s'] >= 0
        assert _iso(step['start']) <= _iso(step['end'])
    assert _step(good, 'Read the GPUs')['action'] == 'labforge.instructlab.gpu_info'
    assert _step(good, 'Produce report data')['status'] == 'changed'
    ignored = _step(good, 'A step that fails but is ignored')
    assert (ignored['status'], ignored['ignored'], ignored['msg']) == ('failed', True, 'non-zero return code')
    rescued = _step(good, 'Fail inside a block')
    assert (rescued['status'], rescued['rescued']) == ('failed', True)
    assert _step(good, 'Loop over items')['items'] == 2
    assert _step(good, 'Never runs')['status'] == 'skipped'
    assert _step(good, 'Fail on the failing host only')['status'] == 'skipped'
    assert _step(good, 'Print the secret without logging it')['no_log'] is True
    assert good['stats']['rescued'] == 1 and good['stats']['ignored'] == 1
    handler = good['steps'][-1]
    assert (handler['task'], handler['handler'], handler['status']) == ('Restart the served model', True, 'ok')
    assert not any(s.get('handler') for s in good['steps'][:-1])


def test_host_facts(applied):
    good = applied.data['hosts']['good']
    assert good['os']['distribution'] and good['os']['os_family'] and good['os']['kernel']
    assert good['python']['interpreter'] == '/opt/pyenv/versions/3.11.2/bin/python3.11'
    assert good['python']['version'] == '3.11.2'
    assert good['python']['ansible_executable'] == sys.executable
    assert good['python']['ansible_version'] == '%d.%d.%d' % sys.version_info[:3]
    assert good['versions']['instructlab'] == '0.26.1'
    assert good['versions']['python'] == '3.11.2'
    assert good['facts']['instructlab_venv'] == '/opt/instructlab/venv'
    # what gpu_info really found on this machine, whatever it is
    gpu = good['facts']['gpu_info']
    assert good['gpu']['status'] == gpu['status']
    assert good['gpu']['count'] == gpu['gpu_count'] == len(good['gpu']['gpus'])
    assert good['gpu']['profile'] == gpu['ilab_profile']
    assert good['gpu']['profile_reason'] == gpu['ilab_profile_reason']


def test_artifacts_and_report_contract(applied):
    good = applied.data['hosts']['good']
    by_task = {a['task']: a for a in good['artifacts']}
    probe = by_task['Produce report data']
    assert probe['final_loss'] == 0.4321
    assert probe['rows'] == 7
    assert probe['nested'] == {'digest': 'sha256:abc'}
    assert 'model_path' not in probe and '/returned/but/not' not in applied.text
    assert good['endpoint'] == 'http://127.0.0.1:8000/v1'
    assert by_task['Read the GPUs']['action'] == 'labforge.instructlab.gpu_info'


@pytest.mark.parametrize('which', ['applied', 'checked'])
def test_async_job_artifacts_name_the_module(request, which):
    good = request.getfixturevalue(which).data['hosts']['good']
    by_task = {a['task']: a for a in good['artifacts']}
    assert 'Read the GPUs in the background' not in by_task  # only started there
    waited = by_task['Wait for the background GPU read']
    assert waited['action'] == 'labforge.instructlab.gpu_info'
    assert _step(good, 'Wait for the background GPU read')['action'] == 'ansible.builtin.async_status'
    assert 'Read the GPUs in the background again' not in by_task
    waited_too = by_task['Wait for it with job_wait']
    assert waited_too['action'] == 'labforge.instructlab.gpu_info'
    assert _step(good, 'Wait for it with job_wait')['action'] == 'labforge.instructlab.job_wait'
    direct = dict(by_task['Read the GPUs'])
    for key in ('step', 'task', 'status'):
        direct.pop(key)
        waited.pop(key)
        waited_too.pop(key)
    assert waited == direct
    assert waited_too == direct


@pytest.mark.parametrize('which', ['applied', 'checked'])
def test_no_secret_no_arguments(request, which):
    report = request.getfixturevalue(which)
    for text in (report.text, report.md):
        assert SECRET not in text
        assert ARG_MARKER not in text
        for never in ('never-recorded', 'stdout is never', 'module_args', 'invocation', 'instructlab_download_note'):
            assert never not in text
    # role facts are recorded, so the no_log one is absent because of no_log
    assert report.data['hosts']['good']['facts']['instructlab_public_note'] == 'visible'


def test_markdown(applied):
    md = applied.md
    assert md.startswith('# InstructLab run report `%s`' % applied.data['run']['id'])
    assert '- Result: **FAILED**' in md
    assert '- Hosts: 3 (1 ok, 1 failed, 1 unreachable)' in md
    for name, status in (('good', 'ok'), ('failing', 'failed'), ('gone', 'unreachable')):
        assert '\n## Host `%s`: %s\n' % (name, status) in md
    assert '| Python | /opt/pyenv/versions/3.11.2/bin/python3.11 (3.11.2); Ansible used Python' in md
    assert '- step 1, unreachable `Gathering Facts` (ansible.builtin.gather_facts):' in md
    assert 'failed `Fail on the failing host only` (ansible.builtin.fail): this host is meant to fail' in md
    assert '| A step that fails but is ignored | ansible.builtin.command | failed (ignored) |' in md
    assert '| Print the secret without logging it | ansible.builtin.debug | ok (no_log) |' in md
    assert '  - final_loss: `0.4321`' in md
    assert '| Endpoint | http://127.0.0.1:8000/v1 |' in md


def test_check_mode(checked):
    assert checked.data['run']['check_mode'] is True
    assert '(check mode: nothing was changed)' in checked.md
    good = checked.data['hosts']['good']
    assert _step(good, 'Produce report data')['status'] == 'ok'
    assert good['status'] == 'ok' and checked.data['hosts']['gone']['status'] == 'unreachable'


# -- helpers, with results shaped like the modules' RETURN documentation --------------------------------

def test_sanitize_drops_credentials_and_internal_keys():
    data = {
        'path': '/models/m.gguf', 'password': 'x', 'hf_token': 'x', 'registry_auth': 'x', 'api_key': 'x',
        'invocation': {'module_args': {'a': 1}}, '_ansible_no_log': False, 'stdout': 'x',
        'nested': [{'private_key': 'x', 'ok': 1}], 'tokenizer_path': '/m/tokenizer.model', 'x-api-key': 'x',
        'client_secret': 'x', 'HF_TOKEN': 'x', 'registry_credentials': 'x', 'Authorization': 'x',
        'long': 'y' * (run_report.MAX_STR + 10), 'many': list(range(run_report.MAX_ITEMS + 5)),
    }
    out = run_report.sanitize(data)
    assert sorted(out) == ['long', 'many', 'nested', 'path', 'tokenizer_path']
    assert out['nested'] == [{'ok': 1}]
    assert out['long'].endswith('... (10 characters cut)')
    assert out['many'][-1] == '... 5 more items' and len(out['many']) == run_report.MAX_ITEMS + 1


def test_sanitize_redacts_credentials_in_text():
    out = run_report.sanitize({
        'msg': 'pull from https://bob:s3cr3t@registry.example.com/v2/m failed with token hf_abcdefghijklmnopqrstuvwxyz0123456789',
        'endpoint': 'http://127.0.0.1:8000/v1'})
    assert out['msg'] == 'pull from https://***@registry.example.com/v2/m failed with token hf_***'
    assert out['endpoint'] == 'http://127.0.0.1:8000/v1'


def test_extract_artifacts_reads_report_only():
    result = {
        'changed': True, 'path': '/var/lib/instructlab/.cache/instructlab/models/granite', 'digest': 'sha256:0d2b',
        'files': {'model.gguf': {'size': 1024, 'sha256': '0d2b'}}, 'size': 1024, 'fetched': {'source': 'oci'},
        'invocation': {'module_args': {'password': 'p'}},
        'report': {'path': '/var/lib/instructlab/.cache/instructlab/models/granite',
                   'files': {'model.gguf': {'size': 1024, 'sha256': '0d2b'}}, 'api_key': 'k', 'log_path': '/x/d.log'},
    }
    out = run_report.extract_artifacts(result)
    assert list(out) == ['path', 'files', 'log_path']
    assert out['files'] == {'model.gguf': {'size': 1024, 'sha256': '0d2b'}}
    # no key list: what a result returns outside report is not an artifact
    assert run_report.extract_artifacts(dict(result, report=None)) == {}
    assert not hasattr(run_report, 'ARTIFACT_KEYS')


def test_extract_artifacts_sanitises_report():
    chat = run_report.extract_artifacts({'report': {
        'answers': [{'question': '2+2?', 'answer': '4', 'latency': 0.2, 'cmd': ['ilab', 'model', 'chat']}],
        'endpoint': 'http://bob:pw@127.0.0.1:8000/v1', 'token': 't', 'stdout': 'x'}})
    assert chat == {'answers': [{'question': '2+2?', 'answer': '4', 'latency': 0.2}],
                    'endpoint': 'http://***@127.0.0.1:8000/v1'}


class _Host:
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class _Task:
    def __init__(self, name, action, uuid):
        self.name, self.action, self._uuid, self._role = name, action, uuid, None
        self._resolved_action = None


def _result(host, task, data):
    return types.SimpleNamespace(host=host, task=task, result=data)


def _callback(tmp_path):
    cb = run_report.CallbackModule()
    # what the plugin loader does when it loads the plugin by name
    cb._load_name = 'labforge.instructlab.run_report'
    C.config.initialize_plugin_configuration_definitions(
        'callback', cb._load_name, yaml.safe_load(run_report.DOCUMENTATION)['options'])
    cb.set_options(direct={'report_dir': str(tmp_path), 'report_name': 'unit', 'latest': False})
    return cb


def test_callback_serve_and_censored(tmp_path):
    cb = _callback(tmp_path)
    h = _Host('gpu1')
    serve = _Task('Serve', 'labforge.instructlab.ilab_model_serve', 'u1')
    chat = _Task('Chat', 'ilab_model_chat', 'u2')
    secret = _Task('Download', 'labforge.instructlab.ilab_model_download', 'u3')
    cb.v2_runner_on_start(h, serve)
    cb.v2_runner_on_ok(_result(h, serve, {'changed': True, 'endpoint': 'http://10.0.0.5:8000/v1',
                                          'model_path': '/m/model.gguf',
                                          'report': {'endpoint': 'http://10.0.0.5:8000/v1'}}))
    cb.v2_runner_on_ok(_result(h, chat, {'changed': False, 'answers': ['4'], 'url': 'http://other/v1',
                                         'report': {'url': 'http://other/v1', 'answers': ['4']}}))
    cb.v2_runner_on_failed(_result(h, secret, {'censored': 'hidden', '_ansible_no_log': True, 'path': '/s',
                                               'report': {'path': '/s'}}))
    stats = AggregateStats()
    stats.increment('ok', 'gpu1')
    stats.increment('changed', 'gpu1')
    stats.increment('failures', 'gpu1')
    report = cb.build_report(stats)
    host = report['hosts']['gpu1']
    assert host['endpoint'] == 'http://10.0.0.5:8000/v1'
    assert [a['task'] for a in host['artifacts']] == ['Serve', 'Chat']
    assert host['artifacts'][0]['endpoint'] == 'http://10.0.0.5:8000/v1'
    assert 'model_path' not in host['artifacts'][0]   # returned, but not in the module's report
    assert host['artifacts'][1]['answers'] == ['4']
    assert [s['status'] for s in host['steps']] == ['changed', 'ok', 'failed']
    assert host['steps'][2]['no_log'] is True and 'msg' not in host['steps'][2]
    assert host['status'] == 'failed' and host['failed_steps'] == [3]
    md_path, json_path = cb.write_report(report)
    assert os.path.basename(json_path).startswith('unit-')
    assert '/s' not in json.dumps(json.load(open(json_path))['hosts']['gpu1']['artifacts'])
    assert not os.path.exists(os.path.join(str(tmp_path), 'latest.json'))


def test_callback_never_raises(tmp_path):
    cb = _callback(tmp_path)
    warnings = []
    cb._display = types.SimpleNamespace(warning=warnings.append, display=lambda *a, **k: None)
    cb.v2_runner_on_ok(types.SimpleNamespace(host=None, task=None, result=None))
    assert warnings and 'could not record a result' in warnings[0]


def test_a_modules_report_reaches_the_run_report(tmp_path, monkeypatch):
    """The artifact entry of a step is what the module put in ``report`` (module_utils._report),
    in its order, with no key list in the callback: here gpu_info's own main() on a host
    without nvidia-smi, and a made-up name only a module's report knows."""
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, *a, **k: None)
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', raiser(Exit))
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', raiser(Fail))
    kind, result = run_main(gpu_info.main, {})
    assert kind == 'exit', result
    assert list(result['report']) == ['ilab_version', 'reason']
    cb = _callback(tmp_path)
    h = _Host('cpu1')
    gpu = _Task('Read the GPUs', 'labforge.instructlab.gpu_info', 'g1')
    probe = _Task('Probe', 'labforge.instructlab.some_new_module', 'g2')
    cb.v2_runner_on_ok(_result(h, gpu, json.loads(json.dumps(result))))
    cb.v2_runner_on_ok(_result(h, probe, {'changed': False, 'rows': 3, 'path': '/p',
                                          'report': {'export_hf_path': '/e/hf', 'rows': 3}}))
    stats = AggregateStats()
    stats.increment('ok', 'cpu1')
    host = cb.build_report(stats)['hosts']['cpu1']
    first, second = host['artifacts']
    assert list(first) == ['step', 'task', 'action', 'status', 'ilab_version', 'reason']
    assert dict(first, step=None, task=None, action=None, status=None) == dict(
        result['report'], step=None, task=None, action=None, status=None)
    assert first['reason'] == result['reason'] and host['gpu']['status'] == result['status']
    assert list(second)[4:] == ['export_hf_path', 'rows']    # 'path' was not in the report
