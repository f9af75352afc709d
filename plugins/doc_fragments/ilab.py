# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options shared by every labforge.instructlab.ilab_* module
    # (plugins/module_utils/_ilab_runner.py: ilab_argument_spec()).
    DOCUMENTATION = r'''
options:
  user:
    description:
      - The InstructLab service user. C(ilab) runs as this user (with its C(HOME) and XDG
        directories); the module itself runs as root (C(become=true)) and drops to this user.
      - When the module already runs as this user, no switch happens.
    type: str
    default: instructlab
  venv:
    description:
      - The InstructLab virtual environment. C(VENV/bin/ilab) is run, with C(VENV/bin) first on
        C(PATH) (ilab shells out to tools of its own venv).
      - The C(labforge.instructlab.instructlab) role publishes it as fact C(instructlab_venv).
    type: path
    default: /opt/instructlab/venv
  config_path:
    description:
      - The ilab configuration file, passed to every command as C(ilab --config PATH).
      - Defaults to the user's C(~/.config/instructlab/config.yaml).
    type: path
  log_dir:
    description:
      - Directory for the logs of each C(ilab) step (combined stdout/stderr, secrets masked). Paths
        are returned so that long steps can be followed with C(tail -f).
      - Defaults to the user's C(~/.local/state/labforge/logs).
    type: path
notes:
  - Every command line is built and run by the collection's private runner
    (C(plugins/module_utils/_ilab_runner.py)). Secrets reach C(ilab) only through its environment,
    never its argument list, and are masked in results and logs.
  - On failure the module reports the step, the exact command (secrets masked), the return code
    and the tail of the step's log, since failing C(ilab) steps can exit 1 with no message.
'''

    # For the modules that need an initialised InstructLab (extends_documentation_fragment:
    # labforge.instructlab.ilab.initialised, next to labforge.instructlab.ilab).
    INITIALISED = r'''
options: {}
requirements:
  - InstructLab installed in O(venv), initialised (M(labforge.instructlab.ilab_config)).
'''
