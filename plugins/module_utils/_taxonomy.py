# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load and validate taxonomy ``qna.yaml`` files (private API of ilab_taxonomy).

Pure functions: the Python standard library and PyYAML, no Ansible imports and
no file writes. ``ilab_taxonomy`` runs THIS FILE'S SOURCE with the InstructLab
venv's python (:func:`serve` answers a JSON request), because the managed
host's python may lack PyYAML, and because the venv holds the installed
taxonomy schema (package ``instructlab-schema``), which
says which ``version`` values exist and what each one requires.

Ground truth is InstructLab's own validator,
``instructlab.schema.taxonomy.TaxonomyParser(schema_version=0)``: a file it
accepts is accepted here, a file it rejects is rejected here. The checks are a
small interpreter of the JSON-schema keywords the installed schema files use
(type, required, properties, unevaluatedProperties, items, minItems,
uniqueItems, minLength, const, $ref, deprecated), applied to the schema of the
file's own ``version`` (no ``version`` key reads as version 1, as InstructLab
does), plus what InstructLab's yamllint step refuses from version 2 on that
survives ilab_taxonomy's normalisation (duplicate keys, syntax errors).
tests/unit/plugins/module_utils/test_taxonomy_agreement.py runs both validators
over every qna.yaml in the history of github.com/instructlab/taxonomy.

This collection's own rules, stricter on purpose (each message says "this
collection's rule" and what relaxes it):

* ``allow_legacy``: no legacy version 1 files (or files without ``version``,
  which InstructLab reads as version 1): not linted, one seed example
  suffices, an empty task description passes. InstructLab still reads them;
  the taxonomy repository's own CI refuses them for new files.
* ``max_words``: seed examples (contexts, questions and answers) of at most
  about 2,300 words, the taxonomy's own guidance; InstructLab does not count.
* ``min_examples``: more seed examples than the schema's minimum, if asked for.
* No option: YAML anchors and aliases (alias bombs), duplicate keys in legacy
  version 1 files (PyYAML silently keeps the last value; InstructLab's yamllint
  refuses them from version 2 on), and empty files (InstructLab only warns and
  skips them: there is nothing to deploy).

API::

    data, lines = load(text)                  # raises QnaLoadError(message, line)
    schema = Schema.installed()               # in the venv; Schema(versions, package)
    result = check(rel, text, schema, max_words=2300, min_examples=None,
                   allow_legacy=False)        # dict(errors=[...], info={...})
    option_errors(max_words, min_examples)    # bounds of the module's options
    serve(request)                            # the venv entry point (JSON in, JSON out)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json

KINDS = {'compositional_skills': 'skill', 'knowledge': 'knowledge'}
RULE = "this collection's rule"

# The format before version 2: `version` optional, no yamllint, one seed
# example suffices, an empty task_description passes.
LEGACY_VERSIONS = (1,)
MAX_WORDS_DEFAULT = 2300
MAX_WORDS_RANGE = (1, 1000000)
MIN_EXAMPLES_RANGE = (1, 1000)

# JSON-schema keywords the interpreter implements; annotations are ignored.
_KEYWORDS = frozenset(('type', 'required', 'properties', 'unevaluatedProperties', 'items', 'minItems',
                       'uniqueItems', 'minLength', 'const', '$ref', 'deprecated'))
_ANNOTATIONS = frozenset(('title', 'description', 'examples', '$comment', '$schema', '$id'))


class QnaLoadError(Exception):
    def __init__(self, message, line=None, rule='instructlab'):
        super(QnaLoadError, self).__init__(message)
        self.message = message
        self.line = line
        self.rule = rule


class SchemaUnsupported(Exception):
    """The installed schema uses a keyword this interpreter does not know."""


def option_errors(max_words, min_examples):
    """Messages for out-of-range option values (the module fails before anything else)."""
    errors = []
    if max_words is None or not MAX_WORDS_RANGE[0] <= max_words <= MAX_WORDS_RANGE[1]:
        errors.append('max_words must be between %d and %d (words of seed examples per file), got %s'
                      % (MAX_WORDS_RANGE + (max_words,)))
    if min_examples is not None and not MIN_EXAMPLES_RANGE[0] <= min_examples <= MIN_EXAMPLES_RANGE[1]:
        errors.append('min_examples must be between %d and %d (seed examples per file), got %s'
                      % (MIN_EXAMPLES_RANGE + (min_examples,)))
    return errors


