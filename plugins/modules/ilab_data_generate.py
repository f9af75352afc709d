#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ilab_data_generate
short_description: Generate synthetic training data with C(ilab data generate), once per set of inputs
version_added: 0.1.0
description:
  - Runs C(ilab data generate) on a taxonomy with a teacher model, either a model file that ilab
    serves itself for the run (O(model)) or an already served teacher (O(endpoint_url)).
  - Idempotent by a fingerprint of its inputs - the content of every taxonomy file, the teacher
    model's sha256 (or its name when only an endpoint is used), with O(endpoint_url) the model
    ids that endpoint lists at C(/models) (a different model behind the same URL generates
    again), the git commit of O(taxonomy_base), every parameter, the C(generate) section of the
    configuration (the teacher's settings; without C(output_dir) and C(taxonomy_path)) and the
    InstructLab version. The result of a run goes into
    C(OUTPUT_DIR/generate-<fingerprint>/) with a manifest (C(labforge-manifest.json)); a later run
    with the same inputs finds it and reports no change. Changed inputs, or O(force=true),
    generate again.
  - ilab writes into a temporary directory; only a run that succeeded (rc 0, a train file with at
    least O(min_rows) rows) is renamed into place, so a killed or failed run never leaves a dataset
    that a later run would accept as done.
  - Runs that write the same output directory on one host wait for each other (a lock in
    C(/var/lib/labforge)); a later run removes the leftovers of a killed one and stops the ilab
    process it left running (only a process of the service user, with the recorded start time).
  - The latest result is recorded in C(OUTPUT_DIR/labforge-generate-latest.json), which
    M(labforge.instructlab.ilab_model_train) reads for O(labforge.instructlab.ilab_model_train#module:data_path=latest).
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.attributes
  - labforge.instructlab.ilab
  - labforge.instructlab.ilab.initialised
attributes:
  check_mode:
    support: full
    details: Computes the fingerprint and reports whether a run would happen; runs nothing.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  model:
    description:
      - The teacher model. With O(endpoint_url) unset, a model file (GGUF for llama-cpp, a model
        directory for vLLM) that ilab serves for the run (C(--model)).
      - With O(endpoint_url), the model name sent to that server (its file when it exists on this
        host is fingerprinted by content).
      - Defaults to C(generate.teacher.model_path) of the configuration.
    type: str
  endpoint_url:
    description:
      - URL of an OpenAI-compatible server already serving the teacher, for example
        C(http://127.0.0.1:8000/v1) (C(--endpoint-url)). ilab then starts no server of its own.
    type: str
  pipeline:
    description:
      - SDG pipeline (C(--pipeline)), V(simple), V(full), V(accelerated) or the path of a directory
        of pipeline YAML files. Defaults to C(generate.pipeline) of the configuration.
    type: str
  sdg_scale_factor:
    description:
      - Instructions to generate for each seed example (C(--sdg-scale-factor)). Defaults to
        C(generate.sdg_scale_factor) of the configuration.
    type: int
  gpus:
    description: GPUs for the teacher's vLLM server (C(--gpus)). Ignored by ilab with llama-cpp.
    type: int
  num_cpus:
    description: Number of processes (C(--num-cpus)).
    type: int
  taxonomy_path:
    description: The taxonomy (C(--taxonomy-path)). Defaults to C(generate.taxonomy_path).
    type: path
  taxonomy_base:
    description:
      - Git ref the taxonomy is compared with (C(--taxonomy-base)); V(empty) takes every file.
        Defaults to C(generate.taxonomy_base).
    type: str
  output_dir:
    description:
      - Where results go (one C(generate-<fingerprint>) directory per set of inputs). Defaults to
        C(generate.output_dir) of the configuration.
    type: path
  chunk_word_count:
    description: Words per chunk of knowledge documents (C(--chunk-word-count)).
    type: int
  server_ctx_size:
    description: Context size of the teacher server (C(--server-ctx-size)).
    type: int
  batch_size:
    description: SDG batch size (C(--batch-size)); V(0) disables batching.
    type: int
  max_num_tokens:
    description: Maximum tokens per generated sample (C(--max-num-tokens)).
    type: int
  model_family:
    description: Force the teacher's model family for the prompt template (C(--model-family)).
    type: str
  force:
    description: Generate again even when a result for the same inputs exists (it is replaced).
    type: bool
    default: false
  min_rows:
    description: Fail when the train file has fewer rows than this (a teacher that produced nothing).
    type: int
    default: 1
  timeout:
    description: Seconds after which the run is stopped and the module fails. V(0) waits forever.
    type: int
    default: 0
notes:
  - Long runs can be started with C(async)/C(poll); the log path is C(LOG_DIR/ilab-data-generate-<fingerprint>.log)
    and a status JSON is written beside it from the start.
  - C(--api-key) is not offered, since it would put a secret on the command line.
seealso:
  - module: labforge.instructlab.ilab_model_train
  - module: labforge.instructlab.ilab_model_serve
'''

EXAMPLES = r'''
- name: Generate data for the new skills with a local teacher GGUF
  labforge.instructlab.ilab_data_generate:
    model: /var/lib/instructlab/.cache/instructlab/models/mistral-7b-instruct-v0.2.Q4_K_M.gguf
    pipeline: simple
    sdg_scale_factor: 5
    taxonomy_base: empty
  become: true
  register: sdg

- name: Generate with a teacher served by ilab_model_serve, on 4 GPUs, in the background
  labforge.instructlab.ilab_data_generate:
    endpoint_url: "{{ teacher.endpoint }}"
    model: /var/lib/instructlab/.cache/instructlab/models/mixtral-8x7b-instruct
    pipeline: full
    sdg_scale_factor: 30
    gpus: 4
  become: true
  async: 14400
  poll: 60

- name: Show what was generated
  ansible.builtin.debug:
    msg: "{{ sdg.rows.train }} training rows in {{ sdg.files.train }}"
'''

RETURN = r'''
dataset_dir:
  description: The directory of the result for these inputs.
  returned: always
  type: str
  sample: /var/lib/instructlab/.local/share/instructlab/datasets/generate-1f0c3a9e5b7d2c44
files:
  description: The dataset files (null where ilab wrote none, e.g. no knowledge).
  returned: always
  type: dict
  sample:
    train: /var/lib/instructlab/.local/share/instructlab/datasets/generate-1f0c3a9e5b7d2c44/train_2026-11-25T20_56_50.jsonl
    test: /var/lib/instructlab/.local/share/instructlab/datasets/generate-1f0c3a9e5b7d2c44/test_2026-11-25T20_56_50.jsonl
    messages: /var/lib/instructlab/.local/share/instructlab/datasets/generate-1f0c3a9e5b7d2c44/messages_2026-11-25T20_56_50.jsonl
    skills_train_msgs: /var/lib/instructlab/.local/share/instructlab/datasets/generate-1f0c3a9e5b7d2c44/skills_train_msgs_2026-11-25T20_56_50.jsonl
    knowledge_train_msgs: null
rows:
  description: Row count of each dataset file.
  returned: always (empty in check mode when a run would happen)
  type: dict
  sample: {"train": 10, "test": 5, "messages": 10, "skills_train_msgs": 30}
fingerprint:
  description: The fingerprint of the inputs.
  returned: always
  type: str
  sample: sha256:1f0c3a9e5b7d2c44...
inputs:
  description: What the fingerprint covers.
  returned: always
  type: dict
manifest_path:
  description: The manifest of the result.
  returned: always
  type: str
generated:
  description: Whether C(ilab data generate) ran (or would run, in check mode).
  returned: always
  type: bool
cmd:
  description: The command run (or that would run).
  returned: always
  type: str
log_path:
  description: The log of the run.
  returned: when a run happened
  type: str
duration:
  description: Seconds the run took.
  returned: when a run happened
  type: float
ilab_version:
  description: Installed InstructLab version.
  returned: always
  type: str
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(files),
      RV(dataset_dir), RV(rows), RV(manifest_path), RV(fingerprint), RV(generated), RV(duration),
      RV(ilab_version), RV(log_path), those of them that have a value. A failure adds C(path) (a path the file
      layer refused) and C(log_path) when it has them."
  returned: always
  type: dict
'''

import os
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import (
    IlabRunner, ilab_argument_spec, run_guarded)
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_common import dotted_get
from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_yaml
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_serve as srv
from ansible_collections.labforge.instructlab.plugins.module_utils import _report

FAMILY = 'generate-[0-9a-f]{16}'
STAGING_PREVIEW = fpu.STAGING_MARK + '...'
# generate.* keys that do not shape the result (their content is fingerprinted instead)
CONFIG_SKIP = ('output_dir', 'taxonomy_path')

# dataset files ilab data generate writes (name prefix -> key)
DATASET_FILES = (('train', 'train_'), ('test', 'test_'), ('messages', 'messages_'),
                 ('skills_train_msgs', 'skills_train_msgs_'),
                 ('knowledge_train_msgs', 'knowledge_train_msgs_'))


def find_dataset_files(directory):
    """{key: path or None} for the jsonl files ilab wrote into ``directory``."""
    names = _fs.listdir(directory)
    out = {}
    for key, prefix in DATASET_FILES:
        found = [n for n in names if n.startswith(prefix) and n.endswith('.jsonl')]
        out[key] = os.path.join(directory, found[-1]) if found else None
    return out


def resolve(module, runner):
    """Effective inputs: explicit options, else the configuration's values (and the
    configuration's generate section, which shapes the result too)."""
    p = module.params
    cfg = _ilab_yaml.read_config(runner)

    def pick(opt, *keys):
        if p.get(opt) is not None:
            return p[opt]
        for k in keys:
            v = dotted_get(cfg, k)
            if v not in (None, ''):
                return v
        return None

    eff = dict(
        model=pick('model', 'generate.teacher.model_path', 'generate.model'),
        endpoint_url=p['endpoint_url'],
        pipeline=pick('pipeline', 'generate.pipeline'),
        sdg_scale_factor=pick('sdg_scale_factor', 'generate.sdg_scale_factor'),
        taxonomy_path=pick('taxonomy_path', 'generate.taxonomy_path'),
        taxonomy_base=pick('taxonomy_base', 'generate.taxonomy_base'),
        output_dir=pick('output_dir', 'generate.output_dir') or runner.paths.datasets,
        gpus=p['gpus'], num_cpus=p['num_cpus'], chunk_word_count=p['chunk_word_count'],
        server_ctx_size=p['server_ctx_size'], batch_size=p['batch_size'],
        max_num_tokens=p['max_num_tokens'], model_family=p['model_family'],
    )
    if not eff['pipeline']:
        module.fail_json(msg='no pipeline: set pipeline or generate.pipeline in the configuration')
    if not eff['model']:
        module.fail_json(msg='no teacher model: set model or generate.teacher.model_path')
    if not eff['taxonomy_path'] or not _fs.isdir(eff['taxonomy_path']):
        module.fail_json(msg='taxonomy %r is not a directory' % eff['taxonomy_path'])
    if not eff['endpoint_url'] and not _fs.exists(eff['model']):
        module.fail_json(msg='teacher model %s does not exist (or give endpoint_url)' % eff['model'])
    eff['config'] = dict((k, v) for k, v in (cfg.get('generate') or {}).items() if k not in CONFIG_SKIP)
    return eff


def taxonomy_base_commit(runner, taxonomy_path, base):
    if not base or base == 'empty':
        return None
    res = runner.run('resolve taxonomy base', ['git', '-C', taxonomy_path, 'rev-parse', '--verify',
                                               '%s^{commit}' % base],
                     changes_state=False, log=False)
    return res.stdout.strip() if res.rc == 0 else None


def served_models(module, eff):
    """The model ids the teacher endpoint lists (what a fingerprint must change with)."""
    if not eff['endpoint_url']:
        return None
    ok, info = srv.endpoint_models(eff['endpoint_url'])
    if ok:
        return sorted(info)
    if module.check_mode:
        return 'unknown (%s did not answer: %s)' % (eff['endpoint_url'], info)
    module.fail_json(msg='endpoint_url %s: %s/models did not answer (%s); is the teacher served?'
                     % (eff['endpoint_url'], eff['endpoint_url'].rstrip('/'), info))


def compute_inputs(module, runner, eff, version, cache):
    tax_digest, tax_files = _fs.tree_digest(eff['taxonomy_path'], cache)
    model = eff['model']
    if _fs.exists(model):
        model_id = dict(path=model, digest=_fs.path_digest(model, cache))
    else:
        model_id = dict(name=model)
    if eff['endpoint_url']:
        model_id['served'] = served_models(module, eff)
    keys = ('pipeline', 'sdg_scale_factor', 'taxonomy_base', 'gpus', 'num_cpus', 'chunk_word_count',
            'server_ctx_size', 'batch_size', 'max_num_tokens', 'model_family', 'endpoint_url')
    params = dict((k, eff[k]) for k in keys)
    return dict(
        step='ilab data generate',
        taxonomy=dict(path=eff['taxonomy_path'], digest=tax_digest, files=len(tax_files),
                      base_commit=taxonomy_base_commit(runner, eff['taxonomy_path'],
                                                       eff['taxonomy_base'])),
        teacher=model_id,
        params=params,
        config=eff['config'],
        ilab_version=version,
    )


def build_argv(runner, eff, output_dir):
    return runner.argv(['data', 'generate'], [
        ('--pipeline', eff['pipeline']),
        ('--model', eff['model']),
        ('--endpoint-url', eff['endpoint_url']),
        ('--sdg-scale-factor', eff['sdg_scale_factor']),
        ('--taxonomy-path', eff['taxonomy_path']),
        ('--taxonomy-base', eff['taxonomy_base']),
        ('--output-dir', output_dir),
        ('--gpus', eff['gpus']),
        ('--num-cpus', eff['num_cpus']),
        ('--chunk-word-count', eff['chunk_word_count']),
        ('--server-ctx-size', eff['server_ctx_size']),
        ('--batch-size', eff['batch_size']),
        ('--max-num-tokens', eff['max_num_tokens']),
        ('--model-family', eff['model_family']),
    ])


def main():
    argument_spec = ilab_argument_spec()
    argument_spec.update(
        model=dict(type='str'),
        endpoint_url=dict(type='str'),
        pipeline=dict(type='str'),
        sdg_scale_factor=dict(type='int'),
        gpus=dict(type='int'),
        num_cpus=dict(type='int'),
        taxonomy_path=dict(type='path'),
        taxonomy_base=dict(type='str'),
        output_dir=dict(type='path'),
        chunk_word_count=dict(type='int'),
        server_ctx_size=dict(type='int'),
        batch_size=dict(type='int'),
        max_num_tokens=dict(type='int', no_log=False),
        model_family=dict(type='str'),
        force=dict(type='bool', default=False),
        min_rows=dict(type='int', default=1),
        timeout=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    _report.attach(module, 'files', 'dataset_dir', 'rows', 'manifest_path', 'fingerprint', 'generated', 'duration',
                   'ilab_version', 'log_path')
    run_guarded(module, run_module)


def run_module(module):
    p = module.params
    runner = IlabRunner.checked(module, venv=True)
    owner = runner.owner
    version = runner.ilab_version()

    eff = resolve(module, runner)
    cache = _fs.DigestCache(os.path.join(runner.state, 'digests.json'))
    inputs = compute_inputs(module, runner, eff, version, cache)
    if not module.check_mode:
        cache.save()
    fp = fpu.fingerprint(inputs)
    output_dir = eff['output_dir']
    final = os.path.join(output_dir, 'generate-' + fpu.short(fp))
    pointer = os.path.join(output_dir, fpu.GENERATE_POINTER)

    # complete: every file it names exists, and it names one
    step = fpu.RunOnce(runner, final, fp, FAMILY, force=p['force'],
                       files=lambda m: [f for f in (m.get('files') or {}).values() if f] or [None])
    existing, run = step.existing, step.would_run
    before_ptr = fpu.read_pointer(pointer)
    before = fpu.latest_dataset(output_dir)
    argv_preview = build_argv(runner, eff, final + STAGING_PREVIEW)

    result = dict(changed=False, fingerprint=fp, inputs=inputs, dataset_dir=final,
                  manifest_path=fpu.manifest_path(final), generated=run, ilab_version=version,
                  cmd=' '.join(runner.mask_argv(argv_preview)), files={}, rows={})

    manifest, run = step.run(module.check_mode, output_dir,
                             lambda once: generate(module, runner, once, eff, inputs, fp, version, result))
    result['generated'] = run

    if manifest:
        result['files'] = manifest.get('files') or {}
        result['rows'] = manifest.get('rows') or {}
    elif run:  # check mode: the names ilab will choose are not known yet
        result['files'] = dict((key, None) for key, dummy in DATASET_FILES)

    pointer_changed = not before_ptr or before_ptr.get('dir') != final or before_ptr.get('fingerprint') != fp
    if pointer_changed and not module.check_mode and manifest:
        _fs.write_json(pointer, dict(dir=final, fingerprint=fp, manifest=fpu.manifest_path(final)),
                       0o644, owner)
    result['changed'] = bool(run or pointer_changed)
    if module._diff:
        after = dict(dataset_dir=final, fingerprint=fp, files=result['files'], rows=result['rows'])
        result['diff'] = fpu.diff(before, after, '%s (latest)' % pointer, dataset_dir='dir')
    module.exit_json(**result)


def generate(module, runner, once, eff, inputs, fp, version, result):
    """One ``ilab data generate`` run in a staging directory; returns the manifest of the
    result, renamed into place."""
    p = module.params
    once.clean_stale()
    staging = once.stage()
    argv = build_argv(runner, eff, staging)
    job = runner.start('ilab data generate', argv, log_name='ilab-data-generate-' + fpu.short(fp))
    once.started(job.pid)
    res = job.wait(timeout=p['timeout'] or None)
    result.update(cmd=res.cmd, log_path=res.log_path, status_path=job.status_path,
                  duration=round(res.duration, 1))
    if res.rc != 0:
        runner.fail('ilab data generate', res, fingerprint=fp)
    subdirs = [n for n, st in _fs.scandir(staging) if stat.S_ISDIR(st.st_mode) and n != 'checkpoints']
    if len(subdirs) != 1:
        runner.fail('ilab data generate', res, fingerprint=fp,
                    msg='expected one dated output directory in %s, found %r' % (staging, subdirs))
    produced = os.path.join(staging, subdirs[0])
    found = find_dataset_files(produced)
    rows = dict((k, _fs.count_lines(v)) for k, v in found.items() if v)
    if not found['train'] or not found['test']:
        runner.fail('ilab data generate', res, fingerprint=fp,
                    msg='ilab exited 0 but wrote no train/test file in %s' % produced)
    if (rows.get('train') or 0) < p['min_rows']:
        runner.fail('ilab data generate', res, fingerprint=fp,
                    msg='the train file has %s rows (min_rows=%d)' % (rows.get('train'), p['min_rows']))
    final = once.final
    files = dict((k, os.path.join(final, os.path.basename(v)) if v else None) for k, v in found.items())
    manifest = dict(fingerprint=fp, inputs=inputs, dir=final, files=files, rows=rows,
                    ilab_version=version, cmd=res.cmd, log_path=res.log_path,
                    duration=round(res.duration, 1), source_dir_name=subdirs[0])
    fpu.write_manifest(produced, manifest, runner.owner)
    once.place(produced)
    return manifest


if __name__ == '__main__':
    main()
