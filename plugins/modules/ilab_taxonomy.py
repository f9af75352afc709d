#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ilab_taxonomy
short_description: Deploy validated knowledge and skill qna.yaml files into an InstructLab taxonomy
version_added: 0.1.0
description:
  - Places knowledge and compositional skill C(qna.yaml) files into the taxonomy tree, at
    C(TAXONOMY/<path>/qna.yaml).
  - Normalises each file as people do by hand (trailing whitespace stripped, CRLF to LF, exactly
    one final newline).
  - Validates B(every) file before touching anything. Own checks, reported with the file and the
    problem - UTF-8, YAML parses to a mapping, no tab characters, C(version), C(created_by),
    C(task_description) (skills) or C(domain) and C(document) with C(repo), C(commit) and
    C(patterns) (knowledge), seed example count and shape, duplicate questions, the path matching
    the kind of file (C(knowledge/...) or C(compositional_skills/...)) and the seed-example word
    limit. Then the installed InstructLab checks a staging copy with
    C(ilab taxonomy diff --taxonomy-base empty) (its JSON schema and yamllint rules).
  - All-or-nothing. When one file is bad, no file is written and the taxonomy tree is left
    byte-identical.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.ilab
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Validation (including C(ilab taxonomy diff) on a staging copy) runs in check mode too.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  idempotent:
    description: When run twice in a row, the second run reports no change.
    support: full
options:
  taxonomy_path:
    description:
      - The taxonomy tree. Defaults to C(generate.taxonomy_path) of the configuration, else the
        user's C(~/.local/share/instructlab/taxonomy).
    type: path
  files:
    description: The qna.yaml files to deploy.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description:
          - Directory of the file inside the taxonomy, for example
            V(compositional_skills/writing/freeform/haiku) or V(knowledge/science/astronomy/moons)
            (a trailing V(/qna.yaml) is accepted).
        type: str
        required: true
      content:
        description:
          - The file's text. For a file on the controller use
            C("{{ lookup('ansible.builtin.file', 'qna.yaml') }}").
        type: str
      data:
        description: The file's content as YAML data (written as YAML, multi-line strings as blocks).
        type: dict
      src:
        description: A file on the managed host.
        type: path
  max_words:
    description:
      - Upper limit of the words (whitespace-separated) in the seed examples of one file (contexts,
        questions and answers). InstructLab's generators work on a few thousand tokens; about 2,300
        words of seed examples is the practical limit.
    type: int
    default: 2300
  min_examples:
    description:
      - Least seed examples per file. Defaults to what the installed schema requires (5).
    type: int
    default: 5
  ilab_check:
    description:
      - Run C(ilab taxonomy diff) on a staging copy. Knowledge files make InstructLab fetch their
        C(document.repo), which needs that repository to be reachable (a local git path works
        offline).
    type: bool
    default: true
requirements:
  - InstructLab installed in O(venv) and initialised (M(labforge.instructlab.ilab_config)).
'''

EXAMPLES = r'''
- name: Deploy a skill from the controller and a knowledge file from data
  labforge.instructlab.ilab_taxonomy:
    files:
      - path: compositional_skills/writing/freeform/haiku
        content: "{{ lookup('ansible.builtin.file', 'files/haiku/qna.yaml') }}"
      - path: knowledge/science/astronomy/moons
        data: "{{ moons_qna }}"
  become: true
'''

RETURN = r'''
taxonomy_path:
  description: The taxonomy tree.
  returned: always
  type: str
files:
  description: One entry per file, in the order given.
  returned: always
  type: list
  elements: dict
  sample:
    - {path: compositional_skills/writing/freeform/haiku/qna.yaml, kind: skill, words: 312,
       examples: 5, changed: true}
changed_files:
  description: Relative paths of the files written (or that would be written).
  returned: always
  type: list
  elements: str
word_counts:
  description: Seed-example word count per file.
  returned: always
  type: dict
log_path:
  description: Log of the C(ilab taxonomy diff) check.
  returned: when O(ilab_check=true)
  type: str
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import (
    IlabRunner, ilab_argument_spec, run_guarded)
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs

KINDS = {'knowledge': 'knowledge', 'compositional_skills': 'skill'}


def _strip_strings(data):
    if isinstance(data, dict):
        return dict((k, _strip_strings(v)) for k, v in data.items())
    if isinstance(data, list):
        return [_strip_strings(v) for v in data]
    if isinstance(data, str):
        return '\n'.join(line.rstrip() for line in data.split('\n'))
    return data


def normalize(text):
    """Strip trailing whitespace per line, CRLF -> LF, exactly one final newline."""
    text = text.replace('\r\n', '\n').replace('\r', '\n')
    lines = [line.rstrip(' \t\f\v') for line in text.split('\n')]
    return '\n'.join(lines).strip('\n') + '\n'


