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
        if step == 'ilab taxonomy diff':
            stage = argv[argv.index('--taxonomy-path') + 1]
            for dirpath, _d, files in os.walk(stage):
                for f in files:
                    staged[os.path.relpath(os.path.join(dirpath, f), stage)] = open(os.path.join(dirpath, f)).read()
            if any('hint' in text for text in staged.values()):
                return 1, '', ('ERROR: %s/%s/qna.yaml:5:5 [seed_examples[0]] Unevaluated properties are not '
                               'allowed (\'hint\' was unexpected)\n' % (stage, SP))
        return None
    rec = Recorder(respond).install(monkeypatch)
    cfg = tmp_path / 'config.yaml'
    cfg.write_text('generate:\n  taxonomy_path: %s\n' % tax)
    return dict(tax=str(tax), rec=rec, staged=staged, venv=make_venv(tmp_path), cfg=str(cfg), tmp=tmp_path)


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
    # the installed InstructLab checks a staging copy, also in check mode
    (diff_call,) = env['rec'].calls
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


BAD = [
    ('invalid yaml', [{'path': SP, 'content': 'a: [b\n'}], 'invalid YAML'),
    ('tab', [{'path': SP, 'content': yaml.safe_dump(SKILL).replace('created_by:', 'created_by:\t')}],
     'contains a tab character'),
    ('no created_by', [{'path': SP, 'data': drop(SKILL, 'created_by')}], 'missing key: created_by'),
    ('no version', [{'path': SP, 'data': drop(SKILL, 'version')}], 'missing key: version'),
    ('no task_description', [{'path': SP, 'data': drop(SKILL, 'task_description')}], 'missing key: task_description'),
    ('few examples', [{'path': SP, 'data': with_examples(SKILL, SKILL['seed_examples'][:4])}],
     '4 seed examples, at least 5 are required'),
    ('words', [{'path': SP, 'data': with_examples(SKILL, [dict(e, context='word ' * 500) for e in SKILL['seed_examples']])}],
     r'seed examples have 2\d\d\d words, over the limit of 2300'),
    ('duplicate', [{'path': SP, 'data': with_examples(SKILL, SKILL['seed_examples'] + [
        {'question': '  write a HAIKU about the sea. ', 'answer': 'x'}])}], 'duplicate question in seed examples 1 and 6'),
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
    ('list', [{'path': SP, 'content': '- a\n'}], 'top level must be a mapping'),
    ('two sources', [{'path': SP, 'content': 'a: b', 'data': SKILL}], 'give exactly one of content, data, src'),
    ('all or nothing', [{'path': SP + '/ok', 'data': SKILL}, {'path': SP + '/bad', 'data': drop(SKILL, 'version')}],
     'bad/qna.yaml: missing key: version'),
]


@pytest.mark.parametrize('name,files,expect', BAD, ids=[b[0] for b in BAD])
def test_bad_input_fails_and_writes_nothing(env, monkeypatch, name, files, expect):
    before = tree_hash(env['tax'])
    r = run_module(monkeypatch, T.main, args(env, files))
    assert r.get('failed'), r
    import re
    assert re.search(expect, r['msg']), r['msg']
    assert 'nothing was written' in r['msg']
    bad = files[-1]['path']
    if name != 'traversal':
        assert (bad.rstrip('/') + '/qna.yaml') in r['msg']
    assert tree_hash(env['tax']) == before
    assert env['rec'].calls == []        # InstructLab is not even asked


def test_non_utf8_src(env, monkeypatch, tmp_path):
    p = tmp_path / 'latin1.yaml'
    p.write_bytes(b'version: 3\ncreated_by: caf\xe9\n')
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'src': str(p)}]))
    assert r['failed'] and SP + '/qna.yaml: not UTF-8 (byte 0xe9 at offset 26, line 2)' in r['msg']


def test_configurable_word_limit(env, monkeypatch):
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': SKILL}], max_words=10))
    assert r['failed'] and 'over the limit of 10' in r['msg']


def test_ilab_rejection_writes_nothing_and_names_the_file(env, monkeypatch):
    before = tree_hash(env['tax'])
    data = with_examples(SKILL, [dict(SKILL['seed_examples'][0], hint='x')] + SKILL['seed_examples'][1:])
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': data}]))
    assert r['failed'] and r['step'] == 'ilab taxonomy diff'
    assert 'InstructLab rejected the taxonomy files, nothing was written' in r['msg']
    assert 'ERROR: %s/qna.yaml:5:5' % SP in r['msg']        # staging dir stripped from the message
    assert tree_hash(env['tax']) == before


def test_skip_ilab_check(env, monkeypatch):
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': SKILL}], ilab_check=False))
    assert r['changed'] and env['rec'].calls == []


def test_taxonomy_path_default_from_config(env, monkeypatch):
    r = run_module(monkeypatch, T.main, args(env, [{'path': SP, 'data': SKILL}], ilab_check=False))
    assert r['taxonomy_path'] == env['tax']


def test_normalize():
    assert T.normalize('a:  \r\n  b: c\t\n\n\n') == 'a:\n  b: c\n'
    assert T.normalize('x') == 'x\n'
