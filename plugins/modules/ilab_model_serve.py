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
  - labforge.instructlab.attributes
  - labforge.instructlab.ilab
  - labforge.instructlab.ilab.initialised
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Shows the unit file and the service's configuration file.
  idempotent:
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
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(endpoint),
      RV(healthy), RV(models), RV(unit), RV(restarts), RV(config_path), those of them that have a value. A
      failure adds C(path) (a path the file layer refused) and C(log_path) when it has them."
  returned: always
  type: dict
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
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_yaml
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_paths import IlabPaths, private_xdg
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_serve as srv
from ansible_collections.labforge.instructlab.plugins.module_utils._systemd import RUNNING_STATES, Systemd
from ansible_collections.labforge.instructlab.plugins.module_utils import _report

# options that end up in the unit or its environment file
UNIT_OPTIONS = ('name', 'model_path', 'host', 'venv', 'user', 'chat_template', 'model_family')
# environment variables whose values are shown in a diff (the others may hold credentials)
SHOWN_ENV = re.compile(r'^(HOME|USER|LOGNAME|LANG|LC_ALL|PATH|VIRTUAL_ENV|XDG_[A-Z_]+|PYTHONUNBUFFERED|NO_COLOR|TERM)$')
LOOPBACK = re.compile(r'^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$')
# what the module writes, as (key of current()/desired(), action that writes it)
FILES = (('config', 'write config'), ('env', 'write environment'), ('unit', 'write unit'))


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
    _report.attach(module, 'endpoint', 'healthy', 'models', 'unit', 'restarts', 'config_path')
    run_guarded(module, serve)


class Service(object):
    """The names of one service: its unit, unit file, root-only environment file, and
    the service's own directory (configuration file and XDG directories)."""

    def __init__(self, name, unit_dir, home):
        self.name = name
        self.unit = srv.unit_name(name)
        self.unit_path = os.path.join(unit_dir, self.unit)
        self.env_path = os.path.join(_fs.STATE_ROOT, 'serve', name + '.env')
        self.dir = IlabPaths(home).serve_dir(name)
        self.config_path = os.path.join(self.dir, 'config.yaml')
        self.xdg = private_xdg(self.dir)

    @classmethod
    def from_params(cls, module, runner):
        p = module.params
        name = p['name'] or '%s-%d' % (os.path.splitext(os.path.basename(p['model_path'].rstrip('/')))[0], p['port'])
        name = srv.safe_name(name)
        if p['name'] and name != p['name']:
            module.fail_json(msg='name %r: use letters, digits, ".", "_" and "-"' % p['name'])
        return cls(name, p['unit_dir'], runner.home)

    def result(self):
        return dict(changed=False, name=self.name, unit=self.unit, unit_path=self.unit_path,
                    config_path=self.config_path, env_path=self.env_path, actions=[])


# ------------------------------------------------------------------ current
def current(systemd, svc):
    """What is installed now: the managed files (None when missing) and the unit's state."""
    unit = read(svc.unit_path)
    return dict(unit=unit, env=read(svc.env_path), config=read(svc.config_path),
                env_exists=_fs.lstat(svc.env_path) is not None,
                dir_exists=_fs.lstat(svc.dir) is not None,
                active=systemd.is_active(svc.unit) if unit is not None else 'inactive',
                enabled=unit is not None and systemd.is_enabled(svc.unit))


