# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nvidia_driver role's key check (tasks/repo_key.yml), run for real on
localhost: a key fetched for a package source is kept only when it is exactly
the key with the pinned fingerprint; any other is removed and the role fails
naming the file and both fingerprints. The keys are made here with gpg."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Check the key
      block:
        - name: Fetch and check
          ansible.builtin.include_role:
            name: labforge.instructlab.nvidia_driver
            tasks_from: repo_key.yml
          vars:
            __nvidia_driver_key:
              what: the test key
              url: "file://{{ key_src }}"
              path: "{{ key_dest }}"
              fingerprint: "{{ pinned }}"
        - name: Save the result
          ansible.builtin.copy:
            content: '{"ok": true}'
            dest: "{{ out }}"
            mode: "0600"
      rescue:
        - name: Save the failure
          ansible.builtin.copy:
            content: "{{ {'msg': ansible_failed_result.msg} | to_json }}"
            dest: "{{ out }}"
            mode: "0600"
"""


def make_key(home, name):
    """A fresh ed25519 key in HOME; returns (armored public key, fingerprint)."""
    subprocess.run(["gpg", "--batch", "--homedir", home, "--passphrase", "", "--quick-gen-key",
                    "%s <%s@example.invalid>" % (name, name), "ed25519", "sign", "never"],
                   check=True, capture_output=True)
    out = subprocess.run(["gpg", "--batch", "--homedir", home, "--with-colons", "--fingerprint", name],
                         check=True, capture_output=True, text=True).stdout
    fpr = [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")][0]
    armored = subprocess.run(["gpg", "--batch", "--homedir", home, "--armor", "--export", name],
                             check=True, capture_output=True, text=True).stdout
    return armored, fpr


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    if not shutil.which("gpg"):
        pytest.skip("no gpg here")
    home = tmp_path_factory.mktemp("gnupg")
    os.chmod(str(home), 0o700)
    return {"good": make_key(str(home), "good"), "other": make_key(str(home), "other")}


def run(tmp_path, key_text, pinned):
    src = tmp_path / "served.pub"
    src.write_text(key_text)
    dest = tmp_path / "keyrings" / "cuda.asc"
    out = tmp_path / "out.json"
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    extra = {"key_src": str(src), "key_dest": str(dest), "pinned": pinned, "out": str(out),
             "ansible_python_interpreter": sys.executable}
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           str(tmp_path / "play.yml"), "-e", json.dumps(extra)],
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false"),
                          capture_output=True, text=True, check=False, timeout=300)
    assert out.exists(), proc.stdout + proc.stderr
    return json.loads(out.read_text()), dest


def test_the_pinned_key_is_kept(tmp_path, keys):
    armored, fpr = keys["good"]
    res, dest = run(tmp_path, armored, fpr)
    assert res == {"ok": True}
    assert dest.read_text() == armored
    assert oct(dest.stat().st_mode & 0o777) == "0o644" and dest.stat().st_uid == os.geteuid()


def test_another_key_is_removed_and_named(tmp_path, keys):
    armored, fpr = keys["other"]
    pinned = keys["good"][1]
    res, dest = run(tmp_path, armored, pinned)
    assert " ".join(res["msg"].split()) == (
        "the test key file://%s (saved as %s) has the fingerprint %s, not the pinned %s (the role's vars/main.yml). "
        "The file was removed; no package source uses it." % (tmp_path / "served.pub", dest, fpr, pinned))
    assert not dest.exists()


def test_a_file_with_the_pinned_key_and_another_is_refused(tmp_path, keys):
    """An extra key beside the pinned one would be trusted for the source too."""
    res, dest = run(tmp_path, keys["good"][0] + keys["other"][0], keys["good"][1])
    assert "has the fingerprint %s and %s, not the pinned" % (keys["good"][1], keys["other"][1]) in res["msg"]
    assert not dest.exists()


def test_something_else_than_a_key_is_refused(tmp_path, keys):
    res, dest = run(tmp_path, "<html>captive portal</html>\n", keys["good"][1])
    assert "has the fingerprint of no OpenPGP key, not the pinned %s" % keys["good"][1] in " ".join(res["msg"].split())
    assert not dest.exists()


def test_pins_are_full_fingerprints():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    with open(os.path.join(root, "roles", "nvidia_driver", "vars", "main.yml"), encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    fprs = [k["fingerprint"] for k in data["__nvidia_driver_repo_keys"].values()]
    fprs.append(data["__nvidia_driver_epel_key_fingerprint"])
    assert all(len(f) == 40 and f == f.upper() and int(f, 16) >= 0 for f in fprs)
    # NVIDIA's CUDA repository key IDs are the last 8 hex digits of the fingerprints (3bf863cc, d42d0685)
    assert data["__nvidia_driver_repo_keys"]["Debian"]["fingerprint"].endswith("3BF863CC")
    assert data["__nvidia_driver_repo_keys"]["RedHat"]["fingerprint"].endswith("D42D0685")