# ------------------------------------------------------------------ loading
def _loader_class(yaml):
    class Loader(yaml.SafeLoader):
        """safe_load, refusing anchors, aliases and duplicate keys."""

        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                raise QnaLoadError('YAML alias *%s: anchors and aliases are refused (%s, against alias '
                                   'bombs; InstructLab accepts them): write the value out; no option '
                                   'relaxes it' % (event.anchor, RULE), event.start_mark.line + 1, 'collection')
            if getattr(event, 'anchor', None) is not None:
                raise QnaLoadError('YAML anchor &%s: anchors and aliases are refused (%s, against alias '
                                   'bombs; InstructLab accepts them): write the value out; no option '
                                   'relaxes it' % (event.anchor, RULE), event.start_mark.line + 1, 'collection')
            return super(Loader, self).compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            self.flatten_mapping(node)
            seen = {}
            for key_node, _value in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:
                    raise QnaLoadError('a mapping key that is itself a list or mapping', line)
                if first is not None:
                    self.duplicates.append((key, first, line))
                seen[key] = line
            return super(Loader, self).construct_mapping(node, deep)
    return Loader


def _show_key(key):
    return repr(key) if isinstance(key, str) else '%s (%s)' % (key, _describe(key))


def load(text):
    """Parse one YAML document. Returns ``(data, lines)``; ``lines`` maps a path
    (tuple of keys and indexes) to its 1-based line. Raises QnaLoadError."""
    import yaml  # pylint: disable=import-outside-toplevel
    loader = _loader_class(yaml)(text)
    loader.duplicates = []
    try:
        # The whole document is composed (aliases refused) before anything is
        # constructed, so construction never expands an alias.
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except QnaLoadError:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = ' '.join(p for p in (e.context, e.problem) if p)
        if "'\\t'" in problem:
            problem += ' (a tab character cannot indent or separate YAML: use spaces)'
        raise QnaLoadError('invalid YAML: %s' % problem, mark.line + 1 if mark else None)
    except yaml.YAMLError as e:
        raise QnaLoadError('invalid YAML: %s' % str(e).replace('\n', ' '))
    except RecursionError:
        raise QnaLoadError('invalid YAML: nested too deeply')
    finally:
        loader.dispose()
    if loader.duplicates:
        key, first, line = loader.duplicates[0]
        msg = 'duplicate key %s (lines %d and %d): YAML keeps only the last value' % (_show_key(key), first, line)
        version = _version_of(data)[0] if isinstance(data, dict) else None
        if version == 1:
            # InstructLab lints (yamllint: key-duplicates) from version 2 on only.
            raise QnaLoadError('%s (%s; InstructLab does not check version 1 files for it); no option '
                               'relaxes it' % (msg, RULE), line, 'collection')
        raise QnaLoadError(msg, line)
    lines = {}
    if node is not None:
        _node_lines(yaml, node, (), lines)
    return data, lines


def _node_lines(yaml, node, path, lines):
    """Line of each path; a mapping value counts from its key's line (a block list
    or mapping value starts on the line after its key)."""
    stack = [(node, path, node.start_mark.line + 1)]
    while stack:
        node, path, line = stack.pop()
        lines[path] = line
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    stack.append((value_node, path + (key_node.value,), key_node.start_mark.line + 1))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, path + (i,), item.start_mark.line + 1))


# ------------------------------------------------------------------ the schema
class Schema(object):
    """The taxonomy schema files by version: ``{version: {name: json}}``."""

    def __init__(self, versions, package=None):
        self.versions = dict((int(k), v) for k, v in versions.items())
        self.package = package

    @classmethod
    def installed(cls):
        """The schema of the instructlab-schema package importable here (the venv's)."""
        from instructlab.schema import schema_versions  # pylint: disable=import-outside-toplevel
        versions = {}
        for base in schema_versions():
            files = {}
            for entry in base.iterdir():
                if entry.name.endswith('.json'):
                    files[entry.name[:-len('.json')]] = json.loads(entry.read_text(encoding='utf-8'))
            versions[int(base.name[1:])] = files
        try:
            from importlib.metadata import version  # pylint: disable=import-outside-toplevel
            package = version('instructlab-schema')
        except Exception:  # pylint: disable=broad-exception-caught
            package = None
        return cls(versions, package)

    @property
    def newest(self):
        return max(self.versions) if self.versions else None

    def facts(self):
        return dict(package=self.package, versions=sorted(self.versions), newest=self.newest)

    def describe(self):
        return '%s knows %s' % ('instructlab-schema %s' % self.package if self.package else 'the installed schema',
                                ', '.join(str(v) for v in sorted(self.versions)))