# ------------------------------------------------------------------ desired
def check_started(module, runner, svc, result):
    """Refuse, before anything changes, what cannot be served: no venv or model, a model the
    backend cannot serve, a port another process holds, vLLM missing, no configuration."""
    p = module.params
    runner.check_venv()
    if not _fs.exists(p['model_path']):
        module.fail_json(msg='model %s does not exist' % p['model_path'], **result)
    why = srv.model_error(p['backend'], p['model_path'])
    if why:
        module.fail_json(msg=why, **result)
    result['model_format'] = 'gguf' if p['backend'] == srv.LLAMA_CPP else 'hf'
    held = [h for h in srv.listeners(p['port'], p['host']) if h.get('unit') != svc.unit]
    if held:
        module.fail_json(msg='port %d is already held by %s: stop it or choose another port'
                         % (p['port'], srv.describe_process(held[0])), **result)
    if p['backend'] == srv.VLLM:
        res = runner.python('check vllm', 'import importlib.util; print(importlib.util.find_spec("vllm") is not None)')
        if res.rc != 0 or res.stdout.strip() != 'True':
            module.fail_json(msg='backend=vllm but vLLM is not installed in %s (use llama-cpp or install vllm)'
                             % runner.venv, **result)
    if not _fs.isfile(runner.config_path):
        module.fail_json(msg='%s does not exist: initialise InstructLab first (labforge.instructlab.ilab_config)'
                         % runner.config_path, **result)


