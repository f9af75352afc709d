#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ilab_model_train
short_description: Train a student model with C(ilab model train), once per set of inputs
version_added: 0.1.0
description:
  - Runs C(ilab model train) with the C(simple), C(full) or C(accelerated) pipeline on a dataset
    (a file, a directory of C(ilab data generate) output, or V(latest), the latest result of
    M(labforge.instructlab.ilab_data_generate)).
  - Idempotent by a fingerprint of its inputs - the student model's files, the dataset files, every
    parameter, the C(train) section of the configuration (the train profile; without its path
    keys) and the InstructLab version. Each set of inputs trains into its own directory
    C(OUTPUT_DIR/NAME-<fingerprint>/) with a manifest (C(labforge-manifest.json)); a rerun with the
    same inputs reports no change and returns the existing paths. Changed inputs or O(force=true)
    train again.
  - ilab writes to fixed places (C(training_results/) in the current directory, the GGUF of the
    simple pipeline always to C($XDG_DATA_HOME/instructlab/checkpoints/ggml-model-f16.gguf)). The
    module gives every run its own working directory and its own C(XDG_DATA_HOME) inside a
    temporary directory, so two trainings never overwrite each other; the directory is renamed to
    its final name only when training succeeded and produced a model. A killed or failed run
    leaves nothing at the final path; the next run removes its leftovers (and stops an ilab
    process orphaned by a killed module - only a process of the service user, with the start time
    recorded in C(/var/lib/labforge)) and trains again.
  - Trainings with the same O(name) and O(output_dir) on one host wait for each other (a lock in
    C(/var/lib/labforge)).
  - Meant for C(async)/C(poll) - the log file C(LOG_DIR/ilab-model-train-NAME.log) and a status
    JSON beside it (C(.status.json), with the pid and state) exist from the moment training starts.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.ilab
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Computes the fingerprint and reports whether training would run; runs nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
options:
  name:
    description:
      - Name of this training, used for the result directory (C(NAME-<fingerprint>)) and the log
        (C(ilab-model-train-NAME.log)).
    type: str
    default: train
  model_path:
    description:
      - The student model, a Hugging Face model directory (C(--model-path)). Defaults to
        C(train.model_path) of the configuration.
    type: path
  data_path:
    description:
      - The training data. V(latest) (the default) takes the latest result of
        M(labforge.instructlab.ilab_data_generate) in O(datasets_dir).
      - For the C(simple) pipeline a directory of C(ilab data generate) output (its newest
        C(train_*.jsonl) and C(test_*.jsonl), or C(train_gen.jsonl)/C(test_gen.jsonl)) or a train
        C(.jsonl) file (its test file from O(test_data_path) or the C(test_*.jsonl) beside it).
        Both are copied to the run's own data directory as C(train_gen.jsonl)/C(test_gen.jsonl),
        which is what ilab reads from a C(--data-path) directory.
      - For C(full) and C(accelerated) a messages C(.jsonl) file; from a generate result the
        C(skills_train_msgs) file (else C(messages)).
    type: str
    default: latest
  test_data_path:
    description: Test file for the C(simple) pipeline when O(data_path) is a train file.
    type: path
  datasets_dir:
    description: Where O(data_path=latest) looks. Defaults to C(generate.output_dir) of the configuration.
    type: path
  pipeline:
    description: Training pipeline (C(--pipeline)). Defaults to C(train.pipeline).
    type: str
    choices: [simple, full, accelerated]
  device:
    description: Device (C(--device)). Defaults to C(train.device).
    type: str
    choices: [cpu, cuda, hpu, mps]
  num_epochs:
    description: Epochs (C(--num-epochs)). Defaults to C(train.num_epochs).
    type: int
  output_dir:
    description:
      - Where trained models go, one directory per set of inputs. Defaults to
        C(~USER/.local/share/instructlab/trained).
    type: path
  effective_batch_size:
    description: C(--effective-batch-size).
    type: int
  max_seq_len:
    description: C(--max-seq-len).
    type: int
  max_batch_len:
    description: C(--max-batch-len).
    type: int
  save_samples:
    description: C(--save-samples).
    type: int
  learning_rate:
    description: C(--learning-rate).
    type: float
  warmup_steps:
    description: C(--warmup-steps).
    type: int
  gpus:
    description: GPUs per node (C(--gpus)).
    type: int
  nnodes:
    description: Number of nodes of a multi-node training (C(--nnodes)).
    type: int
  node_rank:
    description: Rank of this node (C(--node-rank)).
    type: int
  rdzv_id:
    description: Rendezvous id (C(--rdzv-id)).
    type: int
  rdzv_endpoint:
    description: Rendezvous endpoint C(HOST:PORT) (C(--rdzv-endpoint)).
    type: str
  distributed_backend:
    description: C(--distributed-backend).
    type: str
    choices: [fsdp, deepspeed]
  lora_rank:
    description: C(--lora-rank).
    type: int
  lora_quantize_dtype:
    description: C(--lora-quantize-dtype).
    type: str
  disable_flash_attn:
    description: C(--disable-flash-attn).
    type: bool
  strategy:
    description: C(--strategy) of the accelerated pipeline.
    type: str
    choices: [lab-multiphase, lab-skills-only]
  force:
    description: Train again even when a result for the same inputs exists (it is replaced).
    type: bool
    default: false
  timeout:
    description: Seconds after which training is stopped and the module fails. V(0) waits forever.
    type: int
    default: 0