# ------------------------------------------------------------------ checking
_KINDS = ((bool, 'a boolean'), (int, 'an integer'), (float, 'a number'), (str, 'a string'), (list, 'a list'),
          (dict, 'a mapping'), ((datetime.date, datetime.datetime), 'a date'), (bytes, 'binary data'))


def _describe(value):
    """What a YAML value is, in words (bool before int: a boolean is an int in Python)."""
    if value is None:
        return 'null (an empty value)'
    for kinds, words in _KINDS:
        if isinstance(value, kinds):
            return words
    return 'a %s' % type(value).__name__


_TYPE_NAMES = {'string': 'a string', 'integer': 'an integer', 'array': 'a list', 'object': 'a mapping',
               'number': 'a number', 'boolean': 'a boolean', 'null': 'null'}


def _is_type(value, name):
    if name == 'string':
        return isinstance(value, str)
    if name == 'integer':
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if name == 'number':
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == 'array':
        return isinstance(value, list)
    if name == 'object':
        return isinstance(value, dict)
    if name == 'boolean':
        return isinstance(value, bool)
    if name == 'null':
        return value is None
    raise SchemaUnsupported('type %r' % (name,))


def _equal(one, two):
    """JSON-schema equality (jsonschema's ``equal``: booleans are not numbers)."""
    if isinstance(one, str) or isinstance(two, str):
        return one == two
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two))
    if isinstance(one, dict) and isinstance(two, dict):
        return set(one) == set(two) and all(_equal(one[k], two[k]) for k in one)
    if isinstance(one, bool) or isinstance(two, bool):
        return one is two
    return one == two


def _where(path):
    """Human name of a path: ``seed example 2``, ``document.repo``, ``created_by``."""
    parts = []
    i = 0
    while i < len(path):
        key = path[i]
        nxt = path[i + 1] if i + 1 < len(path) else None
        if key == 'seed_examples' and isinstance(nxt, int):
            parts.append('seed example %d' % (nxt + 1))
            i += 2
            continue
        if key == 'questions_and_answers' and isinstance(nxt, int):
            parts.append('question-and-answer %d' % (nxt + 1))
            i += 2
            continue
        if isinstance(key, int):
            parts.append('entry %d' % (key + 1))
        elif parts and not parts[-1].startswith(('seed example', 'question-and-answer', 'entry')):
            parts[-1] += '.' + str(key)
        else:
            parts.append(str(key))
        i += 1
    return ', '.join(parts) if parts else 'the top level'


