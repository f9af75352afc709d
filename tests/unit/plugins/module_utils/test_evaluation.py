# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils/_evaluation.py: the scores of InstructLab 0.26.1's evaluation
outputs (real files from an offline run on the test bed) and the rollout gate's decisions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.labforge.instructlab.plugins.module_utils import _evaluation as ev

FIXTURES = os.path.join(os.path.dirname(__file__), '..', 'modules', 'fixtures', 'ilab_model_evaluate')


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


# ------------------------------------------------------------------ MT-Bench
def test_mt_bench_judgment_of_a_real_run_matches_instructlabs_make_judgment():
    """A real judgment file of instructlab-eval (questions 81-90, what questions_limit=10 gives;
    see fixtures/ilab_model_evaluate/README.md). InstructLab 0.26.1's own make_judgment
    (instructlab-eval 0.5.1, run in the test bed's venv) gave for it: overall 8.8, turn scores
    [8.8, 'N/A'], error rate 0.75."""
    got = ev.mt_bench_judgment(fixture('mt_bench_judgment.jsonl'), 'granite-7b-lab')
    assert got['score'] == pytest.approx(8.8)
    assert got['turn_scores'][0] == pytest.approx(8.8) and got['turn_scores'][1] is None
    assert got['error_rate'] == pytest.approx(0.75)
    assert got['judgments'] == 20 and got['questions'] == 10


def test_mt_bench_judgment_of_the_test_beds_135m_judge_has_no_score():
    """The test bed's offline run (teacher SmolLM2-135M as model and judge, 3 questions): the
    judge never wrote a [[rating]]; InstructLab failed the run ("Evaluation provided no result")."""
    text = fixture('testbed_135m_judge/model_judgment.jsonl')
    assert len(text.splitlines()) == 6
    with pytest.raises(ev.EvaluationParseError, match='none of the 6 judgments has a score'):
        ev.mt_bench_judgment(text, 'SmolLM2-135M-Instruct.Q4_1.gguf')


def test_mt_bench_judgment_counts_only_the_model_asked_for_and_ignores_failed_ratings():
    rows = [dict(question_id=81, model='a', score=8, turn=1), dict(question_id=81, model='a', score=-1, turn=2),
            dict(question_id=82, model='a', score=4, turn=2), dict(question_id=81, model='b', score=1, turn=1)]
    got = ev.mt_bench_judgment('\n'.join(json.dumps(r) for r in rows) + '\n', 'a')
    assert got['score'] == 6.0 and got['turn_scores'] == [8.0, 4.0]
    assert got['error_rate'] == pytest.approx(1 / 3.0) and got['questions'] == 2


@pytest.mark.parametrize('text, expect', [
    ('', 'has no judgments'),
    ('{"model": "a", "score": -1, "turn": 1}\n', 'none of the 1 judgments has a score'),
    ('not json\n', 'line 1 is not JSON'),
    ('{"model": "a", "turn": 1}\n', 'without a numeric score'),
])
def test_mt_bench_judgment_without_a_score_is_an_error(text, expect):
    with pytest.raises(ev.EvaluationParseError, match=expect):
        ev.mt_bench_judgment(text, 'a')


# ------------------------------------------------------------------ DK-Bench
def test_dk_bench_results_mean_is_the_reports_average():
    rows = [dict(user_input='q%d' % i, reference='r', response='x', model_name='m', scores=s,
                 timestamp='2026-12-02T05:00:00') for i, s in enumerate((5, 3, 1))]
    got = ev.dk_bench_results(''.join(json.dumps(r) + '\n' for r in rows))
    assert got == dict(score=3.0, total=9.0, questions=3)
    with pytest.raises(ev.EvaluationParseError, match='no rows'):
        ev.dk_bench_results('\n')


# ------------------------------------------------------------------ reports
def test_branch_report_gives_both_scores():
    # display_models_and_scores() of InstructLab 0.26.1
    text = ('# KNOWLEDGE EVALUATION REPORT\n\n## BASE MODEL (SCORE)\n/models/base (0.41/1.0)\n\n'
            '## MODEL (SCORE)\n/models/new (0.47/1.0)\n\n### IMPROVEMENTS (0.0 to 1.0):\n1. mmlu_pr: 0.41 -> 0.47 (+0.06)\n')
    assert ev.report_scores(text) == dict(score=0.47, base_score=0.41, max_score=1.0)
    with pytest.raises(ev.EvaluationParseError):
        ev.report_scores('## MODEL (SCORE)\nno score here\n')


