# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.ilab_model_download: exact skopeo and
download command lines, secrets kept off argv and out of results, check mode,
idempotence decisions, atomicity (nothing at the target after a failure)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import io
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.labforge.instructlab.plugins.modules import ilab_model_download as M

from ilab_testlib import ME, Recorder, run_module, make_venv

TOKEN = 'hf_UnitTestSecretToken123'
OCI_LAYOUT = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'testbed', 'oci_layout.py')


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Registry(object):
    """Fake registry answering `skopeo inspect --raw` and `skopeo copy` from
    OCI layouts built with tests/testbed/oci_layout.py (image indexes too).
    With ``creds`` set it answers only to an auth file holding them, as the
    test bed's htpasswd registry does."""

    HOST = 'registry.example:5000'

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.images = {}   # tag -> (layout dir, manifest or index digest)
        self.blobs = {}    # digest of every manifest and index -> layout dir
        self.fail_copy = False
        self.corrupt_copy = False
        self.creds = None  # (user, password) the registry wants
        self.auth_seen = []  # (step, auth file, its content) of each call

    def push(self, tag, files):
        src = self.tmp / ('src-' + tag)
        src.mkdir()
        paths = []
        for name, data in files.items():
            (src / name).write_bytes(data)
            paths.append(str(src / name))
        layout = str(self.tmp / ('layout-' + tag))
        digest = subprocess.check_output([sys.executable, OCI_LAYOUT, layout, tag] + paths, text=True).strip()
        self.images[tag] = (layout, digest)
        self.blobs[digest] = layout
        return digest

    def push_index(self, tag, platforms):
        """``platforms``: {"linux/amd64": {name: data}}; returns (index digest, {platform: digest})."""
        layout = str(self.tmp / ('layout-' + tag))
        args = []
        for platform, files in platforms.items():
            src = self.tmp / ('src-%s-%s' % (tag, platform.replace('/', '-')))
            src.mkdir()
            for name, data in files.items():
                (src / name).write_bytes(data)
            args.append('%s=%s' % (platform, ','.join(str(src / name) for name in files)))
        out = subprocess.check_output([sys.executable, OCI_LAYOUT, '--index', layout, tag] + args, text=True).split('\n')
        index = out[0].strip()
        digests = dict(line.split() for line in out[1:] if line.strip())
        self.images[tag] = (layout, index)
        for d in [index] + list(digests.values()):
            self.blobs[d] = layout
        return index, digests

    def authorized(self, step, argv):
        auth = [a.split('=', 1)[1] for a in argv if a.startswith(('--authfile=', '--src-authfile='))]
        content = open(auth[0]).read() if auth and os.path.exists(auth[0]) else None
        self.auth_seen.append((step, auth[0] if auth else None, content))
        if self.creds is None:
            return True
        try:
            entry = json.loads(content)['auths'][self.HOST]['auth']
        except (TypeError, ValueError, KeyError):
            return False
        return base64.b64decode(entry).decode() == '%s:%s' % self.creds

    def manifest(self, layout, digest):
        with open(os.path.join(layout, 'blobs', 'sha256', digest.split(':')[1])) as f:
            return f.read()

    def respond(self, step, argv, call):
        if step in ('skopeo inspect', 'skopeo copy') and not self.authorized(step, argv):
            return 1, '', ('time="2026-12-02T02:10:11Z" level=fatal msg="Error parsing image name \\"%s\\": reading '
                           'manifest in %s/models/granite: unauthorized: authentication required"\n' % (argv[-1], self.HOST))
        if step == 'skopeo inspect':
            ref = argv[-1]
            for tag, (layout, digest) in self.images.items():
                if ref.endswith(':' + tag):
                    return 0, self.manifest(layout, digest), ''
            for digest, layout in self.blobs.items():
                if ref.endswith('@' + digest):
                    return 0, self.manifest(layout, digest), ''
            return 1, '', 'FATA[0000] Error parsing image name: manifest unknown\n'
        if step == 'skopeo copy':
            if self.fail_copy:
                return 1, '', 'FATA[0001] writing blob: connection reset\n'
            src, dst = argv[-2], argv[-1]
            digest = src.split('@')[1]
            layout = self.blobs[digest]
            out = dst[len('oci:'):].rsplit(':', 1)[0]
            import shutil
            shutil.copytree(layout, out)
            with open(os.path.join(out, 'index.json')) as f:
                index = json.load(f)
            index['manifests'] = [dict(mediaType='application/vnd.oci.image.manifest.v1+json', digest=digest,
                                       size=len(self.manifest(layout, digest)))]
            with open(os.path.join(out, 'index.json'), 'w') as f:
                json.dump(index, f)
            if self.corrupt_copy:
                man = json.loads(self.manifest(layout, digest))
                blob = os.path.join(out, 'blobs', 'sha256', man['layers'][0]['digest'].split(':')[1])
                with open(blob, 'ab') as f:
                    f.write(b'garbage')
        return None


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """Download records go to the user's ~/.local/state: keep them in tmp_path."""
    import pwd

    class PW(object):
        pw_uid, pw_gid, pw_dir, pw_name = os.getuid(), os.getgid(), str(tmp_path / 'home'), 'me'
    monkeypatch.setattr(pwd, 'getpwnam', lambda name: PW())
    return PW.pw_dir


