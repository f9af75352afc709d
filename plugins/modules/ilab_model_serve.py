#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ilab_model_serve
short_description: Serve a model with C(ilab model serve) as a hardened systemd service
version_added: 0.1.0
description:
  - Runs C(ilab model serve) as the systemd unit C(labforge-ilab-serve-NAME.service), one unit per
    model and port, as the InstructLab service user, with C(Restart=on-failure) (at most 5 starts in
    5 minutes, then the unit stays failed) and systemd sandboxing - no capabilities
    (C(CapabilityBoundingSet=)), C(NoNewPrivileges), C(ProtectSystem=strict),
    C(ProtectHome=read-only) with only the service's own directory writable, C(PrivateTmp),
    C(PrivateIPC), C(PrivateUsers), C(ProtectProc=invisible), C(ProcSubset=pid), C(ProtectClock),
    C(ProtectHostname), kernel and cgroup protection, C(RestrictAddressFamilies=AF_UNIX AF_INET
    AF_INET6), C(SystemCallFilter=@system-service), and C(DevicePolicy=closed) with the
    C(/dev/nvidia*) devices allowed only when the host has them and the server may use GPUs.
    C(systemd-analyze security) rates the unit 1.6 (OK) on systemd 252.
  - The service's environment (C(HOME), C(PATH), proxy and CA variables passed to the task, ...)
    goes to a root-only (0600) C(EnvironmentFile=) in C(/var/lib/labforge/serve/NAME.env), never
    into the world-readable unit. Every value rendered into the unit or the environment file is
    checked; a newline, carriage return, NUL or other control character is refused with an error
    naming the option, and C($) and C(%) are escaped.
  - Each service gets its own configuration file (a copy of the user's configuration with the
    C(serve) settings of this service), so several models can be served on one host; C(ilab) reads
    the host and port from it (and from C(--host)/C(--port)). Its own C(XDG_CONFIG_HOME) keeps
    ilab's config rewrites (C(serve.server.current_max_ctx_size)) away from the user's file.
  - Idempotent - the rendered unit, environment file and configuration are compared with the
    installed ones; the service is restarted only when one of them changed, started when it is not
    running, and the module waits until it is healthy - the unit's own process listens on the
    port and C(/v1/models) lists the model. A port that another process holds fails at once with
    a message naming that process (before anything is changed when it is held already).
  - A unit that is running but whose endpoint does not answer within O(wait_timeout) is reported
    as unhealthy (the module fails), or restarted with O(restart_unhealthy=true).
  - Each backend serves one model format, told apart as InstructLab 0.26.1 does - V(llama-cpp) one
    GGUF file (it starts with the GGUF magic bytes; what C(ilab model train --pipeline simple) writes,
    and the C(*.gguf) files the C(full) pipeline writes beside its checkpoint), V(vllm) a Hugging Face
    model directory (C(config.json) and C(*.safetensors) or C(*.bin) weights; what the C(accelerated)
    and C(full) pipelines write as checkpoints, and safetensors teachers such as Mixtral-8x7B-Instruct).
    A model the chosen backend cannot serve is refused with the reason before anything changes.
  - Settings that cannot act on the chosen backend are refused, naming the option, before anything
    changes, instead of being written where the backend never reads them - O(gpu_layers) and
    O(max_ctx_size) (and C(settings) under C(llama_cpp.)) with V(vllm); O(gpus) and O(vllm_args)
    (and C(settings) under C(vllm.)) with V(llama-cpp).
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.ilab
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Shows the unit file and the service's configuration file.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
options:
  name:
    description:
      - Name of the service (unit C(labforge-ilab-serve-NAME.service)).
      - Defaults to the model file name without extension and the port, e.g. C(granite-7b-lab-Q4_K_M-8000).
    type: str
  model_path:
    description:
      - The model to serve - a GGUF file for V(llama-cpp), a Hugging Face model directory (C(config.json) and
        C(*.safetensors) or C(*.bin) weights) for V(vllm). Required for O(state=started).
      - Checked before anything changes; the wrong format for O(backend) is refused with the reason.
    type: path
  state:
    description:
      - V(started) installs, enables and runs the service and waits for its endpoint.
      - V(stopped) stops and disables it (the unit stays installed).
      - V(absent) stops it and removes the unit and its configuration.
    type: str
    choices: [started, stopped, absent]
    default: started
  host:
    description:
      - Address to bind (C(serve.server.host)). Anything but loopback exposes the model to the network and
        needs O(allow_remote=true).
    type: str
    default: 127.0.0.1
  allow_remote:
    description:
      - Allow a O(host) that is not a loopback address. The OpenAI-compatible API of C(ilab model serve)
        (InstructLab 0.26.1) has no authentication - anybody who reaches the port can use the model - so
        the module warns; restrict access with a firewall.
    type: bool
    default: false
  port:
    description: Port (C(serve.server.port)).
    type: int
    default: 8000
  backend:
    description:
      - Serving backend (C(serve.backend) and C(--backend)). V(vllm) needs vLLM installed in the venv (checked first)
        and serves Hugging Face model directories; V(llama-cpp) serves GGUF files.
    type: str
    choices: [llama-cpp, vllm]
    default: llama-cpp
  gpu_layers:
    description:
      - Layers offloaded to the GPU by llama-cpp (C(serve.llama_cpp.gpu_layers)); V(-1) all, V(0) none.
      - V(llama-cpp) only; refused with O(backend=vllm).
    type: int
  max_ctx_size:
    description:
      - Maximum context size of llama-cpp (C(serve.llama_cpp.max_ctx_size)).
      - V(llama-cpp) only; refused with O(backend=vllm) (give vLLM C(--max-model-len) in O(vllm_args)).
    type: int
  gpus:
    description:
      - GPUs vLLM serves the model on, by tensor parallelism - written as C(serve.vllm.gpus) and passed as
        C(ilab model serve --gpus GPUS), from which InstructLab 0.26.1 appends C(--tensor-parallel-size GPUS)
        to the vLLM arguments. A C(--tensor-parallel-size) in the configuration's C(serve.vllm.vllm_args)
        (the C(h100_x8) system profile has one) is dropped, so the size is exactly O(gpus); see RV(tensor_parallel_size).
      - At least 1, and not more than the host's NVIDIA GPUs (C(/dev/nvidiaN)) when it has any.
      - Left out, the configuration's C(serve.vllm.gpus) and C(serve.vllm.vllm_args) apply.
      - V(vllm) only; refused with O(backend=llama-cpp), which serves on one GPU (see O(gpu_layers)).
    type: int
  vllm_args:
    description:
      - Extra vLLM arguments (C(serve.vllm.vllm_args)), e.g. V([--max-model-len, "8192"]).
      - The flags the module sets itself are refused here - C(--host), C(--port), C(--model),
        C(--served-model-name) and C(--tensor-parallel-size)/C(-tp) (use O(gpus)).
      - V(vllm) only; refused with O(backend=llama-cpp).
    type: list
    elements: str
  model_family:
    description: Model family for the chat template (C(serve.llama_cpp.llm_family) and C(serve.vllm.llm_family)).
    type: str
  chat_template:
    description: C(serve.chat_template) (V(auto), V(tokenizer) or a template file).
    type: str
  settings:
    description:
      - Other C(serve.*) settings of the service's configuration, as dotted keys relative to C(serve).
      - Keys under C(llama_cpp.) are refused with O(backend=vllm), keys under C(vllm.) with O(backend=llama-cpp).
    type: dict
    default: {}
  hardening:
    description: Add the systemd sandboxing settings to the unit.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for C(/v1/models) to answer after a start or when checking health.
    type: int
    default: 120
  restart_unhealthy:
    description: Restart a running service whose endpoint does not answer within O(wait_timeout), instead of failing.
    type: bool
    default: false
  unit_dir:
    description: Directory of the unit file.
    type: path
    default: /etc/systemd/system
