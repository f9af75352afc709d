#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: run_state
short_description: Tell a no-op rerun of a playbook from a run with work to do
version_added: 0.1.0
description:
  - Keeps, per host and per playbook, a record of the last complete run - the fingerprint of the run's inputs
    and a cheap probe of the host - and compares a new run with it, so that a rerun that would change nothing
    can end after one module call per host instead of running every step's own idempotence checks.
  - On the controller (the action plugin), O(state=check) computes the fingerprint of the run's inputs, one
    digest per input (RV(parts)), so that a mismatch names the inputs that changed. The inputs are the following.
  - The collection's own files (C(plugins/), C(roles/), C(playbooks/), C(meta/) of the installed collection,
    C(__pycache__) left out).
  - For every host of O(hosts), its B(inventory) variables (inventory files, C(group_vars/), C(host_vars/),
    inventory plugins; not facts, not variables set with M(ansible.builtin.set_fact) or C(register) during the
    run) whose names start with C(labforge_), C(instructlab_), C(python_), C(nvidia_driver_), its
    C(ansible_host) and its groups; extra variables (C(-e)) with those prefixes. C(labforge_full_run) is not an
    input.
  - The controller files and directories that the variables of O(controller_vars) name (the taxonomy, models
    copied from the controller).
  - The playbook (O(playbook)), the ansible-core version, and the run's tags, skipped tags and limit.
  - On the host, the module then probes - C(lstat) of the paths the last record listed (through the collection's
    file layer; links with their targets), the C(ActiveState) and C(UnitFileState) of the collection's serve
    units (C(labforge-ilab-serve-*.service) in O(unit_dir)) in one C(systemctl show), and the kernel release -
    and compares the fingerprint and the probe with the record. Nothing on the host is changed.
  - O(state=record) writes the record - O(fingerprint) and O(parts) as the check at the start of the run
    computed them (so that what the run itself sets cannot make the next check differ), and a new probe of
    O(paths) - to O(state_dir)/O(playbook).json (root, directory 0700, file 0600), atomically through the file
    layer. It reports a change only when the record's content differs.
  - The role labforge.instructlab.pipeline wires it into the playbooks C(site), C(pipeline) and C(provision)
    (entry points C(run_check) and C(run_record)); see its README.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.attributes
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  async:
    description: Supports being used with the C(async) keyword.
    support: none
  check_mode:
    support: full
    details: O(state=check) only reads and runs the same in check mode. O(state=record) predicts whether the
      record would change and writes nothing.
  diff_mode:
    support: full
    details: O(state=record) shows the fingerprint and the probe before and after.
  idempotent:
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
options:
  state:
    description:
      - V(check) compares this run with the last record; V(record) writes the record of this run.
    type: str
    required: true
    choices: [check, record]
  playbook:
    description:
      - The name the run is recorded under (letters, digits, C(_), C(.), C(-)); one record per playbook and host.
      - Part of the fingerprint.
    type: str
    required: true
  fingerprint:
    description:
      - The fingerprint of the run's inputs.
      - O(state=check) - computed by the action plugin on the controller; leave it out.
      - O(state=record) - required; the RV(fingerprint) that the check of this run returned.
    type: str
  parts:
    description:
      - The digest of each input (part name to digest), as RV(parts) of the check.
      - O(state=check) - computed by the action plugin; leave it out. O(state=record) - required.
    type: dict
  paths:
    description:
      - O(state=record) - the paths on the host the roles manage (the venv link, the interpreter, model files,
        the configuration, records), probed now and by every later check. Relative paths are refused.
      - The serve units' files are always probed.
    type: list
    elements: str
    default: []
  state_dir:
    description:
      - Root-only directory of the records (created 0700 when missing).
    type: path
    default: /var/lib/labforge/run-state
  unit_dir:
    description:
      - Where the serve units' files are (C(ilab_model_serve)'s O(labforge.instructlab.ilab_model_serve#module:unit_dir)).
    type: path
    default: /etc/systemd/system
  hosts:
    description:
      - Controller only (O(state=check)) - the hosts whose inventory variables are inputs.
      - Defaults to every host of the play (C(ansible_play_hosts_all)).
    type: list
    elements: str
  controller_vars:
    description:
      - Controller only (O(state=check)) - variables (a dictionary's key as C(var.key)) that name a file or
        directory on the controller; its content is an input. The value is the host's inventory value, else the
        default of the role the task belongs to, templated with the host's variables. Empty values are left out.
    type: list
    elements: str
    default: [labforge_taxonomy_dir, labforge_teacher_model.controller_src, labforge_student_model.controller_src]
notes:
  - The probe is cheap on purpose - it sees a changed link, a replaced or rewritten file, a stopped or disabled
    serve unit, a new kernel; not a file edited in place inside a directory it does not list. Use a full run
    (the role's C(labforge_full_run)) after changing a host by hand.
  - Directories that the run itself fills on the controller (the trained models, a controller wheelhouse) are
    not inputs - their content is a result of the inputs.
seealso:
  - module: labforge.instructlab.ilab_model_serve
'''

EXAMPLES = r'''
- name: Compare this run with the last complete one
  labforge.instructlab.run_state:
    state: check
    playbook: site
  become: true
  check_mode: false
  register: run

- name: Say why the run goes on
  ansible.builtin.debug:
    msg: "{{ run.reason }}"
  when: not run.current

# ... the run's plays, each starting with `ansible.builtin.meta: end_host` when run.current ...

- name: Record the run for the next one (the fingerprint of its start)
  labforge.instructlab.run_state:
    state: record
    playbook: site
    fingerprint: "{{ run.fingerprint }}"
    parts: "{{ run.parts }}"
    paths:
      - /opt/instructlab/venv
      - /usr/local/bin/ilab
  become: true
'''

RETURN = r'''
current:
  description: O(state=check) - whether the inputs and the host are as the last record says.
  returned: state is check
  type: bool
  sample: false
reason:
  description: Why the run is not current (the inputs that changed, the drift of the host), or that it is.
  returned: always
  type: str
  sample: "inputs changed: inventory variable labforge_train; the host changed: /opt/instructlab/venv (target changed)"
changed_inputs:
  description: O(state=check) - the names of the parts that differ from the record.
  returned: state is check
  type: list
  elements: str
  sample: [var:labforge_train, files:labforge_taxonomy_dir]
drift:
  description: O(state=check) - what of the host differs from the record's probe (C(kernel), C(path:PATH), C(unit:UNIT)).
  returned: state is check
  type: list
  elements: str
  sample: ["unit:labforge-ilab-serve-main.service"]
fingerprint:
  description: The fingerprint of the run's inputs.
  returned: always
  type: str
  sample: sha256:5f1c0c5e9d0b4c8e8f3c1c4f7a9f0d6e2b3a1c9d8e7f6a5b4c3d2e1f0a9b8c7d
parts:
  description: The digest of each input (C(collection), C(ansible_core), C(playbook), C(run_options), C(hosts),
    C(var:NAME), C(extra:NAME), C(files:NAME)).
  returned: always
  type: dict
  sample: {"var:labforge_train": "sha256:3b0f...", "files:labforge_taxonomy_dir": "sha256:9a1d..."}
playbook:
  description: O(playbook).
  returned: always
  type: str
  sample: site
record:
  description: The record's path on the host.
  returned: always
  type: str
  sample: /var/lib/labforge/run-state/site.json
probe:
  description: The probe of the host taken now (C(kernel), C(systemctl), C(paths), C(units)).
  returned: always
  type: dict
  sample: {"kernel": "6.1.0-28-amd64", "systemctl": true, "paths": {"/usr/local/bin/ilab": {"kind": "file"}},
           "units": {"labforge-ilab-serve-main.service": {"active": "running", "enabled": "enabled"}}}
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(current),
      RV(reason), RV(changed_inputs), RV(drift), RV(record), those of them that have a value."
  returned: always
  type: dict
'''

import os
import posixpath

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.module_utils import _report
from ansible_collections.labforge.instructlab.plugins.module_utils import _run_state as rs
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_serve import UNIT_PREFIX
from ansible_collections.labforge.instructlab.plugins.module_utils._systemd import Systemd

ARGUMENT_SPEC = dict(
    state=dict(type='str', required=True, choices=['check', 'record']),
    playbook=dict(type='str', required=True),
    fingerprint=dict(type='str'),
    parts=dict(type='dict'),
    paths=dict(type='list', elements='str', default=[]),
    state_dir=dict(type='path', default=rs.STATE_DIR),
    unit_dir=dict(type='path', default='/etc/systemd/system'),
)
# Options the action plugin reads on the controller and does not pass on.
CONTROLLER_SPEC = dict(
    hosts=dict(type='list', elements='str'),
    controller_vars=dict(type='list', elements='str',
                         default=['labforge_taxonomy_dir', 'labforge_teacher_model.controller_src',
                                  'labforge_student_model.controller_src']),
)


def serve_units(unit_dir):
    """The collection's serve units that have a file in ``unit_dir`` (sorted names)."""
    try:
        entries = _fs.scandir(unit_dir)
    except (IOError, OSError):
        return []
    return [name for name, _st in entries if name.startswith(UNIT_PREFIX) and name.endswith('.service')]


def take_probe(module, paths, unit_dir):
    """The host as the record keeps it: the paths, the serve units' files and states, the kernel."""
    units = serve_units(unit_dir)
    systemd = Systemd(module, required=False)
    unit_states = {}
    if systemd.systemctl and units:
        shown = systemd.show_many(units, 'ActiveState', 'UnitFileState')
        for unit in units:
            props = shown.get(unit, {})
            unit_states[unit] = rs.unit_state(props.get('ActiveState'), props.get('UnitFileState'))
    probed = list(paths) + [posixpath.join(unit_dir, u) for u in units]
    return dict(kernel=os.uname()[2], systemctl=bool(systemd.systemctl),
                paths=dict((p, rs.probe_path(p)) for p in probed), units=unit_states)


def summary(record):
    """What the diff shows of a record."""
    if not isinstance(record, dict):
        return {}
    return dict(fingerprint=record.get('fingerprint'), paths=record.get('paths'), probe=record.get('probe'))


def main():
    # The controller's options are accepted (the action plugin does not pass them on).
    module = AnsibleModule(argument_spec=dict(ARGUMENT_SPEC, **CONTROLLER_SPEC), supports_check_mode=True)
    _report.attach(module, 'current', 'reason', 'changed_inputs', 'drift', 'record')
    p = module.params
    try:
        path = rs.record_path(p['state_dir'], p['playbook'])
    except ValueError as e:
        module.fail_json(msg='playbook: %s' % e)
    if not p['fingerprint'] or p['parts'] is None:
        module.fail_json(msg='fingerprint and parts are required: the action plugin computes them for state=check; '
                             'for state=record pass the fingerprint and parts that the check of this run returned')
    relative = [x for x in p['paths'] if not x.startswith('/')]
    if relative:
        module.fail_json(msg='paths must be absolute, got %s' % ', '.join(relative))
    record = _fs.read_json(path)
    result = dict(changed=False, playbook=p['playbook'], record=path, fingerprint=p['fingerprint'], parts=p['parts'])

    if p['state'] == 'check':
        paths = record.get('paths') if isinstance(record, dict) and isinstance(record.get('paths'), list) else []
        probe = take_probe(module, [x for x in paths if isinstance(x, str)], p['unit_dir'])
        current, reasons, inputs, drifted = rs.compare(record, p['fingerprint'], p['parts'], probe)
        result.update(current=current, changed_inputs=inputs, drift=drifted, probe=probe,
                      reason='; '.join(reasons) if reasons else 'nothing changed since the last complete run')
        module.exit_json(**result)

    probe = take_probe(module, p['paths'], p['unit_dir'])
    new = rs.build_record(p['playbook'], p['fingerprint'], p['parts'], p['paths'], probe)
    result.update(probe=probe, changed=new != record)
    result['reason'] = 'recorded' if result['changed'] else 'the record is up to date'
    if result['changed'] and module._diff:
        result['diff'] = dict(before=summary(record), after=summary(new), before_header=path, after_header=path)
    if result['changed'] and not module.check_mode:
        try:
            _fs.private_dir(p['state_dir'])
            _fs.write_json(path, new, mode=0o600)
        except (IOError, OSError) as e:
            module.fail_json(msg='cannot write the run record %s: %s' % (path, e), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