def rel_file(path):
    p = (path or '').strip().strip('/')
    if p.endswith('qna.yaml'):
        p = p[:-len('qna.yaml')].rstrip('/')
    norm = os.path.normpath(p) if p else ''
    if not p or norm.startswith('..') or os.path.isabs(p) or norm != p:
        return None
    return norm + '/qna.yaml'


def _words(text):
    return len(str(text).split()) if text is not None else 0


def check_file(rel, text, max_words, min_examples, load):
    """Own checks (``load``: YAML text -> data, ValueError when invalid). Returns (errors, info)."""
    errors = []
    info = dict(path=rel, kind=None, words=0, examples=0)
    top = rel.split('/')[0]
    if top not in KINDS:
        errors.append('the path must start with knowledge/ or compositional_skills/')
    for n, line in enumerate(text.split('\n'), 1):
        if '\t' in line:
            errors.append('line %d contains a tab character (YAML indentation must use spaces)' % n)
            break
    try:
        data = load(text)
    except ValueError as e:
        errors.append('invalid YAML: %s' % str(e).replace('\n', ' '))
        return errors, info
    if not isinstance(data, dict):
        errors.append('the top level must be a mapping of keys to values')
        return errors, info
    kind = 'knowledge' if ('document' in data or 'domain' in data) else 'skill'
    info['kind'] = kind
    if top in KINDS and KINDS[top] != kind:
        errors.append('a %s file (%s) must live under %s/, not %s/' % (
            kind, 'has document/domain' if kind == 'knowledge' else 'no document/domain',
            'knowledge' if kind == 'knowledge' else 'compositional_skills', top))
    version = data.get('version')
    if version is None:
        errors.append('missing key: version')
    elif not isinstance(version, int) or isinstance(version, bool):
        errors.append('version must be an integer, got %r' % (version,))
    for key in ('created_by',) + (('domain',) if kind == 'knowledge' else ('task_description',)):
        v = data.get(key)
        if v is None:
            errors.append('missing key: %s' % key)
        elif not isinstance(v, str) or not v.strip():
            errors.append('%s must be a non-empty string' % key)
    if kind == 'knowledge':
        doc = data.get('document')
        if not isinstance(doc, dict):
            errors.append('missing key: document (with repo, commit, patterns)')
        else:
            for key in ('repo', 'commit', 'patterns'):
                if not doc.get(key):
                    errors.append('missing key: document.%s' % key)
            if doc.get('patterns') is not None and not isinstance(doc.get('patterns'), list):
                errors.append('document.patterns must be a list')
        if not data.get('document_outline'):
            errors.append('missing key: document_outline')
    examples = data.get('seed_examples')
    if not isinstance(examples, list):
        errors.append('missing key: seed_examples (a list)')
        return errors, info
    info['examples'] = len(examples)
    if len(examples) < min_examples:
        errors.append('%d seed examples, at least %d are required' % (len(examples), min_examples))
    words = 0
    questions = {}
    for i, ex in enumerate(examples, 1):
        if not isinstance(ex, dict):
            errors.append('seed example %d is not a mapping' % i)
            continue
        if kind == 'knowledge':
            if not ex.get('context'):
                errors.append('seed example %d has no context' % i)
            words += _words(ex.get('context'))
            qas = ex.get('questions_and_answers')
            if not isinstance(qas, list) or len(qas) < 3:
                errors.append('seed example %d needs at least 3 questions_and_answers' % i)
                qas = qas if isinstance(qas, list) else []
            pairs = [(i, qa) for qa in qas]
        else:
            words += _words(ex.get('context'))
            pairs = [(i, ex)]
        for idx, qa in pairs:
            if not isinstance(qa, dict):
                errors.append('seed example %d has an entry that is not a mapping' % idx)
                continue
            for key in ('question', 'answer'):
                v = qa.get(key)
                if not isinstance(v, str) or not v.strip():
                    errors.append('seed example %d has no %s' % (idx, key))
            q = qa.get('question')
            words += _words(q) + _words(qa.get('answer'))
            if isinstance(q, str) and q.strip():
                keyq = ' '.join(q.split()).lower()
                if keyq in questions:
                    errors.append('duplicate question in seed examples %d and %d: %r'
                                  % (questions[keyq], idx, q.strip()[:80]))
                else:
                    questions[keyq] = idx
    info['words'] = words
    if words > max_words:
        errors.append('seed examples have %d words, over the limit of %d' % (words, max_words))
    return errors, info


