# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.ilab_taxonomy: normalisation, own
validation (each bad input names the file and the problem, nothing written),
the `ilab taxonomy diff` staging check, check mode, diff and idempotence."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import os
import re
import subprocess
import sys

import pytest
import yaml

from ansible_collections.labforge.instructlab.plugins.modules import ilab_taxonomy as T

from ilab_testlib import Recorder, run_module, make_venv

SKILL = {
    'version': 3,
    'created_by': 'labforge',
    'task_description': 'Write a haiku.',
    'seed_examples': [{'question': 'Write a haiku about %s.' % t, 'answer': 'line one\nline two\nline three\n'}
                      for t in ('the sea', 'autumn', 'a city', 'snow', 'a cat')],
}
KNOWLEDGE = {
    'version': 3, 'created_by': 'labforge', 'domain': 'testing', 'document_outline': 'Facts.',
    'document': {'repo': '/srv/docs', 'commit': 'abc123', 'patterns': ['*.md']},
    'seed_examples': [{'context': 'Part %d of the facts.' % i,
                       'questions_and_answers': [{'question': 'Part %d fact %d?' % (i, j), 'answer': 'Fact %d.' % j}
                                                 for j in range(3)]} for i in range(5)],
}
SP = 'compositional_skills/writing/haiku'


def tree_hash(root):
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            h.update(p.encode() + b'\0' + open(p, 'rb').read())
    return h.hexdigest()


@pytest.fixture
def env(tmp_path, monkeypatch):
    tax = tmp_path / 'taxonomy'
    (tax / 'knowledge').mkdir(parents=True)
    (tax / 'knowledge' / 'existing' / 'qna.yaml').parent.mkdir()
    (tax / 'knowledge' / 'existing' / 'qna.yaml').write_text('untouched: true\n')
    staged = {}

    def respond(step, argv, call):
        if step == 'check taxonomy files':
            # the module's own checks, for real: the script with this python (PyYAML
            # and instructlab-schema, as in the InstructLab venv)
            assert argv[0] == env_venv[0] + '/bin/python' and argv[1] == '-c'
            res = subprocess.run([sys.executable] + argv[1:], input=call['data'], capture_output=True, text=True,
                                 check=False)
            return res.returncode, res.stdout, res.stderr
        if step == 'ilab taxonomy diff':
            stage = argv[argv.index('--taxonomy-path') + 1]
            for dirpath, _d, files in os.walk(stage):
                for f in files:
                    staged[os.path.relpath(os.path.join(dirpath, f), stage)] = open(os.path.join(dirpath, f)).read()
            if any('ilab-rejects-this' in text for text in staged.values()):
                return 1, '', ('ERROR: %s/%s/qna.yaml:5:5 wrong indentation: expected 4 but found 6 '
                               '(indentation)\n' % (stage, SP))
        return None
    rec = Recorder(respond).install(monkeypatch)
    cfg = tmp_path / 'config.yaml'
    cfg.write_text('generate:\n  taxonomy_path: %s\n' % tax)
    env_venv = [make_venv(tmp_path)]
    return dict(tax=str(tax), rec=rec, staged=staged, venv=env_venv[0], cfg=str(cfg), tmp=tmp_path)


def args(env, files, **kw):
    a = dict(venv=env['venv'], config_path=env['cfg'], files=files)
    a.update(kw)
    return a


