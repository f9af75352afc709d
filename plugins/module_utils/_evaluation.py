# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scores of ``ilab model evaluate`` (InstructLab 0.26.1) and the rollout gate (private API).

Pure functions, no I/O: the module reads the files through the file layer and
hands their text here, so the same code serves the module, the unit tests and
a playbook-side gate.

What InstructLab 0.26.1 writes, per benchmark (``src/instructlab/model/evaluate.py``,
``dk_bench_utils.py``; instructlab-eval 0.5.1 ``mt_bench_judgment.py``):

- ``mt_bench``: ``OUT/mt_bench/model_answer/<model name>.jsonl`` (the answers) and
  ``OUT/mt_bench/model_judgment/<judge name>_single.jsonl``, one row per judged turn
  (``question_id``, ``model``, ``judge``, ``user_prompt``, ``judgment``, ``score``,
  ``turn``, ``tstamp``); ``score`` -1 is a judgment the judge's text gave no
  ``[[rating]]`` for. The overall score is the mean of the other scores (0-10),
  the turn scores the means per turn, the error rate the share of -1 rows
  (``make_judgment``).
- ``mt_bench_branch``: the same under ``OUT/mt_bench_branch/<branch>/`` per branch.
- ``dk_bench``: ``OUT/<model name>/results_<iso time>.jsonl``, one row per question
  (``user_input``, ``reference``, ``response``, ``model_name``, ``scores`` 1-5,
  ``timestamp``); the report's "Average Score" is the mean of ``scores``.
- ``mmlu``, ``mmlu_branch``: no file; only the printed report, ``MODEL (SCORE/1.0)``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

BENCHMARKS = ('mmlu', 'mmlu_branch', 'mt_bench', 'mt_bench_branch', 'dk_bench')
BRANCH_BENCHMARKS = ('mmlu_branch', 'mt_bench_branch')
# get_benchmark_max_score() in InstructLab 0.26.1; DK-Bench's rubric scores 1 to 5.
MAX_SCORE = dict(mmlu=1.0, mmlu_branch=1.0, mt_bench=10.0, mt_bench_branch=10.0, dk_bench=5.0)


class EvaluationParseError(ValueError):
    pass


def _rows(text, what):
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise EvaluationParseError('%s line %d is not JSON: %s' % (what, n, e))
        if not isinstance(row, dict):
            raise EvaluationParseError('%s line %d is not a JSON object' % (what, n))
        rows.append(row)
    return rows


def _mean(values):
    return sum(values) / float(len(values)) if values else None


def mt_bench_judgment(text, model_name=None):
    """Scores of an MT-Bench judgment file (``<judge>_single.jsonl``), as InstructLab's
    ``make_judgment`` computes them: ``score`` (mean of all valid judgments), ``turn_scores``
    (mean per turn, turn 1 first), ``error_rate``, ``judgments``, ``questions``.
    Only rows of ``model_name`` count when it is given. Raises EvaluationParseError when no
    judgment has a score (InstructLab fails that run: "Evaluation provided no result")."""
    rows = _rows(text, 'judgment file')
    if model_name is not None:
        rows = [r for r in rows if r.get('model') == model_name]
    if not rows:
        raise EvaluationParseError('the judgment file has no judgments%s'
                                   % (' of model %s' % model_name if model_name else ''))
    try:
        valid = [r for r in rows if float(r['score']) != -1]
        turns = sorted(set(int(r['turn']) for r in rows))
    except (KeyError, TypeError, ValueError) as e:
        raise EvaluationParseError('the judgment file has a row without a numeric score/turn: %s' % e)
    if not valid:
        raise EvaluationParseError('none of the %d judgments has a score (the judge gave no [[rating]])'
                                   % len(rows))
    turn_scores = [_mean([float(r['score']) for r in valid if int(r['turn']) == t]) for t in turns]
    return dict(score=_mean([float(r['score']) for r in valid]), turn_scores=turn_scores,
                error_rate=(len(rows) - len(valid)) / float(len(rows)), judgments=len(rows),
                questions=len(set(str(r.get('question_id')) for r in rows)))


def dk_bench_results(text):
    """Scores of a DK-Bench results ``.jsonl``: ``score`` (the mean of ``scores``, the report's
    Average Score, 1-5), ``total``, ``questions``."""
    rows = _rows(text, 'results file')
    if not rows:
        raise EvaluationParseError('the results file has no rows')
    try:
        scores = [float(r['scores']) for r in rows]
    except (KeyError, TypeError, ValueError) as e:
        raise EvaluationParseError('the results file has a row without a numeric scores field: %s' % e)
    return dict(score=_mean(scores), total=sum(scores), questions=len(rows))