@pytest.fixture
def env(tmp_path, monkeypatch):
    reg = Registry(tmp_path)
    rec = Recorder(reg.respond).install(monkeypatch)
    monkeypatch.setattr(M.AnsibleModule, 'get_bin_path',
                        lambda self, name, required=False, opt_dirs=None: '/usr/bin/' + name)
    return dict(reg=reg, rec=rec, venv=make_venv(tmp_path), models=str(tmp_path / 'models'), tmp=tmp_path)


def oci_args(env, **kw):
    a = dict(source='oci', venv=env['venv'], model_dir=env['models'],
             repository='docker://registry.example:5000/models/granite',
             auth_file=str(env['tmp'] / 'auth.json'), cert_dir='/etc/labforge/certs.d')
    (env['tmp'] / 'auth.json').write_text('{"auths": {}}')
    a.update(kw)
    return a


def test_oci_exact_commands_with_registry_port(env, monkeypatch):
    d1 = env['reg'].push('1.0', {'model.gguf': b'weights one', 'README.md': b'one'})
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0'), diff=True)
    assert r['changed'] and r['digest'] == d1 and r['manifest_digest'] == d1, r
    inspect, copy = env['rec'].calls
    auth = str(env['tmp'] / 'auth.json')
    assert inspect['argv'] == ['/usr/bin/skopeo', 'inspect', '--raw', '--retry-times=2', '--authfile=' + auth,
                               '--cert-dir=/etc/labforge/certs.d', '--tls-verify=true',
                               'docker://registry.example:5000/models/granite:1.0']
    assert not inspect['changes_state'] and not inspect['as_user']
    ws = copy['argv'][-1][len('oci:'):].rsplit('/', 1)[0]
    assert copy['argv'] == ['/usr/bin/skopeo', 'copy', '--quiet', '--preserve-digests', '--remove-signatures',
                            '--retry-times=2',
                            '--src-authfile=' + auth, '--src-cert-dir=/etc/labforge/certs.d', '--src-tls-verify=true',
                            'docker://registry.example:5000/models/granite@' + d1,   # exactly the inspected manifest
                            'oci:%s/layout:model' % ws]
    # skopeo runs as root: it writes only in root's private state directory, never in the
    # service account's tree (where a planted link would redirect it)
    assert ws.startswith(os.path.join(M._fs.STATE_ROOT, 'users', ME, 'tmp', 'oci-')) and not os.path.exists(ws)
    assert os.listdir(os.path.dirname(ws)) == []
    target = os.path.join(env['models'], 'granite')
    assert r['path'] == target
    assert sorted(os.listdir(target)) == ['README.md', 'model.gguf']
    assert open(os.path.join(target, 'model.gguf'), 'rb').read() == b'weights one'
    assert r['files']['model.gguf'] == {'size': 11, 'sha256': sha(b'weights one')}
    assert os.listdir(env['models']) == ['granite']          # the workspace is gone
    assert r['diff'] == {'before': {'path': target, 'state': 'absent'},
                         'after': {'path': target, 'state': 'present', 'digest': d1}}


def test_oci_idempotent_and_check_mode(env, monkeypatch):
    d1 = env['reg'].push('1.0', {'model.gguf': b'weights one'})
    chk = run_module(monkeypatch, M.main, oci_args(env, release='1.0'), check_mode=True)
    assert chk['changed'] and chk['fetched']['digest'] == d1 and chk['fetched']['files'] == ['model.gguf']
    assert not os.path.exists(env['models'] + '/granite')
    assert env['rec'].steps() == ['skopeo inspect']           # the read-only query only
    run_module(monkeypatch, M.main, oci_args(env, release='1.0'))
    env['rec'].calls[:] = []
    again = run_module(monkeypatch, M.main, oci_args(env, release='1.0'))
    assert not again['changed'] and again['digest'] == d1 and 'matches' in again['reason']
    assert env['rec'].steps() == ['skopeo inspect']
    chk2 = run_module(monkeypatch, M.main, oci_args(env, release='1.0'), check_mode=True)
    assert not chk2['changed']


def test_oci_second_release_gets_its_own_files(env, monkeypatch):
    env['reg'].push('1.0', {'model.gguf': b'weights one'})
    d2 = env['reg'].push('2.0', {'model-v2.gguf': b'weights two'})
    run_module(monkeypatch, M.main, oci_args(env, release='1.0'))
    r = run_module(monkeypatch, M.main, oci_args(env, release='2.0'))
    assert r['changed'] and r['digest'] == d2
    assert os.listdir(os.path.join(env['models'], 'granite')) == ['model-v2.gguf']
    r = run_module(monkeypatch, M.main, oci_args(env, release='2.0', name='granite-2.0'))
    assert os.listdir(os.path.join(env['models'], 'granite-2.0')) == ['model-v2.gguf']


def test_oci_wrong_digest_fails_before_copy(env, monkeypatch):
    env['reg'].push('1.0', {'model.gguf': b'one'})
    d2 = env['reg'].push('2.0', {'model.gguf': b'two'})
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0', digest=d2))
    assert r['failed'] and 'not to the expected digest ' + d2 in r['msg']
    assert env['rec'].steps() == ['skopeo inspect']
    assert not os.path.exists(os.path.join(env['models'], 'granite'))