def test_deploy_normalises_checks_with_ilab_and_is_idempotent(env, monkeypatch):
    text = yaml.safe_dump(SKILL, sort_keys=False).replace('Write a haiku.', 'Write a haiku.   ') + '\n\n\n'
    text = text.replace('\n', '\r\n')
    files = [{'path': SP, 'content': text}, {'path': 'knowledge/testing/facts/qna.yaml', 'data': KNOWLEDGE}]
    chk = run_module(monkeypatch, T.main, args(env, files), check_mode=True, diff=True)
    assert chk['changed'] and chk['changed_files'] == [SP + '/qna.yaml', 'knowledge/testing/facts/qna.yaml']
    assert not os.path.exists(os.path.join(env['tax'], SP))
    assert len(chk['diff']) == 2 and chk['diff'][0]['before'] == ''
    # the own checks run with the venv's python, then the installed InstructLab
    # checks a staging copy, both also in check mode
    check_call, diff_call = env['rec'].calls
    assert check_call['step'] == 'check taxonomy files' and not check_call['changes_state']
    assert chk['schema'] == {'package': '0.4.2', 'versions': [1, 2, 3], 'newest': 3}
    assert [(f['kind'], f['version'], f['examples']) for f in chk['files']] == [('skill', 3, 5), ('knowledge', 3, 5)]
    stage = diff_call['argv'][diff_call['argv'].index('--taxonomy-path') + 1]
    assert diff_call['argv'] == [env['venv'] + '/bin/ilab', '--config', env['cfg'], 'taxonomy', 'diff',
                                 '--taxonomy-path', stage, '--taxonomy-base', 'empty']
    assert not stage.startswith(env['tax']) and not os.path.exists(stage)
    assert not diff_call['changes_state']
    assert sorted(env['staged']) == ['compositional_skills/writing/haiku/qna.yaml', 'knowledge/testing/facts/qna.yaml']

    r = run_module(monkeypatch, T.main, args(env, files))
    assert r['changed'] and r['taxonomy_path'] == env['tax']
    written = open(os.path.join(env['tax'], SP, 'qna.yaml')).read()
    assert '\r' not in written and ' \n' not in written and written.endswith('three\n') is False
    assert written.endswith('\n') and not written.endswith('\n\n')
    assert yaml.safe_load(written) == SKILL
    kn = yaml.safe_load(open(os.path.join(env['tax'], 'knowledge/testing/facts/qna.yaml')))
    assert kn == KNOWLEDGE
    assert r['word_counts'][SP + '/qna.yaml'] == sum(len(e['question'].split()) + len(e['answer'].split())
                                                     for e in SKILL['seed_examples'])
    assert [f['kind'] for f in r['files']] == ['skill', 'knowledge']
    again = run_module(monkeypatch, T.main, args(env, files), diff=True)
    assert not again['changed'] and again['changed_files'] == [] and 'diff' not in again
    assert open(os.path.join(env['tax'], 'knowledge/existing/qna.yaml')).read() == 'untouched: true\n'


def drop(d, key):
    d = copy.deepcopy(d)
    del d[key]
    return d


def with_examples(d, examples):
    d = copy.deepcopy(d)
    d['seed_examples'] = examples
    return d


def yaml_text(d):
    return yaml.safe_dump(d, sort_keys=False)


GROUNDED = dict(SKILL, seed_examples=[
    {'context': 'Meeting notes, %s: the team agreed to ship on %s.' % (w, d),
     'question': 'When does the team ship?', 'answer': 'On %s.' % d}
    for w, d in (('Monday', 'Friday'), ('Tuesday', 'Thursday'), ('March', 'the 3rd'), ('April', 'the 9th'),
                 ('May', 'the 1st'))])

# Duplicate keys, a list where a string belongs, a mapping given as content.
DUP_KEY = yaml_text(SKILL).replace('created_by: labforge\n', 'created_by: labforge\ncreated_by: someone\n')
LIST_CONTEXT = with_examples(SKILL, [dict(SKILL['seed_examples'][0], context=['a', 'list'])] + SKILL['seed_examples'][1:])
INT_QUESTION = with_examples(SKILL, SKILL['seed_examples'][:1] + [dict(SKILL['seed_examples'][1], question=42)]
                             + SKILL['seed_examples'][2:])
# A (small) alias bomb: 6 levels of 9 aliases; the classic billion laughs is 9 levels.
BOMB = ('bomb:\n  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n'
        + ''.join('  - &a%d [%s]\n' % (i, ', '.join(['*a%d' % (i - 1)] * 9)) for i in range(1, 6))
        + yaml_text(with_examples(SKILL, SKILL['seed_examples'][1:] + [{'question': 'Q?', 'answer': 'A.'}]))
        .replace("- question: Q?\n  answer: A.\n", "- question: Q?\n  answer: A.\n  context: *a5\n"))

