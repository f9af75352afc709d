#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ilab_endpoint_info
short_description: Check from a host that an OpenAI-compatible endpoint answers, and list its models
version_added: 0.1.0
description:
  - Asks O(url)C(/models) (for example the teacher that C(ilab data generate) will use) from the managed host,
    so the check sees the network as the host's own ilab processes will.
  - Returns the model ids the endpoint serves.
  - When the endpoint cannot be used, fails with a message that names O(name), the URL, the host asking and
    the reason in words - the name does not resolve, connection refused, TLS handshake failed, no answer in
    time, an HTTP error, or an answer that is not an OpenAI model list - before anything else runs.
  - Read-only; runs in check mode too.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.attributes
attributes:
  check_mode:
    support: full
    details: Asks the endpoint in check mode too (read-only).
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  url:
    description: The API base URL, e.g. C(http://teacher.example.com:8100/v1) (C(/models) is appended; a URL without C(/v1) gets C(/v1/models)).
    type: str
    required: true
  name:
    description: What the endpoint is for, used in the failure message (e.g. C(teacher)).
    type: str
    default: endpoint
  client:
    description: The name of the asking host in the failure message (e.g. C(inventory_hostname)); defaults to the host name.
    type: str
  expect_model:
    description: Fail unless the endpoint lists this model id.
    type: str
  timeout:
    description: Seconds to wait for the answer.
    type: float
    default: 10
  busy_timeout:
    description:
      - Seconds to keep asking while the endpoint answers HTTP 503 (busy), every 2 s. InstructLab 0.26.1's
        llama-cpp server takes at most two connections at once (uvicorn C(limit_concurrency=2)) and answers 503
        to more - for example to a second trainer checking the teacher while it generates for another one.
      - V(0) fails at the first 503.
    type: float
    default: 60
  validate_certs:
    description: Verify the server's TLS certificate (https URLs).
    type: bool
    default: true
  ca_path:
    description: A PEM file of CA certificates to verify the server with (https URLs).
    type: path
seealso:
  - module: labforge.instructlab.ilab_model_serve
  - module: labforge.instructlab.ilab_data_generate
'''

EXAMPLES = r'''
- name: Check that this trainer reaches its teacher before generating data
  labforge.instructlab.ilab_endpoint_info:
    url: http://teacher-1.example.com:8100/v1
    name: teacher
    client: "{{ inventory_hostname }}"
  register: teacher

- name: Show what the teacher serves
  ansible.builtin.debug:
    msg: "{{ teacher.models }}"
'''

RETURN = r'''
url:
  description: The URL asked.
  returned: always
  type: str
  sample: http://teacher-1.example.com:8100/v1/models
models:
  description: The model ids the endpoint serves.
  returned: success
  type: list
  elements: str
  sample: [/var/lib/instructlab/.cache/instructlab/models/mixtral-8x7b-instruct-v0.1.Q4_K_M.gguf]
reason:
  description: Why the endpoint cannot be used (also in C(msg)).
  returned: failure
  type: str
  sample: the name teacher-1.example.com does not resolve (Name or service not known)
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(url), RV(models),
      RV(reason), those of them that have a value. A failure adds C(path) (a path the file layer refused) and
      C(log_path) when it has them."
  returned: always
  type: dict
'''

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils._endpoint import (
    EndpointError, list_models, models_url)
from ansible_collections.labforge.instructlab.plugins.module_utils import _report


def failure_message(name, url, client, reason):
    return '%s cannot reach the %s at %s: %s' % (client, name, url, reason)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            name=dict(type='str', default='endpoint'),
            client=dict(type='str'),
            expect_model=dict(type='str'),
            timeout=dict(type='float', default=10),
            busy_timeout=dict(type='float', default=60),
            validate_certs=dict(type='bool', default=True),
            ca_path=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    _report.attach(module, 'url', 'models', 'reason')
    p = module.params
    url = p['url'].strip()
    if not url.startswith(('http://', 'https://')):
        module.fail_json(msg='url must start with http:// or https://, got %r' % url)
    if p['busy_timeout'] < 0:
        module.fail_json(msg='busy_timeout must not be negative (got %g)' % p['busy_timeout'])
    client = p['client'] or socket.gethostname()
    try:
        models = list_models(url, timeout=p['timeout'], validate_certs=p['validate_certs'], ca_path=p['ca_path'],
                             busy_timeout=p['busy_timeout'])
    except EndpointError as e:
        module.fail_json(msg=failure_message(p['name'], url, client, e.reason), url=e.url, reason=e.reason)
    if p['expect_model'] and p['expect_model'] not in models:
        reason = 'it serves %s, not %s' % (', '.join(models) or 'no model', p['expect_model'])
        module.fail_json(msg=failure_message(p['name'], url, client, reason), url=models_url(url),
                         reason=reason, models=models)
    module.exit_json(changed=False, url=models_url(url), models=models)


if __name__ == '__main__':
    main()
