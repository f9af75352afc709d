# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils/_taxonomy.py: the loader (anchors, aliases,
duplicate keys, lines), option bounds, the schema interpreter against other
schema versions, and the venv entry point run as ilab_taxonomy runs it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import subprocess
import sys

import pytest

from ansible_collections.labforge.instructlab.plugins.module_utils import _taxonomy as T
from ansible_collections.labforge.instructlab.plugins.modules import ilab_taxonomy

SKILL = ('version: 3\ncreated_by: me\ntask_description: t\nseed_examples:\n'
         + ''.join('  - question: q%d\n    answer: a%d\n' % (i, i) for i in range(5)))
S = 'compositional_skills/x/qna.yaml'
BILLION_LAUGHS = ('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
                  + ''.join('%s: &%s [%s]\n' % (c, c, ','.join(['*' + p] * 9)) for p, c in zip('abcdefgh', 'bcdefghi')))


def load_error(text):
    with pytest.raises(T.QnaLoadError) as e:
        T.load(text)
    return e.value


def test_load_returns_data_and_lines():
    data, lines = T.load(SKILL)
    assert data['seed_examples'][2] == {'question': 'q2', 'answer': 'a2'}
    assert lines[('version',)] == 1 and lines[('seed_examples',)] == 4
    assert lines[('seed_examples', 2)] == 9 and lines[('seed_examples', 2, 'answer')] == 10
    # a block value counts from its key's line
    assert T.load('a: 1\nb:\n  - x\n')[1][('b',)] == 2


def test_billion_laughs_is_refused_at_its_first_anchor():
    e = load_error(BILLION_LAUGHS)
    assert e.line == 1 and e.rule == 'collection'
    assert e.message.startswith("YAML anchor &a: anchors and aliases are refused (this collection's rule, against "
                                "alias bombs; InstructLab accepts them)")


def test_alias_without_anchor_and_merge_alias_are_refused():
    assert load_error('a: 1\nb: *nope\n').message.startswith('YAML alias *nope: ')
    e = load_error('base: &b {x: 1}\nother:\n  <<: *b\n')
    assert e.line == 1 and 'anchor &b' in e.message


def test_duplicate_keys_name_both_lines():
    e = load_error('version: 3\nseed_examples:\n  - question: q\n    answer: a\n    question: again\n')
    assert (e.line, e.rule) == (5, 'instructlab')
    assert e.message == "duplicate key 'question' (lines 3 and 5): YAML keeps only the last value"
    e = load_error('created_by: a\ncreated_by: b\n')       # no version: version 1, not linted by InstructLab
    assert e.rule == 'collection' and "InstructLab does not check version 1 files for it" in e.message
    assert load_error('1: a\n1: b\nversion: 3\n').message.startswith('duplicate key 1 (an integer) (lines 1 and 2)')


@pytest.mark.parametrize('text,line,part', [
    ('a: [b\n', 2, 'invalid YAML: while parsing a flow sequence'),
    ('a:\n\t- b\n', 2, "(a tab character cannot indent or separate YAML: use spaces)"),
    ('a: 1\n---\nb: 2\n', 2, 'expected a single document in the stream'),
    ('a: !!python/object:os.system x\n', 1, 'could not determine a constructor'),
    ('? [a, b]\n: c\n', 1, 'a mapping key that is itself a list or mapping'),
])
def test_invalid_yaml_names_the_line(text, line, part):
    e = load_error(text)
    assert e.line == line and part in e.message, (e.line, e.message)


def test_deep_nesting_is_an_error_not_a_crash():
    assert load_error('[' * 100000 + ']' * 100000).message.startswith('invalid YAML')


def test_option_bounds():
    assert T.option_errors(1, 1) == [] and T.option_errors(1000000, 1000) == [] and T.option_errors(2300, None) == []
    assert T.option_errors(0, None) == ['max_words must be between 1 and 1000000 (words of seed examples per file), '
                                        'got 0']
    assert T.option_errors(2300, 1001) == ['min_examples must be between 1 and 1000 (seed examples per file), '
                                           'got 1001']
    assert len(T.option_errors(-1, -1)) == 2


