"""The attack suite of the privilege rule (issue 14), on the converged `default` host.

As the service account, plant links at every path a module or the pipeline writes,
reads, chowns or executes as root (molecule/default/attack/plants.yml: one named
test case per planted path), each to a root-owned 0600 canary with a secret; run
the pipeline four times (a first run that does real work, a rerun, a rollback run,
a run that ships the trained model), run the modules the remaining paths need, and
try to inject unit directives through newlines. Then:

- every canary is unchanged in content, owner and mode, and its secret appears
  nowhere the account or the controller's outputs can read;
- no root process named in a forged run record was signalled;
- newline-injected model paths, hosts and environment values are refused with an
  error naming the option, and no injected directive ran.

Everything happens once (the `attack` fixture); its outputs and evidence are kept
in $MOLECULE_EPHEMERAL_DIRECTORY/attack/. Runs after test_pipeline.py (file order).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import time

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
with open(os.path.join(os.path.dirname(HERE), 'attack', 'plants.yml'), encoding='utf-8') as _f:
    PLAN = yaml.safe_load(_f)
CASES = PLAN['cases']
INJECTIONS = ['inject-model-path', 'inject-host', 'inject-env']

USER = 'instructlab'
HOME = '/var/lib/instructlab'
PATHS = dict(
    home=HOME,
    logs=HOME + '/.local/state/labforge/logs',
    datasets=HOME + '/.local/share/instructlab/datasets',
    trained=HOME + '/.local/share/instructlab/trained',
    serve=HOME + '/.local/state/labforge/serve',
    taxonomy=HOME + '/.local/share/instructlab/taxonomy',
    models=HOME + '/.cache/instructlab/models',
    venv='/opt/instructlab/venv',
    student_record=hashlib.sha256(
        (HOME + '/.cache/instructlab/models/student-tiny-llama').encode()).hexdigest()[:24],
)
CANARIES = '/etc/labforge-canary'
TEACHER = PATHS['models'] + '/smollm2-135m-instruct.gguf'
STUDENT = PATHS['models'] + '/student-tiny-llama'
PWNED = '/root/labforge-pwned-'
# where the account (or anybody) reads: a canary's secret must not get there
LEAK_DIRS = [HOME, '/tmp', '/var/tmp', '/opt/labforge', '/etc/systemd/system']

# Runs on the test host as root: python3 -c HELPER, a JSON request on stdin, JSON on stdout.
HELPER = r'''
import json, os, pwd, shutil, subprocess, sys, hashlib
req = json.load(sys.stdin)
pw = pwd.getpwnam(req.get("user", "instructlab"))
out = {}

def as_user(fn, *args):
    """Run fn(*args) in a child with the service account's credentials; returns its error."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        msg = b""
        try:
            os.setgroups([]); os.setgid(pw.pw_gid); os.setuid(pw.pw_uid)
            fn(*args)
        except Exception as e:
            msg = ("%s: %s" % (type(e).__name__, e)).encode()
        os.write(w, msg); os._exit(0)
    os.close(w)
    msg = os.read(r, 65536).decode(); os.close(r); os.waitpid(pid, 0)
    return msg or None

def mkparents(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)

def clear(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)                  # the account's own directory: it may remove it
    elif os.path.lexists(path):
        os.unlink(path)

def plant_symlink(path, target):
    mkparents(path); clear(path); os.symlink(target, path)

def plant_file(path, content):
    mkparents(path); clear(path)
    with open(path, "w") as f:
        f.write(content)

def plant_record(path, victim):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, ".labforge-run.json"), "w") as f:
        json.dump(dict(module_pid=999999999, child_pid=victim), f)

def state(path):
    st = os.lstat(path)
    data = open(path, "rb").read() if os.path.isfile(path) else b""
    return dict(uid=st.st_uid, gid=st.st_gid, mode=oct(st.st_mode & 0o7777), sha256=hashlib.sha256(data).hexdigest())

def tree(path):
    rows = []
    for dirpath, dirnames, filenames in os.walk(path):
        for n in sorted(dirnames + filenames) + [""]:
            p = os.path.join(dirpath, n) if n else dirpath
            rows.append([os.path.relpath(p, path)] + list(state(p).values()))
    return sorted(rows)

