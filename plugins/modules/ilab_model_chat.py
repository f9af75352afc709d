#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ilab_model_chat
short_description: Ask a served model (or a model file) questions - a smoke test
version_added: 0.1.0
description:
  - Sends each question of O(questions) to a model and returns the answers with their latency.
  - With O(method=ilab) (the default) each question is one C(ilab model chat -qq --no-decoration)
    run, against O(endpoint_url) when given, else against O(model) (ilab then uses the server of
    the configuration when one serves, or starts a temporary one from the model file).
  - With O(method=http) the module POSTs to O(endpoint_url)C(/chat/completions) itself (no ilab
    process and less overhead, so the latency measured is the server's).
  - Never changes anything (C(changed) is always false); runs in check mode too. Fails when an
    answer is empty unless O(allow_empty=true), so it fits a playbook's or molecule verify's smoke test.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.attributes
  - labforge.instructlab.ilab
attributes:
  check_mode:
    support: full
    details: Asks the questions in check mode too (read-only).
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  questions:
    description: The questions, each asked on its own (no shared history).
    type: list
    elements: str
    required: true
  endpoint_url:
    description:
      - OpenAI-compatible API base URL, e.g. C(http://127.0.0.1:8000/v1) (the RV(labforge.instructlab.ilab_model_serve#module:endpoint)
        of M(labforge.instructlab.ilab_model_serve)). Required for O(method=http).
    type: str
  model:
    description:
      - With O(method=ilab), the model (C(-m)); a GGUF path lets ilab serve it for the question.
        Defaults to C(chat.model) of the configuration.
      - With O(method=http), the model id sent; defaults to the first id of C(/v1/models).
    type: str
  method:
    description: Ask through C(ilab model chat) or directly over HTTP.
    type: str
    choices: [ilab, http]
    default: ilab
  max_tokens:
    description: Maximum tokens of an answer (C(--max-tokens)).
    type: int
  temperature:
    description: Sampling temperature (C(--temperature)).
    type: float
  context:
    description: C(--context) of C(ilab model chat) (its system prompt); ignored by O(method=http).
    type: str
  system_prompt:
    description: System message for O(method=http).
    type: str
  timeout:
    description: Seconds allowed per question.
    type: int
    default: 300
  allow_empty:
    description: Do not fail when an answer is empty.
    type: bool
    default: false
requirements:
  - InstructLab installed in O(venv) for O(method=ilab).
seealso:
  - module: labforge.instructlab.ilab_model_serve
'''

EXAMPLES = r'''
- name: Smoke-test the served student
  labforge.instructlab.ilab_model_chat:
    endpoint_url: http://127.0.0.1:8001/v1
    questions:
      - Write a haiku about the sea.
      - What is 2 + 2?
  become: true
  register: chat

- name: Show the answers
  ansible.builtin.debug:
    msg: "{{ item.question }} -> {{ item.answer }} ({{ item.latency }} s)"
  loop: "{{ chat.answers }}"

- name: Ask a model file directly (ilab serves it for the question)
  labforge.instructlab.ilab_model_chat:
    model: /var/lib/instructlab/.local/share/instructlab/trained/train-6a1d0c9e4b3f2a10/ggml-model-f16.gguf
    questions: [Hello]
    allow_empty: true
  become: true

- name: Ask over HTTP only (no ilab process), e.g. from molecule verify
  labforge.instructlab.ilab_model_chat:
    method: http
    endpoint_url: "{{ served.endpoint }}"
    questions: [Say hello.]
    max_tokens: 32
'''

RETURN = r'''
answers:
  description: One entry per question.
  returned: always
  type: list
  elements: dict
  contains:
    question:
      description: The question.
      type: str
    answer:
      description: The answer (stripped).
      type: str
    latency:
      description: Seconds from sending the question to the whole answer.
      type: float
    cmd:
      description: The ilab command (O(method=ilab)).
      type: str
  sample: [{"question": "What is 2 + 2?", "answer": "4", "latency": 0.21}]
latency_total:
  description: Seconds for all questions.
  returned: always
  type: float
endpoint:
  description: The endpoint asked (null when ilab chose its server).
  returned: always
  type: str
model:
  description: The model asked.
  returned: always
  type: str
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(endpoint),
      RV(model), RV(answers), RV(latency_total), those of them that have a value. A failure adds C(path) (a path
      the file layer refused) and C(log_path) when it has them."
  returned: always
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import (
    IlabRunner, ilab_argument_spec)
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_serve as srv
from ansible_collections.labforge.instructlab.plugins.module_utils import _report


def ask_ilab(module, runner, question):
    p = module.params
    argv = runner.argv(['model', 'chat'], [
        ('--quick-question', True),
        ('--no-decoration', True),
        ('--endpoint-url', p['endpoint_url']),
        ('--model', p['model']),
        ('--context', p['context']),
        ('--max-tokens', p['max_tokens']),
        ('--temperature', p['temperature']),
    ], args=[question])
    start = time.time()
    res = runner.run('ilab model chat', argv, changes_state=False, log=False, timeout=p['timeout'])
    latency = time.time() - start
    if res.rc != 0:
        runner.fail('ilab model chat', res, msg='question %r' % question)
    return res.stdout.strip(), latency, res.cmd


def ask_http(module, base, model, question):
    p = module.params
    messages = []
    if p['system_prompt']:
        messages.append(dict(role='system', content=p['system_prompt']))
    messages.append(dict(role='user', content=question))
    body = dict(model=model, messages=messages, stream=False)
    if p['max_tokens'] is not None:
        body['max_tokens'] = p['max_tokens']
    if p['temperature'] is not None:
        body['temperature'] = p['temperature']
    start = time.time()
    try:
        data = srv.http_json(base.rstrip('/') + '/chat/completions', data=body, timeout=p['timeout'])
    except Exception as e:  # urllib raises several kinds; all mean "no answer"
        module.fail_json(msg='POST %s/chat/completions failed: %s' % (base.rstrip('/'), e))
    latency = time.time() - start
    try:
        answer = data['choices'][0]['message']['content'] or ''
    except (KeyError, IndexError, TypeError):
        module.fail_json(msg='unexpected answer from %s: %r' % (base, data))
    return answer.strip(), latency


def main():
    argument_spec = ilab_argument_spec()
    argument_spec.update(
        questions=dict(type='list', elements='str', required=True),
        endpoint_url=dict(type='str'),
        model=dict(type='str'),
        method=dict(type='str', default='ilab', choices=['ilab', 'http']),
        max_tokens=dict(type='int', no_log=False),
        temperature=dict(type='float'),
        context=dict(type='str'),
        system_prompt=dict(type='str'),
        timeout=dict(type='int', default=300),
        allow_empty=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('method', 'http', ['endpoint_url'])])
    _report.attach(module, 'endpoint', 'model', 'answers', 'latency_total')
    p = module.params
    if not p['questions']:
        module.fail_json(msg='questions is empty')
    answers = []
    model = p['model']
    start = time.time()
    if p['method'] == 'http':
        if not model:
            ok, info = srv.endpoint_models(p['endpoint_url'])
            if not ok or not info:
                module.fail_json(msg='%s/models did not answer with a model: %s' % (p['endpoint_url'], info))
            model = info[0]
        for q in p['questions']:
            answer, latency = ask_http(module, p['endpoint_url'], model, q)
            answers.append(dict(question=q, answer=answer, latency=round(latency, 3)))
    else:
        runner = IlabRunner.checked(module, venv=True)
        for q in p['questions']:
            answer, latency, cmd = ask_ilab(module, runner, q)
            answers.append(dict(question=q, answer=answer, latency=round(latency, 3), cmd=cmd))
    result = dict(changed=False, answers=answers, latency_total=round(time.time() - start, 3),
                  endpoint=p['endpoint_url'], model=model)
    empty = [a['question'] for a in answers if not a['answer']]
    if empty and not p['allow_empty']:
        module.fail_json(msg='empty answer to: %s' % ', '.join(repr(q) for q in empty), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
