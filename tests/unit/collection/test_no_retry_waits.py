# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""No role or playbook waits for a background job with an ``until`` loop over
``async_status``: each retry prints ``FAILED - RETRYING`` while nothing fails (a successful
``make demo`` printed it dozens of times). Background jobs are waited for with
``labforge.instructlab.job_wait``, which prints progress lines instead."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PATTERNS = ('roles/*/tasks/*.yml', 'roles/*/handlers/*.yml', 'playbooks/*.yml', 'playbooks/*/*.yml')
STATUS = ('async_status', 'ansible.builtin.async_status', 'ansible.legacy.async_status')
NESTED = ('block', 'rescue', 'always')
SECTIONS = ('pre_tasks', 'tasks', 'post_tasks', 'handlers')


def tasks(node):
    for item in node or []:
        if not isinstance(item, dict):
            continue
        if any(k in item for k in NESTED):
            for key in NESTED:
                yield from tasks(item.get(key))
        elif 'hosts' in item:
            for key in SECTIONS:
                yield from tasks(item.get(key))
        else:
            yield item


def is_status(task):
    action = task.get('action')
    if isinstance(action, dict):
        action = action.get('module')
    if isinstance(action, str) and action.split()[0] in STATUS:
        return True
    return any(k in task for k in STATUS)


def retry_waits():
    found = []
    for pattern in PATTERNS:
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            with open(path, encoding='utf-8') as fh:
                data = yaml.safe_load(fh)
            if not isinstance(data, list):
                continue
            for task in tasks(data):
                if is_status(task) and ('until' in task or 'retries' in task):
                    found.append('%s: %s' % (os.path.relpath(path, ROOT), task.get('name', '(unnamed)')))
    return found


def test_the_walk_sees_the_task_files():
    assert len([p for pattern in PATTERNS for p in glob.glob(os.path.join(ROOT, pattern))]) > 10


def test_no_until_loop_over_async_status():
    assert retry_waits() == [], 'use labforge.instructlab.job_wait instead of retrying async_status'
