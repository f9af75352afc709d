# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of labforge.instructlab.run_state (documentation in plugins/modules/run_state.py).

For ``state: check`` it computes, on the controller, the fingerprint of the run's inputs as one
digest per input (``parts``), then runs the module on the host, which probes the host and compares
both with the last record. For ``state: record`` it checks that the fingerprint and the parts of the
check are given and runs the module, which writes the record.

Only INVENTORY variables count (inventory files, group_vars/host_vars, inventory plugins, in the
precedence the variable manager gives them), never facts or what ``set_fact``/``register`` set
during the run: those differ between the start and the end of a run, and between runs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible import context
from ansible.errors import AnsibleActionFail
from ansible.inventory.helpers import get_group_vars, sort_groups
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.release import __version__ as ansible_version
from ansible.utils.vars import combine_vars, merge_hash
from ansible.vars.plugins import get_vars_from_inventory_sources, get_vars_from_path

from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.module_utils import _run_state as rs
from ansible_collections.labforge.instructlab.plugins.modules.run_state import ARGUMENT_SPEC, CONTROLLER_SPEC

MODULE = 'labforge.instructlab.run_state'
SPEC = dict(ARGUMENT_SPEC, **CONTROLLER_SPEC)

# The installed collection: <root>/plugins/action/run_state.py. What of it a run uses.
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTION_DIRS = ('plugins', 'roles', 'playbooks', 'meta')
COLLECTION_FILES = ('MANIFEST.json', 'FILES.json', 'galaxy.yml')
# Python's byte code appears in an installed collection while it runs: never an input.
COLLECTION_EXCLUDE = ('.git', '__pycache__')


def collection_digest(root=None):
    """Digest of the files of the collection that a run uses (plugins, roles, playbooks, meta and
    its manifest; links recorded as links, byte code left out)."""
    root = os.path.realpath(root or COLLECTION_ROOT)
    entries = {}
    for name in COLLECTION_DIRS + COLLECTION_FILES:
        path = os.path.realpath(os.path.join(root, name))
        try:
            if _fs.isdir(path):
                entries[name] = _fs.tree_digest(path, exclude=COLLECTION_EXCLUDE)[0]
            elif _fs.isfile(path):
                entries[name] = _fs.path_digest(path)
        except (IOError, OSError) as e:
            entries[name] = 'error: %s' % to_text(e)
    return rs.digest(entries)


def controller_path_digest(path):
    """Digest of a file or directory on the controller ('absent' when there is none; the error
    when it cannot be read: the run then counts as changed until it can)."""
    real = os.path.realpath(os.path.expanduser(path))
    try:
        if not _fs.exists(real):
            return 'absent'
        return _fs.path_digest(real, exclude=('.git', '__pycache__'))
    except (IOError, OSError) as e:
        return 'error: %s' % to_text(e)


def inventory_vars(inventory, loader, host, basedirs=(), stage='task'):
    """The variables the inventory gives ``host``, in the variable manager's default precedence
    (the 'all' group, the other groups by depth and priority, the host; inline variables, then
    inventory sources' vars plugins, then the ones beside the playbook), without facts, play,
    role or task variables, set_fact or register."""
    all_group = inventory.groups.get('all')
    groups = sort_groups([g for g in host.get_groups() if g.name != 'all'])

    def sources(entities):
        return get_vars_from_inventory_sources(loader, inventory._sources, entities, stage)

    def beside(entities):
        data = {}
        for path in basedirs:
            data = combine_vars(data, get_vars_from_path(loader, path, entities, stage))
        return data

    data = {}
    if all_group is not None:
        for layer in (all_group.get_vars(), sources([all_group]), beside([all_group])):
            data = combine_vars(data, layer)
    for layer in (get_group_vars(groups), sources(groups), beside(groups),
                  host.get_vars(), sources([host]), beside([host])):
        data = combine_vars(data, layer)
    return data


def value_digest(value):
    """rs.digest of a variable's value; a value that cannot be read (a vaulted value without its
    secret) counts as its error, so the run goes on and its own task reports it."""
    try:
        return rs.digest(value)
    except Exception as e:  # the value's own str() raised
        return rs.digest({'unreadable': type(e).__name__})


