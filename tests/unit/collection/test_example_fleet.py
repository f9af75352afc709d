"""The example GPU fleet (inventories/example/) works in logic.

Every host of the inventory is resolved with Ansible's own inventory and
variable managers, and every ``labforge.instructlab.*`` task of the stage of
the role labforge.instructlab.pipeline that each play of
playbooks/pipeline.yml runs on it has its arguments templated from that host's
variables (over the role's defaults, under its vars/main.yml and block vars),
the way the role turns ``labforge_*`` variables into module arguments (results
registered at run time stay ``<runtime>``, ``omit`` stays ``<omit>``). The
tests then check that:

* each setting of the fleet lands where it is meant to: pipeline, backend,
  GPUs, tensor parallelism, the model rolled out and where it comes from;
* each ``ilab_model_serve`` call passes the module's own backend checks
  (no setting that cannot act on its backend) on that host's GPU count;
* each server gets a model format its backend serves from the trainer it
  rolls out from (InstructLab 0.26.1: ``simple`` writes a GGUF, ``full`` a
  checkpoint and GGUF files, ``accelerated`` Hugging Face checkpoints);
* every ``labforge_*`` variable and key a group_vars file sets is read by a
  stage that runs on a host of that group;
* a setting the InstructLab configuration keeps (the pipelines, the train
  device) is written by ilab_config only: the modules that read it from the
  configuration are not given it again.

The resolution runs in a fresh interpreter (other unit tests configure
Ansible's collection loader for their own needs).
"""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_serve as srv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
INVENTORY = os.path.join(ROOT, 'inventories', 'example')

