# -*- coding: utf-8 -*-
"""A dry run of `site` (--check --diff) on the converged host predicts and never fails:
with nothing changed it reports 0 changed and 0 failed; after a taxonomy edit it reports the
generate, train and rollout changes it would make, still with 0 failed, and changes nothing.

Runs before the attack suite (which changes the host's state); the files sort so."""

from __future__ import absolute_import, division, print_function

import json
import os
import re
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
EPH = os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY', '')
HOST = 'lf-default'


def site(name, extra=None):
    """ansible-playbook --check --diff labforge.instructlab.site; the JSON callback's stats
    and the changed/failed task names of the host."""
    env = dict(os.environ)
    cfg = os.path.join(EPH, 'ansible.cfg')
    if os.path.exists(cfg):
        env['ANSIBLE_CONFIG'] = cfg
    env.update(ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_NOCOLOR='1')
    env.pop('ANSIBLE_CALLBACKS_ENABLED', None)
    argv = ['ansible-playbook', '-i', os.path.join(EPH, 'inventory'), '--check', '--diff',
            'labforge.instructlab.site']
    if extra:
        argv += ['-e', json.dumps(extra)]
    res = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, check=False, cwd=PROJECT)
    log = os.path.join(EPH, 'check-mode-%s.json' % name)
    with open(log, 'w', encoding='utf-8') as f:
        f.write(res.stdout)
    try:
        data = json.JSONDecoder().raw_decode(res.stdout, res.stdout.index('{'))[0]
    except ValueError:
        pytest.fail('%s: no JSON result (rc=%s):\n%s\n%s' % (name, res.returncode, res.stdout[-3000:],
                                                             res.stderr[-3000:]))
    tasks = {}
    for play in data['plays']:
        for task in play['tasks']:
            r = task['hosts'].get(HOST)
            if r is None:
                continue
            status = 'failed' if r.get('failed') else 'skipped' if r.get('skipped') else \
                'changed' if r.get('changed') else 'ok'
            # a role's task is named 'ROLE : NAME' (the pipeline's steps are the role's)
            tasks.setdefault(status, []).append(task['task']['name'].split(' : ', 1)[-1])
            if status == 'failed':
                print('FAILED %s: %s' % (task['task']['name'], r.get('msg')))
    return res.returncode, data['stats'][HOST], tasks, log


def test_dry_run_on_the_converged_host_changes_nothing():
    rc, stats, tasks, log = site('converged')
    assert rc == 0 and stats['failures'] == 0 and stats['unreachable'] == 0, (stats, tasks.get('failed'), log)
    assert stats['changed'] == 0, (tasks.get('changed'), log)


@pytest.fixture
def edited_taxonomy(tmp_path):
    src = os.path.join(PROJECT, 'inventories', 'local', 'files', 'taxonomy')
    dst = str(tmp_path / 'taxonomy')
    shutil.copytree(src, dst)
    haiku = os.path.join(dst, 'compositional_skills', 'writing', 'freeform', 'haiku', 'qna.yaml')
    with open(haiku, encoding='utf-8') as f:
        text = f.read()
    with open(haiku, 'w', encoding='utf-8') as f:
        f.write(re.sub(r'(task_description: *)(.*)', r'\1\2 (edited for the dry run)', text, count=1))
    return dst


def test_dry_run_after_a_taxonomy_edit_predicts_and_does_not_fail(host, edited_taxonomy):
    before = host.run('sha256sum /var/lib/instructlab/.local/share/instructlab/taxonomy/'
                      'compositional_skills/writing/freeform/haiku/qna.yaml').stdout
    rc, stats, tasks, log = site('taxonomy-edit', dict(labforge_taxonomy_dir=edited_taxonomy))
    assert rc == 0 and stats['failures'] == 0, (stats, tasks.get('failed'), log)
    changed = tasks.get('changed', [])
    # training runs in the background: its change shows on the task that waits for it
    for step in ('Deploy the taxonomy', 'Generate synthetic data', 'Wait for the training to end',
                 'Predict the rollout'):
        assert any(t.startswith(step) for t in changed), (step, changed, log)
    after = host.run('sha256sum /var/lib/instructlab/.local/share/instructlab/taxonomy/'
                     'compositional_skills/writing/freeform/haiku/qna.yaml').stdout
    assert before == after, 'the dry run changed the deployed taxonomy'