class _Validator(object):
    def __init__(self, files, lines):
        self.files = files
        self.lines = lines
        self.errors = []

    def line(self, path):
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def error(self, path, msg, at=None):
        self.errors.append(dict(msg=msg, line=self.line(at if at is not None else path), rule='instructlab'))

    def resolve(self, ref):
        name = ref[2:] if ref.startswith('./') else ref
        if not name.endswith('.json') or '/' in name or name[:-5] not in self.files:
            raise SchemaUnsupported('$ref %r' % (ref,))
        return self.files[name[:-5]]

    def validate(self, inst, schema, path=()):
        """Validate; returns the property names evaluated (for unevaluatedProperties)."""
        unknown = set(schema) - _KEYWORDS - _ANNOTATIONS
        if unknown:
            raise SchemaUnsupported('keyword(s) %s' % ', '.join(sorted(unknown)))
        evaluated = set()
        if '$ref' in schema:
            evaluated |= self.validate(inst, self.resolve(schema['$ref']), path)
        if 'type' in schema and not _is_type(inst, schema['type']):
            self.error(path, '%s must be %s, got %s' % (_where(path), _TYPE_NAMES.get(schema['type'], schema['type']),
                                                        _describe(inst)))
            return evaluated
        if 'const' in schema and not _equal(inst, schema['const']):
            self.error(path, '%s must be %s' % (_where(path), json.dumps(schema['const'])))
        if isinstance(inst, dict):
            evaluated |= self._object(inst, schema, path, evaluated)
        elif isinstance(inst, list):
            self._array(inst, schema, path)
        elif isinstance(inst, str) and len(inst) < schema.get('minLength', 0):
            self.error(path, '%s must not be empty' % _where(path) if schema['minLength'] == 1 else
                       '%s must have at least %d characters' % (_where(path), schema['minLength']))
        return evaluated

    def _object(self, inst, schema, path, evaluated):
        evaluated = set(evaluated)
        for key in schema.get('required', ()):
            if key not in inst:
                if path and isinstance(path[-1], int):
                    self.error(path, '%s has no %s' % (_where(path), key))
                else:
                    self.error(path, 'missing key: %s' % (_where(path + (key,))))
        for key, sub in schema.get('properties', {}).items():
            if key in inst:
                evaluated.add(key)
                self.validate(inst[key], sub, path + (key,))
        if 'unevaluatedProperties' in schema:
            if schema['unevaluatedProperties'] is not False:
                raise SchemaUnsupported('unevaluatedProperties other than false')
            extra = [k for k in inst if k not in evaluated]
            if extra:
                allowed = sorted(evaluated | set(schema.get('properties', {})) | self._ref_properties(schema))
                self.error(path, '%sunknown key%s %s (allowed: %s)' % (
                    _where(path) + ': ' if path else '', 's' if len(extra) > 1 else '',
                    ', '.join(_show_key(k) for k in extra), ', '.join(allowed)), at=path + (extra[0],))
        return evaluated

    def _ref_properties(self, schema):
        if '$ref' not in schema:
            return set()
        sub = self.resolve(schema['$ref'])
        return set(sub.get('properties', {})) | self._ref_properties(sub)

    def _array(self, inst, schema, path):
        need = schema.get('minItems', 0)
        if len(inst) < need:
            if path == ('seed_examples',):
                self.error(path, '%d seed examples, at least %d are required' % (len(inst), need))
            elif path[-1:] == ('questions_and_answers',):
                self.error(path, '%s needs at least %d questions_and_answers (has %d)'
                           % (_where(path[:-1]), need, len(inst)))
            else:
                self.error(path, '%s needs at least %d entr%s (has %d)'
                           % (_where(path), need, 'y' if need == 1 else 'ies', len(inst)))
        if schema.get('uniqueItems'):
            done = False
            for j in range(len(inst)):
                for i in range(j):
                    if _equal(inst[i], inst[j]):
                        what = ('seed examples' if path == ('seed_examples',) else
                                '%s: entries' % _where(path))
                        self.error(path + (j,), '%s %d and %d are identical (InstructLab requires them to '
                                   'differ)' % (what, i + 1, j + 1))
                        done = True
                        break
                if done:
                    break
        if 'items' in schema:
            if not isinstance(schema['items'], dict):
                raise SchemaUnsupported('items other than one schema')
            for i, item in enumerate(inst):
                self.validate(item, schema['items'], path + (i,))


def _version_of(data):
    """The schema version InstructLab reads the file with (TaxonomyParser,
    schema_version=0), or an error message. Returns (version, error)."""
    if 'version' not in data:
        return 1, None
    value = data['version']
    if isinstance(value, bool) or not _is_type(value, 'integer'):
        return None, 'version must be an integer, got %s%s' % (
            _describe(value), (' (%s)' % json.dumps(value)[:40]) if isinstance(value, str) else '')
    return int(value), None


def _words(value):
    return len(value.split()) if isinstance(value, str) else 0


def _count(kind, examples):
    words = 0
    for ex in examples if isinstance(examples, list) else ():
        if not isinstance(ex, dict):
            continue
        words += _words(ex.get('context'))
        pairs = ex.get('questions_and_answers') if kind == 'knowledge' else [ex]
        for qa in pairs if isinstance(pairs, list) else ():
            if isinstance(qa, dict):
                words += _words(qa.get('question')) + _words(qa.get('answer'))
    return words


def _rule(errors, msg, line, option):
    errors.append(dict(msg=msg, line=line, rule='collection', option=option))


