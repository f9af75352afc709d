# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""labforge.instructlab.run_state on the controller: the fingerprint of a run's inputs, computed
from a real inventory (hosts.yml, group_vars/, host_vars/ through ansible-core's inventory manager,
variable manager and vars plugins), the role's real defaults and files on the controller.

It is stable (the same inputs give the same fingerprint; facts and set_fact do not count), every
kind of input changes it, and the check's reason names the input that changed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil

import pytest
import yaml

from ansible import context
from ansible.errors import AnsibleActionFail
from ansible.inventory.manager import InventoryManager
from ansible.module_utils.common.collections import ImmutableDict
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.vars import host_group_vars
from ansible.template import Templar
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.labforge.instructlab.plugins.action import run_state as action_mod
from ansible_collections.labforge.instructlab.plugins.module_utils import _run_state as rs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
HOSTS = ['lf-a', 'lf-b', 'lf-c']


class FakeRole(object):
    """The role the task belongs to: labforge.instructlab.pipeline's real defaults."""

    def __init__(self, loader):
        self.defaults = loader.load_from_file(os.path.join(ROOT, 'roles', 'pipeline', 'defaults', 'main.yml'),
                                              trusted_as_template=True)

    def get_default_vars(self):
        return dict(self.defaults)


class FakeTask(object):
    def __init__(self, args, role, check_mode=False):
        self.args = args
        self.check_mode = check_mode
        self.async_val = 0
        self.action = 'labforge.instructlab.run_state'
        self._role = role

    def get_search_path(self):
        return []


class FakeShell(object):
    tmpdir = None


class FakeConnection(object):
    def __init__(self):
        self._shell = FakeShell()


