# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.ilab_model_chat.

method=ilab: the runner's run() is a fake recording the exact command line.
method=http: a real OpenAI-style HTTP server on 127.0.0.1 (a thread) answers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import pwd
import threading

try:
    from http.server import BaseHTTPRequestHandler, HTTPServer
except ImportError:  # pragma: no cover
    from BaseHTTPServer import BaseHTTPRequestHandler, HTTPServer

import pytest

from ansible.module_utils import basic

from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_runner
from ansible_collections.labforge.instructlab.plugins.modules import ilab_model_chat as mod

from ilab_testlib import Exit, Fail, raiser, run_main


class Api(BaseHTTPRequestHandler):
    answers = {}
    requests = []

    def log_message(self, *a):
        pass

    def _send(self, code, data):
        body = json.dumps(data).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == '/v1/models':
            self._send(200, dict(object='list', data=[dict(id='/models/student.gguf', object='model')]))
        else:
            self._send(404, {})

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        Api.requests.append((self.path, req))
        q = req['messages'][-1]['content']
        message = dict(role='assistant', content=Api.answers.get(q, ' an answer '))
        self._send(200, dict(choices=[dict(index=0, message=message)]))


@pytest.fixture
def api():
    Api.answers = {}
    Api.requests = []
    server = HTTPServer(('127.0.0.1', 0), Api)
    t = threading.Thread(target=server.serve_forever)
    t.daemon = True
    t.start()
    yield 'http://127.0.0.1:%d/v1' % server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def bed(tmp_path, monkeypatch):
    home = str(tmp_path / 'home')
    venv = str(tmp_path / 'venv')
    os.makedirs(os.path.join(venv, 'bin'))
    me = pwd.getpwuid(os.getuid())
    fake_pw = pwd.struct_passwd((me.pw_name, 'x', me.pw_uid, me.pw_gid, '', home, '/bin/sh'))
    monkeypatch.setattr(_ilab_runner.pwd, 'getpwnam', lambda name: fake_pw)
    monkeypatch.setattr(_ilab_runner.IlabRunner, 'check_venv', lambda r: None)
    calls = []
    answers = {}

    def fake_run(runner, step, argv, **kw):
        calls.append((list(argv), kw))
        q = argv[-1]
        if q == 'crash':
            return _ilab_runner.IlabResult(step, argv, rc=1, stdout='', stderr='Failed to start server: boom',
                                           log_tail='Failed to start server: boom')
        return _ilab_runner.IlabResult(step, argv, rc=0, stdout=answers.get(q, 'The sea is wide.\n'), stderr='')
    monkeypatch.setattr(_ilab_runner.IlabRunner, 'run', fake_run)
    monkeypatch.setattr(basic.AnsibleModule, 'exit_json', raiser(Exit))
    monkeypatch.setattr(basic.AnsibleModule, 'fail_json', raiser(Fail))

    class B(object):
        pass
    b = B()
    b.venv, b.home, b.calls, b.answers = venv, home, calls, answers
    b.cfg = os.path.join(home, '.config', 'instructlab', 'config.yaml')

    def run(check=False, **kw):
        args = dict(user='ignored', venv=venv)
        args.update(kw)
        return run_main(mod.main, args, check)
    b.run = run
    return b


def test_ilab_quick_questions_exact_commands(bed):
    kind, r = bed.run(endpoint_url='http://127.0.0.1:8001/v1', questions=['Write a haiku about the sea.', 'Hi'],
                      max_tokens=64, temperature=0.0)
    assert kind == 'exit' and r['changed'] is False
    ilab = os.path.join(bed.venv, 'bin', 'ilab')
    assert [c[0] for c in bed.calls] == [
        [ilab, '--config', bed.cfg, 'model', 'chat', '--quick-question', '--no-decoration',
         '--endpoint-url', 'http://127.0.0.1:8001/v1', '--max-tokens', '64', '--temperature', '0.0', q]
        for q in ('Write a haiku about the sea.', 'Hi')]
    assert all(c[1]['changes_state'] is False for c in bed.calls)
    assert [a['answer'] for a in r['answers']] == ['The sea is wide.'] * 2
    assert all(a['latency'] >= 0 and a['cmd'].startswith(ilab) for a in r['answers'])


def test_ilab_with_a_model_file_and_check_mode(bed):
    kind, r = bed.run(check=True, model='/m/student.gguf', questions=['Hi'])
    assert kind == 'exit' and not r['changed'] and len(bed.calls) == 1  # read-only: runs in check mode
    assert bed.calls[0][0][5:] == ['--quick-question', '--no-decoration', '--model', '/m/student.gguf', 'Hi']


def test_empty_answer_fails_unless_allowed(bed):
    bed.answers['Hi'] = '  \n'
    kind, r = bed.run(model='/m.gguf', questions=['Hi'])
    assert kind == 'fail' and 'empty answer' in r['msg'] and r['changed'] is False
    kind, r = bed.run(model='/m.gguf', questions=['Hi'], allow_empty=True)
    assert kind == 'exit' and r['answers'][0]['answer'] == ''


def test_ilab_failure_reports_log_tail(bed):
    kind, r = bed.run(model='/m.gguf', questions=['crash'])
    assert kind == 'fail' and 'boom' in r['msg'] and r['rc'] == 1


def test_http_asks_the_first_served_model(bed, api):
    Api.answers['2+2?'] = '4'
    kind, r = bed.run(method='http', endpoint_url=api, questions=['2+2?', 'sea?'], max_tokens=8,
                      system_prompt='Be brief.')
    assert kind == 'exit' and r['changed'] is False and bed.calls == []
    assert r['model'] == '/models/student.gguf'
    assert [a['answer'] for a in r['answers']] == ['4', 'an answer']
    path, req = Api.requests[0]
    assert path == '/v1/chat/completions'
    assert req == dict(model='/models/student.gguf', stream=False, max_tokens=8,
                       messages=[dict(role='system', content='Be brief.'), dict(role='user', content='2+2?')])


def test_http_empty_answer_and_dead_endpoint(bed, api):
    Api.answers['x'] = ''
    kind, r = bed.run(method='http', endpoint_url=api, model='m', questions=['x'])
    assert kind == 'fail' and 'empty answer' in r['msg']
    kind, r = bed.run(method='http', endpoint_url='http://127.0.0.1:9/v1', questions=['x'], timeout=2)
    assert kind == 'fail' and 'did not answer' in r['msg']
