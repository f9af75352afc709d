#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: ilab_model_download
short_description: Download a model for InstructLab, idempotently and atomically
version_added: 0.1.0
description:
  - Fetches a model into the InstructLab models directory from Hugging Face (V(hf)), an OCI
    registry (V(oci)), an HTTPS URL with a known sha256 (V(url)) or a path on the host (V(path)).
  - Idempotent. The target is left alone when it exists and matches what was asked for, that is the
    recorded source and sizes (and sha256, recomputed when O(verify=true) or when the file
    changed since the last run); for V(oci) the registry's current manifest digest of the
    release; for V(url) the given sha256; for V(path) the source's sizes and sha256.
  - Atomic; everything is fetched into a hidden temporary directory next to the target and
    renamed into place; a failed or killed download leaves nothing at the final path (stale
    temporary directories of the same target are removed by the next run). Downloads of the same
    target on one host wait for each other (a lock in C(/var/lib/labforge)).
  - V(hf) with a O(revision) that is a branch or tag (it moves) - each run asks the Hub which commit
    it points at now (one small request, no download) and downloads again when it moved since
    the recorded download. A 40-hex commit as O(revision) is pinned and never re-checked. When
    the Hub cannot be reached, the module warns and keeps the downloaded commit.
  - V(oci) does not use C(ilab model download), whose 0.26.1 release rejects registries with a
    port, links the FIRST release's files when a second release of the same model is asked for,
    cannot pin a digest and leaves an empty model directory behind on failure. The module runs
    C(skopeo inspect) to resolve the release to its manifest digest (and compares it with
    O(digest)), then C(skopeo copy --remove-signatures docker://...@DIGEST oci:TMP) so that
    exactly that manifest is fetched, verifies the copied manifest's digest and places each
    layer as the file named by its C(org.opencontainers.image.title) annotation.
  - V(oci) images that carry signatures (such as C(registry.redhat.io)'s, whose signatures a RHEL
    host finds through C(/etc/containers/registries.d/)) are copied the way C(ilab model download)
    0.26.1 copies them, with C(--remove-signatures) (an OCI layout cannot store signatures;
    without it skopeo refuses the copy). The signatures are not verified by the module; the
    host's C(/etc/containers/policy.json) still applies to the copy.
  - V(oci) image indexes (an OCI image index or a Docker manifest list, that is a multi-architecture
    image) resolve to the manifest of O(platform), by default the host's (C(linux/amd64) on
    x86_64, C(linux/arm64) on aarch64). The module picks that manifest from the index itself and
    fetches it by its digest, so what is recorded and returned as RV(digest) is always the
    digest of the manifest whose files were placed; the index's digest is returned as
    RV(index_digest).
  - V(oci) O(username) with O(password) (or O(password_file)) replace C(podman login). The
    module writes the credentials (the C(auths) entry of the registry's C(HOST[:PORT]) with C(auth)
    set to the base64 of C(USER:PASSWORD), what C(skopeo login) writes) into an auth file only root can read,
    C(/var/lib/labforge/users/USER/registry-auth.json) (0600, in a 0700 directory), and hands it
    to skopeo with C(--authfile). New or changed credentials are first written to a temporary
    file in the same private directory and checked by the module's first registry query; the auth
    file is replaced only when the registry accepted them. Wrong credentials fail with an error
    naming the registry, and nothing is written (no auth file, no model, no record).
  - Secrets never reach a command line. The Hugging Face token goes to the download process in
    its environment (C(HF_TOKEN)); registry credentials stay in the auth file.
author:
  - labforge engineers (@labforge)
extends_documentation_fragment:
  - labforge.instructlab.attributes
  - labforge.instructlab.ilab
attributes:
  check_mode:
    support: full
    details: For V(oci) the registry is queried (read-only) to report the digest that would be fetched.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  source:
    description: Where the model comes from.
    type: str
    required: true
    choices: [hf, oci, url, path]
  repository:
    description:
      - V(hf) the Hugging Face repository (V(TheBloke/Mistral-7B-Instruct-v0.2-GGUF)).
      - V(oci) the image, C(docker://HOST[:PORT]/PATH) (a C(:TAG) or C(@sha256:...) suffix is
        taken as O(release) or O(digest)).
    type: str
  filename:
    description: V(hf) one file of the repository; the whole repository when omitted.
    type: str
  revision:
    description:
      - V(hf) branch, tag or commit. A branch or tag is re-checked on every run (see above);
        give a full commit sha to pin the download.
    type: str
    default: main
  hf_token:
    description:
      - V(hf) access token. Passed to the download process in its environment only.
    type: str
  hf_token_file:
    description:
      - V(hf) a file on the host holding the token (mode 0600 recommended), read by the module.
    type: path
  release:
    description: V(oci) the tag. Defaults to V(latest) unless O(digest) is given.
    type: str
  digest:
    description:
      - V(oci) the digest (C(sha256:...)) the release must resolve to; the download fails when it
        does not. Without O(release), the image is fetched by this digest.
      - For an image index (multi-architecture image) either digest pins it. The index's digest
        (RV(index_digest)) pins the whole index, whose O(platform) manifest is then fetched. The
        chosen manifest's digest (RV(digest) of an earlier run) pins exactly the files of one
        platform. The download fails when the given digest is neither.
    type: str
  platform:
    description:
      - V(oci) the platform whose manifest is taken from an image index, as C(OS/ARCH) or
        C(OS/ARCH/VARIANT) in the registry's (Go) names. Defaults to the host's, C(linux/amd64)
        on x86_64 and C(linux/arm64) on aarch64.
      - Ignored for an image that is a single manifest.
    type: str
  auth_file:
    description:
      - V(oci) registry auth file as C(podman login) or C(skopeo login) write it.
      - Mutually exclusive with O(username).
    type: path
  username:
    description:
      - V(oci) user name for the registry of O(repository), with O(password) or
        O(password_file). Replaces C(podman login); see the description for where the
        credentials are kept.
      - Kept out of logs (C(no_log)); Ansible therefore masks this value wherever it appears in
        the module's output.
    type: str
  password:
    description:
      - V(oci) password (or token) for O(username). Never on a command line or in a log.
      - Mutually exclusive with O(password_file).
    type: str
  password_file:
    description:
      - V(oci) a file on the host holding the password for O(username) (one line; a trailing
        newline is dropped). It must not be readable or writable by group or others (mode 0600
        or 0400); the module refuses it otherwise.
    type: path
  cert_dir:
    description: V(oci) directory of C(*.crt) files (CA of the registry) for C(skopeo).
    type: path
  tls_verify:
    description: V(oci) verify the registry's TLS certificate.
    type: bool
    default: true
  url:
    description: V(url) the https URL of one model file.
    type: str
  checksum:
    description: V(url) required sha256 of the file (C(sha256:HEX) or C(HEX)).
    type: str
  validate_certs:
    description: V(url) verify TLS certificates.
    type: bool
    default: true
  src:
    description:
      - V(path) a file or directory on the managed host. To install a model from the controller,
        copy it to the host with M(ansible.builtin.copy) first and point O(src) at it.
    type: path
  model_dir:
    description: Directory of the models. Defaults to the user's C(~/.cache/instructlab/models).
    type: path
  name:
    description:
      - Name of the model under O(model_dir). Defaults to the file name (V(hf) with O(filename),
        V(url), V(path)), the repository (V(hf)), or the last path component of the image (V(oci)).
      - Give different names to keep several releases of the same image side by side.
    type: str
  dest:
    description: The full target path; overrides O(model_dir) and O(name).
    type: path
  force:
    description: Fetch even when the target matches.
    type: bool
    default: false
  verify:
    description: Recompute the sha256 of an existing target instead of trusting the recorded one.
    type: bool
    default: false
  timeout:
    description: Seconds after which a download step is killed (nothing is left at the target).
    type: int