notes:
  - The C(simple) pipeline on Linux saves only the GGUF of the merged model (ilab removes the
    safetensors after conversion); RV(gguf_path) is the model to serve.
requirements:
  - InstructLab installed in O(venv), initialised (M(labforge.instructlab.ilab_config)).
seealso:
  - module: labforge.instructlab.ilab_data_generate
  - module: labforge.instructlab.ilab_model_serve
'''

EXAMPLES = r'''
- name: Train the student on the latest generated data (CPU, simple pipeline)
  labforge.instructlab.ilab_model_train:
    pipeline: simple
    device: cpu
    num_epochs: 1
    model_path: /var/lib/instructlab/.cache/instructlab/models/instructlab/granite-7b-lab
  become: true
  register: trained

# Long trainings: run in the background and follow the log meanwhile with
#   tail -f ~instructlab/.local/state/labforge/logs/ilab-model-train-granite-skills.log
# (a status JSON with the pid and state lies beside it from the start).
- name: Start a full training on 8 GPUs
  labforge.instructlab.ilab_model_train:
    name: granite-skills
    pipeline: accelerated
    device: cuda
    gpus: 8
    num_epochs: 7
    effective_batch_size: 128
    max_batch_len: 60000
    data_path: latest
  become: true
  async: 86400
  poll: 0
  register: train_job

- name: Wait for the training
  ansible.builtin.async_status:
    jid: "{{ train_job.ansible_job_id }}"
  become: true
  register: train_result
  until: train_result.finished
  retries: 1440
  delay: 60

- name: Serve what was trained
  labforge.instructlab.ilab_model_serve:
    name: student
    model_path: "{{ train_result.gguf_path }}"
    port: 8001
  become: true
'''

RETURN = r'''
model_dir:
  description: The result directory for these inputs.
  returned: always
  type: str
  sample: /var/lib/instructlab/.local/share/instructlab/trained/train-6a1d0c9e4b3f2a10
gguf_path:
  description: The trained model as GGUF, where the pipeline produced one.
  returned: always (null when none)
  type: str
  sample: /var/lib/instructlab/.local/share/instructlab/trained/train-6a1d0c9e4b3f2a10/ggml-model-f16.gguf
export_path:
  description:
    - The GGUF under a name in root's private directory C(/var/lib/labforge/users/USER/export/) (a hard link
      to the checked file, or a copy on another file system), for root to fetch or ship without following a
      link the service user may have swapped in at RV(gguf_path).
  returned: when there is a GGUF (not in check mode)
  type: str
  sample: /var/lib/labforge/users/instructlab/export/train.gguf
checkpoint_dir:
  description: The last checkpoint (C(training_results/checkpoint-N) for simple, C(checkpoints/) otherwise).
  returned: always (null in check mode before a run)
  type: str
hf_model_dir:
  description: The trained model in Hugging Face form where kept (C(training_results/final) for simple,
    the newest C(hf_format/samples_*) otherwise).
  returned: always (null when none)
  type: str
final_loss:
  description: The final training loss parsed from the log (C(train_loss), else the last C(loss)/C(total_loss)).
  returned: always (null when the log has none)
  type: float
  sample: 6.8185