def load_entry(entry, dump):
    """Raw text of one entry (str) or raise ValueError."""
    given = [k for k in ('content', 'data', 'src') if entry.get(k) is not None]
    if len(given) != 1:
        raise ValueError('give exactly one of content, data, src (got %s)' % (', '.join(given) or 'none'))
    if entry.get('data') is not None:
        return dump(_strip_strings(entry['data']))
    if entry.get('src') is not None:
        raw = _fs.read_bytes(entry['src'])
    else:
        raw = entry['content'] if isinstance(entry['content'], bytes) else entry['content'].encode('utf-8', 'surrogateescape')
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError as e:
        raise ValueError('not UTF-8 (byte 0x%02x at offset %d, line %d)'
                         % (raw[e.start], e.start, raw[:e.start].count(b'\n') + 1))


def main():
    argument_spec = ilab_argument_spec()
    argument_spec.update(
        taxonomy_path=dict(type='path'),
        files=dict(type='list', elements='dict', required=True, options=dict(
            path=dict(type='str', required=True),
            content=dict(type='str'),
            data=dict(type='dict'),
            src=dict(type='path'),
        )),
        max_words=dict(type='int', default=2300),
        min_examples=dict(type='int', default=5),
        ilab_check=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_guarded(module, deploy)


def deploy(module):
    p = module.params
    runner = IlabRunner.from_module(module)
    runner.check_user()
    taxonomy = p['taxonomy_path']
    if not taxonomy:
        cfg = runner.read_config()
        taxonomy = ((cfg.get('generate') or {}).get('taxonomy_path')
                    or os.path.join(runner.home, '.local', 'share', 'instructlab', 'taxonomy'))
        taxonomy = taxonomy.replace('~', runner.home, 1) if taxonomy.startswith('~') else taxonomy
    result = dict(changed=False, taxonomy_path=taxonomy, files=[], changed_files=[], word_counts={})

    problems = []
    staged = []
    seen = set()
    for n, entry in enumerate(p['files'], 1):
        rel = rel_file(entry['path'])
        label = rel or entry['path']
        if rel is None:
            problems.append('%s: not a relative taxonomy path (e.g. compositional_skills/x/y)' % entry['path'])
            continue
        if rel in seen:
            problems.append('%s: given twice' % rel)
            continue
        seen.add(rel)
        try:
            text = load_entry(entry, lambda d: runner.yaml_dump(d, block=True))
        except (ValueError, IOError, OSError) as e:
            problems.append('%s: %s' % (label, e))
            continue
        text = normalize(text)
        errors, info = check_file(rel, text, p['max_words'], p['min_examples'], runner.yaml_load)
        for e in errors:
            problems.append('%s: %s' % (rel, e))
        target = os.path.join(taxonomy, rel)
        old = _fs.current(target)
        info['changed'] = old != text.encode('utf-8')
        staged.append((rel, text, old, info))
        result['files'].append(info)
        result['word_counts'][rel] = info['words']
    if problems:
        module.fail_json(msg='%d problem(s) in the taxonomy files, nothing was written:\n%s'
                         % (len(problems), '\n'.join(problems)), problems=problems, **result)

    if p['ilab_check'] and staged:
        runner.check_venv()
        # root's own directory, readable by the service user who runs the check
        stage = _fs.mkdtemp(_fs.TMPDIR, 'labforge-taxonomy-', 0o755)
        try:
            for rel, text, _old, _info in staged:
                _fs.write(os.path.join(stage, rel), text, 0o644, mkdirs=True)
            argv = runner.argv(['taxonomy', 'diff'], [('--taxonomy-path', stage), ('--taxonomy-base', 'empty')])
            res = runner.run('ilab taxonomy diff', argv, changes_state=False, log_name='ilab-taxonomy-diff')
            result['log_path'] = res.log_path
            if res.rc != 0:
                tail = res.log_tail.replace(stage + '/', '')
                res.log_tail = tail
                runner.fail('ilab taxonomy diff', res,
                            msg='InstructLab rejected the taxonomy files, nothing was written', **result)
        finally:
            _fs.remove(stage)

    diffs = []
    for rel, text, old, info in staged:
        if not info['changed']:
            continue
        result['changed_files'].append(rel)
        diffs.append(dict(before_header=os.path.join(taxonomy, rel) + ('' if old is not None else ' (absent)'),
                          after_header=os.path.join(taxonomy, rel),
                          before=old.decode('utf-8', 'replace') if old is not None else '',
                          after=text))
        if not module.check_mode:
            runner.ensure_dir(os.path.dirname(os.path.join(taxonomy, rel)))
            _fs.write(os.path.join(taxonomy, rel), text, 0o644, runner.owner)
    result['changed'] = bool(result['changed_files'])
    if module._diff and diffs:
        result['diff'] = diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
