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
  - Validates B(every) file before touching anything, in two steps, and reports each problem with
    the file, the line and what is wrong.
  - First its own checks, run with the python of O(venv) against the taxonomy schema installed
    there (package C(instructlab-schema)). They agree with InstructLab's own validator
    (C(instructlab.schema.taxonomy.TaxonomyParser), which C(ilab taxonomy diff) uses; checked over
    every C(qna.yaml) in the history of the public InstructLab taxonomy repository). UTF-8; YAML
    parses to one mapping; C(version) is one the installed schema knows (a file without C(version)
    is read as version 1, as InstructLab does; versions 1 and 2 of knowledge are refused by
    InstructLab); the keys, types, minimum counts and uniqueness the schema of that version asks
    for (C(created_by), C(task_description) or C(domain), C(document) with C(repo), C(commit) and
    C(patterns), C(document_outline), at least 5 seed examples in versions 2 and 3, at least 3
    C(questions_and_answers) per knowledge example, no two identical seed examples, no unknown
    keys); no duplicate keys; the path matching the kind of file (C(knowledge/...) or
    C(compositional_skills/...)).
  - A skill may ask the same question in several seed examples (a grounded skill asks it over
    different contexts); only identical seed examples are refused, as InstructLab does.
  - "This collection's own rules, stricter than InstructLab on purpose; each message says so and
    names what relaxes it: no legacy version 1 files (O(allow_legacy)); the seed-example word limit
    (O(max_words)); O(min_examples) when set; no YAML anchors or aliases (alias bombs); no duplicate
    keys even in legacy version 1 files; no empty file."
  - Then the installed InstructLab checks a staging copy with
    C(ilab taxonomy diff --taxonomy-base empty) (O(ilab_check)). It also applies yamllint's warnings
    as errors (indentation and the like) and fetches the documents of knowledge files.
  - All-or-nothing. When one file is bad, no file is written and the taxonomy tree is left
    byte-identical.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.attributes
  - labforge.instructlab.ilab
  - labforge.instructlab.ilab.initialised
attributes:
  check_mode:
    support: full
    details: Validation (including C(ilab taxonomy diff) on a staging copy) runs in check mode too.
  diff_mode:
    support: full
  idempotent:
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
            (a trailing V(/qna.yaml) is accepted). A string.
        type: raw
        required: true
      content:
        description:
          - The file's text, a string (YAML data given here by mistake is refused, not converted;
            use O(files[].data) for data). For a file on the controller use
            C("{{ lookup('ansible.builtin.file', 'qna.yaml') }}").
        type: raw
      data:
        description: The file's content as YAML data (written as YAML, multi-line strings as blocks).
        type: dict
      src:
        description: A file on the managed host.
        type: path
  max_words:
    description:
      - This collection's upper limit of the words (whitespace-separated) in the seed examples of
        one file (contexts, questions and answers). The taxonomy's own guidance is about 2,300
        words, because InstructLab's generators work on a few thousand tokens; InstructLab itself
        does not count.
      - Between 1 and 1000000.
    type: int
    default: 2300
  min_examples:
    description:
      - Least seed examples per file, this collection's rule on top of the installed schema's own
        minimum (5 in versions 2 and 3, 1 in version 1), which always applies.
      - Between 1 and 1000. Unset, only the schema's minimum applies.
    type: int
  allow_legacy:
    description:
      - Accept the legacy version 1 format that InstructLab still reads for compositional skills
        (C(version) 1, or no C(version) key at all). It is not linted, one seed example suffices and
        an empty C(task_description) passes.
      - By default a file must carry version 2 or later (3 is current with InstructLab 0.26.1); the
        taxonomy repository's own CI refuses version 1 for new files.
    type: bool
    default: false
  ilab_check:
    description:
      - Run C(ilab taxonomy diff) on a staging copy. Knowledge files make InstructLab fetch their
        C(document.repo), which needs that repository to be reachable (a local git path works
        offline).
    type: bool
    default: true