BAD = [
    ('invalid yaml', [{'path': SP, 'content': 'a: [b\n'}], 'invalid YAML'),
    ('tab', [{'path': SP, 'content': yaml.safe_dump(SKILL).replace('created_by:', 'created_by:\t')}],
     r"line \d+: invalid YAML: .*tab character cannot indent or separate YAML"),
    ('no created_by', [{'path': SP, 'data': drop(SKILL, 'created_by')}], 'missing key: created_by'),
    ('no version', [{'path': SP, 'data': drop(SKILL, 'version')}],
     r"line 1: no version key: InstructLab reads the file as the legacy version 1 format \(.*\): InstructLab still "
     r"reads it, but this collection's rule requires version 2 or later.*; allow_legacy=true relaxes it"),
    ('legacy version', [{'path': SP, 'data': dict(SKILL, version=1)}],
     "line 1: version 1 is the legacy format .*this collection's rule requires version 2 or later.*allow_legacy=true"),
    ('no task_description', [{'path': SP, 'data': drop(SKILL, 'task_description')}], 'missing key: task_description'),
    ('few examples', [{'path': SP, 'data': with_examples(SKILL, SKILL['seed_examples'][:4])}],
     '4 seed examples, at least 5 are required'),
    ('words', [{'path': SP, 'data': with_examples(SKILL, [dict(e, context='word ' * 500) for e in SKILL['seed_examples']])}],
     r"seed examples have 2\d\d\d words, over the limit of 2300 \(this collection's rule.*raise max_words to relax"),
    ('identical examples', [{'path': SP, 'data': with_examples(SKILL, SKILL['seed_examples'] + SKILL['seed_examples'][:1])}],
     'seed examples 1 and 6 are identical'),
    ('knowledge in skills', [{'path': SP, 'data': KNOWLEDGE}], 'must live under knowledge/'),
    ('skill in knowledge', [{'path': 'knowledge/x', 'data': SKILL}], 'must live under compositional_skills/'),
    ('other folder', [{'path': 'foo/x', 'data': SKILL}], 'must start with knowledge/ or compositional_skills/'),
    ('traversal', [{'path': 'knowledge/../../x', 'data': KNOWLEDGE}], 'not a relative taxonomy path'),
    ('no document.patterns', [{'path': 'knowledge/x', 'data': dict(KNOWLEDGE, document={'repo': 'r', 'commit': 'c'})}],
     'missing key: document.patterns'),
    ('two QnA', [{'path': 'knowledge/x', 'data': with_examples(KNOWLEDGE, [dict(
        KNOWLEDGE['seed_examples'][0], questions_and_answers=KNOWLEDGE['seed_examples'][0]['questions_and_answers'][:2])]
        + KNOWLEDGE['seed_examples'][1:])}], 'seed example 1 needs at least 3 questions_and_answers'),
    ('no domain', [{'path': 'knowledge/x', 'data': drop(dict(KNOWLEDGE), 'domain')}], 'missing key: domain'),
    ('knowledge version 2', [{'path': 'knowledge/x', 'data': dict(KNOWLEDGE, version=2)}],
     'Version 2 is not supported for knowledge. Minimum supported version is 3.'),
    ('list', [{'path': SP, 'content': '- a\n'}], 'top level must be a mapping'),
    ('empty', [{'path': SP, 'content': '\n'}], "the file is empty: .*this collection's rule"),
    ('unknown key', [{'path': SP, 'data': with_examples(SKILL, [dict(SKILL['seed_examples'][0], hint='x')]
                                                        + SKILL['seed_examples'][1:])}],
     "line 10: seed example 1: unknown key 'hint' \\(allowed: answer, context, question\\)"),
    ('two sources', [{'path': SP, 'content': 'a: b', 'data': SKILL}], 'give exactly one of content, data, src'),
    ('all or nothing', [{'path': SP + '/ok', 'data': SKILL}, {'path': SP + '/bad', 'data': drop(SKILL, 'created_by')}],
     'bad/qna.yaml: line 1: missing key: created_by'),
    # issue 14, item 5: each of these was accepted or misreported by the old checks
    ('alias bomb', [{'path': SP, 'content': BOMB}],
     r"line \d+: YAML anchor &a0: anchors and aliases are refused \(this collection's rule, against alias bombs"),
    ('duplicate key', [{'path': SP, 'content': DUP_KEY}],
     r"line 3: duplicate key 'created_by' \(lines 2 and 3\)"),
    ('list where a string belongs', [{'path': SP, 'data': dict(SKILL, created_by=['a', 'b'])}],
     'line 2: created_by must be a string, got a list'),
    ('list context', [{'path': SP, 'data': LIST_CONTEXT}],
     r'line \d+: seed example 1, context must be a string, got a list'),
    ('integer question', [{'path': SP, 'data': INT_QUESTION}],
     r'line \d+: seed example 2, question must be a string, got an integer'),
    ('mapping as content', [{'path': SP, 'content': SKILL}],
     r'files\[1\]\.content must be a string, got dict \(use data: for YAML data\)'),
    ('unknown version', [{'path': SP, 'data': dict(SKILL, version=4)}],
     r'line 1: version 4 is not one the installed schema knows \(instructlab-schema 0\.4\.2 knows 1, 2, 3\)'),
    ('version 0', [{'path': SP, 'data': dict(SKILL, version=0)}], 'version 0 is not one the installed schema knows'),
    ('boolean version', [{'path': SP, 'data': dict(SKILL, version=True)}],
     'line 1: version must be an integer, got a boolean'),
    ('string version', [{'path': SP, 'data': dict(SKILL, version='3')}],
     r'line 1: version must be an integer, got a string \("3"\)'),
]