def test_oci_by_digest_only(env, monkeypatch):
    d1 = env['reg'].push('1.0', {'model.gguf': b'one'})
    r = run_module(monkeypatch, M.main, oci_args(env, digest=d1))
    assert r['changed'] and r['digest'] == d1
    assert env['rec'].calls[0]['argv'][-1] == 'docker://registry.example:5000/models/granite@' + d1


def test_oci_tag_in_repository(env, monkeypatch):
    env['reg'].push('3.1', {'model.gguf': b'x'})
    r = run_module(monkeypatch, M.main, oci_args(env, repository='docker://10.0.0.1:443/a/b/granite:3.1'))
    assert r['changed'] and r['path'].endswith('/granite')
    assert env['rec'].calls[0]['argv'][-1] == 'docker://10.0.0.1:443/a/b/granite:3.1'


def test_oci_failed_copy_leaves_nothing(env, monkeypatch):
    env['reg'].push('1.0', {'model.gguf': b'one'})
    env['reg'].fail_copy = True
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0'))
    assert r['failed'] and r['step'] == 'skopeo copy' and 'connection reset' in r['msg']
    assert os.listdir(env['models']) == []


def test_oci_corrupt_layer_leaves_nothing(env, monkeypatch):
    env['reg'].push('1.0', {'model.gguf': b'one'})
    env['reg'].corrupt_copy = True
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0'))
    assert r['failed'] and 'corrupt' in r['msg']
    assert os.listdir(env['models']) == []


def test_oci_stale_workspace_of_a_killed_run_is_removed(env, monkeypatch):
    env['reg'].push('1.0', {'model.gguf': b'one'})
    os.makedirs(os.path.join(env['models'], '.granite.labforge-tmp-dead', 'layout'))
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0'))
    assert r['changed'] and os.listdir(env['models']) == ['granite']


def test_oci_rejects_non_model_images(env, monkeypatch):
    env['reg'].respond_orig = env['reg'].respond
    index = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json', 'manifests': []})
    env['rec'].responder = lambda step, argv, call: (0, index, '')
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0'))
    assert r['failed'] and 'image index' in r['msg']
    untitled = json.dumps({'schemaVersion': 2, 'layers': [{'digest': 'sha256:' + '0' * 64, 'size': 1}]})
    env['rec'].responder = lambda step, argv, call: (0, untitled, '')
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0'))
    assert r['failed'] and 'org.opencontainers.image.title' in r['msg']
    evil = json.dumps({'schemaVersion': 2, 'layers': [{'digest': 'sha256:' + '0' * 64, 'size': 1,
                       'annotations': {'org.opencontainers.image.title': '../../etc/passwd'}}]})
    env['rec'].responder = lambda step, argv, call: (0, evil, '')
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0'))
    assert r['failed'] and 'not a relative file name' in r['msg']


def test_oci_bad_reference(env, monkeypatch):
    r = run_module(monkeypatch, M.main, oci_args(env, repository='registry.example/models/granite'))
    assert r['failed'] and 'docker://HOST[:PORT]/PATH' in r['msg']


def test_oci_signed_images_are_copied_without_their_signatures(env, monkeypatch):
    # ilab model download 0.26.1 (src/instructlab/model/download.py) runs
    # `skopeo copy REPO:RELEASE oci:DIR --remove-signatures`: an OCI layout cannot hold the
    # signatures of a signed image and skopeo refuses the copy without the flag
    env['reg'].push('1.0', {'model.gguf': b'signed weights'})
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0'))
    assert r['changed']
    (copy,) = [c for c in env['rec'].calls if c['step'] == 'skopeo copy']
    assert '--remove-signatures' in copy['argv']
    assert copy['argv'].index('--remove-signatures') < copy['argv'].index(
        'docker://registry.example:5000/models/granite@' + r['digest'])


# ---------------------------------------------------- oci: image indexes
TWO_PLATFORMS = {'linux/amd64': {'model.gguf': b'amd64 weights'},
                 'linux/arm64': {'model.gguf': b'arm64 weights', 'README.md': b'arm'}}