_REPORT_LINE = re.compile(r'^(?P<model>.+) \((?P<score>-?[0-9.]+(?:e-?[0-9]+)?)/(?P<max>[0-9.]+)\)\s*$')


def report_scores(text):
    """``{'score', 'base_score', 'max_score'}`` from the report ``ilab model evaluate`` prints:
    the line after ``## MODEL (SCORE)`` (and after ``## BASE MODEL (SCORE)`` for the _branch
    benchmarks), ``<model> (<score>/<max>)``. Rounded to 2 decimals by InstructLab.
    The last report in ``text`` counts. Raises EvaluationParseError without one."""
    found = dict(score=None, base_score=None, max_score=None)
    want = None
    for line in text.splitlines():
        s = line.strip()
        if s == '## MODEL (SCORE)':
            want = 'score'
            continue
        if s == '## BASE MODEL (SCORE)':
            want = 'base_score'
            continue
        if want:
            m = _REPORT_LINE.match(s)
            if m:
                found[want] = float(m.group('score'))
                found['max_score'] = float(m.group('max'))
                want = None
            elif s:
                want = None
    if found['score'] is None:
        raise EvaluationParseError('no "## MODEL (SCORE)" report in the output')
    return found


def qna_questions(data):
    """DK-Bench rows (``user_input``, ``reference``) from one taxonomy ``qna.yaml`` (parsed),
    its seed examples as InstructLab's schema has them: a skill's ``question``/``answer`` (a
    grounded skill's ``context`` put before the question), a knowledge file's
    ``questions_and_answers`` of each seed example (its ``context`` before the question)."""
    rows = []
    if not isinstance(data, dict):
        return rows
    for ex in data.get('seed_examples') or []:
        if not isinstance(ex, dict):
            continue
        context = (ex.get('context') or '').strip()
        pairs = ex.get('questions_and_answers')
        if not isinstance(pairs, list):
            pairs = [ex]
        for qa in pairs:
            if not isinstance(qa, dict):
                continue
            q, a = (qa.get('question') or '').strip(), (qa.get('answer') or '').strip()
            if q and a:
                rows.append(dict(user_input='%s\n\n%s' % (context, q) if context else q, reference=a))
    return rows


# The mmlu_branch task InstructLab's own generator writes (instructlab-sdg 0.8.2 eval_data.py
# _create_mmlu_evaluation_task): an lm-eval multiple-choice task tagged ``mmlu_pr`` - the tag
# ``ilab model evaluate --benchmark mmlu_branch`` evaluates (tasks=["mmlu_pr"]) - over a jsonl of
# ``question``, ``choices`` (four) and ``answer`` (the index of the right choice, 0-3).
MCQ_TASK = 'labforge_mcq'
MCQ_LETTERS = 'ABCD'


def mcq_rows(rows, what='mcq_questions'):
    """The multiple-choice questions ROWS (dicts), checked and normalised to what the
    ``mmlu_pr`` task reads: ``{'question', 'choices' (4 strings), 'answer' (0-3)}`` (and
    ``subject`` when given). ``answer`` may be given as a letter A-D or an index 0-3.
    Raises EvaluationParseError naming WHAT and the row."""
    out = []
    if not isinstance(rows, list):
        raise EvaluationParseError('%s must be a list of questions' % what)
    for n, row in enumerate(rows, 1):
        where = '%s: question %d' % (what, n)
        if not isinstance(row, dict):
            raise EvaluationParseError('%s is not a mapping' % where)
        q = row.get('question')
        if not isinstance(q, str) or not q.strip():
            raise EvaluationParseError('%s has no question text' % where)
        choices = row.get('choices')
        if not isinstance(choices, list) or len(choices) != 4 or \
                not all(isinstance(c, str) and c.strip() for c in choices):
            raise EvaluationParseError('%s needs choices, a list of exactly 4 non-empty strings (the mmlu_pr task '
                                       'shows A. to D.)' % where)
        answer = row.get('answer')
        if isinstance(answer, bool):
            answer = None
        if isinstance(answer, str) and answer.strip().upper() in MCQ_LETTERS and len(answer.strip()) == 1:
            answer = MCQ_LETTERS.index(answer.strip().upper())
        if not isinstance(answer, int) or not 0 <= answer <= 3:
            raise EvaluationParseError('%s has answer %r; give the right choice as A, B, C or D (or 0-3)'
                                       % (where, row.get('answer')))
        clean = dict(question=q.strip(), choices=[c.strip() for c in choices], answer=answer)
        if isinstance(row.get('subject'), str) and row['subject']:
            clean['subject'] = row['subject']
        out.append(clean)
    if not out:
        raise EvaluationParseError('%s has no questions' % what)
    return out