@pytest.mark.parametrize('name,files,expect', BAD, ids=[b[0] for b in BAD])
def test_bad_input_fails_and_writes_nothing(env, monkeypatch, name, files, expect):
    before = tree_hash(env['tax'])
    r = run_module(monkeypatch, T.main, args(env, files))
    assert r.get('failed'), r
    assert re.search(expect, r['msg']), r['msg']
    assert 'nothing was written' in r['msg']
    bad = files[-1]['path']
    if name not in ('traversal', 'mapping as content'):
        assert (bad.rstrip('/') + '/qna.yaml') in r['msg']
    assert tree_hash(env['tax']) == before
    assert 'ilab taxonomy diff' not in env['rec'].steps()      # InstructLab is not even asked


@pytest.mark.parametrize('opts,expect', [
    (dict(max_words=0), 'max_words must be between 1 and 1000000 (words of seed examples per file), got 0'),
    (dict(max_words=-5), 'max_words must be between 1 and 1000000'),
    (dict(max_words=10 ** 7), 'max_words must be between 1 and 1000000'),
    (dict(min_examples=0), 'min_examples must be between 1 and 1000 (seed examples per file), got 0'),
    (dict(min_examples=-1), 'min_examples must be between 1 and 1000'),
    (dict(min_examples=5000), 'min_examples must be between 1 and 1000'),
], ids=['max_words=0', 'max_words<0', 'max_words huge', 'min_examples=0', 'min_examples<0', 'min_examples huge'])
def test_option_bounds(env, monkeypatch, opts, expect):
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': SKILL}], **opts))
    assert r.get('failed') and r['msg'].startswith(expect), r
    assert env['rec'].calls == []                                 # refused before anything runs


def test_grounded_skill_same_question_over_different_contexts(env, monkeypatch):
    """Valid for InstructLab (the upstream taxonomy's own grounded skills do it)."""
    r = run_module(monkeypatch, T.main, args(env, [{'path': 'compositional_skills/grounded/x', 'data': GROUNDED}]))
    assert not r.get('failed'), r['msg']
    assert r['changed']


def test_min_examples_above_the_schema(env, monkeypatch):
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': SKILL}], min_examples=6))
    assert r['failed'] and re.search(r"5 seed examples, fewer than min_examples=6 \(this collection's rule; "
                                     r"InstructLab requires 5\): lower min_examples to relax it", r['msg']), r['msg']
    assert not run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': SKILL}], min_examples=5)).get('failed')


def test_allow_legacy_accepts_what_instructlab_reads(env, monkeypatch):
    """A version 1 skill without `version` and with 3 examples: InstructLab reads it."""
    legacy = with_examples(drop(SKILL, 'version'), SKILL['seed_examples'][:3])
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': legacy}]))
    assert r['failed'] and 'allow_legacy=true relaxes it' in r['msg']
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': legacy}], allow_legacy=True))
    assert not r.get('failed'), r['msg']
    assert r['files'][0]['version'] == 1 and r['files'][0]['examples'] == 3


def test_non_utf8_src(env, monkeypatch, tmp_path):
    p = tmp_path / 'latin1.yaml'
    p.write_bytes(b'version: 3\ncreated_by: caf\xe9\n')
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'src': str(p)}]))
    assert r['failed'] and SP + '/qna.yaml: not UTF-8 (byte 0xe9 at offset 26, line 2)' in r['msg']


def test_configurable_word_limit(env, monkeypatch):
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': SKILL}], max_words=10))
    assert r['failed'] and 'over the limit of 10' in r['msg']
    assert r['word_counts'] == {SP + '/qna.yaml': sum(len(e['question'].split()) + len(e['answer'].split())
                                                      for e in SKILL['seed_examples'])}