requirements:
  - C(skopeo) (1.9 or later, as C(ilab model download) requires) on the host for V(oci) (the
    C(labforge.instructlab.instructlab) role installs it).
  - C(huggingface_hub) in O(venv) for V(hf) (an InstructLab dependency).
notes:
  - Download records (source, digests, sizes, the commit for V(hf)) are kept by root in
    C(/var/lib/labforge/users/USER/downloads/) (0600; the service account cannot forge them), and
    the sha256 of unchanged files in C(/var/lib/labforge/users/USER/digests.json).
  - Every file operation goes through the collection's file layer - a link the service account
    planted in its directories is never followed to a file it could not write itself.
  - Replacing an existing directory target renames the old tree aside, renames the new one in
    and removes the old one; the target path never holds a partial tree.
  - Saving new registry credentials counts as a change (C(changed) is true even when the model
    itself matched); the same credentials again are left alone.
'''

EXAMPLES = r'''
- name: Mistral GGUF from Hugging Face (token from the vault, never on a command line)
  labforge.instructlab.ilab_model_download:
    source: hf
    repository: TheBloke/Mistral-7B-Instruct-v0.2-GGUF
    filename: mistral-7b-instruct-v0.2.Q4_K_M.gguf
    hf_token: "{{ vault_hf_token }}"
  become: true

- name: Granite from an OCI registry with a port, pinned to a digest
  labforge.instructlab.ilab_model_download:
    source: oci
    repository: docker://registry.example:5000/rhelai1/granite-7b-redhat-lab
    release: "1.4"
    digest: sha256:4f1c1e0e6d6b8a3b1c9a1f0f4b8b6a0d2f5f0d1a2b3c4d5e6f708192a3b4c5d6
    auth_file: /root/.config/containers/auth.json
    name: granite-7b-redhat-lab-1.4
  become: true

- name: A multi-architecture model image, signed, logged in with a vaulted password
  labforge.instructlab.ilab_model_download:
    source: oci
    repository: docker://registry.redhat.io/rhelai1/granite-7b-redhat-lab
    release: "1.4"
    username: "{{ vault_registry_user }}"
    password: "{{ vault_registry_password }}"
    name: granite-7b-redhat-lab-1.4
  become: true
  register: granite

- name: The same image on an arm64 host, pinned to the manifest the first host got
  labforge.instructlab.ilab_model_download:
    source: oci
    repository: docker://registry.redhat.io/rhelai1/granite-7b-redhat-lab
    release: "1.4"
    digest: "{{ granite.index_digest }}"   # or granite.digest on an x86_64 host
    platform: linux/arm64
    username: "{{ vault_registry_user }}"
    password_file: /root/.config/registry-password   # 0600
  become: true

- name: A model file from a web server
  labforge.instructlab.ilab_model_download:
    source: url
    url: https://models.example/SmolLM2-135M-Instruct.Q4_1.gguf
    checksum: sha256:0f7c6e5a2f4b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d
  become: true

- name: A model copied to the host earlier
  labforge.instructlab.ilab_model_download:
    source: path
    src: /srv/models/SmolLM2-135M-Instruct.Q4_1.gguf
  become: true
'''

RETURN = r'''
path:
  description: The model (file or directory).
  returned: always
  type: str
  sample: /var/lib/instructlab/.cache/instructlab/models/granite-7b-redhat-lab
digest:
  description:
    - V(oci) the manifest digest; otherwise C(sha256:) of the file, or for a directory the sha256
      of its C(sha256sum)-style listing (C(<sha256>  <relative path>) lines, sorted).
  returned: success, and in check mode when known
  type: str
  sample: sha256:0d2b8bd7e0c3fb3cc5a1d7b0b6a9d10c7f5d3b8a5f2f8b1c8d6d4b0f0a1e2c3d
manifest_digest:
  description: V(oci) the manifest digest (for an image index, the digest of the O(platform) manifest placed).
  returned: source is oci
  type: str
