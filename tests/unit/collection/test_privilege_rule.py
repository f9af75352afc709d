# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The privilege rule (CONTRIBUTING.md), enforced on the code: outside the file
layer (plugins/module_utils/_fs.py) no plugin opens, creates, renames, removes,
chowns, chmods, links or walks a path itself, runs a command itself, or sends a
signal itself. Modules run as root in directories the InstructLab service
account can write; only the layer knows how to do that without following what
the account planted there, and only the runner switches to that account.

Scripts that modules hand to the venv's python (strings run AS the service
account) are not Python code of the plugin and are not checked.

Every exception is in ALLOWED below, with the reason.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLUGINS = os.path.join(ROOT, 'plugins')
LAYER = 'plugins/module_utils/_fs.py'

# module -> names whose use (call or reference) is a raw file/process operation
BANNED = {
    'os': {'open', 'fdopen', 'chown', 'lchown', 'fchown', 'chmod', 'lchmod', 'fchmod', 'rename', 'renames',
           'replace', 'unlink', 'remove', 'rmdir', 'removedirs', 'mkdir', 'makedirs', 'mkfifo', 'mknod',
           'symlink', 'link', 'walk', 'fwalk', 'listdir', 'scandir', 'truncate', 'ftruncate', 'utime',
           'kill', 'killpg', 'setuid', 'setgid', 'setgroups', 'fork', 'system', 'popen', 'execv', 'execve',
           'execvp', 'spawnv'},
    'io': {'open'},
    'shutil': None,       # None: every name of the module
    'tempfile': None,
    'glob': None,
    'pathlib': None,
    'subprocess': None,
}
BUILTINS = {'open'}

# (file, name) -> why this one use is fine. Keep it short; every line is a reviewed exception.
ALLOWED = {
    # The runner is the one place that runs commands: it drops to the service user
    # (user=/group=/extra_groups=[]) for everything that touches the account's files.
    ('plugins/module_utils/_ilab_runner.py', 'subprocess.Popen'):
        'starts each command, as the service user unless the caller runs a root-only tool',
    ('plugins/module_utils/_ilab_runner.py', 'subprocess.PIPE'): 'pipes of the commands it starts',
    ('plugins/module_utils/_ilab_runner.py', 'subprocess.DEVNULL'): 'stdin of the commands it starts',
    ('plugins/module_utils/_ilab_runner.py', 'subprocess.STDOUT'): 'stderr of background jobs joins stdout',
    ('plugins/module_utils/_ilab_runner.py', 'subprocess.TimeoutExpired'): 'a job that ran past its timeout',
    # Its own child: the Popen object keeps the pid (an unreaped child's pid cannot be reused).
    ('plugins/module_utils/_ilab_runner.py', 'os.killpg'): 'stops the process group of a command it started',
    # The fallback for hosts whose Python cannot switch users in Popen (< 3.9): runs in the child.
    ('plugins/module_utils/_ilab_runner.py', 'os.setgroups'): 'pre-exec demotion of its own child (Python < 3.9)',
    ('plugins/module_utils/_ilab_runner.py', 'os.setgid'): 'pre-exec demotion of its own child (Python < 3.9)',
    ('plugins/module_utils/_ilab_runner.py', 'os.setuid'): 'pre-exec demotion of its own child (Python < 3.9)',
}


def plugin_files():
    for dirpath, dirnames, filenames in os.walk(PLUGINS):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith('.py'):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, ROOT)
                if rel != LAYER:
                    yield rel


def raw_uses(rel):
    """``[(line, 'module.name')]`` of banned names used in file ``rel``."""
    with open(os.path.join(ROOT, rel), encoding='utf-8') as f:
        tree = ast.parse(f.read(), rel)
    aliases = {}   # local name -> module it stands for (import x as y)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split('.')[0] in BANNED:
                    aliases[a.asname or a.name.split('.')[0]] = a.name.split('.')[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split('.')[0] in BANNED:
            mod = node.module.split('.')[0]
            for a in node.names:
                if BANNED[mod] is None or a.name in BANNED[mod]:
                    found.append((node.lineno, '%s.%s' % (mod, a.name)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            mod = aliases[node.value.id]
            if BANNED[mod] is None or node.attr in BANNED[mod]:
                found.append((node.lineno, '%s.%s' % (mod, node.attr)))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in BUILTINS:
            found.append((node.lineno, node.func.id))
    return sorted(found)


def test_the_scan_finds_raw_operations(tmp_path, monkeypatch):
    """The check itself can fail: old code (e.g. the runner's log opened with O_TRUNC and
    chowned) is caught."""
    bad = tmp_path / 'plugins' / 'modules' / 'bad.py'
    bad.parent.mkdir(parents=True)
    bad.write_text('import os\nimport shutil as sh\nfrom tempfile import mkstemp\n'
                   'fd = os.open(p, os.O_WRONLY | os.O_TRUNC)\nos.chown(p, 1, 1)\nsh.rmtree(p)\n'
                   'with open(p) as f:\n    pass\n')
    monkeypatch.setattr(__import__(__name__), 'ROOT', str(tmp_path))
    assert raw_uses('plugins/modules/bad.py') == [
        (3, 'tempfile.mkstemp'), (4, 'os.open'), (5, 'os.chown'), (6, 'shutil.rmtree'), (7, 'open')]


@pytest.mark.parametrize('rel', list(plugin_files()))
def test_no_raw_file_operations_outside_the_layer(rel):
    uses = [(line, name) for line, name in raw_uses(rel) if (rel, name) not in ALLOWED]
    assert uses == [], ('%s does raw file/process operations %s: use module_utils/_fs.py (files) or the '
                        'runner (commands), or add a reviewed exception to ALLOWED' % (rel, uses))


def test_every_exception_is_still_needed():
    used = set()
    for rel in plugin_files():
        used.update((rel, name) for _line, name in raw_uses(rel))
    assert sorted(set(ALLOWED) - used) == []