def test_ilab_rejection_writes_nothing_and_names_the_file(env, monkeypatch):
    before = tree_hash(env['tax'])
    # passes the own checks; the (fake) ilab refuses it, as its yamllint warnings would
    data = with_examples(SKILL, [dict(SKILL['seed_examples'][0], answer='ilab-rejects-this')] + SKILL['seed_examples'][1:])
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': data}]))
    assert r['failed'] and r['step'] == 'ilab taxonomy diff'
    assert 'InstructLab rejected the taxonomy files, nothing was written' in r['msg']
    assert 'ERROR: %s/qna.yaml:5:5' % SP in r['msg']        # staging dir stripped from the message
    assert tree_hash(env['tax']) == before


def test_skip_ilab_check(env, monkeypatch):
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': SKILL}], ilab_check=False))
    assert r['changed'] and env['rec'].steps() == ['check taxonomy files']


def test_taxonomy_path_default_from_config(env, monkeypatch):
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': SKILL}], ilab_check=False))
    assert r['taxonomy_path'] == env['tax']


def test_normalize():
    assert T.normalize('a:  \r\n  b: c\t\n\n\n') == 'a:\n  b: c\n'
    assert T.normalize('x') == 'x\n'


def test_the_collections_own_taxonomy_files_pass(env, monkeypatch):
    """The example and local inventories' files (one skill of version 2)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
    files = []
    for inv in ('example', 'local'):
        base = os.path.join(root, 'inventories', inv, 'files', 'taxonomy')
        for dirpath, _dirs, names in os.walk(base):
            if 'qna.yaml' in names:
                files.append({'path': os.path.relpath(dirpath, base),
                              'content': open(os.path.join(dirpath, 'qna.yaml')).read()})
        r = run_module(monkeypatch, T.main, args(env, files, ilab_check=False), check_mode=True)
        assert not r.get('failed'), r['msg']
        files = []


def test_validation_is_cached_by_fingerprint(env, monkeypatch, private_state_root):
    """A rerun with the same files, options and InstructLab starts neither the venv's python
    nor ilab; a changed file, option or InstructLab release validates again."""
    files = [{'path': SP, 'data': SKILL}]
    first = run_module(monkeypatch, T.main, args(env, files), check_mode=True)
    assert env['rec'].steps() == ['check taxonomy files', 'ilab taxonomy diff']
    env['rec'].calls[:] = []
    # check mode remembers nothing
    second = run_module(monkeypatch, T.main, args(env, files))
    assert env['rec'].steps() == ['check taxonomy files', 'ilab taxonomy diff']
    records = [os.path.join(d, f) for d, _s, fs in os.walk(private_state_root) for f in fs if 'taxonomy' in d]
    assert len(records) == 1 and oct(os.stat(records[0]).st_mode & 0o777) == '0o600'
    env['rec'].calls[:] = []
    again = run_module(monkeypatch, T.main, args(env, files), check_mode=True)
    assert env['rec'].steps() == []              # neither the venv's python nor ilab started
    assert again['validation'] == 'cached' and first['validation'] == second['validation'] == 'checked' and not again['changed']
    assert again['schema'] == first['schema'] and again['word_counts'] == first['word_counts']
    assert [f['kind'] for f in again['files']] == ['skill'] and again['log_path'] == first['log_path']
    # a changed file
    edited = dict(SKILL, task_description='Write a short haiku.')
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': edited}]))
    assert r['validation'] == 'checked' and env['rec'].steps() == ['check taxonomy files', 'ilab taxonomy diff']
    env['rec'].calls[:] = []
    # a changed option
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': edited}], max_words=2000))
    assert r['validation'] == 'checked' and env['rec'].steps() == ['check taxonomy files', 'ilab taxonomy diff']
    env['rec'].calls[:] = []
    # another InstructLab release in the venv
    site = os.path.join(env['venv'], 'lib', 'python3.11', 'site-packages', 'instructlab-0.26.2.dist-info')
    os.makedirs(site)
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': edited}], max_words=2000))
    assert r['validation'] == 'checked' and env['rec'].steps() == ['check taxonomy files', 'ilab taxonomy diff']
    env['rec'].calls[:] = []
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': edited}], max_words=2000))
    assert r['validation'] == 'cached' and env['rec'].steps() == []


def test_a_failed_validation_is_not_remembered(env, monkeypatch):
    data = with_examples(SKILL, [dict(SKILL['seed_examples'][0], answer='ilab-rejects-this')] + SKILL['seed_examples'][1:])
    for attempt in (1, 2):
        r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': data}]))
        assert r['failed'] and r['step'] == 'ilab taxonomy diff', attempt
    assert env['rec'].steps().count('ilab taxonomy diff') == 2
