# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""YAML for the ilab_* modules, and InstructLab's config.yaml read (private API).

The managed host's python may lack PyYAML (Debian's minimal python3); the
InstructLab venv always has it: then the venv's python, run as the service user
through the runner, does the YAML work (text and data travel over stdin/stdout
as JSON, never on the command line).

API summary (stable; only additions from now on)::

    from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_yaml

    _ilab_yaml.load(runner, text)                # yaml.safe_load; ValueError on invalid YAML
    _ilab_yaml.dump(runner, data, block=False)   # keys in the given order; block: '|' strings
    _ilab_yaml.read_config(runner, path=None)    # dict ({} when missing); default runner.config_path

``runner`` is an ``_ilab_runner.IlabRunner``; it is used only without PyYAML on
the host. Files are read through ``_fs``, the collection's file layer (a link
the service user planted to one of root's files is refused).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.labforge.instructlab.plugins.module_utils import _fs

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False


class YamlHelperError(Exception):
    pass


def load(runner, text):
    """``yaml.safe_load``; raises ValueError (with the parser's message) on invalid YAML."""
    if HAS_YAML:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(str(e))
    return _helper(runner, dict(op='load', text=text))


def dump(runner, data, block=False):
    """YAML text of ``data`` (keys in the given order; ``block``: multi-line strings as ``|``)."""
    if HAS_YAML:
        return _dump(data, block)
    return _helper(runner, dict(op='dump', data=data, block=block))


def read_config(runner, path=None):
    """The config file (default: the runner's) as a dict, {} when it is missing."""
    path = path or runner.config_path
    if _fs.stat_path(path) is None:
        return {}
    return load(runner, _fs.read_text(path)) or {}


def _dump(data, block):
    class Dumper(yaml.SafeDumper):
        pass

    if block:
        def str_rep(dumper, value):
            return dumper.represent_scalar('tag:yaml.org,2002:str', value, style='|' if '\n' in value else None)
        Dumper.add_representer(str, str_rep)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=4096)


def _helper(runner, request):
    if not os.path.exists(runner.venv_python):
        raise YamlHelperError('PyYAML is missing on the host python and there is no venv python at %s'
                              % runner.venv_python)
    res = runner.python('yaml', HELPER, data=json.dumps(request))
    if res.rc != 0:
        tail = '\n'.join((res.stderr or res.stdout or '').splitlines()[-5:])
        raise YamlHelperError('YAML helper failed (rc=%s): %s' % (res.rc, tail))
    reply = json.loads(res.stdout)
    if 'error' in reply:
        raise ValueError(reply['error'])
    return reply['result']


HELPER = r'''
import json, sys, yaml
req = json.load(sys.stdin)
if req["op"] == "load":
    try:
        out = {"result": yaml.safe_load(req["text"])}
    except yaml.YAMLError as e:
        out = {"error": str(e)}
else:
    class Dumper(yaml.SafeDumper):
        pass
    if req.get("block"):
        Dumper.add_representer(str, lambda d, v: d.represent_scalar(
            "tag:yaml.org,2002:str", v, style="|" if "\n" in v else None))
    out = {"result": yaml.dump(req["data"], Dumper=Dumper, sort_keys=False, allow_unicode=True,
                               default_flow_style=False, width=4096)}
print(json.dumps(out, default=str))
'''
