# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ilab_taxonomy's own checks (module_utils/_taxonomy.py) agree with InstructLab's
validator, ``instructlab.schema.taxonomy.TaxonomyParser(schema_version=0)``
(instructlab-schema 0.4.2, the version InstructLab 0.26.1 pins), on every
qna.yaml in the history of github.com/instructlab/taxonomy: the corpus in
tests/unit/fixtures/taxonomy-upstream (see its README).

For each file: InstructLab's verdict (valid: no errors) against the module's
with its defaults. A disagreement is explained only by the list below; any
other fails the test. The numbers are printed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import logging
import os
import re
import shutil
import sys
import tarfile

import pytest

from ansible_collections.labforge.instructlab.plugins.module_utils import _taxonomy as T
from ansible_collections.labforge.instructlab.plugins.modules.ilab_taxonomy import normalize

# LABFORGE_TAXONOMY_CORPUS: another corpus made by tools/taxonomy-corpus.py
# (e.g. with --refs=--all, which adds the pull-request refs).
FIXTURES = os.environ.get('LABFORGE_TAXONOMY_CORPUS') or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'fixtures', 'taxonomy-upstream')

# This collection's rules, stricter than InstructLab ON PURPOSE: (option that
# relaxes it or None, pattern of its message, why). A file InstructLab accepts
# and the module refuses is explained only by these; the message must say
# "this collection's rule" and name the option (or say that none relaxes it),
# and with every option relaxed the module must accept the file unless a
# no-option rule refused it.
DELIBERATE = [
    # The legacy version 1 format (or no `version` key): not linted, one seed
    # example suffices. InstructLab still reads it; the taxonomy repository's CI
    # (scripts/check-yaml.py, newest schema version) refuses it for new files.
    # The upstream history holds ~200 such skills.
    ('allow_legacy', r"legacy version 1 format|version 1 is the legacy format", 'legacy version 1 format'),
    # The taxonomy README: "only add a maximum of around 2300 words to your question
    # and answer seed example pairs"; InstructLab does not count.
    ('max_words', r"seed examples have \d+ words, over the limit of \d+", 'the ~2,300-word guidance'),
    # Only when set above the schema's own minimum (unset by default).
    ('min_examples', r"fewer than min_examples=\d+", 'more seed examples than the schema asks'),
    # Alias bombs: anchors and aliases are refused outright.
    (None, r"YAML (anchor|alias) ", 'anchors and aliases'),
    # Version 1 files are not linted by InstructLab: a duplicate key there
    # silently loses a value.
    (None, r"duplicate key .*InstructLab does not check version 1 files", 'duplicate keys in version 1'),
    # InstructLab only warns about an empty file and skips it.
    (None, r"the file is empty", 'an empty file'),
]
# And one leniency: the module deploys the NORMALISED text (trailing whitespace
# stripped, LF line ends, one final newline). A file that InstructLab's yamllint
# refuses only for those is accepted; the test shows that InstructLab accepts
# the normalised text.
NORMALISED = 'normalised: InstructLab accepts the text the module deploys'

RELAXED = dict(max_words=T.MAX_WORDS_RANGE[1], min_examples=None, allow_legacy=True)


def _deliberate(error):
    """The DELIBERATE entry that explains a module error, or None."""
    if error.get('rule') != 'collection' or T.RULE not in error['msg']:
        return None
    for option, pattern, _why in DELIBERATE:
        if error.get('option') == option and re.search(pattern, error['msg']):
            named = (option in error['msg']) if option else ('no option relaxes it' in error['msg'])
            return (option, pattern) if named else None
    return None


def _label(reason):
    option, pattern = reason
    why = [d[2] for d in DELIBERATE if d[:2] == reason][0]
    return '%s (%s)' % (why, option and 'option %s' % option or 'no option')