@pytest.mark.parametrize('machine,platform', [('x86_64', 'linux/amd64'), ('aarch64', 'linux/arm64')])
def test_oci_index_resolves_to_the_host_platform(env, monkeypatch, machine, platform):
    monkeypatch.setattr(M.platform_mod, 'machine', lambda: machine)
    index, digests = env['reg'].push_index('1.0', TWO_PLATFORMS)
    chosen = digests[platform]
    chk = run_module(monkeypatch, M.main, oci_args(env, release='1.0'), check_mode=True)
    assert chk['changed'] and chk['digest'] == chosen and chk['index_digest'] == index
    assert chk['fetched']['platform'] == platform and chk['fetched']['digest'] == chosen
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0'), diff=True)
    assert r['changed'] and r['digest'] == chosen and r['manifest_digest'] == chosen
    assert r['index_digest'] == index and r['platform'] == platform
    assert r['diff']['after']['digest'] == chosen
    base = 'docker://registry.example:5000/models/granite'
    inspect_index, inspect_chosen, copy = [c['argv'] for c in env['rec'].calls if not c['skipped']][-3:]
    assert inspect_index[:2] == inspect_chosen[:2] == ['/usr/bin/skopeo', 'inspect']
    assert inspect_index[-1] == base + ':1.0'                 # the index
    assert inspect_chosen[-1] == base + '@' + chosen          # the host platform's manifest, by its digest
    assert copy[1] == 'copy' and copy[-2] == base + '@' + chosen
    assert not [a for a in copy if 'override' in a or a in ('--all', '-a')]   # no choice left to skopeo
    target = os.path.join(env['models'], 'granite')
    want = TWO_PLATFORMS[platform]
    assert sorted(os.listdir(target)) == sorted(want)
    assert open(os.path.join(target, 'model.gguf'), 'rb').read() == want['model.gguf']
    # the record holds the chosen manifest: a second run is a no-op
    runner = M.IlabRunner(type('Mod', (), {'params': {}})(), user=ME)
    with open(M.record_path(runner, target)) as f:
        record = json.load(f)
    assert record['digest'] == chosen and record['spec']['index_digest'] == index
    again = run_module(monkeypatch, M.main, oci_args(env, release='1.0'))
    assert not again['changed'] and again['digest'] == chosen


def test_oci_index_platform_option_and_digest_pins(env, monkeypatch):
    monkeypatch.setattr(M.platform_mod, 'machine', lambda: 'x86_64')
    index, digests = env['reg'].push_index('1.0', TWO_PLATFORMS)
    # either digest pins: the index's, or the chosen manifest's
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0', digest=index, name='by-index'))
    assert r['changed'] and r['digest'] == digests['linux/amd64'] and r['index_digest'] == index
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0', digest=digests['linux/amd64'], name='by-manifest'))
    assert r['changed'] and r['digest'] == digests['linux/amd64']
    # by digest only (no tag): the index digest is inspected and resolved the same way
    r = run_module(monkeypatch, M.main, oci_args(env, digest=index, name='by-index-only'))
    assert r['changed'] and r['digest'] == digests['linux/amd64']
    # another platform's manifest is not what this host resolves to: refused before any copy
    env['rec'].calls[:] = []
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0', digest=digests['linux/arm64'], name='wrong'))
    assert r['failed'] and 'neither is the expected digest ' + digests['linux/arm64'] in r['msg']
    assert index in r['msg'] and digests['linux/amd64'] in r['msg']
    assert 'skopeo copy' not in env['rec'].steps() and not os.path.exists(os.path.join(env['models'], 'wrong'))
    # platform= picks another manifest (and then that digest pins)
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0', digest=digests['linux/arm64'],
                                                 platform='linux/arm64', name='arm'))
    assert r['changed'] and r['digest'] == digests['linux/arm64'] and r['platform'] == 'linux/arm64'
    assert sorted(os.listdir(os.path.join(env['models'], 'arm'))) == ['README.md', 'model.gguf']


def test_oci_index_without_the_platform_is_refused_clearly(env, monkeypatch):
    env['reg'].push_index('1.0', TWO_PLATFORMS)
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0', platform='linux/s390x'))
    assert r['failed'] and 'without a manifest for platform linux/s390x' in r['msg']
    assert 'linux/amd64, linux/arm64' in r['msg']
    assert env['rec'].steps() == ['skopeo inspect'] and not os.path.exists(env['models'])
    r = run_module(monkeypatch, M.main, oci_args(env, release='1.0', platform='arm64'))
    assert r['failed'] and 'platform must look like OS/ARCH' in r['msg']


def test_oci_host_platform_names():
    import platform as stdlib_platform
    assert M.host_platform() == 'linux/' + {'x86_64': 'amd64', 'aarch64': 'arm64'}.get(
        stdlib_platform.machine(), stdlib_platform.machine())
    descs = {'manifests': [
        {'digest': 'sha256:' + 'a' * 64, 'platform': {'os': 'linux', 'architecture': 'arm', 'variant': 'v6'}},
        {'digest': 'sha256:' + 'b' * 64, 'platform': {'os': 'linux', 'architecture': 'arm', 'variant': 'v7'}},
        {'digest': 'sha256:' + 'c' * 64, 'platform': {'os': 'unknown', 'architecture': 'unknown'}}]}
    assert M.select_manifest(descs, 'linux/arm/v7', 'x')['digest'] == 'sha256:' + 'b' * 64
    with pytest.raises(M.Fail) as e:
        M.select_manifest(descs, 'linux/arm', 'x')
    assert 'set platform to OS/ARCH/VARIANT' in e.value.msg


# -------------------------------------------------------- oci: logging in
PASSWORD = 'Reg1stry-Pa55-unit'
USER = 'lf-unit-user'


def login_args(env, **kw):
    a = oci_args(env, release='1.0', username=USER, password=PASSWORD)
    del a['auth_file']
    a.update(kw)
    return a


def kept_auth(env):
    return os.path.join(M._fs.STATE_ROOT, 'users', ME, 'registry-auth.json')