notes:
  - A validation that passed is remembered by a fingerprint of the files' normalised text, the options
    that shape the checks, this module's checks and the installed InstructLab (the active venv and its
    C(instructlab*) distributions), in root's private state directory (C(/var/lib/labforge)). A rerun
    with the same fingerprint neither starts the venv's python nor C(ilab); it returns the remembered
    result (RV(validation=cached)). A changed file, option or InstructLab release validates again.
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
    - {path: compositional_skills/writing/freeform/haiku/qna.yaml, kind: skill, version: 3,
       words: 312, examples: 5, changed: true}
changed_files:
  description: Relative paths of the files written (or that would be written).
  returned: always
  type: list
  elements: str
word_counts:
  description: Seed-example word count per file.
  returned: always
  type: dict
schema:
  description: The installed taxonomy schema the files were checked against.
  returned: when at least one file was checked
  type: dict
  sample: {package: 0.4.2, versions: [1, 2, 3], newest: 3}
log_path:
  description: Log of the C(ilab taxonomy diff) check.
  returned: when O(ilab_check=true)
  type: str
validation:
  description:
    - V(checked) when the files were validated in this run, V(cached) when an earlier run validated
      the same files with the same InstructLab and options (see the notes).
  returned: when at least one file was given
  type: str
  sample: cached
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(files),
      RV(taxonomy_path), RV(changed_files), RV(log_path), RV(validation), those of them that have a value. A
      failure adds C(path) (a path the file layer refused) and C(log_path) when it has them."
  returned: always
  type: dict
