#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ilab_config
short_description: Initialise the InstructLab configuration and hold declared settings
version_added: 0.1.0
description:
  - Runs C(ilab config init --non-interactive) when the configuration file does not exist yet,
    against a B(local) taxonomy git repository (created with a C(main) branch when missing), so
    that initialisation never needs the network.
  - Then holds the declared settings (taxonomy path, default models for chat, generate, serve and
    train, the train profile, GPU count, serve host/port/backend, generate pipeline and any other
    dotted key in O(settings)) by comparing them with the existing C(config.yaml). The file is
    rewritten (atomically, keeping its comments and every other value) only when a value differs.
  - New values are validated with the installed InstructLab's own configuration model before
    the file is replaced.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.attributes
  - labforge.instructlab.ilab
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  init:
    description:
      - Run C(ilab config init --non-interactive) when the configuration file is missing.
      - When V(false) and the file is missing, the module fails.
    type: bool
    default: true
  taxonomy_path:
    description:
      - Taxonomy directory (C(generate.taxonomy_path) and C(evaluate.mt_bench_branch.taxonomy_path)).
      - When it does not exist or is empty, a local git repository with a C(main) branch and one
        empty commit is created there (as the service user), so that C(ilab config init) does
        not clone the upstream taxonomy from the internet.
      - Defaults to the user's C(~/.local/share/instructlab/taxonomy).
    type: path
  taxonomy_base:
    description:
      - C(generate.taxonomy_base), the git ref new taxonomy files are compared with.
      - V(empty) uses every file of the taxonomy.
    type: str
  chat_model:
    description: C(chat.model), the model C(ilab model chat) talks to.
    type: str
  generate_model:
    description: C(generate.model), the teacher model of C(ilab data generate).
    type: str
  generate_teacher_model_path:
    description: C(generate.teacher.model_path), the model file the teacher server loads.
    type: str
  generate_pipeline:
    description: C(generate.pipeline).
    type: str
    choices: [simple, full, accelerated]
  serve_model_path:
    description: C(serve.model_path), the model C(ilab model serve) loads.
    type: str
  serve_host:
    description: C(serve.server.host).
    type: str
  serve_port:
    description: C(serve.server.port) (C(ilab model serve) has no port flag).
    type: int
  serve_backend:
    description: C(serve.backend).
    type: str
    choices: [llama-cpp, vllm]
  train_model_path:
    description: C(train.model_path), the student model.
    type: str
  train_pipeline:
    description: C(train.pipeline).
    type: str
    choices: [simple, full, accelerated]
  train_device:
    description: C(train.device).
    type: str
    choices: [cpu, cuda, hpu, mps]
  gpus:
    description:
      - Number of GPUs to use, held in C(train.nproc_per_node) and C(evaluate.gpus).
    type: int
  train_profile:
    description:
      - Apply the C(train) section of an InstructLab system profile, for example
        V(nvidia/a100/a100_x4) (a profile shipped in the installed InstructLab's C(profiles/)
        directory, without C(.yaml)) or the absolute path of a profile YAML file.
      - V(auto) picks the profile from the GPU facts in O(gpu_facts) with the collection's
        C(choose_profile) logic (the one C(labforge.instructlab.gpu_info) uses). Without
        O(gpu_facts) the module asks C(nvidia-smi) on the host itself, the way
        M(labforge.instructlab.gpu_info) does (no C(nvidia-smi) means no GPU). When it picks no
        profile (no GPU, no matching profile), nothing is applied and RV(train_profile_reason) says why.
      - Explicit options (such as O(gpus), O(train_pipeline)) win over the profile's values.
      - The profile's paths (C(model_path), C(data_path), C(ckpt_output_dir), ...) are not applied.
    type: str
  gpu_facts:
    description:
      - The GPUs, as returned by C(labforge.instructlab.gpu_info) (its C(gpus) list), for
        O(train_profile=auto).
    type: list
    elements: dict
  settings:
    description:
      - Any other setting, as dotted keys of C(config.yaml) (for example
        C(generate.sdg_scale_factor), C(serve.llama_cpp.gpu_layers)). Values keep their YAML type.
      - Explicit options win over the same key here.
    type: dict
    default: {}
  validate:
    description:
      - Validate the new configuration with the installed InstructLab's pydantic model before
        replacing the file.
    type: bool
    default: true
notes:
  - The configuration is edited by the service user itself (a new file renamed over it); root only
    reads it, through the collection's file layer.
  - C(ilab config init) always writes the user's default configuration path; when O(config_path)
    is another path, init runs with a private C(XDG_CONFIG_HOME) and the result is moved to
    O(config_path).