def tmp_entries():
    tmp = os.path.join(M._fs.STATE_ROOT, 'users', ME, 'tmp')
    return os.listdir(tmp) if os.path.isdir(tmp) else []


def test_oci_login_writes_a_root_only_auth_file(env, monkeypatch):
    env['reg'].push('1.0', {'model.gguf': b'private weights'})
    env['reg'].creds = (USER, PASSWORD)
    r = run_module(monkeypatch, M.main, login_args(env), diff=True)
    assert r['changed'] and not r.get('failed'), r
    path = kept_auth(env)
    assert r['auth_file'] == path
    st = os.stat(path)
    assert oct(st.st_mode & 0o777) == '0o600' and st.st_uid == os.geteuid()
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == '0o700'
    assert json.load(open(path)) == {'auths': {'registry.example:5000': {
        'auth': base64.b64encode(('%s:%s' % (USER, PASSWORD)).encode()).decode()}}}
    # skopeo got the credentials through --authfile only: first the checked temporary file,
    # then (once the registry accepted it) the kept one
    inspect, copy = [c for c in env['rec'].calls if not c['skipped']]
    tmp_auth = inspect['argv'][4]
    assert tmp_auth.startswith('--authfile=' + os.path.join(M._fs.STATE_ROOT, 'users', ME, 'tmp', 'auth-'))
    assert '--src-authfile=' + path in copy['argv']
    assert tmp_entries() == []                        # the temporary file is gone
    for call in env['rec'].calls:
        assert PASSWORD not in ' '.join(call['argv']) and USER not in ' '.join(call['argv'])
        assert PASSWORD not in json.dumps(call['env']) and not call['secret_env']
    assert PASSWORD not in json.dumps(r)
    assert base64.b64encode(('%s:%s' % (USER, PASSWORD)).encode()).decode() not in json.dumps(r)
    assert r['diff']['before']['credentials'] == 'absent' and r['diff']['after']['credentials'] == 'stored'
    # the same credentials again: nothing to do, the kept file is used as is
    env['rec'].calls[:] = []
    again = run_module(monkeypatch, M.main, login_args(env))
    assert not again['changed'] and again['auth_file'] == path
    assert env['rec'].calls[0]['argv'][4] == '--authfile=' + path


def test_oci_login_check_mode_writes_nothing(env, monkeypatch):
    env['reg'].push('1.0', {'model.gguf': b'private weights'})
    env['reg'].creds = (USER, PASSWORD)
    chk = run_module(monkeypatch, M.main, login_args(env), check_mode=True)
    assert chk['changed'] and chk['fetched']['digest'] and 'would be saved' in chk['reason']
    assert not os.path.exists(kept_auth(env)) and tmp_entries() == []
    assert not os.path.exists(env['models'])


def test_oci_login_keeps_other_registries_and_replaces_changed_credentials(env, monkeypatch):
    env['reg'].push('1.0', {'model.gguf': b'w'})
    env['reg'].creds = (USER, PASSWORD)
    other = {'auth': base64.b64encode(b'x:y').decode()}
    os.makedirs(os.path.dirname(kept_auth(env)), mode=0o700, exist_ok=True)
    with open(kept_auth(env), 'w') as f:
        json.dump({'auths': {'quay.example': other, 'registry.example:5000': {'auth': 'b2xkOm9sZA=='}}}, f)
    r = run_module(monkeypatch, M.main, login_args(env), diff=True)
    assert r['changed'] and r['diff']['before']['credentials'] == 'other'
    auths = json.load(open(kept_auth(env)))['auths']
    assert auths['quay.example'] == other
    assert base64.b64decode(auths['registry.example:5000']['auth']).decode() == USER + ':' + PASSWORD
    # the model matched and only the credentials changed: still a change
    env['reg'].creds = (USER, PASSWORD + '-rotated')
    r = run_module(monkeypatch, M.main, login_args(env, password=PASSWORD + '-rotated'))
    assert r['changed'] and r['fetched'] is None and 'credentials for registry.example:5000 saved' in r['reason']


def test_oci_wrong_password_names_the_registry_and_writes_nothing(env, monkeypatch):
    env['reg'].push('1.0', {'model.gguf': b'private weights'})
    env['reg'].creds = (USER, PASSWORD)
    r = run_module(monkeypatch, M.main, login_args(env, password='wrong-' + PASSWORD))
    assert r['failed'] and r['step'] == 'skopeo inspect'
    assert r['msg'].startswith('registry registry.example:5000 refused the credentials of username'), r['msg']
    assert 'unauthorized' in r['msg']
    assert 'wrong-' + PASSWORD not in json.dumps(r)
    assert env['rec'].steps() == ['skopeo inspect']
    assert not os.path.exists(kept_auth(env)) and tmp_entries() == []
    assert not os.path.exists(env['models'])
    assert not os.path.exists(os.path.join(M._fs.STATE_ROOT, 'users', ME, 'downloads'))
    # without any credentials the registry's refusal says what to give
    del env['rec'].calls[:]
    args = oci_args(env, release='1.0')
    del args['auth_file']
    r = run_module(monkeypatch, M.main, args)
    assert r['failed'] and 'registry registry.example:5000 requires credentials' in r['msg']