RESOLVER = r'''
import json, os, re, sys
import yaml
from ansible.errors import AnsibleError, AnsibleUndefinedVariable
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible.vars.manager import VariableManager
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

# what ansible-playbook does first: plugins by FQCN (lookup('ansible.builtin.env') in the defaults)
_AnsibleCollectionFinder(paths=[])._install()

ROOT, INVENTORY = sys.argv[1], sys.argv[2]
PLAYBOOK = os.path.join(ROOT, 'playbooks', 'pipeline.yml')
ROLE = os.path.join(ROOT, 'roles', 'pipeline')
NESTED = ('block', 'rescue', 'always')
REF = re.compile(r"(?<![\w])(labforge_\w+)(?:\[['\"](\w+)['\"]\])?")
MODEL_KEY = re.compile(r"__pipeline_model\[['\"](\w+)['\"]\]")

try:
    from ansible.errors import AnsibleValueOmittedError
except ImportError:
    AnsibleValueOmittedError = None


def trusted(node):
    if isinstance(node, str):
        return trust_as_template(node)
    if isinstance(node, dict):
        return dict((k, trusted(v)) for k, v in node.items())
    if isinstance(node, list):
        return [trusted(v) for v in node]
    return node


def plain(value):
    if isinstance(value, dict):
        return dict((str(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return str(value)


def render(templar, value):
    try:
        out = templar.template(trusted(value))
    except AnsibleUndefinedVariable:
        return '<runtime>'
    except AnsibleError as e:
        if AnsibleValueOmittedError is not None and isinstance(e, AnsibleValueOmittedError):
            return '<omit>'
        raise
    return plain(out)


def tasks(node, scope=None):
    """The tasks of a task list, blocks flattened, each with the vars of its blocks."""
    for item in node or []:
        if any(k in item for k in NESTED):
            inner = dict(scope or {}, **(item.get('vars') or {}))
            for key in NESTED:
                for t in tasks(item.get(key), inner):
                    yield t
        else:
            yield item, dict(scope or {})


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def role_import(play):
    """The import_role of the pipeline role in a play (after the meta: end_host that starts it)."""
    for task in play.get('tasks') or []:
        spec = task.get('ansible.builtin.import_role')
        if spec and spec['name'] == 'labforge.instructlab.pipeline':
            return spec
    raise AssertionError('play %r imports no labforge.instructlab.pipeline stage' % play['name'])


def role_tasks(play):
    """The role's tasks a play runs: the tasks_from file of its import_role."""
    return load(os.path.join(ROLE, 'tasks', '%s.yml' % role_import(play).get('tasks_from', 'main')))


# The no-op rerun's plays (compare with the last run, record it) act on no setting of the fleet.
RUN_STATE = ('run_check', 'run_record')


loader = DataLoader()
inventory = InventoryManager(loader=loader, sources=[os.path.join(INVENTORY, 'hosts.yml')])
manager = VariableManager(loader=loader, inventory=inventory)
hostvars = dict((h.name, manager.get_vars(host=h)) for h in inventory.get_hosts())
plays = load(PLAYBOOK)
role_defaults = load(os.path.join(ROLE, 'defaults', 'main.yml'))
role_vars = load(os.path.join(ROLE, 'vars', 'main.yml'))
ROLE_VARS_READ = ['__pipeline_source']
with open(os.path.join(ROLE, 'tasks', 'model.yml')) as f:
    model_keys = sorted(set(MODEL_KEY.findall(f.read())))
stages = [(play, role_tasks(play)) for play in plays if role_import(play).get('tasks_from') not in RUN_STATE]
registered = set(t['register'] for _play, body in stages for t, _v in tasks(body) if 'register' in t)
out = {}
for h in inventory.get_hosts():
    hv = hostvars[h.name]
    out[h.name] = dict(groups=sorted(g.name for g in h.get_groups()), calls=[], models={}, vars={},
                       reads=[], defined=dict((k, sorted(v) if isinstance(v, dict) else None)
                                              for k, v in hv.items() if k.startswith('labforge_')))
for play, body in stages:
    # the check play reads every variable to check it; what a setting does is in the stages
    check_only = play.get('any_errors_fatal') and 'tasks_from' not in role_import(play)
    for h in inventory.get_hosts(play['hosts']):
        host = out[h.name]
        if not check_only:
            host['reads'].extend(sorted(set('%s.%s' % m if m[1] else m[0]
                                            for m in REF.findall(json.dumps([play, body])))))
        for task, scope in tasks(body):
            # role defaults < inventory < role vars (vars/main.yml) < block vars
            variables = dict(trusted(role_defaults))
            variables.update(hostvars[h.name])
            variables.update(trusted(role_vars))
            variables.update(trusted(scope))
            variables['hostvars'] = hostvars
            templar = Templar(loader=loader, variables=variables)
            for key in scope:
                host['vars'][key] = render(templar, scope[key])
            for key in ROLE_VARS_READ:
                host['vars'][key] = render(templar, role_vars[key])
            when = task.get('when')
            if when is not None:
                conds = when if isinstance(when, list) else [when]
                # a condition on a result registered at run time is kept (the task may run)
                ok = [render(templar, '{{ %s }}' % c) for c in conds
                      if not any(re.search(r'(?<![\w])%s(?![\w])' % r, str(c)) for r in registered)]
                if any(v is False for v in ok):
                    continue
            if '__pipeline_model' in (task.get('vars') or {}):
                name = re.search(r'(labforge_\w+)', task['vars']['__pipeline_model']).group(1)
                raw = hostvars[h.name].get(name) or {}
                host['models'][name] = dict((k, render(templar, "{{ %s['%s'] }}" % (name, k))) for k in raw)
                host['reads'].extend('%s.%s' % (name, k) for k in model_keys)
                continue
            module = [k for k in task if k.startswith('labforge.instructlab.')]
            if not module:
                continue
            args = dict((k, render(templar, v)) for k, v in (task[module[0]] or {}).items())
            host['calls'].append(dict(play=play['name'], task=task['name'], module=module[0].split('.')[-1], args=args))
print(json.dumps(out))
'''

# InstructLab 0.26.1: what each training pipeline writes, and what each backend serves.
PIPELINE_OUTPUT = {'simple': {'gguf'}, 'full': {'hf', 'gguf'}, 'accelerated': {'hf'}}
BACKEND_SERVES = {'llama-cpp': 'gguf', 'vllm': 'hf'}


