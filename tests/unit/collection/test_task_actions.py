"""Every task in the collection's roles, playbooks and molecule scenarios
names a module or action that Ansible can resolve.

ansible-lint and ``--syntax-check`` do not look inside files that are only
reached through ``include_tasks``; a typo'd module name there would surface
only when a host runs that branch. This walks every task file statically and
lets Ansible's own argument parser resolve each task's action.
"""

import glob
import os
import warnings

import pytest
import yaml

from ansible.errors import AnsibleError
from ansible.parsing.mod_args import ModuleArgsParser
from ansible.plugins.loader import init_plugin_loader

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PATTERNS = ("roles/*/tasks/*.yml", "roles/*/handlers/*.yml", "playbooks/*.yml", "playbooks/tasks/*.yml",
            "molecule/*/*.yml", "tests/integration/playbooks/*.yml")
PLAY_KEYS = {"hosts", "import_playbook", "ansible.builtin.import_playbook"}
NESTED = ("block", "rescue", "always")
SECTIONS = ("pre_tasks", "tasks", "post_tasks", "handlers")


def _tasks(node):
    for item in node or []:
        if not isinstance(item, dict):
            continue
        if any(k in item for k in NESTED):
            for key in NESTED:
                yield from _tasks(item.get(key))
        elif PLAY_KEYS & set(item):
            for key in SECTIONS:
                yield from _tasks(item.get(key))
        else:
            yield item


def _files():
    for pattern in PATTERNS:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh)
            if isinstance(data, list):
                yield os.path.relpath(path, ROOT), data


CASES = [(path, i, task) for path, data in _files() for i, task in enumerate(_tasks(data))]


def test_there_are_tasks_to_check():
    assert len(CASES) > 200


@pytest.mark.parametrize("path,index,task", CASES, ids=["%s#%d" % (c[0], c[1]) for c in CASES])
def test_task_action_resolves(path, index, task):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "AnsibleCollectionFinder has already been configured"
        init_plugin_loader()
    try:
        action, _args, _delegate = ModuleArgsParser(task).parse()
    except AnsibleError as exc:
        pytest.fail("%s task %d (%s): %s" % (path, index, task.get("name", "unnamed"), exc))
    assert action, "%s task %d has no action" % (path, index)