def check(rel, text, schema, max_words=MAX_WORDS_DEFAULT, min_examples=None, allow_legacy=False):
    """Validate one file. ``rel``: its path in the taxonomy (``knowledge/.../qna.yaml``).

    Returns ``dict(errors=[dict(msg, line, rule, option?)], info=dict(kind, version,
    words, examples))``; ``rule`` is ``instructlab`` (InstructLab refuses it too)
    or ``collection`` (this collection's rule; ``option`` relaxes it, or None)."""
    top = rel.split('/')[0]
    kind = KINDS.get(top)
    info = dict(kind=kind, version=None, words=0, examples=0)
    errors = []
    result = dict(errors=errors, info=info)
    if kind is None:
        errors.append(dict(msg='the path must start with knowledge/ or compositional_skills/ (the folders '
                               'InstructLab reads)', line=None, rule='instructlab'))
        return result
    try:
        data, lines = load(text)
    except QnaLoadError as e:
        errors.append(dict(msg=e.message, line=e.line, rule=e.rule, option=None))
        return result
    if not data:
        _rule(errors, "the file is empty: InstructLab only warns and skips it; %s refuses to deploy a file "
                      "that teaches nothing; no option relaxes it" % RULE, None, None)
        return result
    if not isinstance(data, dict):
        errors.append(dict(msg='the top level must be a mapping of keys to values, got %s' % _describe(data),
                           line=1, rule='instructlab'))
        return result
    looks = 'knowledge' if ('document' in data or 'domain' in data) else 'skill'
    if looks != kind:
        errors.append(dict(msg='a %s file (%s) must live under %s/, not %s/' % (
            looks, 'has document/domain' if looks == 'knowledge' else 'no document/domain',
            'knowledge' if looks == 'knowledge' else 'compositional_skills', top), line=1, rule='instructlab'))
        return result
    version, problem = _version_of(data)
    if problem:
        errors.append(dict(msg=problem, line=lines.get(('version',)), rule='instructlab'))
        return result
    info['version'] = version
    examples = data.get('seed_examples')
    info['examples'] = len(examples) if isinstance(examples, list) else 0
    info['words'] = _count(kind, examples)
    files = schema.versions.get(version)
    if files is None or top not in files:
        errors.append(dict(msg='version %d is not one the installed schema knows (%s)' % (version, schema.describe()),
                           line=lines.get(('version',), 1), rule='instructlab'))
        return result
    own = files[top]
    if own.get('deprecated'):
        errors.append(dict(msg=own.get('description') or '%s schema version %d is deprecated' % (top, version),
                           line=lines.get(('version',), 1), rule='instructlab'))
        return result
    validator = _Validator(files, lines)
    try:
        validator.validate(data, own)
    except SchemaUnsupported as e:
        errors.append(dict(msg='version %d of the installed schema uses %s, which these checks do not implement: '
                               'only `ilab taxonomy diff` (ilab_check=true) can check this file' % (version, e),
                           line=None, rule='unsupported'))
        return result
    errors.extend(validator.errors)
    if version in LEGACY_VERSIONS and not allow_legacy:
        what = 'version %d is the legacy format' % version if 'version' in data else \
            'no version key: InstructLab reads the file as the legacy version 1 format'
        _rule(errors, '%s (not linted, one seed example suffices): InstructLab still reads it, but %s requires '
                      'version 2 or later (the taxonomy repository\'s CI asks for %d); allow_legacy=true relaxes it'
              % (what, RULE, schema.newest), lines.get(('version',), 1), 'allow_legacy')
    need = (own.get('properties', {}).get('seed_examples') or {}).get('minItems', 0)
    if min_examples is not None and need <= info['examples'] < min_examples:
        _rule(errors, '%d seed examples, fewer than min_examples=%d (%s; InstructLab requires %d): lower '
                      'min_examples to relax it' % (info['examples'], min_examples, RULE, need),
              lines.get(('seed_examples',)), 'min_examples')
    if info['words'] > max_words:
        _rule(errors, 'seed examples have %d words, over the limit of %d (%s, after the taxonomy\'s guidance '
                      'of about 2,300 words; InstructLab does not count them): raise max_words to relax it'
              % (info['words'], max_words, RULE), lines.get(('seed_examples',)), 'max_words')
    return result


def format_error(error):
    return 'line %d: %s' % (error['line'], error['msg']) if error.get('line') else error['msg']


# ------------------------------------------------------------------ venv entry point
def serve(request):
    """``{"files": [{"path", "text"}], "options": {...}}`` -> ``{"schema": facts,
    "results": [check(...), ...]}`` or ``{"error": message}``. ilab_taxonomy runs
    this file's source with the venv's python and calls it (JSON on stdin/stdout)."""
    try:
        schema = Schema.installed()
    except Exception as e:  # pylint: disable=broad-exception-caught
        return dict(error='cannot read the installed taxonomy schema (python package instructlab-schema, '
                          'module instructlab.schema): %s: %s' % (type(e).__name__, e))
    options = request.get('options') or {}
    results = [check(f['path'], f['text'], schema, **options) for f in request['files']]
    return dict(schema=schema.facts(), results=results)
