# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""InstructLab's directories of one account, named once (private API).

InstructLab keeps its files in the XDG base directories of the user that runs
it (``platformdirs``): the configuration under ``XDG_CONFIG_HOME``, taxonomy,
datasets and checkpoints under ``XDG_DATA_HOME``, downloaded models under
``XDG_CACHE_HOME``. The collection adds its own directories beside them
(trained, converted and evaluated models under the same data directory; logs
and per-service state under ``XDG_STATE_HOME/labforge``). Every module asks
this helper for them instead of joining the parts again.

API summary (stable; only additions from now on)::

    from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_paths import (
        IlabPaths, xdg_homes, private_xdg)

    paths = IlabPaths('/var/lib/instructlab')       # or runner.paths
    paths.xdg                   # {'XDG_CONFIG_HOME': HOME/.config, 'XDG_DATA_HOME': HOME/.local/share,
                                #  'XDG_CACHE_HOME': HOME/.cache, 'XDG_STATE_HOME': HOME/.local/state}
    paths.config_dir            # HOME/.config/instructlab
    paths.config_path           # HOME/.config/instructlab/config.yaml
    paths.data_dir              # HOME/.local/share/instructlab
    paths.taxonomy, paths.datasets, paths.checkpoints          # DATA/instructlab/<name>
    paths.trained, paths.converted, paths.evaluations          # DATA/instructlab/<name> (labforge's)
    paths.cache_dir, paths.models                              # HOME/.cache/instructlab[/models]
    paths.labforge_state, paths.logs                           # HOME/.local/state/labforge[/logs]
    paths.serve_dir(name)                                      # HOME/.local/state/labforge/serve/NAME

    IlabPaths(home, xdg={'XDG_DATA_HOME': '/run/x'}).checkpoints   # /run/x/instructlab/checkpoints
    private_xdg(directory)      # {'XDG_CONFIG_HOME': DIR/xdg-config, ...}: a process's own XDG tree
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

# XDG variable -> its default below HOME (XDG Base Directory Specification).
XDG_DEFAULTS = (
    ('XDG_CONFIG_HOME', ('.config',)),
    ('XDG_DATA_HOME', ('.local', 'share')),
    ('XDG_CACHE_HOME', ('.cache',)),
    ('XDG_STATE_HOME', ('.local', 'state')),
)
XDG_KEYS = tuple(key for key, _parts in XDG_DEFAULTS)

APP = 'instructlab'
LABFORGE = 'labforge'


def xdg_homes(home):
    """The four XDG base directories of an account whose home is ``home``."""
    return dict((key, os.path.join(home, *parts)) for key, parts in XDG_DEFAULTS)


def private_xdg(directory):
    """XDG base directories of their own below ``directory`` (``xdg-config``, ``xdg-data``, ...)."""
    return dict((key, os.path.join(directory, 'xdg-' + key.split('_')[1].lower())) for key in XDG_KEYS)


class IlabPaths(object):
    """InstructLab's default directories for one home (``xdg`` overrides some base directories)."""

    def __init__(self, home, xdg=None):
        self.home = home
        self.xdg = xdg_homes(home)
        self.xdg.update(xdg or {})
        self.config_dir = os.path.join(self.xdg['XDG_CONFIG_HOME'], APP)
        self.config_path = os.path.join(self.config_dir, 'config.yaml')
        self.data_dir = os.path.join(self.xdg['XDG_DATA_HOME'], APP)
        self.cache_dir = os.path.join(self.xdg['XDG_CACHE_HOME'], APP)
        self.models = os.path.join(self.cache_dir, 'models')
        # InstructLab's own data directories
        self.taxonomy = os.path.join(self.data_dir, 'taxonomy')
        self.datasets = os.path.join(self.data_dir, 'datasets')
        self.checkpoints = os.path.join(self.data_dir, 'checkpoints')
        # the collection's, beside them
        self.trained = os.path.join(self.data_dir, 'trained')
        self.converted = os.path.join(self.data_dir, 'converted')
        self.evaluations = os.path.join(self.data_dir, 'evaluations')
        self.labforge_state = os.path.join(self.xdg['XDG_STATE_HOME'], LABFORGE)
        self.logs = os.path.join(self.labforge_state, 'logs')

    def serve_dir(self, name):
        return os.path.join(self.labforge_state, 'serve', name)
