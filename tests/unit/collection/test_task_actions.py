"""Every task in the collection's roles, playbooks and molecule scenarios
names a module or action that Ansible can resolve, and its conditionals are
strings.

ansible-lint and ``--syntax-check`` do not look inside files that are only
reached through ``include_tasks``; a typo'd module name there would surface
only when a host runs that branch. This walks every task file statically and
lets Ansible's own argument parser resolve each task's action. A conditional
(`when`, `failed_when`, `changed_when`, `until`, an assert's `that`) that YAML
did not read as a string (`- x is search('a: b')` is a mapping) fails only
when that task runs ("Conditional expressions must be strings"). It runs in a
fresh interpreter: other unit tests configure Ansible's collection loader
for their own needs.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

CHECKER = r'''
import glob, json, os, sys, warnings
import yaml
from ansible.errors import AnsibleError
from ansible.parsing.mod_args import ModuleArgsParser
from ansible.plugins.loader import init_plugin_loader

ROOT = sys.argv[1]
PATTERNS = ("roles/*/tasks/*.yml", "roles/*/handlers/*.yml", "playbooks/*.yml",
            "molecule/*/*.yml", "tests/integration/playbooks/*.yml")
PLAY_KEYS = {"hosts", "import_playbook", "ansible.builtin.import_playbook"}
NESTED = ("block", "rescue", "always")
SECTIONS = ("pre_tasks", "tasks", "post_tasks", "handlers")
CONDITIONALS = ("when", "failed_when", "changed_when", "until")


def not_strings(value):
    return [v for v in (value if isinstance(value, list) else [value]) if not isinstance(v, (str, bool))]


def tasks(node):
    for item in node or []:
        if not isinstance(item, dict):
            continue
        if any(k in item for k in NESTED):
            yield {"name": item.get("name", "block"), "ansible.builtin.meta": "noop",
                   "when": item.get("when", True)}
            for key in NESTED:
                yield from tasks(item.get(key))
        elif PLAY_KEYS & set(item):
            for key in SECTIONS:
                yield from tasks(item.get(key))
        else:
            yield item


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    init_plugin_loader()
checked, failures = 0, []
for pattern in PATTERNS:
    for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        if not isinstance(data, list):
            continue
        for i, task in enumerate(tasks(data)):
            checked += 1
            try:
                action = ModuleArgsParser(task).parse()[0]
            except AnsibleError as exc:
                failures.append("%s task %d (%s): %s" % (os.path.relpath(path, ROOT), i,
                                                         task.get("name", "unnamed"), str(exc).splitlines()[0]))
                continue
            if not action:
                failures.append("%s task %d has no action" % (os.path.relpath(path, ROOT), i))
            args = task.get(action) if isinstance(task.get(action), dict) else {}
            conditions = dict((key, task[key]) for key in CONDITIONALS if key in task)
            if action in ("ansible.builtin.assert", "assert") and "that" in args:
                conditions["that"] = args["that"]
            for key, value in conditions.items():
                for bad in not_strings(value):
                    failures.append("%s task %d (%s): %s item is not a string: %r" % (
                        os.path.relpath(path, ROOT), i, task.get("name", "unnamed"), key, bad))
print(json.dumps({"checked": checked, "failures": failures}))
'''


def _check():
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", CHECKER, ROOT], env=env, capture_output=True, text=True,
                          check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_task_action_resolves_and_its_conditionals_are_strings():
    result = _check()
    assert result["checked"] > 200, result
    assert result["failures"] == [], "\n".join(result["failures"])