'''

import inspect
import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import (
    IlabRunner, ilab_argument_spec, run_guarded)
from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_yaml
from ansible_collections.labforge.instructlab.plugins.module_utils import _taxonomy
from ansible_collections.labforge.instructlab.plugins.module_utils import _report


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


# The checks run with the venv's python: PyYAML and the installed taxonomy
# schema live there (the host's python may have neither). The source of
# module_utils/_taxonomy.py travels on stdin with the request.
CHECK_SCRIPT = (
    'import json, sys\n'
    'request = json.load(sys.stdin)\n'
    'scope = {"__name__": "labforge_taxonomy"}\n'
    'exec(compile(request.pop("source"), "labforge_taxonomy.py", "exec"), scope)\n'
    'print(json.dumps(scope["serve"](request)))\n'
)


def check_files(runner, files, options):
    """[(rel, text)] -> reply of _taxonomy.serve (schema facts, one result per file)."""
    runner.check_venv()
    request = dict(source=inspect.getsource(_taxonomy), files=[dict(path=rel, text=text) for rel, text in files],
                   options=options)
    res = runner.python('check taxonomy files', CHECK_SCRIPT, data=json.dumps(request), changes_state=False)
    if res.rc != 0:
        runner.fail('check taxonomy files', res, msg='could not check the taxonomy files with %s'
                    % runner.venv_python)
    try:
        reply = json.loads(res.stdout)
    except ValueError:
        runner.fail('check taxonomy files', res, msg='unexpected output from the taxonomy check')
    if reply.get('error'):
        runner.module.fail_json(msg=reply['error'], step='check taxonomy files')
    return reply


def installed_identity(venv):
    """What identifies the installed InstructLab without starting it: the active venv's
    real directory (the role installs into a new one and switches a link) and the names
    of its instructlab* distributions (name and version)."""
    real = os.path.realpath(venv)
    dists = []
    lib = os.path.join(real, 'lib')
    for pyver in sorted(_fs.listdir(lib)) if _fs.stat_path(lib) is not None else []:
        site = os.path.join(lib, pyver, 'site-packages')
        if pyver.startswith('python') and _fs.stat_path(site) is not None:
            dists.extend(n for n in _fs.listdir(site) if n.startswith('instructlab') and n.endswith('.dist-info'))
    return dict(venv=real, dists=sorted(dists))


class ValidationCache(object):
    """The result of the last validation that passed, per taxonomy, in root's private
    state (one record per taxonomy path, so it stays small)."""

    def __init__(self, runner, taxonomy, inputs):
        self.fingerprint = fpu.fingerprint(inputs)
        key = fpu.fingerprint(dict(taxonomy=taxonomy))
        self.path = os.path.join(runner.state, 'taxonomy-checks', fpu.short(key, 32) + '.json')

    def get(self):
        rec = _fs.read_json(self.path)
        if isinstance(rec, dict) and rec.get('fingerprint') == self.fingerprint and isinstance(rec.get('reply'), dict):
            return rec
        return None

    def put(self, reply, log_path):
        _fs.private_dir(os.path.dirname(self.path))
        _fs.write_json(self.path, dict(fingerprint=self.fingerprint, reply=reply, log_path=log_path), mode=0o600)


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
            # raw, not str: Ansible would str() a list or mapping given by mistake
            # (a mapping's repr even parses as YAML); the type is checked below.
            path=dict(type='raw', required=True),
            content=dict(type='raw'),
            data=dict(type='dict'),
            src=dict(type='path'),
        )),
        max_words=dict(type='int', default=_taxonomy.MAX_WORDS_DEFAULT),
        min_examples=dict(type='int'),
        allow_legacy=dict(type='bool', default=False),
        ilab_check=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    _report.attach(module, 'files', 'taxonomy_path', 'changed_files', 'log_path', 'validation')
    run_guarded(module, deploy)


def deploy(module):
    p = module.params
    bad = _taxonomy.option_errors(p['max_words'], p['min_examples'])
    if bad:
        module.fail_json(msg='; '.join(bad))
    runner = IlabRunner.checked(module)
    taxonomy = p['taxonomy_path']
    if not taxonomy:
        cfg = _ilab_yaml.read_config(runner)
        taxonomy = ((cfg.get('generate') or {}).get('taxonomy_path')
                    or runner.paths.taxonomy)
        taxonomy = taxonomy.replace('~', runner.home, 1) if taxonomy.startswith('~') else taxonomy
    result = dict(changed=False, taxonomy_path=taxonomy, files=[], changed_files=[], word_counts={})

    problems = []
    staged = []
    seen = set()
    for n, entry in enumerate(p['files'], 1):
        wrong = [k for k in ('path', 'content') if entry.get(k) is not None and not isinstance(entry[k], str)]
        if wrong:
            problems.extend('files[%d].%s must be a string, got %s%s' % (
                n, k, type(entry[k]).__name__, ' (use data: for YAML data)' if k == 'content' else '')
                for k in wrong)
            continue
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
            text = load_entry(entry, lambda d: _ilab_yaml.dump(runner, d, block=True))
        except (ValueError, IOError, OSError) as e:
            problems.append('%s: %s' % (label, e))
            continue
        text = normalize(text)
        info = dict(path=rel, kind=None, version=None, words=0, examples=0)    # filled by check_files
        target = os.path.join(taxonomy, rel)
        old = _fs.current(target)
        info['changed'] = old != text.encode('utf-8')
        staged.append((rel, text, old, info))
        result['files'].append(info)
    options = dict(max_words=p['max_words'], min_examples=p['min_examples'], allow_legacy=p['allow_legacy'])
    cache = cached = None
    if staged and not problems:
        cache = ValidationCache(runner, taxonomy, dict(
            files=[(rel, text) for rel, text, _old, _info in staged], options=options, ilab_check=p['ilab_check'],
            checks=fpu.fingerprint(dict(script=CHECK_SCRIPT, source=inspect.getsource(_taxonomy))),
            installed=installed_identity(runner.venv)))
        cached = cache.get()
        result['validation'] = 'cached' if cached else 'checked'
    if staged:
        reply = cached['reply'] if cached else check_files(runner, [(rel, text) for rel, text, _old, _info in staged],
                                                           options)
        result['schema'] = reply['schema']
        for (rel, _text, _old, info), checked in zip(staged, reply['results']):
            info.update(checked['info'])
            result['word_counts'][rel] = info['words']
            for error in checked['errors']:
                if error['rule'] == 'unsupported' and p['ilab_check']:
                    module.warn('%s: %s' % (rel, error['msg']))
                else:
                    problems.append('%s: %s' % (rel, _taxonomy.format_error(error)))
    if problems:
        module.fail_json(msg='%d problem(s) in the taxonomy files, nothing was written:\n%s'
                         % (len(problems), '\n'.join(problems)), problems=problems, **result)

    if cached:
        if cached.get('log_path'):
            result['log_path'] = cached['log_path']
    elif p['ilab_check'] and staged:
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
    if cache and not cached and not module.check_mode:
        cache.put(reply, result.get('log_path'))

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