def lookup_key(data, dotted):
    """``data['a']['b']`` for 'a.b' (None when missing)."""
    name, _sep, key = dotted.partition('.')
    value = data.get(name) if isinstance(data, dict) else None
    if key:
        value = value.get(key) if isinstance(value, dict) else None
    return value


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(SPEC)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=SPEC)
        try:
            rs.record_path(args['state_dir'], args['playbook'])
        except ValueError as e:
            raise AnsibleActionFail('playbook: %s' % e)
        if args['state'] == 'check':
            if args.get('fingerprint') or args.get('parts'):
                raise AnsibleActionFail('fingerprint and parts: leave them out with state=check; the check computes '
                                        'them (pass them to state=record)')
            args['parts'] = self.run_parts(args, task_vars)
            args['fingerprint'] = rs.fingerprint(args['parts'])
        elif not args.get('fingerprint') or not isinstance(args.get('parts'), dict) or not args['parts']:
            raise AnsibleActionFail('fingerprint and parts are required with state=record: pass the fingerprint and '
                                    'parts that the check at the start of this run returned, so that what the run '
                                    'set meanwhile cannot change them')
        module_args = dict((k, args[k]) for k in ARGUMENT_SPEC if args.get(k) is not None)
        result = merge_hash(result, self._execute_module(module_name=MODULE, module_args=module_args,
                                                         task_vars=task_vars))
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    # ------------------------------------------------------------- the inputs
    def _inventory(self, task_vars):
        hostvars = task_vars.get('hostvars')
        inventory = getattr(hostvars, '_inventory', None)
        manager = getattr(hostvars, '_variable_manager', None)
        if inventory is None or manager is None:
            raise AnsibleActionFail('run_state needs the inventory of the run (hostvars): run it in a play')
        return hostvars, inventory, manager

    def run_parts(self, args, task_vars):
        """``{part: digest}`` of the run's inputs (see the module's documentation)."""
        hostvars, inventory, manager = self._inventory(task_vars)
        hosts = args.get('hosts') or task_vars.get('ansible_play_hosts_all') or [task_vars.get('inventory_hostname')]
        basedirs = self._basedirs()
        per_host, groups = {}, {}
        for name in sorted(set(hosts)):
            host = inventory.get_host(name)
            if host is None:
                raise AnsibleActionFail('hosts: %s is not a host of the inventory' % name)
            per_host[name] = inventory_vars(inventory, self._loader, host, basedirs)
            groups[name] = sorted(g.name for g in host.get_groups())

        extra = dict((k, v) for k, v in (manager.extra_vars or {}).items() if rs.is_input(k))
        parts = {
            'collection': collection_digest(),
            'ansible_core': rs.digest(ansible_version),
            'playbook': rs.digest(args['playbook']),
            'run_options': rs.digest(dict((k, context.CLIARGS.get(k)) for k in ('tags', 'skip_tags', 'subset'))),
            'hosts': rs.digest(groups),
        }
        names = set()
        for data in per_host.values():
            names.update(k for k in data if rs.is_input(k))
        for var in sorted(names):
            parts['var:' + var] = value_digest(dict((h, data[var]) for h, data in per_host.items() if var in data))
        for var in sorted(extra):
            parts['extra:' + var] = value_digest(extra[var])
        for dotted in args['controller_vars']:
            files = self._controller_files(dotted, per_host, extra, hostvars)
            if files:
                parts['files:' + dotted] = rs.digest(files)
        return parts

    def _basedirs(self):
        """Where group_vars/host_vars beside the playbook are looked for (as the variable manager
        does for a task)."""
        try:
            return list(self._task.get_search_path())
        except Exception:  # a task without a play context (unit tests): none
            return []

    def _role_defaults(self):
        role = getattr(self._task, '_role', None)
        try:
            return role.get_default_vars() if role is not None else {}
        except Exception:
            return {}

    def _controller_files(self, dotted, per_host, extra, hostvars):
        """``{path: digest}`` of the controller paths the variable ``dotted`` names, for every host:
        its extra variable, else its inventory value, else the role's default; templated with the
        host's variables. A value that cannot be templated counts as its error (the run then
        goes on, and its own task reports it)."""
        name = dotted.partition('.')[0]
        defaults = self._role_defaults()
        files = {}
        for host in sorted(per_host):
            for source in (extra, per_host[host], defaults):
                if name in source:
                    raw = source[name]
                    break
            else:
                continue
            try:
                templar = self._templar.copy_with_new_env(available_variables=hostvars.raw_get(host))
                value = lookup_key({name: templar.template(raw)}, dotted)
            except Exception as e:
                files['error: %s of %s' % (name, host)] = to_text(e)
                continue
            if value:
                path = to_text(value)
                if path not in files:
                    files[path] = controller_path_digest(path)
        return files
