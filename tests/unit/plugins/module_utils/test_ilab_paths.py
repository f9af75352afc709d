# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for module_utils._ilab_paths: InstructLab's directories, named once,
and the runner and modules that use them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import getpass
import os
import pwd

from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_runner as R
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_paths import (
    IlabPaths, private_xdg, xdg_homes)

H = '/var/lib/instructlab'


def test_default_directories():
    p = IlabPaths(H)
    assert p.xdg == xdg_homes(H) == {
        'XDG_CONFIG_HOME': H + '/.config', 'XDG_DATA_HOME': H + '/.local/share',
        'XDG_CACHE_HOME': H + '/.cache', 'XDG_STATE_HOME': H + '/.local/state'}
    assert p.config_dir == H + '/.config/instructlab'
    assert p.config_path == H + '/.config/instructlab/config.yaml'
    assert p.data_dir == H + '/.local/share/instructlab'
    assert (p.taxonomy, p.datasets, p.checkpoints) == (
        H + '/.local/share/instructlab/taxonomy', H + '/.local/share/instructlab/datasets',
        H + '/.local/share/instructlab/checkpoints')
    assert (p.trained, p.converted, p.evaluations) == (
        H + '/.local/share/instructlab/trained', H + '/.local/share/instructlab/converted',
        H + '/.local/share/instructlab/evaluations')
    assert p.models == H + '/.cache/instructlab/models'
    assert p.logs == H + '/.local/state/labforge/logs'
    assert p.serve_dir('student') == H + '/.local/state/labforge/serve/student'


def test_private_xdg_tree():
    x = private_xdg('/run/s')
    assert x == {'XDG_CONFIG_HOME': '/run/s/xdg-config', 'XDG_DATA_HOME': '/run/s/xdg-data',
                 'XDG_CACHE_HOME': '/run/s/xdg-cache', 'XDG_STATE_HOME': '/run/s/xdg-state'}
    p = IlabPaths(H, x)
    assert p.config_path == '/run/s/xdg-config/instructlab/config.yaml'
    assert p.checkpoints == '/run/s/xdg-data/instructlab/checkpoints'
    assert IlabPaths(H, {'XDG_DATA_HOME': '/d'}).models == H + '/.cache/instructlab/models'


def test_runner_uses_the_paths(tmp_path):
    me = getpass.getuser()
    r = R.IlabRunner(object(), user=me, venv=str(tmp_path))
    home = pwd.getpwnam(me).pw_dir
    assert r.paths.home == home
    assert r.default_config_path == r.paths.config_path == os.path.join(home, '.config/instructlab/config.yaml')
    assert r.log_dir == r.paths.logs
    env = r.env()
    assert dict((k, env[k]) for k in xdg_homes(home)) == xdg_homes(home)
