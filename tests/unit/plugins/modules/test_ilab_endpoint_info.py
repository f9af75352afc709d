# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ilab_endpoint_info against real sockets on loopback: the failure message
names the asking host, what the endpoint is for, the URL and the reason."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import threading

import pytest

from ansible.module_utils.six.moves import BaseHTTPServer

from ansible_collections.labforge.instructlab.plugins.module_utils import _endpoint
from ansible_collections.labforge.instructlab.plugins.modules import ilab_endpoint_info
from ansible_collections.labforge.instructlab.tests.unit.plugins.modules.ilab_testlib import run_module


class _Handler(BaseHTTPServer.BaseHTTPRequestHandler):
    routes = {}

    def do_GET(self):
        answer = self.routes.get(self.path, (404, b'not found'))
        if isinstance(answer, list):   # answers in turn, the last one for ever
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        status, body = answer
        self.send_response(status)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    routes = {}
    handler = type('H', (_Handler,), {'routes': routes})
    httpd = BaseHTTPServer.HTTPServer(('127.0.0.1', 0), handler)
    t = threading.Thread(target=httpd.serve_forever)
    t.daemon = True
    t.start()
    yield httpd.server_address[1], routes
    httpd.shutdown()
    httpd.server_close()


def _free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(monkeypatch, **args):
    args.setdefault('name', 'teacher')
    args.setdefault('client', 'lf-fleet-b')
    args.setdefault('timeout', 2)
    return run_module(monkeypatch, ilab_endpoint_info.main, args, ilab_options=False)


def test_lists_the_models(monkeypatch, server):
    port, routes = server
    routes['/v1/models'] = (200, json.dumps({'object': 'list', 'data': [{'id': 'teacher.gguf'}]}).encode())
    res = run(monkeypatch, url='http://127.0.0.1:%d/v1' % port)
    assert not res.get('failed'), res
    assert res['models'] == ['teacher.gguf']
    assert res['changed'] is False
    assert res['url'] == 'http://127.0.0.1:%d/v1/models' % port


def test_connection_refused_names_client_url_and_port(monkeypatch):
    port = _free_port()
    url = 'http://127.0.0.1:%d/v1' % port
    res = run(monkeypatch, url=url)
    assert res['failed']
    assert res['msg'] == ('lf-fleet-b cannot reach the teacher at %s: connection refused: '
                          'nothing listens on 127.0.0.1 port %d' % (url, port))


def test_name_that_does_not_resolve(monkeypatch):
    def no_dns(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')
    monkeypatch.setattr(socket, 'getaddrinfo', no_dns)
    res = run(monkeypatch, url='http://lf-fleet-nowhere:8100/v1')
    assert res['failed']
    assert res['msg'] == ('lf-fleet-b cannot reach the teacher at http://lf-fleet-nowhere:8100/v1: '
                          'the name lf-fleet-nowhere does not resolve (Name or service not known)')
    assert res['reason'].startswith('the name lf-fleet-nowhere does not resolve')


def test_tls_handshake_failure(monkeypatch, server):
    port, routes = server  # a plain-HTTP server asked over https: a real TLS failure
    res = run(monkeypatch, url='https://127.0.0.1:%d/v1' % port)
    assert res['failed']
    assert res['msg'].startswith('lf-fleet-b cannot reach the teacher at https://127.0.0.1:%d/v1: '
                                 'the TLS handshake with 127.0.0.1:%d failed (' % (port, port)), res['msg']


def test_no_answer_in_time(monkeypatch):
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    s.listen(1)  # the kernel accepts the connection; nobody ever answers
    port = s.getsockname()[1]
    try:
        res = run(monkeypatch, url='http://127.0.0.1:%d/v1' % port, timeout=0.5)
    finally:
        s.close()
    assert res['failed']
    assert res['reason'] == 'no answer from 127.0.0.1:%d within 0.5 s' % port


def test_http_error_is_not_an_openai_endpoint(monkeypatch, server):
    port, routes = server
    res = run(monkeypatch, url='http://127.0.0.1:%d/v1' % port)
    assert res['failed']
    assert res['reason'] == 'it answers HTTP 404 (Not Found): not an OpenAI-compatible model list'


def test_json_without_data_list(monkeypatch, server):
    port, routes = server
    routes['/v1/models'] = (200, b'{"status": "ok"}')
    res = run(monkeypatch, url='http://127.0.0.1:%d/v1' % port)
    assert res['failed']
    assert 'without a "data" list' in res['reason']


def test_expected_model_missing(monkeypatch, server):
    port, routes = server
    routes['/v1/models'] = (200, b'{"data": [{"id": "other.gguf"}]}')
    res = run(monkeypatch, url='http://127.0.0.1:%d/v1' % port, expect_model='teacher.gguf')
    assert res['failed']
    assert res['msg'].endswith(': it serves other.gguf, not teacher.gguf')


def test_url_without_scheme_is_refused(monkeypatch):
    res = run(monkeypatch, url='lf-fleet-a:8100/v1')
    assert res['failed']
    assert res['msg'] == "url must start with http:// or https://, got 'lf-fleet-a:8100/v1'"


# InstructLab 0.26.1's llama-cpp server (uvicorn limit_concurrency=2) answers a third client at the
# same moment with what uvicorn sends then: 503 Service Unavailable.
BUSY = (503, b'Service Unavailable')
MODELS = (200, json.dumps({'object': 'list', 'data': [{'id': 'teacher.gguf'}]}).encode())


def test_a_busy_server_is_asked_again_until_it_answers(monkeypatch, server):
    port, routes = server
    monkeypatch.setattr(_endpoint, 'BUSY_INTERVAL', 0.05)
    routes['/v1/models'] = [BUSY, BUSY, BUSY, MODELS]
    res = run(monkeypatch, url='http://127.0.0.1:%d/v1' % port, busy_timeout=5)
    assert not res.get('failed'), res
    assert res['models'] == ['teacher.gguf']
    assert routes['/v1/models'] == [MODELS]


def test_a_server_busy_for_longer_than_busy_timeout_fails_saying_so(monkeypatch, server):
    port, routes = server
    monkeypatch.setattr(_endpoint, 'BUSY_INTERVAL', 0.05)
    routes['/v1/models'] = [BUSY]
    res = run(monkeypatch, url='http://127.0.0.1:%d/v1' % port, busy_timeout=0.5)
    assert res['failed']
    assert res['reason'].startswith('it answers HTTP 503 (Service Unavailable): not an OpenAI-compatible model list '
                                    '- busy: it refused every one of ')
    assert int(res['reason'].split('every one of ')[1].split()[0]) >= 5
    assert res['reason'].endswith('requests in 0.5 s (a server at its connection limit)')


def test_busy_timeout_0_fails_at_the_first_503(monkeypatch, server):
    port, routes = server
    routes['/v1/models'] = [BUSY, MODELS]
    res = run(monkeypatch, url='http://127.0.0.1:%d/v1' % port, busy_timeout=0)
    assert res['failed'] and 'refused every one of 1 requests' in res['reason']
    assert len(routes['/v1/models']) == 2 - 1


def test_a_negative_busy_timeout_is_refused(monkeypatch):
    res = run(monkeypatch, url='http://127.0.0.1:1/v1', busy_timeout=-1)
    assert res['failed'] and res['msg'] == 'busy_timeout must not be negative (got -1)'