fingerprint:
  description: The fingerprint of the inputs.
  returned: always
  type: str
inputs:
  description: What the fingerprint covers.
  returned: always
  type: dict
manifest_path:
  description: The manifest of the result.
  returned: always
  type: str
trained:
  description: Whether training ran (or would run, in check mode).
  returned: always
  type: bool
log_path:
  description: The training log (predictable before the run, C(LOG_DIR/ilab-model-train-NAME.log)).
  returned: always
  type: str
status_path:
  description: The status JSON beside the log (pid, state, rc).
  returned: always
  type: str
cmd:
  description: The command run (or that would run).
  returned: always
  type: str
duration:
  description: Seconds training took.
  returned: when training ran
  type: float
ilab_version:
  description: Installed InstructLab version.
  returned: always
  type: str
'''

import os
import re
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import (
    IlabRunner, ilab_argument_spec, run_guarded)
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_common import (
    dotted_get, TRAIN_PATH_KEYS)
from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs

# Creates the data-dir storage directories ilab checks for (storage_dirs_exist)
# under the run's private XDG_DATA_HOME.
MAKE_DATA_DIRS = r'''
import os
from instructlab.defaults import DEFAULTS as D
base = D._data_dir
for name in dir(D):
    if name.isupper() and name.endswith("_DIR"):
        value = getattr(D, name)
        if isinstance(value, str) and value.startswith(base):
            os.makedirs(value, exist_ok=True)
