# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reaching an OpenAI-compatible endpoint, with a reason a person can act on (private).

``ilab_endpoint_info`` (and anything else that must say *why* an endpoint
cannot be reached) uses :func:`list_models`: it returns the model ids of
``<endpoint>/models`` or raises :class:`EndpointError` whose ``reason`` says
what went wrong in words: the name does not resolve, nothing listens on the
port, the TLS handshake failed, no answer in time, an HTTP error, or an
answer that is not an OpenAI model list.

A server at its connection limit answers HTTP 503: InstructLab 0.26.1 runs its
llama-cpp server with uvicorn's ``limit_concurrency=2``
(``instructlab/model/backends/llama_cpp.py``), so a third client at the same
moment - two trainers checking their teacher while it generates for a third -
gets "503 Service Unavailable". :func:`list_models` asks again while the
answer is 503, up to ``busy_timeout`` seconds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import socket
import ssl
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import urlsplit

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_serve import http_json

try:
    from ansible.module_utils.urls import SSLValidationError
except ImportError:  # pragma: no cover - every supported ansible-core has it
    SSLValidationError = ssl.SSLError


class EndpointError(Exception):
    """``reason``: why ``url`` cannot be used, in words."""

    def __init__(self, url, reason):
        super(EndpointError, self).__init__('%s: %s' % (url, reason))
        self.url = url
        self.reason = reason


def models_url(endpoint):
    """``http://h:p/v1`` -> ``http://h:p/v1/models``; ``http://h:p`` -> ``http://h:p/v1/models``."""
    base = endpoint.rstrip('/')
    return base + '/models' if base.endswith('/v1') else base + '/v1/models'


def host_port(url):
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == 'https' else 80)
    return parts.hostname or '', port


def describe_error(exc, url, timeout):
    """A sentence saying why ``url`` could not be used, from the exception raised."""
    host, port = host_port(url)
    if isinstance(exc, HTTPError):
        return 'it answers HTTP %s (%s): not an OpenAI-compatible model list' % (exc.code, exc.reason)
    reason = getattr(exc, 'reason', None) if isinstance(exc, URLError) else exc
    if reason is None:
        reason = exc
    if isinstance(reason, socket.gaierror):
        return 'the name %s does not resolve (%s)' % (host, reason.strerror or reason)
    if isinstance(reason, (ssl.SSLError, SSLValidationError)) or (
            isinstance(reason, str) and 'certificate' in reason.lower()):
        return 'the TLS handshake with %s:%s failed (%s)' % (host, port, getattr(reason, 'reason', None) or reason)
    if isinstance(reason, socket.timeout) or 'timed out' in str(reason):
        return 'no answer from %s:%s within %s s' % (host, port, timeout)
    if isinstance(reason, OSError):
        if reason.errno == errno.ECONNREFUSED:
            return 'connection refused: nothing listens on %s port %s' % (host, port)
        if reason.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return 'no route to %s (%s)' % (host, reason.strerror)
        if reason.errno == errno.ECONNRESET:
            return 'the connection to %s:%s was reset' % (host, port)
    return str(reason)


BUSY = 503
BUSY_INTERVAL = 2.0


def list_models(endpoint, timeout=10.0, validate_certs=True, ca_path=None, busy_timeout=0.0):
    """Model ids served at ``endpoint`` (``.../v1``); raises :class:`EndpointError`. An answer
    HTTP 503 (busy) is asked again every BUSY_INTERVAL s for up to ``busy_timeout`` s."""
    url = models_url(endpoint)
    deadline = time.monotonic() + busy_timeout
    tries = 0
    while True:
        tries += 1
        try:
            data = http_json(url, timeout=timeout, validate_certs=validate_certs, ca_path=ca_path)
            break
        except HTTPError as e:
            if e.code == BUSY and time.monotonic() + BUSY_INTERVAL <= deadline:
                time.sleep(BUSY_INTERVAL)
                continue
            reason = describe_error(e, url, timeout)
            if e.code == BUSY:
                reason += ' - busy: it refused every one of %d requests in %g s (a server at its connection limit)' % (
                    tries, busy_timeout)
            raise EndpointError(url, reason)
        except (URLError, SSLValidationError, ssl.SSLError, socket.error, socket.timeout) as e:
            raise EndpointError(url, describe_error(e, url, timeout))
        except ValueError:
            raise EndpointError(url, 'it answers, but not with JSON: not an OpenAI-compatible endpoint')
    if not isinstance(data, dict) or not isinstance(data.get('data'), list):
        raise EndpointError(url, 'it answers JSON without a "data" list: not an OpenAI-compatible model list')
    return [m.get('id') for m in data['data'] if isinstance(m, dict) and m.get('id')]
