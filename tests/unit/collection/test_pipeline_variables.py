"""Every ``labforge_*`` variable of the playbooks is documented in one place,
playbooks/README.md, and the playbooks' header comments point at files that
exist."""

import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DOC = os.path.join(ROOT, 'playbooks', 'README.md')
VAR = re.compile(r"(?<![\w])(labforge_\w+)(?:\[['\"](\w+)['\"]\])?")
MODEL_KEY = re.compile(r"__labforge_model\[['\"](\w+)['\"]\]")
REGISTERED = re.compile(r"^\s*register:\s*(\w+)", re.M)
REGISTER_VAR = re.compile(r"__labforge_register:\s*(\w+)")
SET_FACT = re.compile(r"set_fact:\s*\n\s+[\"']?(labforge_\w+)[\"']?:")


def playbook_files():
    return sorted(glob.glob(os.path.join(ROOT, 'playbooks', '*.yml'))
                  + glob.glob(os.path.join(ROOT, 'playbooks', 'tasks', '*.yml')))


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
    missing = [p for p in files if not os.path.exists(os.path.join(ROOT, p))]
    assert missing == [], 'playbooks/pipeline.yml points at %s' % missing


def test_every_labforge_variable_of_the_playbooks_is_documented():
    doc = read(DOC)
    names, keys, registered, model_keys = used()
    inputs = section(doc, '## Input variables')
    results = section(doc, '## Results the playbook registers (or sets)')
    models = section(doc, '### Model dictionaries')
    assert names - registered, 'no labforge_* variable found in playbooks/'
    assert sorted(n for n in names - registered if '`%s`' % n not in inputs) == []
    assert sorted(k for k in keys if '`%s`' % k not in inputs) == []
    assert sorted(r for r in registered if '`%s`' % r not in results) == []
    assert sorted(k for k in model_keys if '`%s`' % k not in models) == []


def test_the_documentation_names_no_variable_the_playbooks_do_not_read():
    names, keys, registered, model_keys = used()
    documented = set(re.findall(r'`(labforge_\w+(?:\.\w+)?)`', read(DOC)))
    assert sorted(d for d in documented if d not in names and d not in keys) == []