def mcq_jsonl(rows):
    """The jsonl text of normalised MCQ rows (one JSON object a line, sorted keys)."""
    return ''.join(json.dumps(r, sort_keys=True) + '\n' for r in rows)


def mmlu_task_yaml(data_file, task=MCQ_TASK):
    """The lm-eval task YAML (as text) of an ``mmlu_pr`` task over DATA_FILE (an absolute path):
    instructlab-sdg 0.8.2's template. Strings are written JSON-quoted (valid YAML)."""
    q = json.dumps
    return '\n'.join([
        '# mmlu_branch task written by labforge.instructlab.ilab_model_evaluate (instructlab-sdg 0.8.2 layout)',
        'task: %s' % q(task),
        'tag: "mmlu_pr"',
        'dataset_path: "json"',
        'dataset_name: null',
        'test_split: "test"',
        'dataset_kwargs:',
        '  data_files:',
        '    test: %s' % q(data_file),
        'doc_to_text: %s' % q('{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n'
                              'D. {{choices[3]}}\nAnswer:'),
        'doc_to_choice: %s' % q('{{[choices[0], choices[1], choices[2], choices[3]]}}'),
        'doc_to_target: "{{answer}}"',
        'output_type: "multiple_choice"',
        'metric_list:',
        '  - metric: "acc"',
        '    aggregation: "mean"',
        '    higher_is_better: true',
        '',
    ])


def gate_decision(score, current_score=None, min_score=None, tolerance=0.0, benchmark=None, error_rate=None,
                  max_error_rate=None):
    """Whether a candidate model with ``score`` may replace the model in service.

    - no ``score`` (the evaluation gave none): no.
    - ``min_score``: the candidate needs at least this score.
    - ``current_score`` (the model in service, same benchmark, judge and questions): the
      candidate may be at most ``tolerance`` below it. Without a current score (nothing in
      service yet) only ``min_score`` counts.
    - ``max_error_rate`` (MT-Bench): the candidate's ``error_rate`` (the share of judgments
      the judge gave no rating for) may be at most this; a score from too few ratings is not trusted.

    Returns ``{'rollout': bool, 'reason': str, 'score', 'current_score', 'min_score',
    'tolerance', 'benchmark', 'error_rate', 'max_error_rate'}``.
    """
    tolerance = float(tolerance or 0.0)
    if tolerance < 0:
        raise ValueError('tolerance must not be negative (got %s)' % tolerance)
    if max_error_rate is not None and not 0 <= float(max_error_rate) <= 1:
        raise ValueError('max_error_rate must be between 0 and 1 (got %s)' % max_error_rate)
    out = dict(score=score, current_score=current_score, min_score=min_score, tolerance=tolerance,
               benchmark=benchmark, error_rate=error_rate, max_error_rate=max_error_rate)
    label = ('%s score' % benchmark) if benchmark else 'score'
    if score is None:
        out.update(rollout=False, reason='the candidate has no %s' % label)
        return out
    score = float(score)
    if max_error_rate is not None and error_rate is not None and float(error_rate) > float(max_error_rate):
        out.update(rollout=False, reason='candidate %s %.4g rests on too few ratings: error rate %.4g is above the '
                   'maximum %.4g' % (label, score, float(error_rate), float(max_error_rate)))
        return out
    if min_score is not None and score < float(min_score):
        out.update(rollout=False, reason='candidate %s %.4g is below the minimum %.4g%s'
                   % (label, score, float(min_score),
                      '' if current_score is None else ' (model in service: %.4g)' % float(current_score)))
        return out
    if current_score is not None and score < float(current_score) - tolerance:
        out.update(rollout=False, reason='candidate %s %.4g is below the model in service (%.4g) by more '
                   'than the tolerance %.4g' % (label, score, float(current_score), tolerance))
        return out
    if current_score is None:
        why = 'no model in service to compare with'
    else:
        why = 'model in service: %.4g, tolerance %.4g' % (float(current_score), tolerance)
    if min_score is not None:
        why += ', minimum %.4g' % float(min_score)
    out.update(rollout=True, reason='candidate %s %.4g passes (%s)' % (label, score, why))
    return out