def test_oci_password_file(env, monkeypatch):
    env['reg'].push('1.0', {'model.gguf': b'w'})
    env['reg'].creds = (USER, PASSWORD)
    pw = env['tmp'] / 'registry-password'
    pw.write_text(PASSWORD + '\n')
    pw.chmod(0o644)
    args = login_args(env, password_file=str(pw))
    del args['password']
    r = run_module(monkeypatch, M.main, args)
    assert r['failed'] and 'password_file %s is open to group or others (mode 0644)' % pw in r['msg']
    assert env['rec'].calls == []
    pw.chmod(0o600)
    r = run_module(monkeypatch, M.main, args)
    assert r['changed'] and not r.get('failed'), r
    assert base64.b64decode(json.load(open(kept_auth(env)))['auths']['registry.example:5000']['auth']
                            ).decode() == USER + ':' + PASSWORD
    r = run_module(monkeypatch, M.main, dict(args, password_file=str(env['tmp'] / 'missing')))
    assert r['failed'] and 'password_file' in r['msg'] and 'does not exist' in r['msg']


def test_oci_login_bad_option_combinations(env, monkeypatch):
    r = run_module(monkeypatch, M.main, login_args(env, auth_file='/root/auth.json'))
    assert r['failed'] and 'auth_file' in r['msg'] and 'username' in r['msg']
    args = login_args(env)
    del args['password']
    r = run_module(monkeypatch, M.main, args)
    assert r['failed'] and r['msg'] == 'username needs password or password_file'
    r = run_module(monkeypatch, M.main, login_args(env, password_file='/x'))
    assert r['failed'] and 'mutually exclusive' in r['msg']
    r = run_module(monkeypatch, M.main, dict(source='path', venv=env['venv'], src='/x', username=USER, password='p'))
    assert r['failed'] and r['msg'] == 'username applies to source=oci only'
    assert env['rec'].calls == []


def test_no_log_on_registry_credentials():
    import inspect
    src = inspect.getsource(M.main)
    assert "username=dict(type='str', no_log=True)" in src
    assert "password=dict(type='str', no_log=True)" in src


# ------------------------------------------------------------------- hf
def hf_responder(files, commit=None):
    """What HF_SCRIPT does: download (op=download) and print the commit the revision is at
    (``commit``: a one-item list, changed by a test to move the branch; ``[None]``: offline)."""
    commit = commit if commit is not None else ['c' * 40]

    def respond(step, argv, call):
        spec = json.loads(argv[3])
        if step == 'hf resolve' and commit[0] is None:
            return 1, '', 'ConnectionError: offline\n'
        if step == 'hf download':
            os.makedirs(os.path.join(spec['tmp'], '.cache', 'huggingface'))
            for name, data in files.items():
                p = os.path.join(spec['tmp'], name)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, 'wb') as f:
                    f.write(data)
        if step in ('hf download', 'hf resolve'):
            return 0, json.dumps({'commit': commit[0]}) + '\n', ''
        return None
    return respond


def hf_args(env, **kw):
    a = dict(source='hf', venv=env['venv'], model_dir=env['models'],
             repository='TheBloke/Mistral-7B-Instruct-v0.2-GGUF',
             filename='mistral-7b-instruct-v0.2.Q4_K_M.gguf', hf_token=TOKEN)
    a.update(kw)
    return a


def test_hf_token_only_in_environment(env, monkeypatch):
    env['rec'].responder = hf_responder({'mistral-7b-instruct-v0.2.Q4_K_M.gguf': b'gguf'})
    r = run_module(monkeypatch, M.main, hf_args(env))
    assert r['changed'] and r['path'] == os.path.join(env['models'], 'mistral-7b-instruct-v0.2.Q4_K_M.gguf')
    (call,) = env['rec'].calls
    assert call['argv'][:2] == [env['venv'] + '/bin/python', '-c']
    assert json.loads(call['argv'][3]) == {
        'op': 'download', 'repository': 'TheBloke/Mistral-7B-Instruct-v0.2-GGUF',
        'filename': 'mistral-7b-instruct-v0.2.Q4_K_M.gguf', 'revision': 'main',
        'tmp': json.loads(call['argv'][3])['tmp']}
    assert call['as_user'] and r['commit'] == 'c' * 40
    assert call['secret_env'] == {'HF_TOKEN': TOKEN}
    assert TOKEN not in ' '.join(call['argv'])
    assert '--hf-token' not in call['argv']
    assert TOKEN not in json.dumps(r)
    assert r['digest'] == 'sha256:' + sha(b'gguf')
    assert os.listdir(env['models']) == ['mistral-7b-instruct-v0.2.Q4_K_M.gguf']


def test_hf_token_file(env, monkeypatch):
    tok = env['tmp'] / 'token'
    tok.write_text(TOKEN + '\n')
    tok.chmod(0o600)
    env['rec'].responder = hf_responder({'mistral-7b-instruct-v0.2.Q4_K_M.gguf': b'gguf'})
    args = hf_args(env, hf_token_file=str(tok))
    del args['hf_token']
    r = run_module(monkeypatch, M.main, args)
    assert r['changed'] and env['rec'].calls[0]['secret_env'] == {'HF_TOKEN': TOKEN}
    assert TOKEN not in json.dumps(r)