class _Upstream(object):
    """InstructLab's validator, with its messages collected from its logger."""

    def __init__(self, strict=False):
        from instructlab.schema.taxonomy import TaxonomyParser  # pylint: disable=import-outside-toplevel
        self.parser = TaxonomyParser(schema_version=0, message_format='logging', yamllint_strict=strict)
        # yq only finds line numbers for messages; verdicts do not depend on it.
        self.parser.yq_available = False
        self.messages = []
        handler = logging.Handler()
        handler.emit = lambda record: self.messages.append(record.getMessage())
        self.log = logging.getLogger('instructlab.schema.taxonomy')
        self.log.addHandler(handler)
        self.log.propagate = False
        self.handler = handler

    def close(self):
        self.log.removeHandler(self.handler)
        self.log.propagate = True

    def verdict(self, path):
        from instructlab.schema.taxonomy import TaxonomyReadingException  # pylint: disable=import-outside-toplevel
        del self.messages[:]
        self.version = None
        try:
            taxonomy = self.parser.parse(path)
        except TaxonomyReadingException as e:
            return False, ['%s: %s' % (type(e.__cause__).__name__, str(e.__cause__).replace('\n', ' ')[:200])]
        self.version = taxonomy.version
        return taxonomy.errors == 0, list(self.messages)


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp('taxonomy-upstream')
    with tarfile.open(os.path.join(FIXTURES, 'corpus.tar.xz')) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        for m in members:
            assert not m.name.startswith('/') and '..' not in m.name.split('/')
            dest = root / m.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(tar.extractfile(m).read())
    with open(os.path.join(FIXTURES, 'MANIFEST.tsv')) as f:
        listed = len(f.read().splitlines()) - 1
    assert len(members) == listed > 0
    return root, sorted(m.name for m in members)


