# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integration tests of ilab_config, ilab_model_download, ilab_taxonomy and
ilab_info against the REAL InstructLab 0.26.1, on a Debian 12 systemd test host
(podman container from tests/testbed/build-image.sh).

One command: ``tests/integration/run.sh`` (or ``pytest tests/integration``).

The test host gets, read-only, the InstructLab venv the instructlab role test
built on the controller (``LABFORGE_ILAB_VENV``, default /opt/labforge-ilab-venv,
mounted at the same path: its scripts' shebangs point there; its python is
Debian's /usr/bin/python3.11, present in the image), the test model from
``tests/testbed/make-test-model.sh`` and tests/testbed/. The OCI registry
(docker-registry, TLS from a CA made at test time, htpasswd, a ``skopeo login``
auth file) runs ON the test host (tests/testbed/registry.sh): a podman
container has its own network namespace, so a registry on the controller's
127.0.0.1 is unreachable from it, and a registry per test host needs no port
coordination between parallel runs.

The tests run in file order and share the host (config -> download -> registries -> taxonomy
-> killed download -> secrets). The container is removed at the end unless
LABFORGE_KEEP_HOST=1 (then LABFORGE_REUSE_HOST=1 reuses it on the next run).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import secrets
import subprocess
import time

import pytest

from testhost import TESTBED, VENV, model_path, on, require_ilab_venv, running, sh

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOKS = os.path.join(HERE, 'playbooks')
NAME = os.environ.get('LABFORGE_IT_HOST', 'lfm6-it')
MODELS = '/var/lib/instructlab/.cache/instructlab/models'


def on_host(script, check=True, **kw):
    return on(NAME, script, check=check, **kw)


class Host(object):
    def __init__(self, inventory, env):
        self.inventory = inventory
        self.env = env

    def playbook(self, name, *args, env=None, check=True):
        e = dict(self.env)
        e.update(env or {})
        res = sh(['ansible-playbook', '-i', self.inventory, os.path.join(PLAYBOOKS, name)] + list(args),
                 check=False, env=e, cwd=PLAYBOOKS)
        if check and res.returncode != 0:
            raise AssertionError('playbook %s failed:\n%s\n%s' % (name, res.stdout[-8000:], res.stderr[-3000:]))
        return res

    def module(self, module, args, *extra, env=None):
        e = dict(self.env)
        e.update(env or {})
        return ['ansible', '-i', self.inventory, NAME, '-m', 'labforge.instructlab.' + module,
                '-a', json.dumps(args)] + list(extra), e


@pytest.fixture(scope='module')
def host(tmp_path_factory):
    require_ilab_venv()
    model = model_path()
    volumes = ['%s:/srv/models:ro' % os.path.dirname(model), '%s:/srv/testbed:ro' % TESTBED]
    with running(NAME, 'ilab-modules', volumes, str(tmp_path_factory.mktemp('inv')),
                 reuse=os.environ.get('LABFORGE_REUSE_HOST') == '1') as (env, inventory):
        h = Host(inventory, env)
        h.playbook('prepare.yml')
        yield h


def test_config(host):
    host.playbook('config.yml')


def test_download(host):
    host.playbook('download.yml')


def test_registries_as_they_are(host):
    """Issue 16, item 5: a signed image, a two-platform image index and a login by
    username/password (playbooks/registry.yml); then the credentials are found in no file
    but the root-only auth file (and the registry's own htpasswd for the user name), in no
    process argument list and not in ansible's -vvv output."""
    user = 'lfr-' + secrets.token_hex(6)
    password = 'lfr-pw-' + secrets.token_urlsafe(18)
    # a registry user of this test's own (the registry rereads its htpasswd file)
    on_host('read -r u; read -r p; printf "%s" "$p" | htpasswd -B -i /root/registry/htpasswd "$u" 2>/dev/null',
            input='%s\n%s\n' % (user, password))
    on_host('umask 077; cat > /root/lfr-password', input=password + '\n')
    mon = start_monitor(password)
    try:
        res = host.playbook('registry.yml', '-vvv', env={'LFR_USER': user, 'LFR_PASSWORD': password}, check=False)
    finally:
        hits = stop_monitor(mon)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and 'PLAY RECAP' in out and 'failed=0' in out, out[-8000:]
    auth = base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
    for secret in (password, user, auth):
        assert secret not in out
    assert hits == '', 'password seen in a process argument list: %s' % hits
    state = '/var/lib/labforge/users/instructlab/registry-auth.json'
    # the auth file holds exactly these credentials (compared on the host; nothing printed)
    check = on_host('read -r u; read -r p; python3 -c "import base64, json, sys; '
                    'a = json.load(open(sys.argv[1]))[\'auths\'][\'127.0.0.1:5443\'][\'auth\']; '
                    'print(base64.b64decode(a).decode() == sys.argv[2] + \':\' + sys.argv[3])" %s "$u" "$p"; '
                    'stat -c "%%a %%U" %s' % (state, state), input='%s\n%s\n' % (user, password)).stdout.split()
    assert check == ['True', '600', 'root'], check
    dirs = SCAN_DIRS + ' /var/lib/labforge'
    assert files_with(password, dirs) == ['/root/lfr-password']       # the file the test gave
    assert files_with(auth, dirs) == [state]
    # the user name is in the registry's own files only (its htpasswd, its log of the refused logins)
    named = files_with(user, dirs)
    assert '/root/registry/htpasswd' in named and [f for f in named if not f.startswith('/root/registry/')] == [], named


def test_taxonomy(host):
    host.playbook('taxonomy.yml')


def test_killed_download_leaves_nothing_and_rerun_completes(host):
    # a release big enough to be caught in flight
    on_host('set -e; head -c 700M /dev/urandom > /root/big.gguf; '
            'LABFORGE_REGISTRY_DIR=/root/registry /srv/testbed/registry.sh push big 1 /root/big.gguf >/root/big.digest; '
            'sha256sum /root/big.gguf | cut -d" " -f1 > /root/big.sha256; rm -f /root/big.gguf')
    args = dict(venv=VENV, source='oci', repository='docker://127.0.0.1:5443/models/big', release='1',
                auth_file='/root/registry/auth.json', cert_dir='/root/registry/certs.d')
    cmd, env = host.module('ilab_model_download', args)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = None
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        res = on_host('pid=$(pgrep -x skopeo | head -n1); [ -n "$pid" ] || exit 3; '
                      'ppid=$(ps -o ppid= -p "$pid" | tr -d " "); '
                      'grep -q " copy " /proc/$pid/cmdline 2>/dev/null || tr "\\0" " " </proc/$pid/cmdline | grep -q " copy " || exit 3; '
                      'kill -9 "$ppid" "$pid"; echo "$pid $ppid"', check=False)
        if res.returncode == 0:
            killed = res.stdout.strip()
            break
        time.sleep(0.1)
    out = proc.communicate(timeout=120)[0]
    assert killed, 'never saw skopeo copy running:\n' + out[-3000:]
    assert proc.returncode != 0
    state = on_host('ls -a %s; test ! -e %s/big && echo ABSENT' % (MODELS, MODELS)).stdout
    assert 'ABSENT' in state, state
    # rerun: completes, verifies, cleans the stale workspace
    res = sh(cmd, env=env, check=False)
    assert res.returncode == 0 and 'CHANGED' in res.stdout, res.stdout[-3000:]
    check = on_host('set -e; cd %s; sha256sum big/big.gguf | cut -d" " -f1; cat /root/big.sha256; '
                    'ls -a | grep -c "labforge-tmp" || true' % MODELS).stdout.split()
    assert check[0] == check[1] and check[2] == '0', check
    on_host('rm -rf %s/big' % MODELS)


MONITOR = r'''
import os, sys, time
token = sys.stdin.readline().strip().encode()
hits = set()
while not os.path.exists('/root/monitor.stop'):
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmd = f.read()
        except OSError:
            continue
        if token in cmd:
            hits.add(cmd.replace(b'\0', b' ').decode('utf-8', 'replace').replace(token.decode(), '<TOKEN>'))
    time.sleep(0.02)
with open('/root/monitor.hits', 'w') as f:
    f.write('\n'.join(sorted(hits)))
print('scanned')
'''

SCAN_DIRS = '/etc /root /var/lib/instructlab /tmp /var/tmp /var/log /home /srv/docs-repo'


def start_monitor(token):
    on_host('rm -f /root/monitor.stop /root/monitor.hits')
    proc = subprocess.Popen(['podman', 'exec', '-i', NAME, 'python3', '-c', MONITOR],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    proc.stdin.write(token + '\n')
    proc.stdin.flush()
    time.sleep(0.5)
    return proc


def stop_monitor(proc):
    on_host('touch /root/monitor.stop')
    proc.communicate(timeout=60)
    return on_host('cat /root/monitor.hits').stdout


def files_with(needle, dirs=SCAN_DIRS):
    """Files on the test host containing ``needle`` (fed on stdin, never argv)."""
    res = sh(['podman', 'exec', '-i', NAME, 'bash', '-c',
              'read -r n; printf "%s" "$n" > /root/.needle; '
              'grep -rlF --no-messages -f /root/.needle ' + dirs + ' | grep -v "^/root/.needle$" || true; '
              'rm -f /root/.needle'], input=needle + '\n')
    return sorted(res.stdout.split())


def test_secrets_never_leak(host):
    token = 'hf_lfm6' + secrets.token_hex(16)
    # positive control: the monitor does see a token on a command line
    mon = start_monitor(token)
    on_host('read -r t; (exec -a "control-$t" sleep 1)', input=token + '\n')
    assert 'control-<TOKEN>' in stop_monitor(mon)
    on_host('umask 077; cat > /root/hf-token', input=token + '\n')
    # a stand-in Hub on the test host that answers only to this token (given on stdin)
    on_host('rm -rf /root/hf; mkdir -p /root/hf/labforge/tiny-GGUF; '
            'head -c 100000 /dev/urandom > /root/hf/labforge/tiny-GGUF/tiny.Q4_K_M.gguf')
    hub = subprocess.Popen(['podman', 'exec', '-i', NAME, 'python3', '/srv/testbed/fake_hf.py', '8765', '/root/hf'],
                           stdin=subprocess.PIPE, text=True)
    hub.stdin.write(token + '\n')
    hub.stdin.flush()
    time.sleep(1)
    mon = start_monitor(token)
    try:
        res = host.playbook('secrets.yml', '-vvv', env={'LFM6_HF_TOKEN': token}, check=False)
    finally:
        hits = stop_monitor(mon)
        on_host('kill $(pgrep -f "fake_hf[.]py 8765") 2>/dev/null || true')
        hub.wait(timeout=30)
    out = res.stdout + res.stderr
    assert 'PLAY RECAP' in out and 'failed=0' in out, out[-6000:]
    assert token not in out
    assert 'hf download failed' in out           # the wrong-token step really ran and failed
    # the token reached the Hub (in the Authorization header, from the environment)
    requests = on_host('cat /root/hf/requests.log').stdout
    assert 'GET /labforge/tiny-GGUF/resolve/main/tiny.Q4_K_M.gguf 200 auth_ok=True' in requests, requests
    assert 'auth_ok=False' in requests             # the wrong token was refused
    assert hits == '', 'token seen in a process argument list: %s' % hits
    leaked = files_with(token)
    assert leaked == ['/root/hf-token'], leaked
    assert on_host('stat -c %a /root/hf-token').stdout.strip() == '600'

    # the OCI path: the registry password never leaves the auth file
    password = on_host('cat /root/registry/password').stdout.strip()
    mon = start_monitor(password)
    try:
        cmd, env = host.module('ilab_model_download', dict(
            venv=VENV, source='oci', repository='docker://127.0.0.1:5443/models/smollm2', release='1.0',
            name='smollm2-secret', auth_file='/root/registry/auth.json', cert_dir='/root/registry/certs.d'),
            '-vvv')
        res = sh(cmd, env=env, check=False)
    finally:
        hits = stop_monitor(mon)
    assert res.returncode == 0, res.stdout[-3000:]
    assert password not in res.stdout + res.stderr
    assert hits == ''
    assert files_with(password) == ['/root/registry/password']
    auth = base64.b64encode(('labforge:' + password).encode()).decode()
    assert files_with(auth) == ['/root/registry/auth.json']
    assert on_host('stat -c %a /root/registry/auth.json /root/registry/password').stdout.split() == ['600', '600']