def desired(module, runner, svc, result):
    """What should be installed: ``{state}``, and for ``started`` the rendered
    configuration, environment file and unit."""
    p = module.params
    if p['state'] != 'started':
        return dict(state=p['state'])
    check_started(module, runner, svc, result)
    cfg = desired_config(module, _ilab_yaml.read_config(runner), p)
    svc_runner = IlabRunner(module, user=runner.user, venv=runner.venv, config_path=svc.config_path,
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
    env = runner.env(svc.xdg)
    env.pop('TMPDIR', None)
    try:
        group = grp.getgrgid(runner.pw.pw_gid).gr_name
    except KeyError:
        group = str(runner.pw.pw_gid)
    gpu = p['backend'] == srv.VLLM or dotted_get(cfg, 'serve.llama_cpp.gpu_layers', -1) != 0
    try:
        want = dict(state='started', config=_ilab_yaml.dump(runner, sorted_tree(cfg)), env=srv.render_env_file(env))
        want['unit'] = srv.render_unit(
            description='InstructLab model server %s (%s on %s:%d)' % (svc.name, os.path.basename(p['model_path']),
                                                                       p['host'], p['port']),
            user=runner.user, group=group, workdir=svc.dir, env_file=svc.env_path, argv=argv,
            rw_paths=[svc.dir], hardening=p['hardening'], devices=srv.gpu_devices() if gpu else ())
    except srv.UnitValueError as e:
        module.fail_json(msg='%s (from the task environment or the service user)' % e, **result)
    result['endpoint'] = srv.base_url(p['host'], p['port']) + '/v1'
    return want


# ------------------------------------------------------------------ actions
def plan(cur, want):
    """The actions that take ``cur`` (current()) to ``want`` (desired()), in the order
    they run: a pure function of the two."""
    running = cur['active'] in RUNNING_STATES
    actions = []
    if want['state'] != 'started':
        if running or cur['active'] == 'failed':
            actions.append('stop')
        if cur['enabled']:
            actions.append('disable')
        if want['state'] == 'absent':
            for exists, action in ((cur['unit'] is not None, 'remove unit'), (cur['env_exists'], 'remove environment'),
                                   (cur['dir_exists'], 'remove config')):
                if exists:
                    actions.append(action)
        return actions
    writes = [action for key, action in FILES if cur[key] != want[key]]
    actions = writes + (['daemon-reload'] if 'write unit' in writes else [])
    if not cur['enabled']:
        actions.append('enable')
    if not running:
        actions.append('start')
    elif writes:
        actions.append('restart')
    return actions


def file_diff(path, before, after):
    return dict(before_header=path, after_header=path, before=before or '', after=after or '')


def diff(cur, want, svc):
    if want['state'] == 'started':
        return [file_diff(svc.unit_path, cur['unit'], want['unit']),
                file_diff(svc.env_path, shown_env(cur['env']), shown_env(want['env'])),
                file_diff(svc.config_path, cur['config'], want['config'])]
    return [file_diff(svc.unit_path, cur['unit'], None if want['state'] == 'absent' else cur['unit']),
            file_diff('%s: state' % svc.unit, cur['active'] + '\n', 'inactive\n')]


def apply(runner, systemd, svc, want, actions):
    """Run ``actions`` (plan()) in order."""
    def write_env():
        _fs.private_dir(os.path.dirname(svc.env_path))
        _fs.write(svc.env_path, want['env'], 0o600)

    def remove_unit():
        _fs.remove(svc.unit_path)
        systemd.forget(svc.unit)

    steps = {
        'write config': lambda: _fs.write(svc.config_path, want['config'], 0o640, runner.owner),
        'write environment': write_env,
        'write unit': lambda: _fs.write(svc.unit_path, want['unit'], 0o644),
        'daemon-reload': systemd.daemon_reload,
        'enable': lambda: systemd.enable(svc.unit),
        'start': lambda: systemd.start(svc.unit),
        'restart': lambda: systemd.restart(svc.unit),
        'stop': lambda: systemd.stop(svc.unit),
        'disable': lambda: systemd.disable(svc.unit),
        'remove unit': remove_unit,
        'remove environment': lambda: _fs.remove(svc.env_path),
        'remove config': lambda: _fs.remove(svc.dir),
    }
    if want['state'] == 'started':
        for d in svc.xdg.values():
            runner.ensure_dir(d, 0o750)
        runner.ensure_dir(IlabPaths(runner.home, svc.xdg).config_dir, 0o750)
    for action in actions:
        steps[action]()


def verify(module, systemd, svc, result):
    """After a start: wait until the endpoint serves the model (restarting an unhealthy
    service once with restart_unhealthy), then exit with its state, or fail with its journal."""
    p = module.params
    actions = result['actions']
    url = srv.base_url(p['host'], p['port'])

    def wait():
        return srv.wait_healthy(url, p['port'], p['host'], svc.unit, p['model_path'], p['wait_timeout'],
                                alive=lambda: systemd.is_running(svc.unit))

    ok, info, waited, foreign = wait()
    if not ok and not foreign and p['restart_unhealthy'] and 'restart' not in actions and 'start' not in actions:
        actions.append('restart (unhealthy)')
        systemd.restart(svc.unit)
        ok, info, more, foreign = wait()
        waited += more
    show = systemd.show(svc.unit, 'MainPID', 'NRestarts', 'ActiveState')
    result.update(changed=bool(actions), healthy=ok, wait_seconds=round(waited, 1),
                  restarts=int(show.get('NRestarts') or 0) if (show.get('NRestarts') or '').isdigit() else None)
    if show.get('MainPID', '0').isdigit() and int(show['MainPID']) > 0:
        result['main_pid'] = int(show['MainPID'])
    if not ok:
        result['journal_tail'] = systemd.journal(svc.unit)
        module.fail_json(msg='%s is %s but not healthy within %ss: %s\n--- journal ---\n%s'
                         % (svc.unit, show.get('ActiveState', '?'), p['wait_timeout'], info,
                            result['journal_tail']), **result)
    result['models'] = info
    module.exit_json(**result)


def serve(module):
    """current state -> desired state -> actions -> apply (-> health)."""
    p = module.params
    check_inputs(module, p)
    runner = IlabRunner.from_module(module)
    svc = Service.from_params(module, runner)
    runner.check_user()
    systemd = Systemd(module)
    result = svc.result()
    cur = current(systemd, svc)
    want = desired(module, runner, svc, result)
    actions = result['actions'] = plan(cur, want)
    if module._diff:
        result['diff'] = diff(cur, want, svc)
    if not module.check_mode:
        apply(runner, systemd, svc, want, actions)
    if module.check_mode or want['state'] != 'started':
        result['changed'] = bool(actions)
        if want['state'] == 'started':
            result['healthy'] = None
        module.exit_json(**result)
    verify(module, systemd, svc, result)


if __name__ == '__main__':
    main()
