# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The test bed's connection to its podman containers: containers.podman.podman
# with Ansible pipelining (one `podman exec -i` per task: the module goes
# through stdin, as it does over SSH with pipelining, which is what the
# collection's users run). The collection's plugin has no pipelining because
# it runs `podman exec` without -i, and it runs `podman mount` for every
# task; here the container's filesystem is mounted only when a file is copied.
# Test-bed only (ANSIBLE_CONNECTION_PLUGINS names this directory); not shipped.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

DOCUMENTATION = '''
name: podman_pipelined
short_description: containers.podman.podman with pipelining (test bed only)
description:
  - Runs each module with one C(podman exec -i), the module on stdin.
  - Mounts the container's filesystem only to copy files.
author: labforge
extends_documentation_fragment:
  - connection_pipelining
options:
  remote_addr:
    description: The container's name or id.
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_podman_host
  remote_user:
    description: The user in the container.
    vars:
      - name: ansible_user
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    cli:
      - name: user
    keyword:
      - name: remote_user
  podman_extra_args:
    description: Extra arguments for podman.
    default: ''
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  podman_executable:
    description: The podman executable.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
'''


class Connection(PodmanConnection):
    transport = 'podman_pipelined'
    has_pipelining = True

    def _connect(self):
        # no `podman mount` here: put_file/fetch_file mount when they need it
        if not self._connected:
            self._connected = True
        return self

    def _mount(self):
        if self._mount_point is None:
            rc, out, dummy = self._podman('mount')
            self._mount_point = out.strip() if rc == 0 and out.strip() else None
        return self._mount_point

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super(PodmanConnection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        args = ['exec']
        if in_data is not None:
            args.append('-i')
        if self.user:
            args.extend(('--user', self.user))
        return self._podman(args, shlex.split(to_native(cmd, errors='surrogate_or_strict')), in_data)

    def put_file(self, in_path, out_path):
        self._mount()
        return super(Connection, self).put_file(in_path, out_path)

    def fetch_file(self, in_path, out_path):
        self._mount()
        return super(Connection, self).fetch_file(in_path, out_path)
