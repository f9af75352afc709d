# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: rollout_gate
short_description: Decide whether a candidate model's evaluation score lets it replace the model in service
version_added: 0.1.0
description:
  - The rollout gate's decision, from the scores of two evaluations with the same benchmark, judge and
    questions (M(labforge.instructlab.ilab_model_evaluate)) - the candidate's and the model in service's.
  - No candidate score (a failed evaluation) - not rolled out.
  - O(min_score) - the candidate needs at least this score.
  - O(tolerance) - the candidate may be at most this much below the model in service. Without a score of the
    model in service (nothing served yet) only O(min_score) counts.
options:
  _input:
    description: The candidate's score (RV(labforge.instructlab.ilab_model_evaluate#module:score)); V(null) when it has none.
    type: float
    required: true
  current_score:
    description: The score of the model in service; V(null) when nothing is in service.
    type: float
  min_score:
    description: The lowest score that may be rolled out.
    type: float
  tolerance:
    description: How far below the model in service the candidate may score. Not negative.
    type: float
    default: 0.0
  benchmark:
    description: The benchmark, named in the reason.
    type: str
  error_rate:
    description:
      - The candidate's error rate (RV(labforge.instructlab.ilab_model_evaluate#module:error_rate), MT-Bench - the
        share of judgments without a rating); V(null) for benchmarks without one.
    type: float
  max_error_rate:
    description: The highest O(error_rate) (0 to 1) a candidate may have; V(null) - not checked.
    type: float
author:
  - labforge engineers (@labforge)
'''

EXAMPLES = r'''
- name: Decide
  ansible.builtin.set_fact:
    gate: "{{ candidate.score | labforge.instructlab.rollout_gate(current_score=serving.score, min_score=5.0,
              tolerance=0.25, benchmark='mt_bench') }}"

- name: Roll out only what passed
  ansible.builtin.debug:
    msg: "{{ gate.reason }}"
  when: gate.rollout
'''

RETURN = r'''
_value:
  description: The decision.
  type: dict
  contains:
    rollout:
      description: Whether the candidate may replace the model in service.
      type: bool
    reason:
      description: Why, with both scores.
      type: str
      sample: candidate mt_bench score 4.1 is below the model in service (4.6) by more than the tolerance 0.25
    score:
      description: The candidate's score.
      type: float
    current_score:
      description: The score of the model in service.
      type: float
    min_score:
      description: The minimum given.
      type: float
    tolerance:
      description: The tolerance used.
      type: float
    benchmark:
      description: The benchmark given.
      type: str
    error_rate:
      description: The error rate given.
      type: float
    max_error_rate:
      description: The maximum error rate given.
      type: float
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.labforge.instructlab.plugins.module_utils._evaluation import gate_decision


def rollout_gate(score, current_score=None, min_score=None, tolerance=0.0, benchmark=None, error_rate=None,
                 max_error_rate=None):
    try:
        return gate_decision(score, current_score, min_score, tolerance, benchmark, error_rate, max_error_rate)
    except (TypeError, ValueError) as e:
        raise AnsibleFilterError('rollout_gate: %s' % e)


class FilterModule(object):
    def filters(self):
        return dict(rollout_gate=rollout_gate)