op = req["op"]
if op == "canaries":
    os.makedirs(req["dir"], exist_ok=True); os.chmod(req["dir"], 0o755)
    for c in req["canaries"]:
        path = os.path.join(req["dir"], c["id"])
        with open(path, "w") as f:
            f.write(c["content"])
        os.chown(path, 0, 0); os.chmod(path, 0o600)
        if c.get("dir"):
            d = path + ".d"
            os.makedirs(d, exist_ok=True); os.chmod(d, 0o700)
            with open(os.path.join(d, "keep"), "w") as f:
                f.write(c["content"])
            os.chmod(os.path.join(d, "keep"), 0o600)
elif op == "plant":
    for p in req["plants"]:
        kind, path = p["plant"], p["path"]
        if kind in ("symlink", "symlink-dir"):
            err = as_user(plant_symlink, path, p["target"])
        elif kind == "hardlink":
            err = as_user(os.makedirs, os.path.dirname(path), 0o755, True)
            if not err:
                try:
                    clear(path); os.link(p["target"], path)   # root: as if fs.protected_hardlinks=0
                except OSError as e:
                    err = str(e)
        elif kind in ("file", "serving-record"):
            err = as_user(plant_file, path, p["content"])
        elif kind == "run-record":
            err = as_user(plant_record, path, p["victim"])
        else:
            err = "unknown plant kind %s" % kind
        out[p["id"]] = dict(planted=err is None, error=err,
                            is_link=os.path.islink(path), exists=os.path.lexists(path))
elif op == "evidence":
    for c in req["canaries"]:
        path = os.path.join(req["dir"], c["id"])
        out[c["id"]] = dict(file=state(path), tree=tree(path + ".d") if c.get("dir") else None)
    out["_pwned"] = sorted(p for p in req["pwned"] if os.path.lexists(p))
    leaks = {}
    for secret in req["secrets"]:
        res = subprocess.run(["grep", "-rlF", "--no-messages", "-e", secret] + [d for d in req["dirs"] if os.path.exists(d)],
                             stdout=subprocess.PIPE, universal_newlines=True)
        leaks[secret] = sorted(res.stdout.split())
    out["_leaks"] = leaks
    units = {}
    for u in req["units"]:
        p = "/etc/systemd/system/" + u
        units[u] = open(p).read() if os.path.exists(p) else None
    out["_units"] = units