def test_module_agrees_with_instructlab_on_the_upstream_taxonomy(corpus, tmp_path, monkeypatch, capsys):
    from importlib.metadata import version  # pylint: disable=import-outside-toplevel
    assert version('instructlab-schema') == '0.4.2', 'the ground truth is the schema InstructLab 0.26.1 pins'
    # InstructLab runs yamllint (from version 2 on) from PATH; without it, it silently skips linting.
    monkeypatch.setenv('PATH', os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    assert shutil.which('yamllint'), 'yamllint (a dependency of instructlab-schema) must be on PATH'

    root, names = corpus
    schema = T.Schema.installed()
    upstream, upstream_strict = _Upstream(), _Upstream(strict=True)
    counts = collections.Counter()
    versions = collections.Counter()
    explained = collections.Counter()
    unexplained = []
    try:
        for name in names:
            rel = name.split('/', 1)[1]
            path = str(root / name)
            raw = (root / name).read_bytes()
            up_ok, up_msgs = upstream.verdict(path)
            try:
                text = normalize(raw.decode('utf-8'))
            except UnicodeDecodeError:       # the module refuses it before checking (load_entry)
                strict = relaxed = dict(errors=[dict(msg='not UTF-8', rule='instructlab')], info={})
            else:
                strict = T.check(rel, text, schema)
                relaxed = T.check(rel, text, schema, **RELAXED)
            info = strict['info']
            versions[(rel.split('/')[0], upstream.version)] += 1
            mod_ok, rel_ok = not strict['errors'], not relaxed['errors']
            counts['instructlab accepts' if up_ok else 'instructlab refuses'] += 1
            counts['module accepts' if mod_ok else 'module refuses'] += 1
            if (info.get('version') or 0) > 1 and up_ok and not upstream_strict.verdict(path)[0]:
                counts['ilab taxonomy diff (yamllint warnings as errors) refuses'] += 1

            why = set()
            problem = None
            # 1. InstructLab's own rules: the module with every option relaxed.
            if up_ok and not rel_ok:
                reasons = [_deliberate(e) for e in relaxed['errors']]
                if all(reasons):
                    why.update(reasons)
                else:
                    problem = 'InstructLab accepts it, the module (options relaxed) refuses it'
            elif rel_ok and not up_ok:
                norm = tmp_path / 'normalised' / rel
                norm.parent.mkdir(parents=True, exist_ok=True)
                norm.write_text(text, encoding='utf-8')
                if upstream.verdict(str(norm))[0]:
                    why.add(NORMALISED)
                else:
                    problem = 'InstructLab refuses it (also normalised), the module (options relaxed) accepts it'
            # 2. This collection's rules: what the defaults add to the relaxed check.
            if rel_ok and not mod_ok:
                reasons = [_deliberate(e) for e in strict['errors']]
                if all(r and r[0] for r in reasons):
                    why.update(reasons)
                else:
                    problem = 'refused by the defaults for a reason that is not a deliberate rule'
            if problem:
                unexplained.append((name, problem, up_msgs[:3], [e['msg'] for e in relaxed['errors'] or strict['errors']][:3]))
            if up_ok == mod_ok:
                counts['agreements'] += 1
            else:
                counts['disagreements'] += 1
                for reason in why:
                    explained[reason if reason == NORMALISED else _label(reason)] += 1
    finally:
        upstream.close()
        upstream_strict.close()

    with capsys.disabled():
        print('\n[taxonomy agreement] %d upstream qna.yaml files; by the version InstructLab reads (None: '
              'unreadable YAML, 0: not a mapping): %s' % (len(names), ', '.join(
                  '%s v%s: %d' % (k, v, n) for (k, v), n in sorted(versions.items(), key=str))))
        print('[taxonomy agreement] InstructLab TaxonomyParser(schema_version=0): %d accept, %d refuse; '
              'module (defaults): %d accept, %d refuse'
              % (counts['instructlab accepts'], counts['instructlab refuses'], counts['module accepts'],
                 counts['module refuses']))
        print('[taxonomy agreement] agreements %d, disagreements %d, unexplained %d'
              % (counts['agreements'], counts['disagreements'], len(unexplained)))
        for reason, n in sorted(explained.items()):
            print('[taxonomy agreement]   explained by %s: %d' % (reason, n))
        print('[taxonomy agreement] of the files InstructLab accepts, `ilab taxonomy diff` (yamllint warnings as '
              'errors, the module\'s ilab_check step) refuses %d more'
              % counts['ilab taxonomy diff (yamllint warnings as errors) refuses'])
        for item in unexplained[:20]:
            print('[taxonomy agreement] UNEXPLAINED %s: %s\n    InstructLab: %s\n    module: %s' % item)
    assert not unexplained, '%d unexplained disagreements (listed above)' % len(unexplained)
    assert counts['agreements'] + counts['disagreements'] == len(names)


@pytest.mark.parametrize('option,pattern,why', list(DELIBERATE), ids=[d[2] for d in DELIBERATE])
def test_each_deliberate_rule_says_so(option, pattern, why):
    """Every rule in DELIBERATE exists and produces its message (the corpus need
    not exercise all of them)."""
    schema = T.Schema.installed()
    good = ('version: 3\ncreated_by: me\ntask_description: t\nseed_examples:\n'
            + ''.join('  - question: q%d\n    answer: a%d\n' % (i, i) for i in range(5)))
    cases = {
        'allow_legacy': (good.replace('version: 3', 'version: 1'), {}),
        'max_words': (good, dict(max_words=5)),
        'min_examples': (good, dict(min_examples=6)),
        'anchors and aliases': (good.replace('q0', '&x q0').replace('a0', '*x'), {}),
        'duplicate keys in version 1': (good.replace('version: 3\n', 'created_by: you\n'), dict(allow_legacy=True)),
        'an empty file': ('', {}),
    }
    text, opts = cases[option or why]
    errors = T.check('compositional_skills/x/qna.yaml', text, schema, **opts)['errors']
    assert len(errors) == 1 and _deliberate(errors[0]) == (option, pattern), errors


def _skill(version='version: 3\n', task='Do it.', n=5, extra='', example=None):
    example = example or '  - question: Question %d?\n    answer: Answer %d.\n'
    return ('%screated_by: me\ntask_description: %s\n%sseed_examples:\n' % (version, task, extra)
            + ''.join(example % ((i,) * example.count('%d')) for i in range(n)))


def _knowledge(version='version: 3\n', qas=3, patterns='["*.md"]', document_extra='', qa_extra=''):
    return ('%screated_by: me\ndomain: d\ndocument_outline: o\ndocument:\n  repo: r\n  commit: c\n'
            '  patterns: %s\n%sseed_examples:\n' % (version, patterns, document_extra)
            + ''.join('  - context: Context %d.\n    questions_and_answers:\n' % i
                      + ''.join('      - question: Q%d.%d?\n        answer: A.\n%s' % (i, j, qa_extra)
                                for j in range(qas)) for i in range(5)))


S, K = 'compositional_skills/x/qna.yaml', 'knowledge/x/qna.yaml'
# (name, path, text, what the module says with every option relaxed: 'agree'
# with InstructLab, or the DELIBERATE rule that explains the difference)
EDGE_CASES = [
    ('version 3.0 is version 3', S, _skill('version: 3.0\n'), 'agree'),
    ('version "3" is a string', S, _skill('version: "3"\n'), 'agree'),
    ('version true', S, _skill('version: true\n'), 'agree'),
    ('version 4', S, _skill('version: 4\n'), 'agree'),
    ('version 0', S, _skill('version: 0\n'), 'agree'),
    ('version null', S, _skill('version:\n'), 'agree'),
    ('v1: empty task_description, one example', S, _skill('', task='""', n=1), 'agree'),
    ('v1: identical examples', S, _skill('', example='  - question: Same?\n    answer: Same.\n'), 'agree'),
    ('v3: empty task_description', S, _skill(task='""'), 'agree'),
    ('v3: identical examples', S, _skill(example='  - question: Same?\n    answer: Same.\n'), 'agree'),
    ('v3: same question, other contexts', S,
     _skill(example='  - context: Context %d.\n    question: Same?\n    answer: Answer %d.\n'), 'agree'),
    ('v3: empty answer', S, _skill(example='  - question: Q%d?\n    answer: ""\n'), 'agree'),
    ('v3: null context', S, _skill(example='  - question: Q%d?\n    answer: A%d.\n    context:\n'), 'agree'),
    ('v3: created_by is a date', S, _skill().replace('created_by: me', 'created_by: 2024-01-01'), 'agree'),
    ('v3: created_by is binary', S, _skill().replace('created_by: me', 'created_by: !!binary aGk='), 'agree'),
    ('v3: created_by is a number', S, _skill().replace('created_by: me', 'created_by: 123'), 'agree'),
    ('v3: seed_examples is a mapping', S, 'version: 3\ncreated_by: me\ntask_description: t\nseed_examples: {}\n',
     'agree'),
    ('v3: unknown top-level key', S, _skill(extra='hint: x\n'), 'agree'),
    ('v3: flow style', S, '{version: 3, created_by: me, task_description: t, seed_examples: [%s]}\n'
     % ', '.join('{question: q%d, answer: a}' % i for i in range(5)), 'agree'),
    ('v3: merge key', S, _skill().replace('created_by: me\n', '<<: {created_by: me}\n'), 'agree'),
    ('v3: tab inside a quoted string', S, _skill().replace('task_description: Do it.', 'task_description: "a\tb"'),
     'agree'),
    ('v3: tab indentation', S, _skill().replace('  - question: Question 1?', '\t- question: Question 1?'), 'agree'),
    ('v3: duplicate key', S, _skill().replace('created_by: me\n', 'created_by: me\ncreated_by: you\n'), 'agree'),
    ('two documents', S, _skill() + '---\na: b\n', 'agree'),
    ('top level is a list', S, '- a\n- b\n', 'agree'),
    ('top level is a string', S, 'hello\n', 'agree'),
    ('python tag', S, _skill().replace('created_by: me', 'created_by: !!python/name:os.system'), 'agree'),
    ('unicode', S, _skill().replace('created_by: me', 'created_by: "\u00e9l\u00e8ve \U0001f600"'), 'agree'),
    ('knowledge v3', K, _knowledge(), 'agree'),
    ('knowledge v3: extra key in a question-and-answer', K, _knowledge(qa_extra='        hint: x\n'), 'agree'),
    ('knowledge v3: extra key in document', K, _knowledge(document_extra='  branch: main\n'), 'agree'),
    ('knowledge v3: duplicate patterns', K, _knowledge(patterns='["*.md", "*.md"]'), 'agree'),
    ('knowledge v3: two questions', K, _knowledge(qas=2), 'agree'),
    ('knowledge v2', K, _knowledge('version: 2\n'), 'agree'),
    ('knowledge without version', K, _knowledge(''), 'agree'),
    ('anchors', S, _skill().replace('Answer 1.', '&a Answer 1.').replace('Answer 2.', '*a'), 'anchors and aliases'),
    ('v1: duplicate key', S, _skill('').replace('created_by: me\n', 'created_by: me\ncreated_by: you\n'),
     'duplicate keys in version 1'),
    ('empty file', S, '', 'an empty file'),
    ('empty mapping', S, '{}\n', 'an empty file'),
]


@pytest.mark.parametrize('name,rel,text,expect', EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_edge_cases_agree_with_instructlab(tmp_path, monkeypatch, name, rel, text, expect):
    """Crafted files the upstream history lacks: InstructLab's verdict against the
    module's with every option relaxed."""
    monkeypatch.setenv('PATH', os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
    path = tmp_path / rel
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding='utf-8')
    upstream = _Upstream()
    try:
        up_ok, up_msgs = upstream.verdict(str(path))
    finally:
        upstream.close()
    errors = T.check(rel, normalize(text), T.Schema.installed(), **RELAXED)['errors']
    if expect == 'agree':
        assert up_ok == (not errors), (up_msgs, errors)
        assert all(e['rule'] == 'instructlab' for e in errors), errors
    else:
        assert up_ok and errors, (up_msgs, errors)
        assert [_label(_deliberate(e)) for e in errors] == ['%s (no option)' % expect], errors