@pytest.fixture(scope='module')
def fleet():
    proc = subprocess.run([sys.executable, '-c', RESOLVER, ROOT, INVENTORY], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def calls(host, module, task=None):
    return [c['args'] for c in host['calls'] if c['module'] == module and (task is None or c['task'] == task)]


def one(host, module, task=None):
    found = calls(host, module, task)
    assert len(found) == 1, (module, task, host['calls'])
    return found[0]


def given(args, key):
    value = args.get(key)
    return None if value == '<omit>' else value


def host_gpus(host):
    """The GPU count of the host's gpu_<model>_x<N> group."""
    for g in host['groups']:
        m = re.match(r'^gpu_\w+_x(\d+)$', g)
        if m:
            return int(m.group(1))
    return None


def tensor_parallel_size(args):
    cfg = {'serve': {'vllm': {'gpus': given(args, 'gpus'), 'vllm_args': given(args, 'vllm_args') or []}}}
    return srv.vllm_effective_args(cfg)[1]


def model_format(model):
    """The format an ilab_model_download dictionary gives: one .gguf file or a directory."""
    name = model.get('filename') or model.get('src') or model.get('controller_src') or ''
    return 'gguf' if str(name).endswith('.gguf') else 'hf'


SERVE_TASKS = ('Serve the teacher model', 'Serve the trained model', 'Put the previous model back')

# The fleet as documented: (host, pipeline settings, serving settings).
EXPECTED = {
    'h100-01.example.com': dict(
        config=dict(gpus=8, train_pipeline='accelerated', train_device='cuda', generate_pipeline='full'),
        teacher=dict(backend='vllm', gpus=8, tp=8, port=8100, host='0.0.0.0',
                     model=dict(source='hf', repository='mistralai/Mixtral-8x7B-Instruct-v0.1')),
        generate=dict(gpus=8, endpoint_url='http://127.0.0.1:8100/v1'),
        train=dict(gpus=8, num_epochs=7),
        convert=dict(quantize='Q4_K_M')),
    'a100-01.example.com': dict(
        config=dict(gpus=4, train_pipeline='accelerated', train_device='cuda', generate_pipeline='full'),
        generate=dict(gpus=4, endpoint_url='http://h100-01.example.com:8100/v1'),
        train=dict(gpus=4, num_epochs=7),
        serve=dict(backend='vllm', gpus=4, tp=4, port=8000, host='0.0.0.0', source='h100-01.example.com')),
    'l4-01.example.com': dict(
        config=dict(gpus=1, train_pipeline='simple', train_device='cuda', generate_pipeline='simple'),
        generate=dict(gpus=1, endpoint_url='http://h100-01.example.com:8100/v1'),
        train=dict(gpus=1, num_epochs=1),
        serve=dict(backend='llama-cpp', gpu_layers=-1, max_ctx_size=4096, port=8000, host='0.0.0.0',
                   source='h100-01.example.com')),
    'a10g-01.example.com': dict(
        config=dict(gpus=1),
        serve=dict(backend='llama-cpp', gpu_layers=-1, max_ctx_size=4096, port=8000, host='0.0.0.0',
                   source='h100-01.example.com')),
    'a10g-02.example.com': dict(
        config=dict(gpus=1),
        serve=dict(backend='llama-cpp', gpu_layers=-1, max_ctx_size=4096, port=8000, host='0.0.0.0',
                   source='h100-01.example.com')),
}


def test_every_host_of_the_example_fleet_is_resolved(fleet):
    assert sorted(fleet) == sorted(EXPECTED)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_each_setting_lands_in_the_module_arguments(fleet, name):
    host, want = fleet[name], EXPECTED[name]
    cfg = one(host, 'ilab_config')
    for key, value in want['config'].items():
        assert cfg[key] == value, (key, cfg)
    if 'teacher' in want:
        t = want['teacher']
        args = one(host, 'ilab_model_serve', 'Serve the teacher model')
        assert (args['backend'], args['gpus'], args['port'], args['host']) == (t['backend'], t['gpus'], t['port'], t['host'])
        assert tensor_parallel_size(args) == t['tp']
        model = host['models']['labforge_teacher_model']
        assert dict((k, model[k]) for k in t['model']) == t['model']
        assert model_format(model) == BACKEND_SERVES[t['backend']]
    else:
        assert calls(host, 'ilab_model_serve', 'Serve the teacher model') == []
    for module, key in (('ilab_data_generate', 'generate'), ('ilab_model_train', 'train'),
                        ('ilab_model_convert', 'convert')):
        if key in want:
            args = one(host, module)
            for k, value in want[key].items():
                assert args[k] == value, (module, k, args)
        elif module != 'ilab_model_convert':
            assert calls(host, module) == []
    if 'serve' in want:
        s = want['serve']
        args = one(host, 'ilab_model_serve', 'Serve the trained model')
        for k, value in s.items():
            if k == 'tp':
                assert tensor_parallel_size(args) == value
            elif k != 'source':
                assert given(args, k) == value, (k, args)
        # the rollback serves the previous model as its record says it was served (a run-time value)
        back = one(host, 'ilab_model_serve', 'Put the previous model back')
        assert back['model_path'] == '<runtime>', back
        assert host['vars']['__pipeline_source'] == s['source']
    else:
        assert calls(host, 'ilab_model_serve', 'Serve the trained model') == []


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_every_serve_call_passes_the_modules_backend_checks(fleet, name):
    host = fleet[name]
    for task in SERVE_TASKS:
        for args in calls(host, 'ilab_model_serve', task):
            params = dict((k, given(args, k)) for k in ('gpu_layers', 'max_ctx_size', 'gpus', 'vllm_args', 'settings'))
            backend = given(args, 'backend') or 'llama-cpp'
            assert srv.backend_setting_errors(backend, params, gpu_count=host_gpus(host)) == [], (task, args)


@pytest.mark.parametrize('name', sorted(n for n in EXPECTED if 'serve' in EXPECTED[n]))
def test_each_server_gets_a_model_its_backend_serves(fleet, name):
    """llama-cpp gets a GGUF file: the trainer's own, or its Hugging Face checkpoint converted
    by ilab_model_convert (accelerated writes no GGUF); vLLM gets the Hugging Face checkpoint,
    which the trainer fetches because a server it feeds serves with vLLM."""
    host = fleet[name]
    source = host['vars']['__pipeline_source']
    assert source in fleet and 'instructlab_trainers' in fleet[source]['groups'], source
    pipeline = one(fleet[source], 'ilab_config')['train_pipeline']
    backend = given(one(host, 'ilab_model_serve', 'Serve the trained model'), 'backend') or 'llama-cpp'
    written = PIPELINE_OUTPUT[pipeline]
    shipped = written | ({'gguf'} if 'hf' in written else set())   # converted on the trainer
    assert BACKEND_SERVES[backend] in shipped, (
        '%s serves with %s (%s) the model of %s, whose %s pipeline writes %s'
        % (name, backend, BACKEND_SERVES[backend], source, pipeline, sorted(written)))
    assert backend in fleet[source]['vars']['__pipeline_fed_backends'], (source, name)
    if backend == 'llama-cpp' and 'gguf' not in written:
        assert calls(fleet[source], 'ilab_model_convert'), '%s converts nothing for %s' % (source, name)


def test_the_example_fleet_serves_with_both_backends(fleet):
    """h100-01's accelerated checkpoint reaches vLLM (a100-01) as it is, and llama-cpp as GGUF."""
    assert fleet['h100-01.example.com']['vars']['__pipeline_fed_backends'] == ['llama-cpp', 'vllm']
    assert fleet['a100-01.example.com']['vars']['__pipeline_fed_backends'] == []
    assert fleet['a100-01.example.com']['vars']['__pipeline_backend'] == 'vllm'


def group_files():
    for fname in sorted(os.listdir(os.path.join(INVENTORY, 'group_vars'))):
        with open(os.path.join(INVENTORY, 'group_vars', fname)) as f:
            yield os.path.splitext(fname)[0], yaml.safe_load(f) or {}


@pytest.mark.parametrize('group,data', list(group_files()))
def test_every_labforge_setting_of_a_group_is_read_on_a_host_of_it(fleet, group, data):
    members = [n for n, h in fleet.items() if group in h['groups']]
    assert members, group
    reads = set()
    for n in members:
        reads.update(fleet[n]['reads'])
    unread = []
    for var, value in data.items():
        if not var.startswith('labforge_'):
            continue
        wanted = ['%s.%s' % (var, k) for k in value] if isinstance(value, dict) else [var]
        unread.extend(w for w in wanted if w not in reads)
    assert unread == [], 'set in group_vars/%s.yml but read by no play on %s' % (group, members)


# option of the module -> the configuration's key ilab_config writes it to
CONFIG_HELD = {'ilab_data_generate': ('pipeline', 'taxonomy_base'), 'ilab_model_train': ('pipeline', 'device')}


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_a_setting_the_configuration_keeps_is_written_once(fleet, name):
    """labforge_generate.pipeline and labforge_train.pipeline/.device go into the configuration through
    ilab_config; ilab_data_generate and ilab_model_train read them there and are not given them again."""
    host = fleet[name]
    for module, keys in CONFIG_HELD.items():
        for args in calls(host, module):
            assert [k for k in keys if k in args] == [], (module, args)