notes:
  - Needs systemd on the host and root (C(become=true)).
  - The unit's environment file lives in C(/var/lib/labforge/serve/) (root, 0700); its diff shows only
    the names of variables that may hold credentials (proxies, tokens), not their values.
requirements:
  - InstructLab installed in O(venv), initialised (M(labforge.instructlab.ilab_config)).
seealso:
  - module: labforge.instructlab.ilab_model_chat
  - module: labforge.instructlab.ilab_model_train
'''

EXAMPLES = r'''
- name: Serve the trained student on 127.0.0.1:8001
  labforge.instructlab.ilab_model_serve:
    name: student
    model_path: "{{ trained.gguf_path }}"
    port: 8001
    max_ctx_size: 4096
  become: true
  register: student

- name: Serve a Hugging Face teacher on 4 GPUs with vLLM (--tensor-parallel-size 4), reachable from the lab network
  labforge.instructlab.ilab_model_serve:
    name: teacher
    model_path: /var/lib/instructlab/.cache/instructlab/models/mixtral-8x7b-instruct
    backend: vllm
    gpus: 4
    host: 0.0.0.0
    port: 8000
    wait_timeout: 900
    allow_remote: true   # the API is unauthenticated: firewall the port
  become: true

- name: Ask it something
  labforge.instructlab.ilab_model_chat:
    endpoint_url: "{{ student.endpoint }}"
    questions: ["Write a haiku about the sea."]
  become: true