def schema_with(**versions):
    installed = T.Schema.installed()
    return T.Schema(dict(installed.versions, **versions), package='test')


def test_a_version_only_the_installed_schema_knows():
    """A newer instructlab-schema with a version 4: accepted when its schema uses known keywords."""
    v4 = copy.deepcopy(T.Schema.installed().versions[3])
    v4['version']['properties']['version']['const'] = 4
    schema = schema_with(**{'4': v4})
    assert T.check(S, SKILL.replace('version: 3', 'version: 4'), schema)['errors'] == []
    # unknown without it
    (error,) = T.check(S, SKILL.replace('version: 3', 'version: 4'), T.Schema.installed())['errors']
    assert error['msg'] == 'version 4 is not one the installed schema knows (instructlab-schema 0.4.2 knows 1, 2, 3)'
    # an older schema without version 3
    older = T.Schema(dict((k, v) for k, v in T.Schema.installed().versions.items() if k < 3), package='0.2.0')
    (error,) = T.check(S, SKILL, older)['errors']
    assert error['msg'] == 'version 3 is not one the installed schema knows (instructlab-schema 0.2.0 knows 1, 2)'


def test_a_schema_keyword_the_checks_do_not_know():
    v4 = copy.deepcopy(T.Schema.installed().versions[3])
    v4['compositional_skills']['properties']['created_by']['pattern'] = '^[a-z]+$'
    (error,) = T.check(S, SKILL.replace('version: 3', 'version: 4'), schema_with(**{'4': v4}))['errors']
    assert error['rule'] == 'unsupported' and 'keyword(s) pattern' in error['msg']
    assert '`ilab taxonomy diff` (ilab_check=true)' in error['msg']


def test_info_and_messages():
    result = T.check(S, SKILL, T.Schema.installed())
    assert result == {'errors': [], 'info': {'kind': 'skill', 'version': 3, 'words': 10, 'examples': 5}}
    (error,) = T.check(S, SKILL.replace('task_description: t\n', ''), T.Schema.installed())['errors']
    assert error == {'msg': 'missing key: task_description', 'line': 1, 'rule': 'instructlab'}
    assert T.format_error(error) == 'line 1: missing key: task_description'
    assert T.format_error({'msg': 'x', 'line': None}) == 'x'


def run_check_script(request, python=sys.executable):
    """What ilab_taxonomy runs with the venv's python: its script, the source on stdin."""
    request = dict(request, source=ilab_taxonomy.inspect.getsource(T))
    res = subprocess.run([python, '-c', ilab_taxonomy.CHECK_SCRIPT], input=json.dumps(request),
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


def test_the_venv_entry_point():
    reply = run_check_script(dict(files=[dict(path=S, text=SKILL), dict(path=S, text=SKILL.replace('3', '1', 1)),
                                         dict(path=S, text='a: &x 1\n')],
                                  options=dict(max_words=2300, min_examples=None, allow_legacy=False)))
    assert reply['schema'] == {'package': '0.4.2', 'versions': [1, 2, 3], 'newest': 3}
    ok, legacy, alias = reply['results']
    assert ok['errors'] == [] and ok['info']['version'] == 3
    assert [e['option'] for e in legacy['errors']] == ['allow_legacy']
    assert alias['errors'][0]['msg'].startswith('YAML anchor &x')


def test_the_venv_entry_point_without_the_schema_package(monkeypatch):
    def missing():
        raise ImportError("No module named 'instructlab'")
    monkeypatch.setattr(T.Schema, 'installed', staticmethod(missing))
    assert T.serve(dict(files=[], options={})) == {'error': (
        "cannot read the installed taxonomy schema (python package instructlab-schema, module instructlab.schema): "
        "ImportError: No module named 'instructlab'")}
