# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout_gate filter: the module_utils gate decision, reachable from a playbook by its FQCN."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.labforge.instructlab.plugins.filter.rollout_gate import FilterModule


def test_the_filter_is_the_gate_decision():
    gate = FilterModule().filters()['rollout_gate']
    passed = gate(4.6, current_score=4.5, min_score=4.0, tolerance=0.25, benchmark='mt_bench')
    assert passed['rollout'] is True and passed['reason'].startswith('candidate mt_bench score 4.6 passes')
    # a threshold above the maximum score: never rolled out, both scores in the reason
    held = gate(4.6, current_score=4.5, min_score=11.0, benchmark='mt_bench')
    assert held['rollout'] is False and '4.6' in held['reason'] and '4.5' in held['reason']
    assert gate(None, current_score=4.5)['rollout'] is False
    # MT-Bench: a score from too few ratings is not trusted
    thin = gate(6.0, min_score=5.0, benchmark='mt_bench', error_rate=0.5, max_error_rate=0.2)
    assert thin['rollout'] is False and 'error rate 0.5 is above the maximum 0.2' in thin['reason']
    with pytest.raises(AnsibleFilterError, match='rollout_gate: max_error_rate'):
        gate(4.6, max_error_rate=2)
    with pytest.raises(AnsibleFilterError, match='rollout_gate: tolerance'):
        gate(4.6, tolerance=-1)
    with pytest.raises(AnsibleFilterError, match='rollout_gate'):
        gate('high')
