# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_run_state: which inventory variables are inputs, how a changed part and a drifted probe are
named, the record's place."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.labforge.instructlab.plugins.module_utils import _run_state as rs


@pytest.mark.parametrize('name,expected', [
    ('labforge_train', True), ('instructlab_version', True), ('python_version', True),
    ('nvidia_driver_branch', True), ('ansible_host', True),
    ('labforge_full_run', False), ('ansible_user', False), ('gpu_count', False), ('nvidia_x', False)])
def test_inputs_are_the_roles_variables_and_the_address(name, expected):
    assert rs.is_input(name) is expected


def test_the_fingerprint_is_the_digest_of_the_parts_in_any_order():
    a = {'x': 'sha256:1', 'y': 'sha256:2'}
    assert rs.fingerprint(a) == rs.fingerprint(dict(reversed(list(a.items()))))
    assert rs.fingerprint(a) != rs.fingerprint(dict(a, y='sha256:3'))


def test_changed_parts_are_added_removed_or_changed():
    assert rs.changed_parts({'a': 1, 'b': 2, 'c': 3}, {'a': 1, 'b': 5, 'd': 4}) == ['b', 'c', 'd']
    assert rs.changed_parts(None, {'a': 1}) == ['a']


@pytest.mark.parametrize('name,words', [
    ('collection', "the collection's files"), ('hosts', 'the hosts, their groups or ansible_host'),
    ('var:python_version', 'inventory variable python_version'),
    ('files:labforge_taxonomy_dir', 'the controller files of labforge_taxonomy_dir'),
    ('extra:labforge_train', 'extra variable labforge_train'), ('other', 'other')])
def test_each_part_is_named_in_words(name, words):
    assert rs.describe_part(name) == words


def test_a_record_with_another_fingerprint_but_the_same_parts_is_not_current():
    record = rs.build_record('site', 'sha256:old', {'a': '1'}, [], {})
    current, reasons, inputs, drifted = rs.compare(record, 'sha256:new', {'a': '1'}, {})
    assert (current, reasons, inputs) == (False, ['inputs changed: fingerprint'], ['fingerprint'])


@pytest.mark.parametrize('playbook', ['', '../x', 'a/b', '.hidden', 'x' * 101, None])
def test_the_record_is_named_by_a_plain_playbook_name(playbook):
    with pytest.raises(ValueError):
        rs.record_path('/var/lib/labforge/run-state', playbook)


def test_the_record_lives_in_root_only_state():
    assert rs.record_path(rs.STATE_DIR, 'site') == '/var/lib/labforge/run-state/site.json'


def test_the_probe_of_a_link_names_its_target_and_what_it_leads_to(tmp_path):
    (tmp_path / 'v1').mkdir()
    os.symlink(str(tmp_path / 'v1'), str(tmp_path / 'venv'))
    info = rs.probe_path(str(tmp_path / 'venv'))
    assert (info['kind'], info['target'], info['resolved']['kind']) == ('link', str(tmp_path / 'v1'), 'dir')
    os.rmdir(str(tmp_path / 'v1'))
    assert rs.probe_path(str(tmp_path / 'venv'))['resolved'] == {'kind': 'absent'}
    assert rs.probe_path(str(tmp_path / 'nothing')) == {'kind': 'absent'}
