# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils._ilab_yaml: YAML with and without PyYAML on the
host (then the venv's python does it, through the runner), and config.yaml reads
through the file layer."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import getpass
import os
import sys

import pytest

from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_runner as R
from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_yaml as Y

ME = getpass.getuser()


class FakeModule(object):
    check_mode = False

    def __init__(self):
        self.no_log_values = set()


def runner(tmp_path, python=True, **kw):
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    if python:
        os.symlink(sys.executable, str(venv / 'bin' / 'python'))
    return R.IlabRunner(FakeModule(), user=ME, venv=str(venv), **kw)


@pytest.mark.parametrize('host_has_yaml', [True, False])
def test_yaml_with_and_without_host_pyyaml(tmp_path, monkeypatch, host_has_yaml):
    """Without PyYAML on the host python (Debian minimal), the venv's python does YAML."""
    monkeypatch.setattr(Y, 'HAS_YAML', host_has_yaml)
    r = runner(tmp_path)
    assert Y.load(r, 'a:\n  b: [1, 2]\n') == {'a': {'b': [1, 2]}}
    with pytest.raises(ValueError, match='expected'):
        Y.load(r, 'a: [1\n')
    assert Y.dump(r, {'z': 1, 'a': 'x\ny\n'}, block=True) == 'z: 1\na: |\n  x\n  y\n'
    assert Y.dump(r, {'z': 1, 'a': 'x\ny\n'}) == "z: 1\na: 'x\n\n  y\n\n  '\n"
    cfg = tmp_path / 'c.yaml'
    cfg.write_text('serve:\n  server:\n    port: 8000\n')
    assert Y.read_config(r, str(cfg)) == {'serve': {'server': {'port': 8000}}}


def test_read_config_default_path_and_missing(tmp_path):
    cfg = tmp_path / 'config.yaml'
    cfg.write_text('serve:\n  server:\n    port: 8000\n')
    r = runner(tmp_path, config_path=str(cfg))
    assert Y.read_config(r) == {'serve': {'server': {'port': 8000}}}
    assert Y.read_config(r, str(tmp_path / 'missing.yaml')) == {}
    cfg.write_text('')
    assert Y.read_config(r) == {}


def test_no_pyyaml_and_no_venv_python(tmp_path, monkeypatch):
    monkeypatch.setattr(Y, 'HAS_YAML', False)
    r = runner(tmp_path, python=False)
    with pytest.raises(Y.YamlHelperError, match='no venv python'):
        Y.load(r, 'a: 1\n')
