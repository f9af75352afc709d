"""Every ``labforge_*`` variable of the pipeline (the playbooks and the role
labforge.instructlab.pipeline they call) is documented in one place,
roles/pipeline/README.md, has a default in the role's defaults/main.yml and a
specification in its meta/argument_specs.yml; the playbooks' header comments
point at files that exist."""

import glob
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLE = os.path.join(ROOT, 'roles', 'pipeline')
DOC = os.path.join(ROLE, 'README.md')
VAR = re.compile(r"(?<![\w])(labforge_\w+)(?:\[['\"](\w+)['\"]\])?")
MODEL_KEY = re.compile(r"__pipeline_model\[['\"](\w+)['\"]\]")
REGISTERED = re.compile(r"^\s*register:\s*(\w+)", re.M)
REGISTER_VAR = re.compile(r"__pipeline_register:\s*(\w+)")
SET_FACT = re.compile(r"set_fact:\s*\n\s+[\"']?(labforge_\w+)[\"']?:")


def playbook_files():
    return sorted(glob.glob(os.path.join(ROOT, 'playbooks', '*.yml'))
                  + glob.glob(os.path.join(ROLE, 'tasks', '*.yml'))
                  + glob.glob(os.path.join(ROLE, 'vars', '*.yml')))


def read(path):
    with open(path) as f:
        return f.read()


def used():
    """(variables, 'var.key' dictionary keys, registered results and facts set, model dictionary keys)."""
    names, keys, registered, model_keys = set(), set(), set(), set()
    for path in playbook_files():
        text = read(path)
        for var, key in VAR.findall(text):
            names.add(var)
            if key:
                keys.add('%s.%s' % (var, key))
        registered.update(REGISTERED.findall(text))
        registered.update(REGISTER_VAR.findall(text))
        registered.update(SET_FACT.findall(text))
        model_keys.update(MODEL_KEY.findall(text))
    registered = set(r for r in registered if r.startswith('labforge_'))
    keys = set(k for k in keys if k.split('.')[0] not in registered)
    return names, keys, registered, model_keys


def section(text, title):
    """The part of ``text`` under ``title``, its subsections included."""
    start = text.index(title)
    level = title.split(' ')[0]
    end = min([i for i in (text.find('\n%s ' % ('#' * n), start + len(title)) for n in range(1, len(level) + 1))
               if i >= 0] or [len(text)])
    return text[start:end]


def test_the_pipeline_header_points_at_files_that_exist():
    header = []
    for line in read(os.path.join(ROOT, 'playbooks', 'pipeline.yml')).splitlines()[1:]:
        if not line.startswith('#'):
            break
        header.append(line)
    # relative paths of the collection (absolute host paths and INVENTORY-style placeholders aside)
    files = re.findall(r'(?<![\w/.])((?:[a-z0-9_.-]+/)+(?:[A-Za-z0-9_.-]+\.(?:md|ya?ml))?)', '\n'.join(header))
    assert 'playbooks/README.md' in files
    assert 'roles/pipeline/README.md' in files
    missing = [p for p in files if not os.path.exists(os.path.join(ROOT, p))]
    assert missing == [], 'playbooks/pipeline.yml points at %s' % missing


def test_every_labforge_variable_of_the_playbooks_is_documented():
    doc = read(DOC)
    names, keys, registered, model_keys = used()
    inputs = section(doc, '### Input variables')
    results = section(doc, '### Results the role registers (or sets)')
    models = section(doc, '#### Model dictionaries')
    assert names - registered, 'no labforge_* variable found in playbooks/'
    assert sorted(n for n in names - registered if '`%s`' % n not in inputs) == []
    assert sorted(k for k in keys if '`%s`' % k not in inputs) == []
    assert sorted(r for r in registered if '`%s`' % r not in results) == []
    assert sorted(k for k in model_keys if '`%s`' % k not in models) == []


def test_the_documentation_names_no_variable_the_playbooks_do_not_read():
    names, keys, registered, model_keys = used()
    documented = set(re.findall(r'`(labforge_\w+(?:\.\w+)?)`', read(DOC)))
    assert sorted(d for d in documented if d not in names and d not in keys) == []


def specs():
    with open(os.path.join(ROLE, 'meta', 'argument_specs.yml')) as f:
        return yaml.safe_load(f)['argument_specs']


def test_every_input_has_a_default_and_a_specification():
    """defaults/main.yml, the entry point main of meta/argument_specs.yml and the README's input
    table name the same variables; the stages specify only variables of main."""
    with open(os.path.join(ROLE, 'defaults', 'main.yml')) as f:
        defaults = set(yaml.safe_load(f))
    spec = specs()
    main = set(spec['main']['options'])
    names, _keys, registered, _model_keys = used()
    inputs = set(re.findall(r'^\| `(labforge_\w+)` \|', section(read(DOC), '### Input variables'), re.M))
    assert defaults == main
    assert inputs == main
    assert sorted((names - registered) - main) == []
    for entry, body in spec.items():
        assert sorted(set(body['options']) - main) == [], entry
        for name, option in body['options'].items():
            assert option == spec['main']['options'][name], (entry, name)


def test_every_dictionary_key_the_role_reads_is_specified():
    """A key the role reads from a labforge_* dictionary is among the keys its specification allows
    (the specification refuses any other), and the README documents every allowed key."""
    options = specs()['main']['options']
    _names, keys, _registered, model_keys = used()
    doc = read(DOC)
    for key in sorted(keys):
        var, sub = key.split('.')
        assert sub in (options[var].get('options') or {}), key
    for var in ('labforge_teacher_model', 'labforge_student_model'):
        assert sorted(options[var]['options']) == sorted(model_keys), var
        assert [k for k in model_keys if '`%s`' % k not in section(doc, '#### Model dictionaries')] == []
    for var, option in options.items():
        if var in ('labforge_teacher_model', 'labforge_student_model'):
            continue
        for sub in option.get('options') or {}:
            assert '`%s.%s`' % (var, sub) in doc, '%s.%s' % (var, sub)