- name: Remove the student service
  labforge.instructlab.ilab_model_serve:
    name: student
    state: absent
  become: true
'''

RETURN = r'''
name:
  description: The service name.
  returned: always
  type: str
  sample: student
unit:
  description: The systemd unit.
  returned: always
  type: str
  sample: labforge-ilab-serve-student.service
unit_path:
  description: The unit file.
  returned: always
  type: str
config_path:
  description: The service's own ilab configuration file.
  returned: always
  type: str
  sample: /var/lib/instructlab/.local/state/labforge/serve/student/config.yaml
env_path:
  description: The unit's environment file (root only).
  returned: always
  type: str
  sample: /var/lib/labforge/serve/student.env
endpoint:
  description: The OpenAI-compatible API base URL (C(.../v1)).
  returned: when O(state=started)
  type: str
  sample: http://127.0.0.1:8001/v1
healthy:
  description: Whether the unit's process listens on the port and C(/v1/models) lists the model.
  returned: when O(state=started)
  type: bool
models:
  description: Model ids listed by C(/v1/models).
  returned: when healthy
  type: list
  elements: str
wait_seconds:
  description: Seconds waited for the endpoint.
  returned: when O(state=started)
  type: float
actions:
  description: What was done (or would be done in check mode), e.g. C(write unit), C(restart).
  returned: always
  type: list
  elements: str
main_pid:
  description: The server's main process id.
  returned: when running
  type: int
restarts:
  description: How often systemd restarted the service (C(NRestarts)) since it was started.
  returned: when O(state=started)
  type: int
model_format:
  description: The format of the served model - V(gguf) (llama-cpp) or V(hf) (a Hugging Face directory, vLLM).
  returned: when O(state=started)
  type: str
  sample: gguf
vllm_args:
  description:
    - The arguments InstructLab 0.26.1 appends to the vLLM server's command line after its own
      (C(--host), C(--port), C(--model), C(--chat-template), C(--distributed-executor-backend mp),
      C(--served-model-name)) - C(serve.vllm.vllm_args) of the service's configuration, then
      C(--tensor-parallel-size GPUS) when C(serve.vllm.gpus) is set.
  returned: when O(backend=vllm) and O(state=started)
  type: list
  elements: str
  sample: ["--max-model-len", "8192", "--tensor-parallel-size", "8"]
tensor_parallel_size:
  description: vLLM's tensor parallel size (the last C(--tensor-parallel-size) of RV(vllm_args), 1 without one).
  returned: when O(backend=vllm) and O(state=started)
  type: int
  sample: 8
