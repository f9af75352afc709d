# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.ilab_model_download: exact skopeo and
download command lines, secrets kept off argv and out of results, check mode,
idempotence decisions, atomicity (nothing at the target after a failure)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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
    OCI layouts built with tests/testbed/oci_layout.py."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.images = {}   # tag -> (layout dir, manifest digest)
        self.fail_copy = False
        self.corrupt_copy = False

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
        return digest

    def manifest(self, layout, digest):
        with open(os.path.join(layout, 'blobs', 'sha256', digest.split(':')[1])) as f:
            return f.read()

    def respond(self, step, argv, call):
        if step == 'skopeo inspect':
            ref = argv[-1]
            for tag, (layout, digest) in self.images.items():
                if ref.endswith(':' + tag) or ref.endswith('@' + digest):
                    return 0, self.manifest(layout, digest), ''
            return 1, '', 'FATA[0000] Error parsing image name: manifest unknown\n'
        if step == 'skopeo copy':
            if self.fail_copy:
                return 1, '', 'FATA[0001] writing blob: connection reset\n'
            src, dst = argv[-2], argv[-1]
            digest = src.split('@')[1]
            layout = [lay for lay, d in self.images.values() if d == digest][0]
            out = dst[len('oci:'):].rsplit(':', 1)[0]
            import shutil
            shutil.copytree(layout, out)
            with open(os.path.join(out, 'index.json')) as f:
                index = json.load(f)
            index['manifests'] = [m for m in index['manifests'] if m['digest'] == digest]
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
    assert copy['argv'] == ['/usr/bin/skopeo', 'copy', '--quiet', '--preserve-digests', '--retry-times=2',
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