index_digest:
  description: V(oci) the digest of the image index the manifest was chosen from.
  returned: source is oci and the image is an image index
  type: str
  sample: sha256:92a7a43e4ab9aedd7a09f3845372522fa7cbcfaef2aa6962b49c8b8b75057d13
platform:
  description: V(oci) the platform whose manifest was taken from the image index.
  returned: source is oci and the image is an image index
  type: str
  sample: linux/amd64
auth_file:
  description: V(oci) the root-only auth file that holds the credentials given by O(username).
  returned: source is oci and O(username) was given
  type: str
  sample: /var/lib/labforge/users/instructlab/registry-auth.json
files:
  description: The model's files with their size and sha256.
  returned: success
  type: dict
  sample: {"model.gguf": {"size": 1024, "sha256": "0d2b..."}}
size:
  description: Total size in bytes.
  returned: success
  type: int
fetched:
  description: What was (or in check mode would be) fetched; null when the target matched.
  returned: always
  type: dict
reason:
  description: Why the module fetched or left the target alone.
  returned: always
  type: str
commit:
  description: V(hf) the commit the downloaded revision pointed at.
  returned: source is hf, on success
  type: str
log_path:
  description: Log of the download step.
  returned: when a download step ran
  type: str
report:
  description:
    - "What the run report (callback C(labforge.instructlab.run_report)) records for this step: RV(path), RV(digest),
      RV(manifest_digest), RV(files), RV(size), RV(log_path), RV(reason), those of them that have a value. A
      failure adds C(path) (a path the file layer refused) and C(log_path) when it has them."
  returned: always
  type: dict
'''

import base64
import hashlib
import json
import os
import platform as platform_mod
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url

from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_runner import (
    IlabRunner, ilab_argument_spec, run_guarded)
from ansible_collections.labforge.instructlab.plugins.module_utils._ilab_common import normalize_sha256
from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.module_utils import _report

TITLE = 'org.opencontainers.image.title'
INDEX_TYPES = ('application/vnd.oci.image.index.v1+json',
               'application/vnd.docker.distribution.manifest.list.v2+json')
COMMIT_RE = re.compile(r'^[0-9a-f]{40}$')
PLATFORM_RE = re.compile(r'^[a-z0-9_]+/[a-z0-9_]+(?:/[a-z0-9_]+)?$')
# uname -m -> the architecture names of image indexes (Go's GOARCH)
GOARCH = {'x86_64': 'amd64', 'amd64': 'amd64', 'aarch64': 'arm64', 'arm64': 'arm64',
          'ppc64le': 'ppc64le', 's390x': 's390x', 'riscv64': 'riscv64', 'i386': '386', 'i686': '386'}
# what a registry says when it refuses the credentials
UNAUTHORIZED = ('unauthorized', 'authentication required', 'invalid username/password',
                'incorrect username or password', 'denied')

# Runs as the service user with the venv's python. argv: JSON spec; prints JSON
# {"commit": SHA} (the commit the revision points at), after downloading into
# spec["tmp"] when spec["op"] == "download". The token comes in HF_TOKEN.
HF_SCRIPT = r'''
import json, sys
spec = json.loads(sys.argv[1])
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url, snapshot_download
kw = dict(repo_id=spec["repository"], revision=spec["revision"])
if spec["op"] == "download":
    if spec.get("filename"):
        hf_hub_download(filename=spec["filename"], local_dir=spec["tmp"], **kw)
    else:
        snapshot_download(local_dir=spec["tmp"], **kw)
if spec.get("filename"):
    commit = get_hf_file_metadata(hf_hub_url(filename=spec["filename"], **kw)).commit_hash
else:
    commit = HfApi().model_info(spec["repository"], revision=spec["revision"]).sha