def test_hf_failure_is_masked_and_leaves_nothing(env, monkeypatch):
    env['rec'].responder = lambda step, argv, call: (1, '', '401 Unauthorized for token %s\n' % TOKEN)
    r = run_module(monkeypatch, M.main, hf_args(env))
    assert r['failed'] and r['step'] == 'hf download'
    assert TOKEN not in json.dumps(r) and '********' in r['msg']
    assert os.listdir(env['models']) == []


def test_hf_idempotent_from_record_and_check_mode(env, monkeypatch, private_home):
    env['rec'].responder = hf_responder({'mistral-7b-instruct-v0.2.Q4_K_M.gguf': b'gguf'})
    chk = run_module(monkeypatch, M.main, hf_args(env), check_mode=True)
    assert chk['changed'] and env['rec'].steps() == [] and not os.path.exists(env['models'])
    run_module(monkeypatch, M.main, hf_args(env))
    again = run_module(monkeypatch, M.main, hf_args(env))
    assert not again['changed'] and 'recorded download' in again['reason']
    # the branch was re-checked (one small request), not downloaded again
    assert env['rec'].steps() == ['hf download', 'hf resolve']
    records = os.path.join(M._fs.STATE_ROOT, 'users', ME, 'downloads')
    assert os.listdir(records) and oct(os.stat(records).st_mode & 0o777) == '0o700'
    assert not os.path.exists(os.path.join(private_home, '.local', 'state', 'labforge', 'downloads'))
    other = run_module(monkeypatch, M.main, hf_args(env, revision='v2'), check_mode=True)
    assert other['changed'] and 'not downloaded from' in other['reason']


def test_hf_moving_revision_is_rechecked_and_a_commit_is_pinned(env, monkeypatch):
    commit = ['a' * 40]
    env['rec'].responder = hf_responder({'mistral-7b-instruct-v0.2.Q4_K_M.gguf': b'gguf'}, commit)
    run_module(monkeypatch, M.main, hf_args(env))
    commit[0] = 'b' * 40                      # main moved
    r = run_module(monkeypatch, M.main, hf_args(env))
    assert r['changed'] and 'moved from %s to %s' % ('a' * 40, 'b' * 40) in r['reason'] and r['commit'] == 'b' * 40
    commit[0] = None                          # the Hub is unreachable: keep what is there, say so
    r = run_module(monkeypatch, M.main, hf_args(env))
    assert not r['changed'] and r['commit'] == 'b' * 40
    pinned = hf_args(env, revision='b' * 40, name='pinned.gguf')
    run_module(monkeypatch, M.main, pinned)
    n = len(env['rec'].calls)
    assert not run_module(monkeypatch, M.main, pinned)['changed']
    assert len(env['rec'].calls) == n          # a pinned commit is never re-checked


def test_hf_whole_repository(env, monkeypatch):
    env['rec'].responder = hf_responder({'config.json': b'{}', 'tokenizer.json': b'{}', 'sub/x.bin': b'x'})
    r = run_module(monkeypatch, M.main, hf_args(env, repository='instructlab/granite-7b-lab', filename=None))
    target = os.path.join(env['models'], 'instructlab', 'granite-7b-lab')
    assert r['path'] == target and sorted(r['files']) == ['config.json', 'sub/x.bin', 'tokenizer.json']
    assert not os.path.exists(os.path.join(target, '.cache'))


# ------------------------------------------------------------------ url
class FakeResponse(io.BytesIO):
    pass


def test_url_sha256_verified(env, monkeypatch):
    data = b'model bytes'
    monkeypatch.setattr(M, 'fetch_url', lambda module, url, timeout=30: (FakeResponse(data), {'status': 200}))
    args = dict(source='url', venv=env['venv'], model_dir=env['models'], url='https://m.example/x/model.gguf?dl=1',
                checksum='sha256:' + sha(data))
    r = run_module(monkeypatch, M.main, args)
    assert r['changed'] and r['digest'] == 'sha256:' + sha(data) and r['path'].endswith('/model.gguf')
    assert not run_module(monkeypatch, M.main, args)['changed']
    bad = dict(args, checksum='0' * 64, name='other.gguf')
    r = run_module(monkeypatch, M.main, bad)
    assert r['failed'] and 'sha256 mismatch' in r['msg']
    assert sorted(os.listdir(env['models'])) == ['model.gguf']


def test_url_needs_checksum(env, monkeypatch):
    r = run_module(monkeypatch, M.main, dict(source='url', venv=env['venv'], url='https://m.example/model.gguf'))
    assert r['failed'] and 'checksum' in r['msg']