# ------------------------------------------------------------------ gate
@pytest.mark.parametrize('score, current, min_score, tolerance, rollout, words', [
    (6.0, None, None, 0, True, 'no model in service'),
    (6.0, None, 5.0, 0, True, 'minimum 5'),
    (4.9, None, 5.0, 0, False, 'below the minimum 5'),
    (6.0, 6.5, None, 0, False, 'below the model in service (6.5)'),
    (6.0, 6.5, None, 0.5, True, 'tolerance 0.5'),
    (6.0, 6.6, None, 0.5, False, 'by more than the tolerance 0.5'),
    (7.0, 6.0, 7.5, 0, False, 'below the minimum 7.5 (model in service: 6)'),
    (7.0, 6.0, 7.0, 0, True, 'passes'),
    (None, 6.0, None, 0, False, 'has no'),
])
def test_gate_decisions(score, current, min_score, tolerance, rollout, words):
    d = ev.gate_decision(score, current, min_score, tolerance, benchmark='mt_bench')
    assert d['rollout'] is rollout and words in d['reason'], d
    assert d['score'] == score and d['current_score'] == current and 'mt_bench score' in d['reason']


def test_gate_refuses_a_negative_tolerance():
    with pytest.raises(ValueError, match='tolerance'):
        ev.gate_decision(5.0, 5.0, tolerance=-1)


@pytest.mark.parametrize('error_rate, max_error_rate, rollout, words', [
    (0.5, 0.25, False, 'error rate 0.5 is above the maximum 0.25'),
    (0.25, 0.25, True, 'passes'),
    (0.9, None, True, 'passes'),
    (None, 0.1, True, 'passes'),      # a benchmark without judgments (mmlu_branch)
])
def test_gate_refuses_a_score_resting_on_too_few_ratings(error_rate, max_error_rate, rollout, words):
    d = ev.gate_decision(6.0, 5.0, 5.0, 0, 'mt_bench', error_rate=error_rate, max_error_rate=max_error_rate)
    assert d['rollout'] is rollout and words in d['reason'], d
    assert (d['error_rate'], d['max_error_rate']) == (error_rate, max_error_rate)


def test_gate_refuses_a_max_error_rate_outside_0_to_1():
    with pytest.raises(ValueError, match='max_error_rate must be between 0 and 1'):
        ev.gate_decision(5.0, max_error_rate=1.5)


def test_mcq_rows_normalise_letters_and_name_the_bad_question():
    rows = ev.mcq_rows([dict(question=' Q? ', choices=['a', 'b', 'c', 'd'], answer='c', extra=1),
                        dict(question='R?', choices=['a', 'b', 'c', 'd'], answer=3, subject='s')])
    assert rows == [dict(question='Q?', choices=['a', 'b', 'c', 'd'], answer=2),
                    dict(question='R?', choices=['a', 'b', 'c', 'd'], answer=3, subject='s')]
    with pytest.raises(ev.EvaluationParseError, match='questions file: question 3 has answer 4'):
        ev.mcq_rows(rows + [dict(rows[0], answer=4)], 'questions file')
    assert ev.mcq_jsonl(rows[:1]) == '{"answer": 2, "choices": ["a", "b", "c", "d"], "question": "Q?"}\n'


def test_qna_questions_of_skills_grounded_skills_and_knowledge():
    skill = dict(version=2, seed_examples=[dict(question='Q1?', answer='A1'), dict(question='Q2?', answer=' ')])
    grounded = dict(version=3, seed_examples=[dict(context='Table: x', question='Sum?', answer='3')])
    knowledge = dict(version=3, seed_examples=[dict(context='Doc text.', questions_and_answers=[
        dict(question='What?', answer='That.'), dict(question='Why?', answer='Because.')])])
    assert ev.qna_questions(skill) == [dict(user_input='Q1?', reference='A1')]
    assert ev.qna_questions(grounded) == [dict(user_input='Table: x\n\nSum?', reference='3')]
    assert ev.qna_questions(knowledge) == [dict(user_input='Doc text.\n\nWhat?', reference='That.'),
                                           dict(user_input='Doc text.\n\nWhy?', reference='Because.')]
    assert ev.qna_questions(None) == [] and ev.qna_questions(dict(seed_examples='x')) == []