print(json.dumps({"commit": commit}))
'''

OCI_REF = re.compile(r'^docker://(?P<host>[^/]+)/(?P<path>[^:@]+?)(?::(?P<tag>[^:@/]+))?(?:@(?P<digest>sha256:[0-9a-fA-F]{64}))?$')


class Fail(Exception):
    def __init__(self, msg, result=None, step=None):
        Exception.__init__(self, msg)
        self.msg = msg
        self.result = result
        self.step = step


def parse_oci(repository, release, digest):
    m = OCI_REF.match(repository or '')
    if not m:
        raise Fail('repository must look like docker://HOST[:PORT]/PATH[:TAG][@sha256:DIGEST], got %r'
                   % repository)
    tag = release or m.group('tag')
    dig = digest or m.group('digest')
    if digest and m.group('digest') and digest.lower() != m.group('digest').lower():
        raise Fail('digest %s differs from the one in repository (%s)' % (digest, m.group('digest')))
    if dig:
        try:
            dig = 'sha256:' + normalize_sha256(dig)
        except ValueError as e:
            raise Fail(str(e))
    if not tag and not dig:
        tag = 'latest'
    base = 'docker://%s/%s' % (m.group('host'), m.group('path'))
    return dict(base=base, host=m.group('host'), path=m.group('path'), tag=tag, digest=dig,
                name=m.group('path').rstrip('/').split('/')[-1])


def host_platform():
    """The host's platform in image-index terms: ``linux/amd64`` on x86_64, ``linux/arm64`` on aarch64."""
    machine = platform_mod.machine()
    return 'linux/' + GOARCH.get(machine, machine.lower())


def describe_platform(p):
    return '/'.join(x for x in (p.get('os'), p.get('architecture'), p.get('variant')) if x)


def select_manifest(index, wanted, ref_s):
    """The descriptor of ``wanted`` (``OS/ARCH[/VARIANT]``) in an image index."""
    parts = wanted.split('/')
    descs = [d for d in index.get('manifests') or [] if isinstance(d, dict)]
    found = [d for d in descs if (d.get('platform') or {}).get('os') == parts[0]
             and (d.get('platform') or {}).get('architecture') == parts[1]]
    if len(parts) == 3:
        found = [d for d in found if d['platform'].get('variant') == parts[2]]
    elif len(found) > 1:
        # several variants (arm/v6, arm/v7): one without a variant is the plain one
        plain = [d for d in found if not d['platform'].get('variant')]
        found = plain if len(plain) == 1 else found
    have = sorted(set(describe_platform(d.get('platform') or {}) or '(no platform)' for d in descs))
    if not found:
        raise Fail('%s is an image index without a manifest for platform %s (it has: %s); set platform'
                   % (ref_s, wanted, ', '.join(have) or 'nothing'))
    if len(found) > 1:
        raise Fail('%s is an image index with %d manifests for platform %s (%s); set platform to OS/ARCH/VARIANT'
                   % (ref_s, len(found), wanted, ', '.join(describe_platform(d['platform']) for d in found)))
    if not re.match(r'^sha256:[0-9a-f]{64}$', found[0].get('digest') or ''):
        raise Fail('%s lists manifest %r for platform %s: not a sha256 digest'
                   % (ref_s, found[0].get('digest'), wanted))
    return found[0]


class RegistryLogin(object):
    """``username`` + password -> a root-only auth file for skopeo's ``--authfile``.

    The credentials are kept in ``STATE/registry-auth.json`` (root, 0600, in root's 0700
    private state directory), in the format ``skopeo login`` writes. New or changed
    credentials go to a temporary file in ``STATE/tmp`` first; the module's first registry
    query uses it, and only when the registry accepted them does ``commit`` rename it over the
    kept file. ``discard`` removes it (wrong password, check mode): nothing else is written.
    """

    def __init__(self, runner, host, username, password):
        self.runner = runner
        self.host = host
        self.path = os.path.join(runner.state, 'registry-auth.json')
        token = base64.b64encode(('%s:%s' % (username, password)).encode('utf-8')).decode('ascii')
        runner.add_secret(password)
        runner.add_secret(token)
        self.entry = {'auth': token}
        self.tmp = None
        self.changed = False
        self.before = 'absent'

    def prepare(self):
        """The auth file skopeo is to use now."""
        kept = _fs.read_json(self.path, None) if _fs.isfile(self.path) else None
        auths = dict((kept or {}).get('auths') or {})
        if auths.get(self.host) == self.entry:
            self.before = 'stored'
            return self.path
        self.before = 'other' if self.host in auths else 'absent'
        auths[self.host] = self.entry
        new = dict(kept or {}, auths=auths)
        tmp_dir = _fs.private_dir(os.path.join(self.runner.state, 'tmp'))
        for name, _st in _fs.scandir(tmp_dir):   # left by a killed run
            pid = name[len('auth-'):-len('.json')] if name.startswith('auth-') and name.endswith('.json') else ''
            if pid.isdigit() and not _fs.process_start(int(pid)):
                _fs.remove(os.path.join(tmp_dir, name))
        self.tmp = os.path.join(tmp_dir, 'auth-%d.json' % os.getpid())
        _fs.write_json(self.tmp, new, 0o600)
        self.changed = True
        return self.tmp

    def commit(self):
        """Keep the credentials the registry accepted; returns the kept file."""
        if self.tmp:
            _fs.private_dir(os.path.dirname(self.path))
            _fs.rename(self.tmp, self.path)
            self.tmp = None
        return self.path

    def discard(self):
        if self.tmp:
            _fs.remove(self.tmp)
            self.tmp = None


def target_files(target, cache, verify=False):
    """``{rel: {size, sha256}}`` of a model file (keyed by its name) or tree."""
    if _fs.isdir(target):
        return _fs.tree_info(target, cache, verify)
    return {os.path.basename(target): _fs.file_info(target, cache, verify)}


def digest_of(files, is_file):
    if is_file and len(files) == 1:
        return 'sha256:' + list(files.values())[0]['sha256']
    return _fs.digest_of(files)


def public_files(files):
    return dict((k, dict((f, v[f]) for f in ('size', 'sha256', 'link') if f in v)) for k, v in files.items())


def same_content(have, want):
    return set(have) == set(want) and all(have[k].get('sha256') == want[k].get('sha256')
                                          and have[k].get('link') == want[k].get('link') for k in want)


class Source(object):
    """One kind of source. A subclass says only what differs: ``probe`` (what the source
    is now), ``compare`` (whether an existing target already is it) and ``fill`` (fetch
    it into a staging directory). The driver (``Downloader``) does the rest once."""

    # the staging directory is root's own (``fill`` runs as root); False: the service user's
    private = True
    fetched = spec = None
    commit = None       # the commit a download came from (hf)
    login = None        # RegistryLogin (oci)

    def __init__(self, module, runner, cache, target):
        self.module = module
        self.runner = runner
        self.p = module.params
        self.owner = runner.owner
        self.cache = cache
        self.target = target
        self.log_path = None

    def run(self, step, argv, **kw):
        res = self.runner.run(step, argv, timeout=self.p['timeout'], **kw)
        if res.log_path:
            self.log_path = res.log_path
        if res.rc != 0:
            raise Fail('%s failed' % step, res, step)
        return res

    def probe(self, check):
        """Validate the options and learn what the source is: sets ``spec`` (what the download
        record keeps) and ``fetched`` (what the result says a download fetches)."""
        raise NotImplementedError

    def compare(self, have, record):
        """``(up_to_date, reason)`` for a target with files ``have`` (and its download
        ``record``), or None when the source cannot tell (the driver's reason applies)."""
        raise NotImplementedError

    def fill(self, ws):
        """Fetch into the staging directory ``ws``; returns the path to place."""
        raise NotImplementedError


class HfSource(Source):
    """A Hugging Face repository (or one file of it), downloaded as the service user."""
    private = False

    def probe(self, check):
        if not self.p['repository']:
            raise Fail('source=hf needs repository')
        self.spec = dict(source='hf', repository=self.p['repository'], filename=self.p['filename'],
                         revision=self.p['revision'])
        self.fetched = dict(self.spec)
        self.token = self.hf_token()

    def hf_token(self):
        token = self.p['hf_token']
        if not token and self.p['hf_token_file']:
            try:
                token = _fs.read_text(self.p['hf_token_file']).strip()
            except (IOError, OSError) as e:
                raise Fail('cannot read hf_token_file: %s' % e)
        if token:
            self.runner.add_secret(token)
        return token

    def hf_call(self, op, tmp=None):
        """Run HF_SCRIPT as the service user; returns the commit the revision points at."""
        spec = self.spec
        args = json.dumps(dict(op=op, repository=spec['repository'], filename=spec['filename'],
                               revision=spec['revision'], tmp=tmp))
        env = {'HF_HUB_DISABLE_TELEMETRY': '1', 'HF_HUB_DISABLE_PROGRESS_BARS': '1'}
        download = op == 'download'
        res = self.runner.python('hf %s' % op, HF_SCRIPT, args=[args], changes_state=download,
                                 env=env, secret_env={'HF_TOKEN': self.token} if self.token else None,
                                 timeout=self.p['timeout'], log=download,
                                 log_name='hf-download-%s' % os.path.basename(self.target))
        if download:
            self.log_path = res.log_path
        if res.rc != 0:
            raise Fail('hf %s failed' % op, res, 'hf %s' % op)
        try:
            return json.loads(res.stdout.strip().splitlines()[-1])['commit']
        except (ValueError, KeyError, IndexError):
            return None

    def moved(self, record):
        """For a revision that is not a commit (a branch or tag moves): the new commit when it
        moved since the recorded download, else None. Offline: a warning, no re-download."""
        spec = self.spec
        if COMMIT_RE.match(spec['revision'] or '') or not record.get('commit'):
            return None
        try:
            commit = self.hf_call('resolve')
        except Fail as e:
            self.module.warn('could not re-check revision %s of %s (%s): keeping commit %s; pin a commit '
                             'as revision to stop this check' % (spec['revision'], spec['repository'],
                                                                 e.result.log_tail if e.result else e.msg,
                                                                 record['commit']))
            return None
        return commit if commit and commit != record['commit'] else None

    def describe(self):
        spec = self.spec
        return '%s%s@%s' % (spec['repository'], '/' + spec['filename'] if spec.get('filename') else '',
                            spec.get('revision'))

    def compare(self, have, record):
        if not record or record.get('spec') != self.spec:
            return False, 'target exists but was not downloaded from %s' % self.describe()
        moved = self.moved(record)
        if moved:
            return False, 'revision %s moved from %s to %s' % (self.spec['revision'], record['commit'], moved)
        if same_content(have, record.get('files') or {}):
            self.commit = record.get('commit')
            return True, 'target matches the recorded download of %s' % self.describe()
        return False, 'target changed since the recorded download'

    def fill(self, ws):
        # the download runs as the service user, into its own staging directory
        dl = os.path.join(ws, 'dl')
        self.commit = self.hf_call('download', dl)
        _fs.remove(os.path.join(dl, '.cache'))
        if self.spec['filename']:
            src = os.path.join(dl, self.spec['filename'])
            if not _fs.isfile(src):
                raise Fail('the download did not produce %s' % self.spec['filename'])
            return src
        return dl


class OciSource(Source):
    """A model image in an OCI registry (one layer a file), copied with skopeo as root."""
    auth_path = None
    registry = None

    def registry_password(self):
        """The password given by ``password`` or read from ``password_file`` (a 0600 file)."""
        if self.p['password'] is not None:
            password = self.p['password']
        else:
            path = self.p['password_file']
            st = _fs.stat_path(path)
            if st is None or not _fs.isfile(path):
                raise Fail('password_file %s does not exist (or is not a file)' % path)
            if st.st_mode & 0o077:
                raise Fail('password_file %s is open to group or others (mode %04o): make it 0600'
                           % (path, st.st_mode & 0o7777))
            try:
                password = _fs.read_text(path, limit=64 * 1024)
            except (IOError, OSError, UnicodeDecodeError) as e:
                raise Fail('cannot read password_file %s: %s' % (path, e))
            password = password[:-1] if password.endswith('\n') else password
            password = password[:-1] if password.endswith('\r') else password
        if not password:
            raise Fail('the registry password for username is empty (password%s)'
                       % (' / password_file %s' % self.p['password_file'] if self.p['password_file'] else ''))
        return password

    def skopeo_opts(self, copy=False):
        opts = []
        if self.auth_path:
            opts.append('--%sauthfile=%s' % ('src-' if copy else '', self.auth_path))
        elif self.p['auth_file']:
            if not _fs.isfile(self.p['auth_file']):
                raise Fail('auth_file %s does not exist' % self.p['auth_file'])
            opts.append('--%sauthfile=%s' % ('src-' if copy else '', self.p['auth_file']))
        if self.p['cert_dir']:
            opts.append('--%scert-dir=%s' % ('src-' if copy else '', self.p['cert_dir']))
        opts.append('--%stls-verify=%s' % ('src-' if copy else '', 'true' if self.p['tls_verify'] else 'false'))
        return opts

    def inspect_raw(self, ref_s):
        """``(digest, document)`` of the manifest or index ``ref_s`` names, as the registry sends it."""
        opts = self.skopeo_opts()
        res = self.runner.run('skopeo inspect', [self.skopeo, 'inspect', '--raw', '--retry-times=2'] + opts + [ref_s],
                              timeout=self.p['timeout'], changes_state=False, log=False, as_user=False)
        if res.rc != 0:
            err = (res.stderr or res.stdout or '').lower()
            if any(word in err for word in UNAUTHORIZED):
                if self.login:
                    why = 'refused the credentials of username (password%s)' % (
                        '_file %s' % self.p['password_file'] if self.p['password_file'] else '')
                elif self.p['auth_file']:
                    why = 'refused the credentials in auth_file %s' % self.p['auth_file']
                else:
                    why = 'requires credentials: give username and password (or password_file), or auth_file'
                raise Fail('registry %s %s' % (self.registry, why), res, 'skopeo inspect')
            raise Fail('skopeo inspect failed', res, 'skopeo inspect')
        raw = res.stdout.encode('utf-8')
        digest = 'sha256:' + hashlib.sha256(raw).hexdigest()
        try:
            doc = json.loads(raw)
        except ValueError:
            raise Fail('the registry returned no JSON manifest for %s' % ref_s)
        if not isinstance(doc, dict):
            raise Fail('the registry returned no JSON manifest for %s' % ref_s)
        return digest, doc

    def inspect(self, ref):
        """``(ref_s, manifest digest, manifest, files, index)``: ``index`` is ``None`` or
        ``{digest, platform}`` when the reference names an image index."""
        self.skopeo = self.module.get_bin_path('skopeo')
        if not self.skopeo:
            raise Fail('skopeo is required for source=oci (the instructlab role installs it)')
        ref_s = ref['base'] + ('@' + ref['digest'] if ref['digest'] and not ref['tag'] else ':' + ref['tag'])
        digest, manifest = self.inspect_raw(ref_s)
        index = None
        if manifest.get('mediaType') in INDEX_TYPES or 'manifests' in manifest:
            wanted = self.p['platform'] or host_platform()
            desc = select_manifest(manifest, wanted, ref_s)
            index = dict(digest=digest, platform=wanted)
            digest, manifest = self.inspect_raw('%s@%s' % (ref['base'], desc['digest']))
            if digest != desc['digest']:
                raise Fail('the registry sent a manifest with digest %s for %s@%s' % (digest, ref['base'], desc['digest']))
            if manifest.get('mediaType') in INDEX_TYPES or 'manifests' in manifest:
                raise Fail('the %s manifest of %s is itself an image index (nested indexes are not supported)'
                           % (wanted, ref_s))
        if ref['digest'] and ref['digest'] not in (digest, index and index['digest']):
            if index:
                raise Fail('%s resolves to the image index %s, whose %s manifest is %s; neither is the '
                           'expected digest %s' % (ref_s, index['digest'], index['platform'], digest, ref['digest']))
            raise Fail('%s resolves to %s, not to the expected digest %s' % (ref_s, digest, ref['digest']))
        layers = manifest.get('layers') or []
        files = {}
        for layer in layers:
            title = (layer.get('annotations') or {}).get(TITLE)
            if not title:
                raise Fail('layer %s of %s has no %s annotation: not a model image'
                           % (layer.get('digest'), ref_s, TITLE))
            norm = os.path.normpath(title)
            if norm.startswith('..') or os.path.isabs(norm):
                raise Fail('layer title %r of %s is not a relative file name' % (title, ref_s))
            files[norm] = dict(size=layer.get('size'), sha256=normalize_sha256(layer.get('digest')),
                               media_type=layer.get('mediaType'))
        if not files:
            raise Fail('%s has no layers' % ref_s)
        return ref_s, digest, manifest, files, index

    def probe(self, check):
        ref = self.ref = parse_oci(self.p['repository'], self.p['release'], self.p['digest'])
        self.registry = ref['host']
        if self.p['platform'] and not PLATFORM_RE.match(self.p['platform']):
            raise Fail('platform must look like OS/ARCH or OS/ARCH/VARIANT (linux/arm64), got %r' % self.p['platform'])
        if self.p['username']:
            self.login = RegistryLogin(self.runner, ref['host'], self.p['username'], self.registry_password())
            self.auth_path = self.login.prepare()
        try:
            self.ref_s, self.digest, _manifest, self.layers, index = self.inspect(ref)
            if self.login and not check:
                self.auth_path = self.login.commit()
        finally:
            if self.login:
                self.login.discard()
        self.spec = dict(source='oci', repository=ref['base'], release=ref['tag'], manifest_digest=self.digest)
        self.fetched = dict(source='oci', ref=self.ref_s, digest=self.digest, files=sorted(self.layers),
                            size=sum(v['size'] or 0 for v in self.layers.values()))
        if index:
            self.spec.update(index_digest=index['digest'], platform=index['platform'])
            self.fetched.update(index_digest=index['digest'], platform=index['platform'])

    def compare(self, have, record):
        layers = self.layers
        if set(have) == set(layers) and all(
                have[k].get('size') == layers[k]['size'] and have[k].get('sha256') == layers[k]['sha256']
                for k in layers):
            return True, 'target matches %s (%s)' % (self.ref_s, self.digest)
        return False, 'target differs from %s (%s)' % (self.ref_s, self.digest)

    def fill(self, ws):
        # skopeo runs as root (the auth file is root's), so it writes where only root can
        # (a path that crosses no directory of the service account); the layers are then
        # adopted by the account and moved into the staging directory.
        # one per target: a killed run's leftover is removed here (this run holds the lock)
        key = hashlib.sha256(self.target.encode('utf-8')).hexdigest()[:16]
        scratch = os.path.join(_fs.private_dir(os.path.join(self.runner.state, 'tmp')), 'oci-' + key)
        _fs.remove(scratch)
        _fs.makedirs(scratch, 0o700)
        try:
            return self.copy(os.path.join(scratch, 'layout'), ws)
        finally:
            _fs.remove(scratch)

    def copy(self, layout, ws):
        digest = self.digest
        # --remove-signatures: as ilab model download 0.26.1 copies (an OCI layout cannot hold
        # the signatures of a signed image; skopeo would refuse the copy)
        self.run('skopeo copy', [self.skopeo, 'copy', '--quiet', '--preserve-digests', '--remove-signatures',
                                 '--retry-times=2']
                 + self.skopeo_opts(copy=True)
                 + ['%s@%s' % (self.ref['base'], digest), 'oci:%s:%s' % (layout, 'model')],
                 log_name='oci-download-%s' % os.path.basename(self.target), as_user=False)
        index = _fs.read_json(os.path.join(layout, 'index.json'), {})
        descs = index.get('manifests') or []
        if len(descs) != 1 or descs[0].get('digest') != digest:
            raise Fail('copied image has manifest %s, expected %s' % ([d.get('digest') for d in descs], digest))

        def blob(d):
            return os.path.join(layout, 'blobs', 'sha256', normalize_sha256(d))
        if 'sha256:' + _fs.file_sha256(blob(digest)) != digest:
            raise Fail('copied manifest does not match digest %s' % digest)
        manifest = _fs.read_json(blob(digest), {})
        model = _fs.makedirs(os.path.join(ws, 'model'), 0o755, self.owner)
        for layer in manifest.get('layers') or []:
            title = os.path.normpath(layer['annotations'][TITLE])
            src = blob(layer['digest'])
            if _fs.file_sha256(src) != normalize_sha256(layer['digest']):
                raise Fail('layer %s (%s) is corrupt' % (layer['digest'], title))
            dst = os.path.join(model, title)
            _fs.makedirs(os.path.dirname(dst), 0o755, self.owner)
            _fs.move_in(src, dst, 0o644, self.owner)
        return model


class UrlSource(Source):
    """One file over HTTP(S), checked against its sha256 while it is written."""

    def probe(self, check):
        if not self.p['url']:
            raise Fail('source=url needs url')
        if not self.p['checksum']:
            raise Fail('source=url needs checksum (the sha256 of the file)')
        try:
            self.sha256 = normalize_sha256(self.p['checksum'])
        except ValueError as e:
            raise Fail(str(e))
        self.spec = dict(source='url', url=self.p['url'], sha256=self.sha256)
        self.fetched = dict(self.spec)

    def compare(self, have, record):
        if len(have) != 1:
            return None
        if list(have.values())[0].get('sha256') == self.sha256:
            return True, 'target has sha256 %s' % self.sha256
        return False, 'target sha256 differs from %s' % self.sha256

    def fill(self, ws):
        url = self.p['url']
        tmp = os.path.join(ws, os.path.basename(self.target))
        rsp, info = fetch_url(self.module, url, timeout=self.p['timeout'] or 30)
        if info.get('status') != 200 or rsp is None:
            raise Fail('GET %s failed: HTTP %s %s' % (url, info.get('status'), info.get('msg')))
        with _fs.open_write(tmp, 0o644, self.owner) as f:
            while True:
                chunk = rsp.read(1024 * 1024)
                if not chunk:
                    break
                f.write(chunk)
            if f.sha.hexdigest() != self.sha256:
                raise Fail('sha256 mismatch for %s: got %s, expected %s' % (url, f.sha.hexdigest(), self.sha256))
        return tmp


class PathSource(Source):
    """A model file or directory already on the host, copied through the file layer."""

    def probe(self, check):
        src = self.src = self.p['src']
        if not src or not _fs.exists(src):
            raise Fail('src %s does not exist on the host' % src)
        self.is_dir = _fs.isdir(src)
        self.want = target_files(src, self.cache, True)
        self.spec = dict(source='path', src=os.path.abspath(src))
        self.fetched = dict(source='path', src=src, files=sorted(self.want))

    def compare(self, have, record):
        if self.is_dir != _fs.isdir(self.target):
            return None
        if not self.is_dir:
            have = dict(zip(self.want, have.values()))
        if same_content(have, self.want):
            return True, 'target matches %s' % self.src
        return False, 'target differs from %s' % self.src

    def fill(self, ws):
        tmp = os.path.join(ws, 'model')
        if self.is_dir:
            got = _fs.copy_tree(self.src, tmp, self.owner)
        else:
            got = {os.path.basename(self.src): dict(sha256=_fs.copy_file(self.src, tmp, 0o644, self.owner))}
        if not same_content(got, self.want):
            raise Fail('copy of %s does not match its source (changed while copying?)' % self.src)
        return tmp


SOURCES = dict(hf=HfSource, oci=OciSource, url=UrlSource, path=PathSource)


class Downloader(object):
    """The driver, the same for every source: probe the source, compare with the target
    (missing, forced, a planted link), stop there in check mode, else fetch into a staging
    directory and place it atomically under the target's lock."""

    def __init__(self, module, runner):
        self.module = module
        self.runner = runner
        self.p = module.params
        self.cache = _fs.DigestCache(os.path.join(runner.state, 'digests.json'))
        self.source = None

    def files(self, target):
        return target_files(target, self.cache, self.p['verify'])

    def current(self, target):
        """The target's files, or None when it is missing or not the account's own (a link the
        account planted is then replaced by the download)."""
        try:
            return self.files(target) if _fs.exists(target) else None
        except _fs.UnsafePathError:
            return None

    def fetch_reason(self, target, have):
        if have is not None:
            return 'forced'
        if _fs.lstat(target) is not None:
            return 'target is not a model of the service user (a planted link?): replaced'
        return 'target missing'

    def fetch(self, target, fill, private=True):
        """Stage, ``fill(staging)`` (returns the path to place), place - under the target's lock.
        ``private``: the staging directory is root's own (steps that run as root)."""
        self.runner.ensure_dir(os.path.dirname(target))
        with fpu.Once(self.runner.state, self.runner.owner, target) as once:
            once.clean_stale()
            once.place(fill(once.stage(private=private)))

    def run(self, target, record, check):
        """``(fetched, reason, files, spec)``: ``fetched`` None when the target is up to date,
        ``files`` None in check mode when it is not."""
        src = self.source = SOURCES[self.p['source']](self.module, self.runner, self.cache, target)
        src.probe(check)
        have = self.current(target)
        verdict = src.compare(have, record) if have is not None and not self.p['force'] else None
        if verdict and verdict[0]:
            return None, verdict[1], have, src.spec
        reason = verdict[1] if verdict else self.fetch_reason(target, have)
        if check:
            return src.fetched, reason, None, src.spec
        self.fetch(target, src.fill, private=src.private)
        return src.fetched, reason, self.files(target), src.spec


def default_name(p, module):
    s = p['source']
    if s == 'hf':
        return p['filename'].split('/')[-1] if p['filename'] else p['repository']
    if s == 'oci':
        return parse_oci(p['repository'], p['release'], p['digest'])['name']
    if s == 'url':
        return (p['url'] or '').split('?')[0].rstrip('/').split('/')[-1]
    return os.path.basename((p['src'] or '').rstrip('/'))


def main():
    argument_spec = ilab_argument_spec()
    argument_spec.update(
        source=dict(type='str', required=True, choices=['hf', 'oci', 'url', 'path']),
        repository=dict(type='str'),
        filename=dict(type='str'),
        revision=dict(type='str', default='main'),
        hf_token=dict(type='str', no_log=True),
        hf_token_file=dict(type='path'),
        release=dict(type='str'),
        digest=dict(type='str'),
        auth_file=dict(type='path'),
        username=dict(type='str', no_log=True),
        password=dict(type='str', no_log=True),
        password_file=dict(type='path', no_log=False),   # a path, not the secret
        platform=dict(type='str'),
        cert_dir=dict(type='path'),
        tls_verify=dict(type='bool', default=True),
        url=dict(type='str'),
        checksum=dict(type='str'),
        validate_certs=dict(type='bool', default=True),
        src=dict(type='path'),
        model_dir=dict(type='path'),
        name=dict(type='str'),
        dest=dict(type='path'),
        force=dict(type='bool', default=False),
        verify=dict(type='bool', default=False),
        timeout=dict(type='int'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec, supports_check_mode=True,
        mutually_exclusive=[('hf_token', 'hf_token_file'), ('password', 'password_file'), ('auth_file', 'username')],
        required_by=dict(password='username', password_file='username'),
        required_if=[('source', 'hf', ['repository']), ('source', 'oci', ['repository']),
                     ('source', 'url', ['url', 'checksum']), ('source', 'path', ['src'])])
    _report.attach(module, 'path', 'digest', 'manifest_digest', 'files', 'size', 'log_path', 'reason')
    if module.params['username'] and module.params['password'] is None and not module.params['password_file']:
        module.fail_json(msg='username needs password or password_file')
    if module.params['source'] != 'oci':
        for opt in ('username', 'password', 'password_file', 'platform'):
            if module.params[opt] is not None:
                module.fail_json(msg='%s applies to source=oci only' % opt)
    run_guarded(module, download)


def record_path(runner, target):
    """The download record of ``target``, in the private state directory."""
    key = hashlib.sha256(os.path.abspath(target).encode('utf-8')).hexdigest()[:24]
    return os.path.join(runner.state, 'downloads', key + '.json')


def download(module):
    p = module.params
    runner = IlabRunner.checked(module)
    if p['source'] == 'hf':
        runner.check_venv()
    result = dict(changed=False, fetched=None)
    try:
        if p['dest']:
            target = p['dest']
        else:
            model_dir = p['model_dir'] or runner.paths.models
            name = p['name'] or default_name(p, module)
            if not name or name.startswith('/') or '..' in name.split('/'):
                raise Fail('cannot derive a safe model name (%r): set name or dest' % name)
            target = os.path.join(model_dir, name)
        result['path'] = target
        record = _fs.read_json(record_path(runner, target))
        dl = Downloader(module, runner)
        if _fs.lstat(target) is not None:
            before = dict(path=target, state='present', digest=(record or {}).get('digest'))
        else:
            before = dict(path=target, state='absent')
        fetched, reason, have, spec = dl.run(target, record, module.check_mode)
    except Fail as e:
        if e.result is not None:
            runner.fail(e.step, e.result, msg=e.msg, **result)
        module.fail_json(msg=runner.mask(e.msg), **result)
    result['fetched'] = fetched
    result['reason'] = reason
    result['changed'] = fetched is not None
    src = dl.source
    if src.login:
        result['auth_file'] = src.login.path
        if src.login.changed:
            result['changed'] = True
            result['reason'] = '%s; credentials for %s %s in %s' % (
                reason, src.login.host, 'would be saved' if module.check_mode else 'saved', src.login.path)
    if src.log_path:
        result['log_path'] = src.log_path
    if have is not None:
        digest = spec.get('manifest_digest') or digest_of(have, _fs.isfile(target))
        result.update(digest=digest, files=public_files(have),
                      size=sum(v.get('size') or 0 for v in have.values()))
        if spec.get('manifest_digest'):
            result['manifest_digest'] = spec['manifest_digest']
        if spec.get('index_digest'):
            result.update(index_digest=spec['index_digest'], platform=spec['platform'])
        if src.commit:
            result['commit'] = src.commit
        if not module.check_mode:
            rec = dict(spec=spec, digest=digest, files=have, target=target, commit=src.commit)
            if rec != record:
                path = record_path(runner, target)
                _fs.private_dir(os.path.dirname(path))
                _fs.write_json(path, rec, 0o600)
            dl.cache.save()
    elif fetched and fetched.get('digest'):
        result['digest'] = fetched['digest']
        result['manifest_digest'] = fetched['digest']
        if fetched.get('index_digest'):
            result.update(index_digest=fetched['index_digest'], platform=fetched['platform'])
    if module._diff:
        after = dict(path=target, state='present', digest=result.get('digest'))
        if src.login:
            before['credentials'] = src.login.before
            after['credentials'] = 'stored'
        result['diff'] = dict(before=before, after=after)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