requirements:
  - InstructLab installed in O(venv); C(git) on the host.
'''

EXAMPLES = r'''
- name: Initialise InstructLab offline and hold the settings we use
  labforge.instructlab.ilab_config:
    taxonomy_base: empty
    serve_host: 127.0.0.1
    serve_port: 8001
    serve_backend: llama-cpp
    chat_model: /var/lib/instructlab/.cache/instructlab/models/granite-7b-lab-Q4_K_M.gguf
    serve_model_path: /var/lib/instructlab/.cache/instructlab/models/granite-7b-lab-Q4_K_M.gguf
    generate_pipeline: simple
    settings:
      generate.sdg_scale_factor: 2
  become: true

- name: Pick the train profile from the GPUs found
  block:
    - name: Gather GPU facts
      labforge.instructlab.gpu_info:
      register: gpu
    - name: Apply the matching train profile
      labforge.instructlab.ilab_config:
        train_profile: auto
        gpu_facts: "{{ gpu.gpus }}"
  become: true
'''

RETURN = r'''
config_path:
  description: The configuration file.
  returned: always
  type: str
  sample: /var/lib/instructlab/.config/instructlab/config.yaml
config:
  description: The effective configuration after the run (what it would be, in check mode).
  returned: always
  type: dict
effective:
  description: The managed keys (dotted) with their effective values.
  returned: always
  type: dict
  sample: {"serve.server.port": 8001, "generate.pipeline": simple}
changed_keys:
  description: Dotted keys whose value changed.
  returned: always
  type: list
  elements: str
initialized:
  description: Whether C(ilab config init) ran (or would run, in check mode).
  returned: always
  type: bool
taxonomy_created:
  description: Whether a local taxonomy git repository was created.
  returned: always
  type: bool
train_profile:
  description: The profile applied (name or path), or null.
  returned: always
  type: str
train_profile_reason:
  description: Why O(train_profile=auto) chose (or did not choose) a profile.
  returned: when O(train_profile=auto)
  type: str
ilab_version:
  description: Installed InstructLab version.
  returned: always
  type: str
  sample: 0.26.1
log_path:
  description: Log of the init step when it ran.
  returned: when init ran
  type: str
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(ilab_version),
      RV(config_path), RV(changed_keys), RV(initialized), RV(train_profile), RV(log_path), those of them that
      have a value. A failure adds C(path) (a path the file layer refused) and C(log_path) when it has them."
  returned: always
  type: dict
'''

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import (
    IlabRunner, ilab_argument_spec, run_guarded)
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_common import (
    dotted_get, dotted_has, dotted_set, flatten, TRAIN_PATH_KEYS)
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.module_utils import _gpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_yaml
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_paths import IlabPaths
from ansible_collections.labforge.instructlab.plugins.module_utils import _report

# dotted keys held by the explicit options
OPTION_KEYS = [
    ('taxonomy_base', ['generate.taxonomy_base']),
    ('chat_model', ['chat.model']),
    ('generate_model', ['generate.model']),
    ('generate_teacher_model_path', ['generate.teacher.model_path']),
    ('generate_pipeline', ['generate.pipeline']),
    ('serve_model_path', ['serve.model_path']),
    ('serve_host', ['serve.server.host']),
    ('serve_port', ['serve.server.port']),
    ('serve_backend', ['serve.backend']),
    ('train_model_path', ['train.model_path']),
    ('train_pipeline', ['train.pipeline']),
    ('train_device', ['train.device']),
    ('gpus', ['train.nproc_per_node', 'evaluate.gpus']),
]

# Runs as the service user with the venv's python: round-trip edit keeping
# comments (ruamel.yaml, an InstructLab dependency) into a new file beside the
# configuration, validate it with InstructLab's own Config model, then rename it
# over the configuration. The file is the user's: the user replaces it (root
# never writes there). argv: CONFIG VALIDATE; stdin: {key: value}.
WRITER = r'''
import json, os, sys, tempfile
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
src, validate = sys.argv[1], sys.argv[2] == "1"
changes = json.load(sys.stdin)
y = YAML()
y.preserve_quotes = True
y.width = 4096
with open(src, encoding="utf-8") as f:
    data = y.load(f) or CommentedMap()
for key, value in changes.items():
    cur = data
    parts = key.split(".")
    for p in parts[:-1]:
        if not isinstance(cur.get(p), dict):
            cur[p] = CommentedMap()
        cur = cur[p]
    cur[parts[-1]] = value
