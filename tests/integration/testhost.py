# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test host the integration tests share: a Debian 12 systemd container
(image from tests/testbed/build-image.sh) with the controller's InstructLab
venv (``LABFORGE_ILAB_VENV``) mounted read-only at the same path, and an
inventory that reaches it with the test bed's podman_pipelined connection
(tests/testbed/connection_plugins: containers.podman.podman with pipelining)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTBED = os.path.join(ROOT, 'tests', 'testbed')
VENV = os.environ.get('LABFORGE_ILAB_VENV', '/opt/labforge-ilab-venv')
CACHE = os.environ.get('LABFORGE_CACHE', '/var/cache/labforge')


def sh(cmd, check=True, **kw):
    kw.setdefault('stdout', subprocess.PIPE)
    kw.setdefault('stderr', subprocess.PIPE)
    res = subprocess.run(cmd, shell=isinstance(cmd, str), universal_newlines=True, check=False, **kw)
    if check and res.returncode != 0:
        raise AssertionError('%s failed (rc=%d):\n%s\n%s' % (cmd, res.returncode, res.stdout[-3000:], res.stderr[-3000:]))
    return res


def on(name, script, check=True, **kw):
    """Run a bash script on the test host NAME."""
    return sh(['podman', 'exec', '-i', name, 'bash', '-c', script], check=check, **kw)


def collections_path():
    # the unit-test conftest makes ansible_collections/labforge/instructlab importable
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'unit'))
    import conftest  # noqa: F401  pylint: disable=import-error
    return conftest.COLLECTIONS_DIR


def host_env():
    env = dict(os.environ)
    env['CONTAINERS_CONF'] = os.path.join(TESTBED, 'containers.conf')
    env['LABFORGE_CACHE'] = CACHE
    return env


def require_ilab_venv():
    if not os.path.isfile(os.path.join(VENV, 'bin', 'ilab')):
        if os.environ.get('LABFORGE_REQUIRE_ILAB_VENV'):  # make integration / CI: never skip
            pytest.fail('no InstructLab venv at %s (tests/testbed/ilab-venv.sh builds it)' % VENV)
        pytest.skip('no InstructLab venv at %s (set LABFORGE_ILAB_VENV)' % VENV)


def model_path():
    """Path of the test-bed GGUF model (built once, cached)."""
    return sh([os.path.join(TESTBED, 'make-test-model.sh')], env=host_env()).stdout.strip()


@contextlib.contextmanager
def running(name, label, volumes, workdir, reuse=False):
    """Start the test host NAME with the extra VOLUMES (podman -v values) and
    yield (env, inventory path) for ansible; remove it at the end unless
    LABFORGE_KEEP_HOST=1. REUSE: keep a container of that name if one exists."""
    env = host_env()
    image = os.environ.get('LABFORGE_TEST_IMAGE') or sh([os.path.join(TESTBED, 'build-image.sh')], env=env).stdout.strip()
    reuse = reuse and sh(['podman', 'container', 'exists', name], check=False, env=env).returncode == 0
    if not reuse:
        sh(['podman', 'rm', '-f', name], check=False, env=env)
        argv = ['podman', 'run', '-d', '--name', name, '--hostname', name, '--systemd=always',
                '--label', 'labforge.test=' + label,
                '-v', '/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/labforge-host-ca.crt:ro',
                '-v', '%s/apt-archives:/var/cache/apt/archives' % CACHE,
                '-v', '%s:%s:ro' % (VENV, VENV)]
        for volume in volumes:
            argv += ['-v', volume]
        sh(argv + [image, '/sbin/init'], env=env)
    try:
        sh([os.path.join(TESTBED, 'wait-boot.sh'), name], check=False, env=env)
        inventory = os.path.join(workdir, 'hosts')
        with open(inventory, 'w') as f:
            f.write('%s ansible_connection=podman_pipelined ansible_python_interpreter=/usr/bin/python3\n' % name)
        env['ANSIBLE_COLLECTIONS_PATH'] = collections_path() + ':' + os.path.expanduser('~/.ansible/collections')
        env['ANSIBLE_CONNECTION_PLUGINS'] = os.path.join(TESTBED, 'connection_plugins')
        env['ANSIBLE_PIPELINING'] = 'true'
        env['ANSIBLE_HOST_KEY_CHECKING'] = 'false'
        env['ANSIBLE_NOCOLOR'] = 'true'
        env['PATH'] = os.path.join(ROOT, '.venv', 'bin') + ':' + env.get('PATH', '')
        yield env, inventory
    finally:
        if os.environ.get('LABFORGE_KEEP_HOST') != '1':
            sh(['podman', 'rm', '-f', name], check=False, env=env)
