# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for module_utils._report: the ``report`` return value of the modules,
and that every module of the collection returns one and documents it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import glob
import os

import pytest
import yaml

from ansible_collections.labforge.instructlab.plugins.module_utils import _report

MODULES = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'plugins', 'modules')
# modules whose results carry no artifact of their own (job_wait returns the job's result)
NO_REPORT = ('job_wait',)


class FakeModule(object):
    def __init__(self):
        self.exited = self.failed = None

    def exit_json(self, **kwargs):
        self.exited = kwargs

    def fail_json(self, msg, **kwargs):
        self.failed = dict(kwargs, msg=msg)


def test_build_keeps_named_values_in_order():
    result = dict(cmd='ilab x', log_path='/l', rows={'train': 3}, files={}, path='', digest=None, size=0,
                  trained=False)
    out = _report.build(result, ('size', 'rows', 'files', 'path', 'digest', 'trained', 'log_path', 'absent'))
    assert out == {'size': 0, 'rows': {'train': 3}, 'trained': False, 'log_path': '/l'}
    assert list(out) == ['size', 'rows', 'trained', 'log_path']


def test_attach_exit_and_fail():
    module = FakeModule()
    assert _report.attach(module, 'gguf_path', 'final_loss') is module
    module.exit_json(changed=True, gguf_path='/m/a.gguf', final_loss=None, cmd='ilab model train', stdout='x')
    assert module.exited['report'] == {'gguf_path': '/m/a.gguf'}
    assert module.exited['cmd'] == 'ilab model train'
    # a failure adds the path the file layer refused and the log of the failed command
    module.fail_json('boom', path='/srv/link', log_path='/l/train.log', rc=1, gguf_path='/m/a.gguf')
    assert module.failed['report'] == {'path': '/srv/link', 'gguf_path': '/m/a.gguf', 'log_path': '/l/train.log'}
    assert module.failed['msg'] == 'boom'
    module.fail_json(msg='positional or not', rc=2)
    assert module.failed['report'] == {} and module.failed['msg'] == 'positional or not'


def test_attach_keeps_a_report_the_caller_passed():
    module = _report.attach(FakeModule(), 'rows', 'dataset_dir')
    module.exit_json(rows={'train': 1}, dataset_dir='/d', report={'rows': {'train': 2}, 'note': 'n'})
    assert module.exited['report'] == {'rows': {'train': 2}, 'dataset_dir': '/d', 'note': 'n'}


def _module_sources():
    paths = sorted(glob.glob(os.path.join(MODULES, '*.py')))
    assert len(paths) > 10
    return [(os.path.basename(p)[:-3], p) for p in paths]


@pytest.mark.parametrize('name,path', _module_sources())
def test_every_module_reports_and_documents_it(name, path):
    with open(path) as f:
        tree = ast.parse(f.read())
    returns = [yaml.safe_load(n.value.value) for n in tree.body
               if isinstance(n, ast.Assign) and getattr(n.targets[0], 'id', None) == 'RETURN'][0]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == 'attach' and getattr(n.func.value, 'id', None) == '_report']
    if name in NO_REPORT:
        assert not calls and 'report' not in returns
        return
    assert len(calls) == 1, name
    keys = [a.value for a in calls[0].args[1:]]
    assert keys and len(set(keys)) == len(keys)
    doc = ' '.join(returns['report']['description'])
    assert returns['report']['type'] == 'dict'
    for key in keys:
        assert 'RV(%s)' % key in doc or 'C(%s)' % key in doc, (name, key)
        # each name is a return value of the module (documented, or at least returned in the code)
        assert key in returns or key in ('duration', 'reason'), (name, key)