'''

import copy
import grp
import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import (
    IlabRunner, ilab_argument_spec, run_guarded)
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_common import dotted_get, dotted_set
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_serve as srv

RUNNING_STATES = ('active', 'activating', 'reloading')
# options that end up in the unit or its environment file
UNIT_OPTIONS = ('name', 'model_path', 'host', 'venv', 'user', 'chat_template', 'model_family')
# environment variables whose values are shown in a diff (the others may hold credentials)
SHOWN_ENV = re.compile(r'^(HOME|USER|LOGNAME|LANG|LC_ALL|PATH|VIRTUAL_ENV|XDG_[A-Z_]+|PYTHONUNBUFFERED|NO_COLOR|TERM)$')
LOOPBACK = re.compile(r'^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$')


class Systemd(object):
    def __init__(self, module):
        self.module = module
        self.systemctl = module.get_bin_path('systemctl', required=True)

    def run(self, *args, **kw):
        return self.module.run_command([self.systemctl] + list(args), **kw)

    def must(self, *args):
        rc, out, err = self.run(*args)
        if rc != 0:
            self.module.fail_json(msg='systemctl %s failed (rc=%d): %s' % (' '.join(args), rc, (err or out).strip()))
        return out

    def is_active(self, unit):
        rc, out, err = self.run('is-active', unit)
        return out.strip() or 'unknown'

    def is_enabled(self, unit):
        rc, out, err = self.run('is-enabled', unit)
        return out.strip() == 'enabled'

    def show(self, unit, *props):
        rc, out, err = self.run('show', unit, '-p', ','.join(props))
        data = {}
        for line in out.splitlines():
            if '=' in line:
                k, v = line.split('=', 1)
                data[k] = v
        return data

    def journal(self, unit, lines=40):
        journalctl = self.module.get_bin_path('journalctl')
        if not journalctl:
            return ''
        rc, out, err = self.module.run_command([journalctl, '-u', unit, '-n', str(lines), '--no-pager',
                                                '-o', 'cat'])
        return out


def sorted_tree(data):
    if isinstance(data, dict):
        return dict((k, sorted_tree(data[k])) for k in sorted(data, key=str))
    if isinstance(data, list):
        return [sorted_tree(v) for v in data]
    return data


def read(path):
    """Current content of a file this module manages (None when missing or refused: a planted
    link is then simply replaced)."""
    data = _fs.current(path)
    return data.decode('utf-8', 'replace') if data is not None else None


def shown_env(text):
    """An environment file for a diff: values of variables that may hold credentials hidden."""
    out = []
    for line in (text or '').splitlines():
        key = line.split('=', 1)[0]
        out.append(line if line.startswith('#') or SHOWN_ENV.match(key) else key + '=********')
    return '\n'.join(out) + ('\n' if out else '')


def check_inputs(module, p):
    """Refuse values a unit cannot hold, and an unauthenticated API on the network, before
    anything changes."""
    for opt in UNIT_OPTIONS:
        if p.get(opt) is not None:
            try:
                srv.check_value(opt, p[opt])
            except srv.UnitValueError as e:
                module.fail_json(msg='%s: %s' % (opt, e))
    if p['state'] == 'started':
        visible = srv.gpu_count()
        errors = srv.backend_setting_errors(p['backend'], p, gpu_count=visible or None)
        if errors:
            module.fail_json(msg='settings that cannot act on backend %s: %s' % (p['backend'], '; '.join(errors)),
                             errors=errors)
    if p['state'] == 'started' and not LOOPBACK.match(p['host'] or ''):
        if not p['allow_remote']:
            module.fail_json(msg='host %s exposes the unauthenticated OpenAI API of the model server to the '
                                 'network: set allow_remote=true to do that on purpose (and firewall the port)'
                             % p['host'])
        module.warn('%s:%d serves an OpenAI-compatible API WITHOUT authentication (InstructLab 0.26.1 has no '
                    'API key option): anybody who reaches the port can use the model; restrict it with a firewall'
                    % (p['host'], p['port']))


def desired_config(module, user_cfg, p):
    cfg = copy.deepcopy(user_cfg)
    values = {
        'serve.model_path': p['model_path'],
        'serve.server.host': p['host'],
        'serve.server.port': p['port'],
        'serve.backend': p['backend'],
    }
    if p['gpu_layers'] is not None:
        values['serve.llama_cpp.gpu_layers'] = p['gpu_layers']
    if p['max_ctx_size'] is not None:
        values['serve.llama_cpp.max_ctx_size'] = p['max_ctx_size']
    if p['gpus'] is not None:
        values['serve.vllm.gpus'] = p['gpus']
    if p['vllm_args'] is not None or (p['backend'] == srv.VLLM and p['gpus'] is not None):
        # With gpus, ilab appends --tensor-parallel-size GPUS to these: one from the
        # user's configuration (the h100_x8 profile has "--tensor-parallel-size 4") goes.
        args = p['vllm_args'] if p['vllm_args'] is not None else dotted_get(cfg, 'serve.vllm.vllm_args', None) or []
        if p['gpus'] is not None:
            args = srv.without_argument('-tp', srv.without_argument('--tensor-parallel-size', args))
        values['serve.vllm.vllm_args'] = list(args)
    if p['model_family'] is not None:
        values['serve.llama_cpp.llm_family'] = p['model_family']
        values['serve.vllm.llm_family'] = p['model_family']
    if p['chat_template'] is not None:
        values['serve.chat_template'] = p['chat_template']
    for key, value in (p['settings'] or {}).items():
        key = key[len('serve.'):] if key.startswith('serve.') else key
        values['serve.' + key] = value
    for key, value in values.items():
        dotted_set(cfg, key, value)
    return cfg


def main():
    argument_spec = ilab_argument_spec()
    argument_spec.update(
        name=dict(type='str'),
        model_path=dict(type='path'),
        state=dict(type='str', default='started', choices=['started', 'stopped', 'absent']),
        host=dict(type='str', default='127.0.0.1'),
        allow_remote=dict(type='bool', default=False),
        port=dict(type='int', default=8000),
        backend=dict(type='str', default='llama-cpp', choices=['llama-cpp', 'vllm']),
        gpu_layers=dict(type='int'),
        max_ctx_size=dict(type='int'),
        gpus=dict(type='int'),
        vllm_args=dict(type='list', elements='str'),
        model_family=dict(type='str'),
        chat_template=dict(type='str'),
        settings=dict(type='dict', default={}),
        hardening=dict(type='bool', default=True),
        wait_timeout=dict(type='int', default=120),
        restart_unhealthy=dict(type='bool', default=False),
        unit_dir=dict(type='path', default='/etc/systemd/system'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'started', ['model_path'])],
                           required_one_of=[('name', 'model_path')])
    run_guarded(module, serve)


def stop(module, systemd, result, unit, unit_path, env_path, svc_dir, cur_unit):
    p = module.params
    actions = result['actions']
    state = systemd.is_active(unit) if cur_unit is not None else 'inactive'
    if state in RUNNING_STATES or state == 'failed':
        actions.append('stop')
    if cur_unit is not None and systemd.is_enabled(unit):
        actions.append('disable')
    if p['state'] == 'absent':
        if cur_unit is not None:
            actions.append('remove unit')
        if _fs.lstat(env_path) is not None:
            actions.append('remove environment')
        if _fs.lstat(svc_dir) is not None:
            actions.append('remove config')
    if not module.check_mode:
        if 'stop' in actions:
            systemd.must('stop', unit)
        if 'disable' in actions:
            systemd.must('disable', unit)
        if 'remove unit' in actions:
            _fs.remove(unit_path)
            systemd.must('daemon-reload')
            systemd.run('reset-failed', unit)
        if 'remove environment' in actions:
            _fs.remove(env_path)
        if 'remove config' in actions:
            _fs.remove(svc_dir)
    result['changed'] = bool(actions)
    if module._diff:
        result['diff'] = [dict(before_header=unit_path, after_header=unit_path, before=cur_unit or '',
                               after='' if p['state'] == 'absent' else (cur_unit or '')),
                          dict(before_header='%s: state' % unit, after_header='%s: state' % unit,
                               before=state + '\n', after='inactive\n')]
    module.exit_json(**result)


def serve(module):
    p = module.params
    check_inputs(module, p)
    name = p['name'] or '%s-%d' % (os.path.splitext(os.path.basename(p['model_path'].rstrip('/')))[0], p['port'])
    name = srv.safe_name(name)
    if p['name'] and name != p['name']:
        module.fail_json(msg='name %r: use letters, digits, ".", "_" and "-"' % p['name'])
    runner = IlabRunner.from_module(module)
    runner.check_user()
    systemd = Systemd(module)

    unit = srv.unit_name(name)
    unit_path = os.path.join(p['unit_dir'], unit)
    env_path = os.path.join(_fs.STATE_ROOT, 'serve', name + '.env')
    svc_dir = os.path.join(runner.home, '.local', 'state', 'labforge', 'serve', name)
    svc_cfg = os.path.join(svc_dir, 'config.yaml')
    xdg = dict((key, os.path.join(svc_dir, 'xdg-' + key.split('_')[1].lower()))
               for key in ('XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_CACHE_HOME', 'XDG_STATE_HOME'))
    result = dict(changed=False, name=name, unit=unit, unit_path=unit_path, config_path=svc_cfg,
                  env_path=env_path, actions=[])
    actions = result['actions']
    cur_unit = read(unit_path)
    if p['state'] in ('stopped', 'absent'):
        stop(module, systemd, result, unit, unit_path, env_path, svc_dir, cur_unit)

    # ---------------------------------------------------------------- started
    runner.check_venv()
    if not _fs.exists(p['model_path']):
        module.fail_json(msg='model %s does not exist' % p['model_path'], **result)
    why = srv.model_error(p['backend'], p['model_path'])
    if why:
        module.fail_json(msg=why, **result)
    result['model_format'] = 'gguf' if p['backend'] == srv.LLAMA_CPP else 'hf'
    held = [h for h in srv.listeners(p['port'], p['host']) if h.get('unit') != unit]
    if held:
        module.fail_json(msg='port %d is already held by %s: stop it or choose another port'
                         % (p['port'], srv.describe_process(held[0])), **result)
    if p['backend'] == 'vllm':
        res = runner.python('check vllm', 'import importlib.util; print(importlib.util.find_spec("vllm") is not None)')
        if res.rc != 0 or res.stdout.strip() != 'True':
            module.fail_json(msg='backend=vllm but vLLM is not installed in %s (use llama-cpp or install vllm)'
                             % runner.venv, **result)
    if not _fs.isfile(runner.config_path):
        module.fail_json(msg='%s does not exist: initialise InstructLab first (labforge.instructlab.ilab_config)'
                         % runner.config_path, **result)
    cfg = desired_config(module, runner.read_config(), p)
    new_cfg = runner.yaml_dump(sorted_tree(cfg))
    svc_runner = IlabRunner(module, user=runner.user, venv=runner.venv, config_path=svc_cfg,
                            log_dir=runner.log_dir)
    argv = svc_runner.argv(['model', 'serve'], [
        ('--model-path', p['model_path']),
        ('--backend', p['backend']),
        ('--host', p['host']),
        ('--port', p['port']),
        ('--gpus', p['gpus'] if p['backend'] == srv.VLLM else None),
    ])
    if p['backend'] == srv.VLLM:
        result['vllm_args'], result['tensor_parallel_size'] = srv.vllm_effective_args(cfg)
    env = runner.env(xdg)
    env.pop('TMPDIR', None)
    try:
        group = grp.getgrgid(runner.pw.pw_gid).gr_name
    except KeyError:
        group = str(runner.pw.pw_gid)
    gpu = p['backend'] == 'vllm' or dotted_get(cfg, 'serve.llama_cpp.gpu_layers', -1) != 0
    try:
        new_env = srv.render_env_file(env)
        new_unit = srv.render_unit(
            description='InstructLab model server %s (%s on %s:%d)' % (name, os.path.basename(p['model_path']),
                                                                       p['host'], p['port']),
            user=runner.user, group=group, workdir=svc_dir, env_file=env_path, argv=argv,
            rw_paths=[svc_dir], hardening=p['hardening'], devices=srv.gpu_devices() if gpu else ())
    except srv.UnitValueError as e:
        module.fail_json(msg='%s (from the task environment or the service user)' % e, **result)

    cur_cfg = read(svc_cfg)
    cur_env = read(env_path)
    unit_changed = cur_unit != new_unit
    cfg_changed = cur_cfg != new_cfg
    env_changed = cur_env != new_env
    if cfg_changed:
        actions.append('write config')
    if env_changed:
        actions.append('write environment')
    if unit_changed:
        actions.append('write unit')
        actions.append('daemon-reload')
    state = systemd.is_active(unit) if cur_unit is not None else 'inactive'
    enabled = cur_unit is not None and systemd.is_enabled(unit)
    if not enabled:
        actions.append('enable')
    if state in RUNNING_STATES:
        if unit_changed or cfg_changed or env_changed:
            actions.append('restart')
    else:
        actions.append('start')
    if module._diff:
        result['diff'] = [dict(before_header=unit_path, after_header=unit_path,
                               before=cur_unit or '', after=new_unit),
                          dict(before_header=env_path, after_header=env_path,
                               before=shown_env(cur_env), after=shown_env(new_env)),
                          dict(before_header=svc_cfg, after_header=svc_cfg,
                               before=cur_cfg or '', after=new_cfg)]
    url = srv.base_url(p['host'], p['port'])
    result['endpoint'] = url + '/v1'
    if module.check_mode:
        result['changed'] = bool(actions)
        result['healthy'] = None
        module.exit_json(**result)

    for d in xdg.values():
        runner.ensure_dir(d, 0o750)
    runner.ensure_dir(os.path.join(xdg['XDG_CONFIG_HOME'], 'instructlab'), 0o750)
    if cfg_changed:
        _fs.write(svc_cfg, new_cfg, 0o640, runner.owner)
    if env_changed:
        _fs.private_dir(os.path.dirname(env_path))
        _fs.write(env_path, new_env, 0o600)
    if unit_changed:
        _fs.write(unit_path, new_unit, 0o644)
        systemd.must('daemon-reload')
    if 'enable' in actions:
        systemd.must('enable', unit)
    if 'restart' in actions:
        systemd.must('restart', unit)
    elif 'start' in actions:
        systemd.run('reset-failed', unit)
        systemd.must('start', unit)

    def alive():
        return systemd.is_active(unit) in RUNNING_STATES

    def wait():
        return srv.wait_healthy(url, p['port'], p['host'], unit, p['model_path'], p['wait_timeout'], alive=alive)

    ok, info, waited, foreign = wait()
    if not ok and not foreign and p['restart_unhealthy'] and 'restart' not in actions and 'start' not in actions:
        actions.append('restart (unhealthy)')
        systemd.must('restart', unit)
        ok, info, more, foreign = wait()
        waited += more
    show = systemd.show(unit, 'MainPID', 'NRestarts', 'ActiveState')
    result.update(changed=bool(actions), healthy=ok, wait_seconds=round(waited, 1),
                  restarts=int(show.get('NRestarts') or 0) if (show.get('NRestarts') or '').isdigit() else None)
    if show.get('MainPID', '0').isdigit() and int(show['MainPID']) > 0:
        result['main_pid'] = int(show['MainPID'])
    if not ok:
        result['journal_tail'] = systemd.journal(unit)
        module.fail_json(msg='%s is %s but not healthy within %ss: %s\n--- journal ---\n%s'
                         % (unit, show.get('ActiveState', '?'), p['wait_timeout'], info,
                            result['journal_tail']), **result)
    result['models'] = info
    module.exit_json(**result)


if __name__ == '__main__':
    main()