print(base)
'''

LOSS_RE = re.compile(r"""['"](train_loss|total_loss|loss)['"]\s*:\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)""")

# options passed straight to ilab model train: (option, flag)
PASSTHROUGH = (
    ('effective_batch_size', '--effective-batch-size'),
    ('max_seq_len', '--max-seq-len'),
    ('max_batch_len', '--max-batch-len'),
    ('save_samples', '--save-samples'),
    ('learning_rate', '--learning-rate'),
    ('warmup_steps', '--warmup-steps'),
    ('gpus', '--gpus'),
    ('nnodes', '--nnodes'),
    ('node_rank', '--node-rank'),
    ('rdzv_id', '--rdzv-id'),
    ('rdzv_endpoint', '--rdzv-endpoint'),
    ('distributed_backend', '--distributed-backend'),
    ('lora_rank', '--lora-rank'),
    ('lora_quantize_dtype', '--lora-quantize-dtype'),
    ('disable_flash_attn', '--disable-flash-attn'),
    ('strategy', '--strategy'),
)


class TrainError(Exception):
    pass


def parse_final_loss(text):
    """The final loss in a training log: the last train_loss, else the last loss/total_loss."""
    found = LOSS_RE.findall(text or '')
    if not found:
        return None
    train = [v for k, v in found if k == 'train_loss']
    value = train[-1] if train else found[-1][1]
    try:
        return float(value)
    except ValueError:
        return None


def newest(directory, prefix, suffix='.jsonl'):
    """The newest regular file ``directory/prefix*suffix`` (None when there is none)."""
    found = [(st.st_mtime, name) for name, st in _fs.scandir(directory)
             if name.startswith(prefix) and name.endswith(suffix) and stat.S_ISREG(st.st_mode)]
    return os.path.join(directory, sorted(found)[-1][1]) if found else None


def numbered(paths):
    """The path whose name holds the highest number (checkpoint-12, samples_3)."""
    return sorted(paths, key=lambda d: int(re.sub(r'\D', '', os.path.basename(d)) or 0))[-1] if paths else None


def resolve_data(module, eff):
    """-> dict(train=..., test=...) for simple, dict(data=...) for full/accelerated."""
    data_path = eff['data_path']
    simple = eff['pipeline'] == 'simple'
    if data_path == 'latest':
        m = fpu.latest_dataset(eff['datasets_dir'])
        if not m:
            module.fail_json(msg='data_path=latest: no complete ilab_data_generate result in %s'
                             % eff['datasets_dir'])
        files = m.get('files') or {}
        if simple:
            return dict(train=files.get('train'), test=files.get('test'), source=m.get('dir'))
        msgs = files.get('skills_train_msgs') or files.get('messages')
        return dict(data=msgs, source=m.get('dir'))
    if not _fs.exists(data_path):
        module.fail_json(msg='data_path %s does not exist' % data_path)
    if simple:
        if _fs.isdir(data_path):
            train = os.path.join(data_path, 'train_gen.jsonl')
            test = os.path.join(data_path, 'test_gen.jsonl')
            if not (_fs.isfile(train) and _fs.isfile(test)):
                train = newest(data_path, 'train_')
                test = newest(data_path, 'test_')
        else:
            train = data_path
            test = eff['test_data_path']
            if not test:
                base = os.path.basename(train)
                cand = os.path.join(os.path.dirname(train),
                                    'test_' + base[len('train_'):] if base.startswith('train_') else 'test.jsonl')
                test = cand if _fs.isfile(cand) else newest(os.path.dirname(train), 'test_')
        if not train or not test or not _fs.isfile(train) or not _fs.isfile(test):
            module.fail_json(msg='no train/test jsonl pair found for data_path %s' % data_path)
        return dict(train=train, test=test, source=data_path)
    if _fs.isdir(data_path):
        data = newest(data_path, 'skills_train_msgs_') or newest(data_path, 'messages_')
        if not data:
            module.fail_json(msg='no skills_train_msgs_*.jsonl or messages_*.jsonl in %s' % data_path)
        return dict(data=data, source=data_path)
    return dict(data=data_path, source=data_path)


def resolve(module, runner):
    p = module.params
    cfg = runner.read_config()

    def pick(opt, key):
        if p.get(opt) is not None:
            return p[opt]
        v = dotted_get(cfg, key)
        return v if v not in ('',) else None

    eff = dict(
        model_path=pick('model_path', 'train.model_path'),
        pipeline=pick('pipeline', 'train.pipeline') or 'simple',
        device=pick('device', 'train.device') or 'cpu',
        num_epochs=pick('num_epochs', 'train.num_epochs'),
        data_path=p['data_path'],
        test_data_path=p['test_data_path'],
        datasets_dir=pick('datasets_dir', 'generate.output_dir') or os.path.join(
            runner.home, '.local', 'share', 'instructlab', 'datasets'),
        output_dir=p['output_dir'] or os.path.join(runner.home, '.local', 'share', 'instructlab', 'trained'),
    )
    if eff['pipeline'] not in ('simple', 'full', 'accelerated'):
        module.fail_json(msg='unsupported pipeline %r' % eff['pipeline'])
    if not eff['model_path'] or not _fs.exists(eff['model_path']):
        module.fail_json(msg='student model %r does not exist' % eff['model_path'])
    for opt, _flag in PASSTHROUGH:
        eff[opt] = p[opt]
    # the train section (the profile) fills every flag not given: it shapes the result
    eff['config'] = dict((k, v) for k, v in (cfg.get('train') or {}).items() if k not in TRAIN_PATH_KEYS)
    return eff


def compute_inputs(eff, data, version, cache):
    data_digests = dict((k, _fs.path_digest(v, cache)) for k, v in data.items()
                        if k in ('train', 'test', 'data'))
    params = dict((k, eff[k]) for k in ['pipeline', 'device', 'num_epochs']
                  + [o for o, _f in PASSTHROUGH])
    return dict(step='ilab model train',
                model=dict(path=eff['model_path'], digest=_fs.path_digest(eff['model_path'], cache)),
                data=data_digests, params=params, config=eff['config'], ilab_version=version)


def build_argv(runner, eff, data_arg, staging):
    opts = [('--pipeline', eff['pipeline']),
            ('--device', eff['device']),
            ('--model-path', eff['model_path']),
            ('--data-path', data_arg),
            ('--num-epochs', eff['num_epochs']),
            ('--ckpt-output-dir', os.path.join(staging, 'checkpoints')),
            ('--data-output-dir', os.path.join(staging, 'data-output'))]
    opts.extend((flag, eff[opt]) for opt, flag in PASSTHROUGH)
    return runner.argv(['model', 'train'], opts)


def subdirs(directory, prefix):
    if not _fs.isdir(directory):
        return []
    return [os.path.join(directory, n) for n, st in _fs.scandir(directory)
            if n.startswith(prefix) and stat.S_ISDIR(st.st_mode)]


def collect(staging, pipeline):
    """Result paths relative to ``staging`` after a successful run."""
    out = dict(gguf=None, checkpoint=None, hf_model=None)
    if pipeline == 'simple':
        tr = os.path.join(staging, 'training_results')
        out['checkpoint'] = numbered(subdirs(tr, 'checkpoint-'))
        out['hf_model'] = os.path.join(tr, 'final') if _fs.isdir(os.path.join(tr, 'final')) else None
        g = os.path.join(staging, 'xdg-data', 'instructlab', 'checkpoints', 'ggml-model-f16.gguf')
        if _fs.isfile(g):
            dest = os.path.join(staging, 'ggml-model-f16.gguf')
            _fs.rename(g, dest)
            out['gguf'] = dest
    else:
        ck = os.path.join(staging, 'checkpoints')
        out['checkpoint'] = ck if _fs.isdir(ck) else None
        out['hf_model'] = numbered(subdirs(os.path.join(ck, 'hf_format'), 'samples_'))
        ggufs = [(st.st_mtime, rel) for rel, kind, st, _l in (_fs.walk(ck) if out['checkpoint'] else [])
                 if kind == 'file' and rel.endswith('.gguf')]
        if ggufs:
            out['gguf'] = os.path.join(ck, sorted(ggufs)[-1][1])
    _fs.remove(os.path.join(staging, 'xdg-data'))
    _fs.remove(os.path.join(staging, 'data-output'))
    return dict((k, os.path.relpath(v, staging) if v else None) for k, v in out.items())


def summary(manifest):
    if not manifest:
        return dict(model_dir=None)
    return dict(model_dir=manifest.get('dir'), fingerprint=manifest.get('fingerprint'),
                gguf_path=manifest.get('gguf_path'), final_loss=manifest.get('final_loss'))


def main():
    argument_spec = ilab_argument_spec()
    argument_spec.update(
        name=dict(type='str', default='train'),
        model_path=dict(type='path'),
        data_path=dict(type='str', default='latest'),
        test_data_path=dict(type='path'),
        datasets_dir=dict(type='path'),
        pipeline=dict(type='str', choices=['simple', 'full', 'accelerated']),
        device=dict(type='str', choices=['cpu', 'cuda', 'hpu', 'mps']),
        num_epochs=dict(type='int'),
        output_dir=dict(type='path'),
        effective_batch_size=dict(type='int'),
        max_seq_len=dict(type='int'),
        max_batch_len=dict(type='int'),
        save_samples=dict(type='int'),
        learning_rate=dict(type='float'),
        warmup_steps=dict(type='int'),
        gpus=dict(type='int'),
        nnodes=dict(type='int'),
        node_rank=dict(type='int'),
        rdzv_id=dict(type='int'),
        rdzv_endpoint=dict(type='str'),
        distributed_backend=dict(type='str', choices=['fsdp', 'deepspeed']),
        lora_rank=dict(type='int'),
        lora_quantize_dtype=dict(type='str'),
        disable_flash_attn=dict(type='bool'),
        strategy=dict(type='str', choices=['lab-multiphase', 'lab-skills-only']),
        force=dict(type='bool', default=False),
        timeout=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not re.match(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$', module.params['name']):
        module.fail_json(msg='name %r: use letters, digits, ".", "_" and "-"' % module.params['name'])
    run_guarded(module, run_module)


def run_module(module):
    p = module.params
    runner = IlabRunner.from_module(module)
    runner.check_user()
    runner.check_venv()
    version = runner.ilab_version()

    eff = resolve(module, runner)
    data = resolve_data(module, eff)
    cache = _fs.DigestCache(os.path.join(runner.state, 'digests.json'))
    inputs = compute_inputs(eff, data, version, cache)
    if not module.check_mode:
        cache.save()
    fp = fpu.fingerprint(inputs)
    final = os.path.join(eff['output_dir'], '%s-%s' % (p['name'], fpu.short(fp)))
    log_name = 'ilab-model-train-' + p['name']
    log_path = runner.log_path_for(log_name)

    def complete():
        m = fpu.read_manifest(final)
        return m if fpu.valid_manifest(m, fp, [final]) else None

    existing = complete()
    run = p['force'] or not existing
    simple = eff['pipeline'] == 'simple'
    preview_staging = final + fpu.STAGING_MARK + '...'
    preview_data = os.path.join(preview_staging, 'data') if simple else data['data']
    result = dict(changed=run, trained=run, fingerprint=fp, inputs=inputs, model_dir=final,
                  manifest_path=fpu.manifest_path(final), ilab_version=version, log_path=log_path,
                  status_path=log_path[:-len('.log')] + '.status.json',
                  cmd=' '.join(runner.mask_argv(build_argv(runner, eff, preview_data, preview_staging))),
                  data=dict((k, v) for k, v in data.items()),
                  gguf_path=None, checkpoint_dir=None, hf_model_dir=None, final_loss=None)

    manifest = existing
    if run and not module.check_mode:
        runner.ensure_dir(eff['output_dir'])
        family = re.escape(p['name'] + '-') + '[0-9a-f]{16}'
        with fpu.Once(runner.state, runner.owner, final, family) as once:
            manifest = None if p['force'] else complete()   # another run may have finished meanwhile
            result['changed'] = result['trained'] = run = manifest is None
            if run:
                manifest = train(module, runner, once, eff, data, inputs, fp, version, log_name, result)

    if manifest:
        for key in ('gguf_path', 'checkpoint_dir', 'hf_model_dir', 'final_loss'):
            result[key] = manifest.get(key)
        if not run:
            result['log_path'] = manifest.get('log_path') or result['log_path']
        if result['gguf_path'] and not module.check_mode:
            result['export_path'] = _fs.export(result['gguf_path'], os.path.join(
                _fs.private_dir(os.path.join(runner.state, 'export')), p['name'] + '.gguf'))
    if module._diff:
        after = dict(model_dir=final, fingerprint=fp, gguf_path=result['gguf_path'],
                     final_loss=result['final_loss'])
        result['diff'] = dict(before=summary(existing) if existing else dict(model_dir=None),
                              after=after, before_header=final, after_header=final)
    module.exit_json(**result)


def train(module, runner, once, eff, data, inputs, fp, version, log_name, result):
    """One ``ilab model train`` run in a staging directory; returns the manifest of the
    result, renamed into place."""
    p = module.params
    owner = runner.owner
    once.clean_stale()
    staging = once.stage()
    if eff['pipeline'] == 'simple':
        ddir = runner.ensure_dir(os.path.join(staging, 'data'))
        _fs.copy_file(data['train'], os.path.join(ddir, 'train_gen.jsonl'), 0o644, owner)
        _fs.copy_file(data['test'], os.path.join(ddir, 'test_gen.jsonl'), 0o644, owner)
        data_arg = ddir
    else:
        data_arg = data['data']
    xdg = runner.ensure_dir(os.path.join(staging, 'xdg-data'))
    env = dict(XDG_DATA_HOME=xdg)
    res = runner.python('prepare training data dir', MAKE_DATA_DIRS, env=env, cwd=staging)
    if res.rc != 0:
        runner.fail('prepare training data dir', res)
    argv = build_argv(runner, eff, data_arg, staging)
    job = runner.start('ilab model train', argv, env=env, cwd=staging, log_name=log_name)
    once.started(job.pid)
    res = job.wait(timeout=p['timeout'] or None)
    loss = parse_final_loss(res.log_text)
    result.update(cmd=res.cmd, log_path=res.log_path, status_path=job.status_path,
                  duration=round(res.duration, 1), final_loss=loss)
    if res.rc != 0:
        runner.fail('ilab model train', res, fingerprint=fp, model_dir=once.final)
    rel = collect(staging, eff['pipeline'])
    if not rel['gguf'] and not rel['hf_model']:
        runner.fail('ilab model train', res, fingerprint=fp,
                    msg='ilab exited 0 but no trained model (GGUF or HF checkpoint) was found')
    final = once.final
    paths = dict((k, os.path.join(final, v) if v else None) for k, v in rel.items())
    manifest = dict(fingerprint=fp, inputs=inputs, dir=final, gguf_path=paths['gguf'],
                    checkpoint_dir=paths['checkpoint'], hf_model_dir=paths['hf_model'],
                    final_loss=loss, ilab_version=version, cmd=res.cmd,
                    log_path=res.log_path, duration=round(res.duration, 1),
                    data=dict((k, v) for k, v in data.items()))
    fpu.write_manifest(staging, manifest, owner)
    once.place()
    return manifest


if __name__ == '__main__':
    main()