fd, dst = tempfile.mkstemp(prefix=".config.yaml.", suffix=".labforge-tmp", dir=os.path.dirname(src))
try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        y.dump(data, f)
    os.chmod(dst, os.stat(src).st_mode & 0o7777)
    if validate:
        import yaml
        from instructlab.configuration import Config
        try:
            with open(dst, encoding="utf-8") as f:
                Config(**(yaml.safe_load(f) or {}))
        except Exception as e:
            print("INVALID: %s" % e)
            raise SystemExit(3)
    os.replace(dst, src)
finally:
    if os.path.exists(dst):
        os.unlink(dst)
'''


PROFILE_DIR = ('import os, instructlab; '
               'print(os.path.join(os.path.dirname(instructlab.__file__), "profiles"))')


def detect_gpus(module):
    """The host's NVIDIA GPUs as gpu_info reads them (_gpu.read_gpus); [] without nvidia-smi or GPU."""
    status, reason, gpus, _cuda, _commands = _gpu.read_gpus(module)
    if status in (_gpu.STATUS_OK, _gpu.STATUS_NO_NVIDIA_SMI, _gpu.STATUS_NO_GPU):
        return gpus
    module.fail_json(msg='train_profile=auto: cannot read the GPUs: %s (pass gpu_facts from '
                         'labforge.instructlab.gpu_info, or a profile name)' % reason)


def resolve_profile(module, runner, name, gpu_facts, version):
    """Return (profile_name_or_path, train_dict) or (None, {})."""
    overrides = {}
    if not name:
        return None, {}
    if name == 'auto':
        if gpu_facts is None:
            gpu_facts = detect_gpus(module)
        choice, module.profile_reason = _gpu.choose_profile(gpu_facts or [], version)
        if not choice:
            return None, {}
        name = choice
        details = _gpu.profile_details(name, version, gpu_facts or []) or {}
        overrides.update(details.get('overrides') or {})
    if os.path.isabs(name):
        path = name
    else:
        res = runner.python('locate profiles', PROFILE_DIR)
        if res.rc != 0:
            runner.fail('locate profiles', res)
        base = res.stdout.strip()
        rel = name if name.endswith('.yaml') else name + '.yaml'
        path = os.path.join(base, rel)
        if not os.path.realpath(path).startswith(os.path.realpath(base) + os.sep):
            module.fail_json(msg='train_profile %r escapes the profiles directory' % name)
    if not _fs.isfile(path):
        module.fail_json(msg='train profile %r not found (looked for %s)' % (name, path))
    data = _ilab_yaml.read_config(runner, path)
    train = data.get('train') or {}
    values = dict(('train.' + k, v) for k, v in flatten(train).items()
                  if k.split('.')[0] not in TRAIN_PATH_KEYS)
    values.update(overrides)
    return name, values


def ensure_taxonomy(module, runner, path):
    """Make ``path`` a local git repo with a main branch when missing/empty."""
    if _fs.isdir(path) and _fs.listdir(path):
        return False
    if module.check_mode:
        return True
    runner.ensure_dir(path)
    git = ['git', '-c', 'user.name=labforge', '-c', 'user.email=labforge@localhost',
           '-c', 'init.defaultBranch=main']
    steps = [
        ('create local taxonomy', git + ['init', '-q', '-b', 'main', path]),
        ('commit empty taxonomy', git + ['-C', path, 'commit', '-q', '--allow-empty',
                                         '-m', 'Local taxonomy (labforge.instructlab)']),
    ]
    for step, argv in steps:
        res = runner.run(step, argv, log=False)
        if res.rc != 0:
            runner.fail(step, res)
    return True


def run_init(module, runner, taxonomy_path):
    opts = [('--non-interactive', True), ('--taxonomy-path', taxonomy_path)]
    argv = runner.argv(['config', 'init'], opts, config=False)
    env = {}
    tmp_home = None
    if os.path.abspath(runner.config_path) != os.path.abspath(runner.default_config_path):
        tmp_home = _fs.mkdtemp(_fs.TMPDIR, 'labforge-ilab-init-', 0o700, runner.owner)
        env['XDG_CONFIG_HOME'] = tmp_home
    try:
        res = runner.run('ilab config init', argv, env=env, log_name='ilab-config-init')
        written = IlabPaths(runner.home, env).config_path if tmp_home else runner.config_path
        if res.rc != 0 or not _fs.isfile(written):
            runner.fail('ilab config init', res,
                        msg=None if res.rc != 0 else 'ilab config init wrote no %s' % written)
        if tmp_home:
            runner.ensure_dir(os.path.dirname(runner.config_path))
            _fs.copy_file(written, runner.config_path, _fs.stat_path(written).st_mode & 0o777, runner.owner)
    finally:
        if tmp_home:
            _fs.remove(tmp_home)
    return res


def write_config(module, runner, changes, validate):
    res = runner.python('write config', WRITER, args=[runner.config_path, '1' if validate else '0'],
                        data=json.dumps(changes), changes_state=True, log=True,
                        log_name='ilab-config-write')
    if res.rc != 0:
        runner.fail('write config', res, msg='the new settings were rejected' if res.rc == 3 else None)


def yaml_text(runner, data):
    return _ilab_yaml.dump(runner, _sorted(data))


def _sorted(data):
    if isinstance(data, dict):
        return dict((k, _sorted(data[k])) for k in sorted(data, key=str))
    return data


def main():
    argument_spec = ilab_argument_spec()
    argument_spec.update(
        init=dict(type='bool', default=True),
        taxonomy_path=dict(type='path'),
        taxonomy_base=dict(type='str'),
        chat_model=dict(type='str'),
        generate_model=dict(type='str'),
        generate_teacher_model_path=dict(type='str'),
        generate_pipeline=dict(type='str', choices=['simple', 'full', 'accelerated']),
        serve_model_path=dict(type='str'),
        serve_host=dict(type='str'),
        serve_port=dict(type='int'),
        serve_backend=dict(type='str', choices=['llama-cpp', 'vllm']),
        train_model_path=dict(type='str'),
        train_pipeline=dict(type='str', choices=['simple', 'full', 'accelerated']),
        train_device=dict(type='str', choices=['cpu', 'cuda', 'hpu', 'mps']),
        gpus=dict(type='int'),
        train_profile=dict(type='str'),
        gpu_facts=dict(type='list', elements='dict'),
        settings=dict(type='dict', default={}),
        validate=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    _report.attach(module, 'ilab_version', 'config_path', 'changed_keys', 'initialized', 'train_profile', 'log_path')
    run_guarded(module, run_module)


def run_module(module):
    p = module.params
    runner = IlabRunner.checked(module, venv=True)
    version = runner.ilab_version()

    taxonomy_path = p['taxonomy_path'] or runner.paths.taxonomy
    result = dict(changed=False, config_path=runner.config_path, initialized=False,
                  taxonomy_created=False, changed_keys=[], ilab_version=version,
                  train_profile=None)

    result['taxonomy_created'] = ensure_taxonomy(module, runner, taxonomy_path)
    exists = _fs.isfile(runner.config_path)
    if exists:
        pass
    elif not p['init']:
        module.fail_json(msg='%s does not exist and init=false' % runner.config_path, **result)
    elif module.check_mode:
        result['initialized'] = True
    else:
        res = run_init(module, runner, taxonomy_path)
        result['initialized'] = True
        result['log_path'] = res.log_path

    # desired values: profile < settings < explicit options
    desired = {}
    profile, profile_values = resolve_profile(module, runner, p['train_profile'], p['gpu_facts'], version)
    result['train_profile'] = profile
    if getattr(module, 'profile_reason', None):
        result['train_profile_reason'] = module.profile_reason
    desired.update(profile_values)
    desired.update(p['settings'] or {})
    if p['taxonomy_path']:
        desired['generate.taxonomy_path'] = taxonomy_path
        desired['evaluate.mt_bench_branch.taxonomy_path'] = taxonomy_path
    for opt, keys in OPTION_KEYS:
        if p[opt] is not None:
            for k in keys:
                desired[k] = p[opt]

    current = _ilab_yaml.read_config(runner) if _fs.isfile(runner.config_path) else {}
    changes = {}
    for key, value in desired.items():
        if current and not dotted_has(current, key):
            module.warn('%s is not a key of %s yet: check its spelling (InstructLab ignores '
                        'unknown keys)' % (key, runner.config_path))
        if not dotted_has(current, key) or dotted_get(current, key) != value:
            changes[key] = value
    result['changed_keys'] = sorted(changes)
    after = json.loads(json.dumps(current))
    for key, value in changes.items():
        dotted_set(after, key, value)

    if changes and not module.check_mode and current:
        write_config(module, runner, changes, p['validate'])
        after = _ilab_yaml.read_config(runner)
    elif changes and not current and not module.check_mode:
        module.fail_json(msg='the configuration %s is empty after init' % runner.config_path, **result)

    result['changed'] = bool(changes) or result['initialized'] or result['taxonomy_created']
    result['config'] = after
    result['effective'] = dict((k, dotted_get(after, k)) for k in sorted(desired))
    if module._diff:
        result['diff'] = dict(before=yaml_text(runner, current) if exists else '',
                              after=yaml_text(runner, after),
                              before_header=runner.config_path + (' (before)' if exists else ' (absent)'),
                              after_header=runner.config_path + ' (after)')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