print(json.dumps(out))
'''


def podman(*argv, **kw):
    kw.setdefault('stdout', subprocess.PIPE)
    kw.setdefault('stderr', subprocess.PIPE)
    return subprocess.run(['podman'] + list(argv), universal_newlines=True, check=False, **kw)


class Attack(object):
    def __init__(self):
        self.eph = os.environ['MOLECULE_EPHEMERAL_DIRECTORY']
        self.work = os.path.join(self.eph, 'attack')
        self.host = self._host()
        self.token = os.urandom(4).hex()
        self.runs = {}
        self.modules = {}
        self.planted = {}
        self.victims = {}

    # ------------------------------------------------------------ plumbing
    @staticmethod
    def _host():
        with open(os.environ['MOLECULE_INVENTORY_FILE'], encoding='utf-8') as f:
            inv = yaml.safe_load(f)
        return sorted(inv['instructlab_trainers']['hosts'])[0]

    def helper(self, request):
        res = podman('exec', '-i', self.host, 'python3', '-c', HELPER, input=json.dumps(request))
        assert res.returncode == 0, res.stderr[-3000:]
        return json.loads(res.stdout)

    def sh(self, script, check=True):
        res = podman('exec', '-i', self.host, 'bash', '-c', script)
        assert not check or res.returncode == 0, (script, res.stdout[-2000:], res.stderr[-2000:])
        return res

    def env(self):
        env = dict(os.environ)
        cfg = os.path.join(self.eph, 'ansible.cfg')
        if os.path.exists(cfg):
            env['ANSIBLE_CONFIG'] = cfg
        env.update(ANSIBLE_PIPELINING='true', ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='false',
                   ANSIBLE_STDOUT_CALLBACK='ansible.builtin.default')
        return env

    def playbook(self, name, playbook, extra, env=None):
        """Run a playbook against the host; keep its output (with --diff) in WORK/<name>.log."""
        vars_file = os.path.join(self.work, '%s.vars.json' % name)
        with open(vars_file, 'w', encoding='utf-8') as f:
            json.dump(extra, f)
        e = self.env()
        for key, value in (env or {}).items():
            if value is None:
                e.pop(key, None)
            else:
                e[key] = value
        argv = ['ansible-playbook', '-i', os.path.join(self.eph, 'inventory'), '--diff', '-e', '@' + vars_file, playbook]
        t = time.time()
        res = subprocess.run(argv, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, check=False, cwd=PROJECT)
        with open(os.path.join(self.work, name + '.log'), 'w', encoding='utf-8') as f:
            f.write(res.stdout)
        recap = re.search(r'%s\s*:\s*(ok=.*)' % re.escape(self.host), res.stdout)
        self.runs[name] = dict(rc=res.returncode, recap=recap.group(1) if recap else '', seconds=round(time.time() - t),
                               output=res.stdout)
        print('[attack] %s: rc=%s %s (%ss)' % (name, res.returncode, self.runs[name]['recap'], self.runs[name]['seconds']))
        return self.runs[name]

    def module(self, name, module, args, environment=None):
        """One module call (its JSON result kept in self.modules[name])."""
        task = {'name': name, 'labforge.instructlab.' + module: args, 'ignore_errors': True}
        if environment:
            task['environment'] = environment
        pb = os.path.join(self.work, name + '.yml')
        with open(pb, 'w', encoding='utf-8') as f:
            json.dump([dict(hosts=self.host, gather_facts=False, become=True, tasks=[task])], f)
        res = self.playbook(name, pb, {}, env=dict(ANSIBLE_STDOUT_CALLBACK='ansible.posix.json',
                                                   ANSIBLE_CALLBACKS_ENABLED=None))
        out = res['output']
        data = json.JSONDecoder().raw_decode(out, out.index('{'))[0]
        result = data['plays'][0]['tasks'][0]['hosts'][self.host]
        self.modules[name] = result
        return result

    # ------------------------------------------------------------ the plan
    def secret(self, case_id):
        return 'LABFORGE-CANARY-%s-%s' % (case_id, self.token)

    def content(self, case_id):
        s = self.secret(case_id)
        if case_id == 'config-read':
            return 'labforge_canary: %s\n' % s
        if case_id == 'train-data':
            return ''.join(json.dumps(dict(system='', user='%s %d' % (s, i), assistant=s)) + '\n' for i in range(5))
        return s + '\n'

    def canaries(self):
        return [dict(id=c['id'], content=self.content(c['id']), dir=c['plant'] == 'symlink-dir') for c in CASES]

    def plants(self, phase, fp16=None):
        out = []
        for c in CASES:
            if str(c['phase']) != str(phase):
                continue
            p = dict(id=c['id'], plant=c['plant'], path=c['path'].format(fp16=fp16, **PATHS))
            canary = os.path.join(CANARIES, c['id'])
            p['target'] = canary + '.d' if c['plant'] == 'symlink-dir' else canary
            if c['plant'] == 'run-record':
                p['victim'] = self.victims[c['id']]['pid']
            elif c['plant'] == 'serving-record':
                p['content'] = json.dumps(dict(model_path=canary, endpoint='http://127.0.0.1:8000/v1')) + '\n'
            elif c['plant'] == 'file':
                p['content'] = c['content']
            out.append(p)
        if out:
            self.planted.update(self.helper(dict(op='plant', plants=out, user=USER)))
        return out

    def as_user_file(self, path, content):
        """A file the service account writes (it may name its files as it likes)."""
        done = self.helper(dict(op='plant', user=USER, plants=[dict(id='file', plant='file', path=path,
                                                                    content=content)]))
        assert done['file']['planted'], done

    def start_victims(self):
        """Root processes (systemd services, their own process groups) named by forged records."""
        for c in CASES:
            if c['plant'] == 'run-record':
                unit = 'labforge-victim-%s' % c['id']
                self.sh('systemctl stop %s 2>/dev/null; systemctl reset-failed %s 2>/dev/null; '
                        'systemd-run --quiet --unit %s sleep 100000' % (unit, unit, unit), check=False)
                pid = int(self.sh('sleep 0.5; systemctl show -p MainPID --value %s' % unit).stdout.strip())
                self.victims[c['id']] = dict(unit=unit, pid=pid)

    def victim_alive(self, case_id):
        v = self.victims[case_id]
        res = self.sh('systemctl is-active %s; systemctl show -p MainPID --value %s' % (v['unit'], v['unit']),
                      check=False).stdout.split()
        return res == ['active', str(v['pid'])]

    def taxonomy(self):
        """The inventory's taxonomy, changed (a first run must do real work) plus a new skill."""
        src = os.path.join(PROJECT, 'inventories', 'local', 'files', 'taxonomy')
        dst = os.path.join(self.work, 'taxonomy')
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        haiku = os.path.join(dst, 'compositional_skills', 'writing', 'freeform', 'haiku', 'qna.yaml')
        with open(haiku, encoding='utf-8') as f:
            text = f.read()
        with open(haiku, 'a', encoding='utf-8') as f:
            f.write('# attack run %s\n' % self.token)
        twin = os.path.join(os.path.dirname(os.path.dirname(haiku)), 'haiku-twin', 'qna.yaml')
        os.makedirs(os.path.dirname(twin))
        with open(twin, 'w', encoding='utf-8') as f:
            f.write(text.replace('haiku', 'short haiku', 1))
        return dst

    def fp16(self):
        base = os.path.join(self.work, 'artifacts', self.host)
        dirs = sorted(os.listdir(base), key=lambda d: os.path.getmtime(os.path.join(base, d)))
        return dirs[-1]

    # ------------------------------------------------------------ the attack
    def run(self):
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        playbook = PLAN.get('runs', {}).get('playbook', 'labforge.instructlab.pipeline')
        extra = dict(labforge_taxonomy_dir=self.taxonomy(),
                     labforge_artifacts_dir=os.path.join(self.work, 'artifacts'),
                     labforge_ilab_settings={'chat.max_tokens': 64})   # the config writer runs too
        self.helper(dict(op='canaries', dir=CANARIES, canaries=self.canaries()))
        self.start_victims()
        self.plants(1)
        self.playbook('run-1-first', playbook, extra)
        fp16 = self.fp16()
        self.plants(2, fp16)
        self.playbook('run-2-rerun', playbook, extra)
        self.plants(3, fp16)
        self.playbook('run-3-rollback', playbook, dict(extra, labforge_chat_questions=[], labforge_verify='chat'))
        self.plants(4, fp16)
        self.playbook('run-4-ship', playbook, extra)
        self.module_cases(fp16)
        self.injections()
        names = ('main', 'attack-xdg', 'attack-nl', 'attack-host', 'attack-env')
        units = ['labforge-ilab-serve-%s.service' % n for n in names]
        secrets = [self.secret(c['id']) for c in CASES]
        self.evidence = self.helper(dict(op='evidence', dir=CANARIES, canaries=self.canaries(), units=units,
                                         pwned=[PWNED + n for n in ('model', 'host', 'env')],
                                         secrets=secrets, dirs=LEAK_DIRS))
        self.controller_leaks = self.scan_controller(secrets)
        self.alive = dict((case_id, self.victim_alive(case_id)) for case_id in self.victims)
        for n in ('attack-xdg', 'attack-nl', 'attack-host', 'attack-env'):
            self.module('cleanup-' + n, 'ilab_model_serve', dict(name=n, state='absent'))
        for v in self.victims.values():
            self.sh('systemctl stop %s' % v['unit'], check=False)
        with open(os.path.join(self.work, 'evidence.json'), 'w', encoding='utf-8') as f:
            json.dump(dict(planted=self.planted, evidence=self.evidence, controller_leaks=self.controller_leaks,
                           victims_alive=self.alive,
                           runs=dict((k, dict(rc=v['rc'], recap=v['recap'])) for k, v in self.runs.items()),
                           modules=self.modules), f, indent=2, default=str)

    def module_cases(self, fp16):
        self.plants('module', fp16)
        rows = ''.join(json.dumps(dict(system='', user='q%d' % i, assistant='a%d' % i)) + '\n' for i in range(5))
        self.as_user_file(HOME + '/attack/data/test_gen.jsonl', rows)
        self.module('serve-xdg', 'ilab_model_serve', dict(name='attack-xdg', model_path=TEACHER, port=8151,
                                                          wait_timeout=30))
        self.module('config-read', 'ilab_info', dict(gather=['config'], config_path=HOME + '/attack/config.yaml'))
        self.module('train-data', 'ilab_model_train', dict(name='attack-data', data_path=HOME + '/attack/data',
                                                           model_path=STUDENT, pipeline='simple', device='cpu',
                                                           num_epochs=1, timeout=900))

    def injections(self):
        nl = '\nExecStartPre=+/usr/bin/touch %s%s\n'
        # a model file the account named so (it can)
        model = PATHS['models'] + '/attack' + nl % (PWNED, 'model') + '.gguf'
        self.as_user_file(model, 'GGUF')
        self.module('inject-model-path', 'ilab_model_serve', dict(name='attack-nl', model_path=model, port=8152,
                                                                  wait_timeout=15))
        self.module('inject-host', 'ilab_model_serve', dict(name='attack-host', model_path=TEACHER, port=8153,
                                                            host='127.0.0.1' + nl % (PWNED, 'host') + 'X=',
                                                            allow_remote=True, wait_timeout=15))
        self.module('inject-env', 'ilab_model_serve', dict(name='attack-env', model_path=TEACHER, port=8154,
                                                           wait_timeout=60),
                    environment=dict(HTTPS_PROXY='http://proxy:3128' + nl % (PWNED, 'env') + 'X='))

    def scan_controller(self, secrets):
        found = dict((s, []) for s in secrets)
        roots = [self.work, os.environ.get('LABFORGE_REPORT_DIR') or os.path.join(self.eph, 'reports')]
        for root in roots:
            for dirpath, dirnames, filenames in os.walk(root):
                for name in filenames:
                    path = os.path.join(dirpath, name)
                    if path.endswith('.vars.json'):
                        continue
                    with open(path, 'rb') as f:
                        data = f.read()
                    for s in secrets:
                        if s.encode() in data:
                            found[s].append(path)
        return found


@pytest.fixture(scope='module')
def attack():
    a = Attack()
    a.run()
    return a


def case(case_id):
    return [c for c in CASES if c['id'] == case_id][0]


@pytest.mark.parametrize('case_id', [c['id'] for c in CASES])
def test_planted_path(attack, case_id):
    c = case(case_id)
    planted = attack.planted.get(case_id)
    assert planted, 'not planted (phase %s never came?)' % c['phase']
    print('%s: %s\n  planted: %s' % (case_id, c['why'], planted))
    if not planted['planted']:
        pytest.skip('not plantable - the account cannot write there: %s' % planted['error'])
    ev = attack.evidence[case_id]
    assert ev['file'] == dict(uid=0, gid=0, mode='0o600',
                              sha256=hashlib.sha256(attack.content(case_id).encode()).hexdigest()), \
        'the canary %s/%s changed: %s' % (CANARIES, case_id, ev['file'])
    if ev['tree'] is not None:
        assert [row[0] for row in ev['tree']] == ['.', 'keep'] and all(row[1:4] == [0, 0, row[3]] for row in ev['tree']) \
            and ev['tree'][0][3] == '0o700', 'the canary directory changed: %s' % ev['tree']
    secret = attack.secret(case_id)
    leaked = attack.evidence['_leaks'][secret] + attack.controller_leaks[secret]
    assert leaked == [], 'the canary of %s was read out by root into %s' % (case_id, leaked)
    if c['plant'] == 'run-record':
        assert attack.alive[case_id], 'root process %s was signalled' % attack.victims[case_id]
    if c['plant'] == 'serving-record':
        unit = attack.evidence['_units']['labforge-ilab-serve-main.service'] or ''
        assert CANARIES not in unit, 'the rollback served the forged record\'s model'
    if c.get('module'):
        result = attack.modules[c['module']]
        assert result.get('failed') and 'refusing' in result.get('msg', ''), \
            'the module did not refuse the planted path: %s' % result.get('msg')


@pytest.mark.parametrize('name,option', [('inject-model-path', 'model_path'), ('inject-host', 'host'),
                                         ('inject-env', 'environment variable HTTPS_PROXY')])
def test_newline_injection_is_refused(attack, name, option):
    result = attack.modules[name]
    print('%s: %s' % (name, result.get('msg')))
    assert result.get('failed') and option in result.get('msg', '') and 'control character' in result.get('msg', ''), \
        'not refused with a clear error naming %s: %s' % (option, result.get('msg'))
    assert attack.evidence['_pwned'] == [], 'an injected ExecStartPre= ran as root: %s' % attack.evidence['_pwned']
    unit = name.replace('inject-model-path', 'attack-nl').replace('inject-', 'attack-')
    assert attack.evidence['_units']['labforge-ilab-serve-%s.service' % unit] is None


def test_first_run_did_the_work(attack):
    run = attack.runs['run-1-first']
    assert run['rc'] == 0, run['output'][-4000:]
    assert 'failed=0' in run['recap'] and 'changed=0' not in run['recap']


def test_rerun_changes_nothing(attack):
    run = attack.runs['run-2-rerun']
    assert run['rc'] == 0 and 'changed=0' in run['recap'] and 'failed=0' in run['recap'], run['output'][-4000:]


def test_rollback_uses_roots_record(attack):
    run = attack.runs['run-3-rollback']
    assert 'The rollout stops here' in run['output'] and 'the previous model is serving again' in run['output'], \
        run['output'][-4000:]


def test_shipping_refuses_a_swapped_model(attack):
    run = attack.runs['run-4-ship']
    assert run['rc'] != 0 and 'refusing to follow the symbolic link' in run['output'], run['output'][-4000:]