# ----------------------------------------------------------------- path
def test_path_file_and_dir(env, monkeypatch):
    src = env['tmp'] / 'src.gguf'
    src.write_bytes(b'abc')
    args = dict(source='path', venv=env['venv'], model_dir=env['models'], src=str(src))
    chk = run_module(monkeypatch, M.main, args, check_mode=True, diff=True)
    assert chk['changed'] and not os.path.exists(env['models'])
    assert chk['diff']['before'] == {'path': env['models'] + '/src.gguf', 'state': 'absent'}
    r = run_module(monkeypatch, M.main, args)
    assert r['changed'] and r['digest'] == 'sha256:' + sha(b'abc')
    assert not run_module(monkeypatch, M.main, args)['changed']
    assert not run_module(monkeypatch, M.main, dict(args, verify=True))['changed']
    src.write_bytes(b'abcd')
    assert run_module(monkeypatch, M.main, args)['changed']
    d = env['tmp'] / 'srcdir'
    (d / 'sub').mkdir(parents=True)
    (d / 'config.json').write_text('{}')
    (d / 'sub' / 'w.bin').write_bytes(b'w')
    r = run_module(monkeypatch, M.main, dict(args, src=str(d), name='tiny'))
    assert r['changed'] and sorted(r['files']) == ['config.json', 'sub/w.bin']
    listing = ''.join('%s  %s\n' % (sha(c), n) for n, c in sorted([('config.json', b'{}'), ('sub/w.bin', b'w')]))
    assert r['digest'] == 'sha256:' + sha(listing.encode())
    assert not run_module(monkeypatch, M.main, dict(args, src=str(d), name='tiny'))['changed']


def test_no_log_on_token():
    import inspect
    src = inspect.getsource(M.main)
    assert "hf_token=dict(type='str', no_log=True)" in src


# ------------------------------------------------ one driver, one small class per source
class FakeSource(M.Source):
    """A source that says what the test wants; records what the driver asks of it."""
    verdict = None

    def probe(self, check):
        self.asked = ['probe']
        self.spec = dict(source='fake')
        self.fetched = dict(source='fake', what='it')

    def compare(self, have, record):
        self.asked.append('compare')
        return self.verdict

    def fill(self, ws):
        raise AssertionError('the driver places through fetch()')


class Driver(object):
    def __init__(self, tmp_path, monkeypatch, **params):
        class Runner(object):
            state = str(tmp_path / 'state')
            owner = None
        self.target = str(tmp_path / 'model.gguf')
        module = type('Module', (object,), {})()
        module.params = dict(dict(source='fake', force=False, verify=False), **params)
        monkeypatch.setitem(M.SOURCES, 'fake', FakeSource)
        self.dl = M.Downloader(module, Runner())
        self.placed = []
        monkeypatch.setattr(self.dl, 'fetch', self.fetch)

    def fetch(self, target, fill, private=True):
        self.placed.append((target, fill.__self__ is self.dl.source, private))
        with open(target, 'w') as f:
            f.write('new')

    def run(self, check=False, verdict=None):
        FakeSource.verdict = verdict
        out = self.dl.run(self.target, None, check)
        return out, self.dl.source.asked


def test_the_sources_are_one_class_each():
    assert sorted(M.SOURCES) == ['hf', 'oci', 'path', 'url']
    for cls in M.SOURCES.values():
        assert issubclass(cls, M.Source)
        assert set(['probe', 'compare', 'fill']) <= set(vars(cls))
    assert M.HfSource.private is False and M.OciSource.private and M.UrlSource.private and M.PathSource.private


def test_driver_missing_target_is_fetched_and_placed(tmp_path, monkeypatch):
    d = Driver(tmp_path, monkeypatch)
    (fetched, reason, files, spec), asked = d.run()
    assert (fetched, reason, spec, asked) == (dict(source='fake', what='it'), 'target missing', dict(source='fake'),
                                              ['probe'])
    assert d.placed == [(d.target, True, True)] and files['model.gguf']['sha256'] == sha(b'new')


def test_driver_check_mode_probes_and_compares_but_places_nothing(tmp_path, monkeypatch):
    d = Driver(tmp_path, monkeypatch)
    (fetched, reason, files, spec), asked = d.run(check=True)
    assert (fetched['what'], reason, files, d.placed) == ('it', 'target missing', None, [])
    (tmp_path / 'model.gguf').write_text('old')
    (fetched, reason, files, spec), asked = d.run(check=True, verdict=(False, 'target differs'))
    assert (fetched['what'], reason, files, d.placed, asked) == ('it', 'target differs', None, [],
                                                                 ['probe', 'compare'])


def test_driver_up_to_date_target_is_left_alone_even_when_the_source_cannot_tell(tmp_path, monkeypatch):
    d = Driver(tmp_path, monkeypatch)
    (tmp_path / 'model.gguf').write_text('old')
    (fetched, reason, files, spec), asked = d.run(verdict=(True, 'target matches'))
    assert (fetched, reason, d.placed) == (None, 'target matches', [])
    assert list(files) == ['model.gguf'] and files['model.gguf']['sha256'] == sha(b'old')
    # a source that cannot compare this target (e.g. a directory for a one-file url): fetched again
    (fetched, reason, files, spec), asked = d.run(verdict=None)
    assert (reason, len(d.placed)) == ('forced', 1)


def test_driver_force_does_not_ask_the_source(tmp_path, monkeypatch):
    d = Driver(tmp_path, monkeypatch, force=True)
    (tmp_path / 'model.gguf').write_text('old')
    (fetched, reason, files, spec), asked = d.run(verdict=(True, 'target matches'))
    assert (reason, asked, len(d.placed)) == ('forced', ['probe'], 1)