class Controller(object):
    """A controller with the inventory in ``tmp/inv``, loaded afresh for every run (as each
    ansible-playbook run loads it)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.inv = tmp / 'inv'
        self.extra_vars = {}
        self.modules = []
        self.write('hosts.yml', {'instructlab': {'children': {
            'instructlab_teachers': {'hosts': {'lf-a': {'ansible_host': '10.0.0.1'}}},
            'instructlab_trainers': {'hosts': {'lf-b': None}},
            'instructlab_servers': {'hosts': {'lf-b': None, 'lf-c': None}}}}})
        self.write('group_vars/instructlab.yml', {
            'labforge_train': {'pipeline': 'simple', 'device': 'cpu'},
            'labforge_student_model': {'controller_src': '{{ inventory_dir }}/files/student', 'name': 'student'},
            'instructlab_version': '0.26.1',
            'unrelated_setting': 1})
        self.write('host_vars/lf-b.yml', {'python_version': '3.11.9'})
        self.write('files/taxonomy/compositional_skills/greet/qna.yaml', 'version: 3\n')
        self.write('files/student/config.json', '{"hidden_size": 64}\n')
        self.load()

    def write(self, rel, data):
        path = self.inv / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))

    def edit(self, rel, fn):
        path = self.inv / rel
        data = yaml.safe_load(path.read_text())
        fn(data)
        path.write_text(yaml.safe_dump(data))

    def load(self):
        host_group_vars.FOUND.clear()   # the vars plugin's list of files per directory
        self.loader = DataLoader()
        self.inventory = InventoryManager(loader=self.loader, sources=[str(self.inv / 'hosts.yml')])
        self.manager = VariableManager(loader=self.loader, inventory=self.inventory)
        self.manager._extra_vars = dict(self.extra_vars)
        self.hostvars = HostVars(inventory=self.inventory, variable_manager=self.manager, loader=self.loader)

    def action(self, check_mode=False, **args):
        task = FakeTask(dict(dict(state='check', playbook='site'), **args), FakeRole(self.loader), check_mode)
        action = action_mod.ActionModule(task, FakeConnection(), None, self.loader, Templar(loader=self.loader))

        def execute_module(module_name=None, module_args=None, task_vars=None, **kw):
            self.modules.append((module_name, dict(module_args)))
            return dict(changed=False, current=False)

        action._execute_module = execute_module
        action._remove_tmp_path = lambda *a, **kw: None
        return action

    def task_vars(self, host='lf-a'):
        return {'hostvars': self.hostvars, 'ansible_play_hosts_all': list(HOSTS), 'inventory_hostname': host}

    def parts(self, reload=True, host='lf-a', **args):
        """The parts a check on ``host`` computes (the inventory read again first)."""
        if reload:
            self.load()
        self.modules = []
        self.action(**args).run(task_vars=self.task_vars(host))
        (name, module_args), = self.modules
        assert name == 'labforge.instructlab.run_state'
        assert module_args['fingerprint'] == rs.fingerprint(module_args['parts'])
        return module_args['parts']


@pytest.fixture
def controller(tmp_path, monkeypatch):
    # a small collection of its own: the digest of the real checkout is tested once, below
    coll = tmp_path / 'collection'
    for rel, text in (('plugins/modules/m.py', 'print(1)\n'), ('roles/r/tasks/main.yml', '---\n'),
                      ('playbooks/site.yml', '---\n'), ('meta/runtime.yml', 'requires_ansible: ">=2.16"\n'),
                      ('MANIFEST.json', '{}\n'), ('tests/unit/test_x.py', 'x = 1\n')):
        (coll / rel).parent.mkdir(parents=True, exist_ok=True)
        (coll / rel).write_text(text)
    monkeypatch.setattr(action_mod, 'COLLECTION_ROOT', str(coll))
    monkeypatch.setattr(context, 'CLIARGS', ImmutableDict(tags=('all',), skip_tags=(), subset=None))
    return Controller(tmp_path)


def changed(controller, before, reason_words=None):
    after = controller.parts()
    names = rs.changed_parts(before, after)
    if reason_words is not None:
        record = rs.build_record('site', rs.fingerprint(before), before, [], {})
        current, reasons, inputs, drifted = rs.compare(record, rs.fingerprint(after), after, {})
        assert not current and reasons == ['inputs changed: ' + reason_words] and inputs == names
    return names


# ------------------------------------------------------------------ stability
def test_the_same_inputs_give_the_same_fingerprint(controller):
    first = controller.parts()
    assert controller.parts() == first
    assert controller.parts(host='lf-c') == first   # every host of the run computes the same
    assert sorted(first) == [
        'ansible_core', 'collection', 'files:labforge_student_model.controller_src', 'files:labforge_taxonomy_dir',
        'hosts', 'playbook', 'run_options', 'var:ansible_host', 'var:instructlab_version',
        'var:labforge_student_model', 'var:labforge_train', 'var:python_version']


def test_facts_and_set_fact_do_not_change_it(controller):
    """What a run sets (set_fact, register, gathered facts) differs between its start and its end:
    the fingerprint the record keeps would otherwise never match the next check."""
    before = controller.parts()
    controller.manager.set_nonpersistent_facts('lf-b', {
        'labforge_student': {'path': '/var/lib/instructlab/models/student'},   # set_fact'd by the pipeline
        'labforge_train': {'pipeline': 'full'},                                # even one shadowing an input
        'instructlab_venv': '/opt/instructlab/venv', 'python_interpreter': '/usr/bin/python3.11'})
    controller.manager.set_host_facts('lf-a', {'python_version': '3.12', 'labforge_x': 1})
    assert controller.parts(reload=False) == before


@pytest.mark.parametrize('where', ['inventory', 'extra'])
def test_labforge_full_run_is_not_an_input(controller, where):
    """Asking for a full run once must not make the next run a full one as well."""
    before = controller.parts()
    if where == 'inventory':
        controller.edit('group_vars/instructlab.yml', lambda d: d.update(labforge_full_run=True))
    else:
        controller.extra_vars['labforge_full_run'] = True
    assert changed(controller, before) == []


def test_bytecode_and_tests_of_the_collection_are_not_inputs(controller):
    before = controller.parts()
    coll = controller.tmp / 'collection'
    (coll / 'plugins' / 'modules' / '__pycache__').mkdir()
    (coll / 'plugins' / 'modules' / '__pycache__' / 'm.cpython-311.pyc').write_bytes(b'\0')
    (coll / 'tests' / 'unit' / 'test_x.py').write_text('x = 2\n')
    assert changed(controller, before) == []


def test_the_digest_of_the_real_collection_is_stable():
    assert action_mod.collection_digest(ROOT) == action_mod.collection_digest(ROOT)


# ------------------------------------------------------------------ each input
def edit_group_var(c):
    c.edit('group_vars/instructlab.yml', lambda d: d['labforge_train'].update(num_epochs=2))


def edit_host_var(c):
    c.edit('host_vars/lf-b.yml', lambda d: d.update(python_version='3.11.10'))


def new_var(c):
    c.edit('host_vars/lf-b.yml', lambda d: d.update(nvidia_driver_branch='550'))


def move_address(c):
    c.edit('hosts.yml', lambda d: d['instructlab']['children']['instructlab_teachers']['hosts']['lf-a'].update(
        ansible_host='10.0.0.9'))


def regroup(c):
    c.edit('hosts.yml', lambda d: d['instructlab']['children']['instructlab_trainers']['hosts'].update({'lf-c': None}))


def edit_taxonomy(c):
    c.write('files/taxonomy/compositional_skills/greet/qna.yaml', 'version: 3\ncreated_by: me\n')


def add_taxonomy_file(c):
    c.write('files/taxonomy/knowledge/new/qna.yaml', 'version: 3\n')


def edit_student(c):
    c.write('files/student/config.json', '{"hidden_size": 128}\n')


def edit_collection(c):
    (c.tmp / 'collection' / 'roles' / 'r' / 'tasks' / 'main.yml').write_text('---\n- name: new\n')


def extra_var(c):
    c.extra_vars['labforge_verify'] = 'chat'


@pytest.mark.parametrize('change,names,words', [
    (edit_group_var, ['var:labforge_train'], 'inventory variable labforge_train'),
    (edit_host_var, ['var:python_version'], 'inventory variable python_version'),
    (new_var, ['var:nvidia_driver_branch'], 'inventory variable nvidia_driver_branch'),
    (move_address, ['var:ansible_host'], 'inventory variable ansible_host'),
    (regroup, ['hosts'], 'the hosts, their groups or ansible_host'),
    (edit_taxonomy, ['files:labforge_taxonomy_dir'], 'the controller files of labforge_taxonomy_dir'),
    (add_taxonomy_file, ['files:labforge_taxonomy_dir'], 'the controller files of labforge_taxonomy_dir'),
    (edit_student, ['files:labforge_student_model.controller_src'],
     'the controller files of labforge_student_model.controller_src'),
    (edit_collection, ['collection'], "the collection's files"),
    (extra_var, ['extra:labforge_verify'], 'extra variable labforge_verify'),
])
def test_each_input_changes_it_and_the_reason_names_it(controller, change, names, words):
    before = controller.parts()
    change(controller)
    assert changed(controller, before, words) == names


def test_the_playbook_the_ansible_version_tags_and_limit_are_inputs(controller, monkeypatch):
    before = controller.parts()
    assert rs.changed_parts(before, controller.parts(playbook='pipeline')) == ['playbook']
    monkeypatch.setattr(action_mod, 'ansible_version', '2.99.0')
    assert changed(controller, before, 'the ansible-core version') == ['ansible_core']
    monkeypatch.undo()
    for cli in (dict(tags=('train',), skip_tags=(), subset=None), dict(tags=('all',), skip_tags=(), subset='lf-b')):
        monkeypatch.setattr(action_mod, 'COLLECTION_ROOT', str(controller.tmp / 'collection'))
        monkeypatch.setattr(context, 'CLIARGS', ImmutableDict(**cli))
        assert changed(controller, before, "the run's tags, skipped tags or limit") == ['run_options']


def test_a_taxonomy_set_in_the_inventory_wins_over_the_default(controller):
    before = controller.parts()
    shutil.copytree(str(controller.inv / 'files' / 'taxonomy'), str(controller.tmp / 'elsewhere'))
    controller.edit('group_vars/instructlab.yml', lambda d: d.update(labforge_taxonomy_dir=str(controller.tmp / 'elsewhere')))
    after = controller.parts()
    # same content in another place: the variable, and the files by their place
    assert rs.changed_parts(before, after) == ['files:labforge_taxonomy_dir', 'var:labforge_taxonomy_dir']
    (controller.tmp / 'elsewhere' / 'compositional_skills' / 'greet' / 'qna.yaml').write_text('version: 4\n')
    edit_taxonomy(controller)   # the default's files no longer count
    assert rs.changed_parts(after, controller.parts()) == ['files:labforge_taxonomy_dir']


def test_a_value_that_cannot_be_read_counts_as_its_error(controller):
    class Vaulted(object):
        def __str__(self):
            raise RuntimeError('no vault secret')
    assert action_mod.value_digest({'lf-a': Vaulted()}) == action_mod.value_digest({'lf-b': Vaulted()})
    assert action_mod.value_digest({'lf-a': Vaulted()}) != action_mod.value_digest({'lf-a': 'x'})


def test_a_missing_controller_path_counts_as_absent(controller):
    before = controller.parts()
    shutil.rmtree(str(controller.inv / 'files' / 'student'))
    assert changed(controller, before) == ['files:labforge_student_model.controller_src']
    assert controller.parts() == controller.parts()


# ------------------------------------------------------------------ the action
def test_the_check_hands_the_fingerprint_to_the_module(controller):
    controller.load()
    controller.action(check_mode=True, state_dir='/srv/state').run(task_vars=controller.task_vars())
    (name, args), = controller.modules
    assert sorted(args) == ['fingerprint', 'parts', 'paths', 'playbook', 'state', 'state_dir', 'unit_dir']
    assert (args['state'], args['playbook'], args['state_dir']) == ('check', 'site', '/srv/state')


def test_the_record_passes_the_checks_fingerprint_on_unchanged(controller):
    controller.load()
    parts = {'playbook': 'sha256:1'}
    controller.action(state='record', fingerprint='sha256:f', parts=parts, paths=['/opt/instructlab/venv']).run(
        task_vars=controller.task_vars())
    (name, args), = controller.modules
    assert (args['fingerprint'], args['parts'], args['paths']) == ('sha256:f', parts, ['/opt/instructlab/venv'])


@pytest.mark.parametrize('args,words', [
    (dict(state='record'), 'fingerprint and parts are required with state=record'),
    (dict(state='record', fingerprint='sha256:f'), 'fingerprint and parts are required with state=record'),
    (dict(fingerprint='sha256:f'), 'leave them out with state=check'),
    (dict(playbook='a/b'), 'playbook: playbook must be a name'),
    (dict(hosts=['lf-z']), 'hosts: lf-z is not a host of the inventory'),
])
def test_bad_input_fails_on_the_controller_before_the_host_is_touched(controller, args, words):
    controller.load()
    with pytest.raises(AnsibleActionFail) as e:
        controller.action(**args).run(task_vars=controller.task_vars())
    assert words in str(e.value)
    assert controller.modules == []
