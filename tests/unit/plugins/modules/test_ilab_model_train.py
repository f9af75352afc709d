# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.ilab_model_train.

The runner's process methods are replaced by fakes that record the exact
command line, environment and working directory, and write what
``ilab model train --pipeline simple`` 0.26.1 writes: ``training_results/``
in the CURRENT directory and the GGUF at
``$XDG_DATA_HOME/instructlab/checkpoints/ggml-model-f16.gguf``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import pwd

import pytest

from ansible.module_utils import basic

from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_runner
from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.modules import ilab_model_train as mod

from ilab_testlib import Exit, Fail, patch_module_args


def raiser(exc):
    def throw(self, **kw):
        raise exc(kw)
    return throw


# the end of a real simple-pipeline log (test bed, 2026-11-25)
TRAIN_LOG = '''LINUX_TRAIN.PY: TRAINING
{'train_runtime': 3.637, 'train_samples_per_second': 2.75, 'train_steps_per_second': 2.75, 'train_loss': 6.818511199951172, 'epoch': 1.0}
LINUX_TRAIN.PY: MERGING ADAPTERS
LINUX_TRAIN.PY: FINISHED
Wrote training_results/final/ggml-model-f32.gguf
'''


def write(path, text):
    d = os.path.dirname(path)
    if not os.path.isdir(d):
        os.makedirs(d)
    with open(path, 'w') as f:
        f.write(text)


class FakeJob(object):
    def __init__(self, result, status_path):
        self.result = result
        self.pid = 999999999
        self.status_path = status_path

    def wait(self, timeout=None):
        return self.result


class Bed(object):
    @staticmethod
    def patched(fake):
        """A function for the class attribute (called with the runner as first argument)."""
        def method(runner, *args, **kwargs):
            return fake(runner, *args, **kwargs)
        return method

    def __init__(self, tmp_path, monkeypatch):
        self.tmp = str(tmp_path)
        self.home = os.path.join(self.tmp, 'home')
        self.venv = os.path.join(self.tmp, 'venv')
        os.makedirs(os.path.join(self.venv, 'bin'))
        self.student = os.path.join(self.tmp, 'student')
        for n in ('config.json', 'model.safetensors', 'tokenizer.model', 'added_tokens.json'):
            write(os.path.join(self.student, n), n)
        self.datasets = os.path.join(self.tmp, 'datasets')
        self.gen = os.path.join(self.datasets, 'generate-0001')
        self.train = os.path.join(self.gen, 'train_X.jsonl')
        self.test = os.path.join(self.gen, 'test_X.jsonl')
        self.msgs = os.path.join(self.gen, 'skills_train_msgs_X.jsonl')
        write(self.train, '{"user": "q", "assistant": "a"}\n' * 10)
        write(self.test, '{"user": "q", "assistant": "a"}\n' * 5)
        write(self.msgs, '{"messages": []}\n' * 30)
        fpu.write_manifest(self.gen, dict(fingerprint='sha256:g1', dir=self.gen,
                                          files=dict(train=self.train, test=self.test,
                                                     skills_train_msgs=self.msgs, messages=None)))
        _fs.write_json(os.path.join(self.datasets, fpu.GENERATE_POINTER),
                       dict(dir=self.gen, fingerprint='sha256:g1'))
        self.out = os.path.join(self.tmp, 'trained')
        self.cfg = os.path.join(self.home, '.config', 'instructlab', 'config.yaml')
        write(self.cfg, 'generate:\n  output_dir: %s\ntrain:\n  model_path: %s\n  pipeline: full\n'
                        '  device: cpu\n  num_epochs: 7\n' % (self.datasets, self.student))
        self.calls = []
        self.rc = 0
        self.produce = True
        me = pwd.getpwuid(os.getuid())
        fake_pw = pwd.struct_passwd((me.pw_name, 'x', me.pw_uid, me.pw_gid, '', self.home, '/bin/sh'))
        monkeypatch.setattr(_ilab_runner.pwd, 'getpwnam', lambda name: fake_pw)
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'check_venv', lambda r: None)
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'ilab_version', lambda r: '0.26.1')
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'start', self.patched(self.fake_start))
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'python', self.patched(self.fake_python))
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', raiser(Exit))
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', raiser(Fail))

    def fake_python(self, runner, step, script, args=None, env=None, cwd=None, **kw):
        self.calls.append(('python', step, dict(env=env, cwd=cwd)))
        # what MAKE_DATA_DIRS does
        base = os.path.join(env['XDG_DATA_HOME'], 'instructlab')
        for d in ('checkpoints', 'datasets', 'internal', 'logs'):
            os.makedirs(os.path.join(base, d))
        return _ilab_runner.IlabResult(step, ['python'], rc=0, stdout=base)

    def fake_start(self, runner, step, argv, env=None, cwd=None, log_name=None, **kw):
        self.calls.append(('start', list(argv), dict(env=env, cwd=cwd, log_name=log_name)))
        log = runner.log_path_for(log_name)
        runner.ensure_dir(os.path.dirname(log))
        pipeline = argv[argv.index('--pipeline') + 1]
        data = argv[argv.index('--data-path') + 1]
        if pipeline == 'simple':
            assert sorted(os.listdir(data)) == ['test_gen.jsonl', 'train_gen.jsonl']
        if self.rc == 0 and self.produce:
            if pipeline == 'simple':
                tr = os.path.join(cwd, 'training_results')
                write(os.path.join(tr, 'checkpoint-10', 'adapter_model.safetensors'), 'a')
                write(os.path.join(tr, 'checkpoint-2', 'adapter_model.safetensors'), 'a')
                write(os.path.join(tr, 'final', 'config.json'), '{}')
                write(os.path.join(env['XDG_DATA_HOME'], 'instructlab', 'checkpoints', 'ggml-model-f16.gguf'), 'GGUF')
            else:
                ck = argv[argv.index('--ckpt-output-dir') + 1]
                write(os.path.join(ck, 'hf_format', 'samples_8', 'config.json'), '{}')
                write(os.path.join(ck, 'hf_format', 'samples_16', 'config.json'), '{}')
                write(os.path.join(ck, 'hf_format', 'samples_16', 'pytorch_model.gguf'), 'GGUF')
        elif self.rc:
            write(os.path.join(cwd, 'training_results', 'checkpoint-1', 'x'), 'partial')
        write(log, TRAIN_LOG if self.rc == 0 else 'LINUX_TRAIN.PY: TRAINING\n')
        res = _ilab_runner.IlabResult(step, argv, rc=self.rc, log_path=log, log_tail='LINUX_TRAIN.PY: FINISHED',
                                      duration=19.0, log_text=open(log).read())
        return FakeJob(res, log[:-4] + '.status.json')

    def run(self, check=False, diff=False, **kw):
        args = dict(user='ignored', venv=self.venv, pipeline='simple', device='cpu', num_epochs=1,
                    model_path=self.student, output_dir=self.out)
        args.update(kw)
        args = dict((k, v) for k, v in args.items() if v is not None)
        if check:
            args['_ansible_check_mode'] = True
        if diff:
            args['_ansible_diff'] = True
        with patch_module_args(args):
            with pytest.raises((Exit, Fail)) as e:
                mod.main()
        return ('fail' if e.type is Fail else 'exit'), e.value.args[0]

    def starts(self):
        return [c for c in self.calls if c[0] == 'start']


@pytest.fixture
def bed(tmp_path, monkeypatch):
    return Bed(tmp_path, monkeypatch)


def test_simple_training_isolated_and_moved_into_place(bed):
    kind, r = bed.run(diff=True)
    assert kind == 'exit', r
    assert r['changed'] and r['trained']
    (dummy, argv, kw), = bed.starts()
    staging = kw['cwd']
    assert os.path.basename(staging).startswith('.train-%s.labforge-tmp-' % fpu.short(r['fingerprint']))
    assert argv == [os.path.join(bed.venv, 'bin', 'ilab'), '--config', bed.cfg, 'model', 'train',
                    '--pipeline', 'simple', '--device', 'cpu', '--model-path', bed.student,
                    '--data-path', os.path.join(staging, 'data'), '--num-epochs', '1',
                    '--ckpt-output-dir', os.path.join(staging, 'checkpoints'),
                    '--data-output-dir', os.path.join(staging, 'data-output')]
    assert kw['env'] == dict(XDG_DATA_HOME=os.path.join(staging, 'xdg-data'))
    assert kw['log_name'] == 'ilab-model-train-train'
    final = os.path.join(bed.out, 'train-' + fpu.short(r['fingerprint']))
    assert r['model_dir'] == final and not os.path.exists(staging)
    assert r['gguf_path'] == os.path.join(final, 'ggml-model-f16.gguf') and os.path.isfile(r['gguf_path'])
    # root ships the model from its own directory (the same file, checked), never from the user's tree
    assert r['export_path'] == os.path.join(_fs.STATE_ROOT, 'users', 'ignored', 'export', 'train.gguf')
    assert os.stat(r['export_path']).st_ino == os.stat(r['gguf_path']).st_ino
    assert r['checkpoint_dir'] == os.path.join(final, 'training_results', 'checkpoint-10')
    assert r['hf_model_dir'] == os.path.join(final, 'training_results', 'final')
    assert r['final_loss'] == pytest.approx(6.818511199951172)
    assert not os.path.exists(os.path.join(final, 'xdg-data'))
    with open(os.path.join(final, 'data', 'train_gen.jsonl')) as f:
        assert f.read().count('\n') == 10
    m = fpu.read_manifest(final)
    assert m['fingerprint'] == r['fingerprint'] and m['gguf_path'] == r['gguf_path']
    assert m['inputs']['data'] == dict(train=_fs.path_digest(bed.train), test=_fs.path_digest(bed.test))
    assert m['inputs']['model']['digest'] == _fs.path_digest(bed.student)
    assert m['inputs']['config'] == dict(pipeline='full', device='cpu', num_epochs=7)   # no path keys
    assert r['log_path'].endswith('/ilab-model-train-train.log')
    assert r['status_path'].endswith('/ilab-model-train-train.status.json')
    assert r['diff']['before'] == dict(model_dir=None) and r['diff']['after']['model_dir'] == final


def test_rerun_is_unchanged(bed):
    dummy, first = bed.run()
    kind, r = bed.run()
    assert kind == 'exit' and not r['changed'] and not r['trained']
    assert len(bed.starts()) == 1
    assert r['gguf_path'] == first['gguf_path'] and r['final_loss'] == first['final_loss']


@pytest.mark.parametrize('change', ['epochs', 'data', 'student', 'profile'])
def test_changed_inputs_train_again_without_overwriting(bed, change):
    dummy, first = bed.run()
    kw = {}
    if change == 'profile':   # config.yaml's train section fills the flags not given
        with open(bed.cfg, 'a') as f:
            f.write('  effective_batch_size: 128\n')
    elif change == 'epochs':
        kw['num_epochs'] = 2
    elif change == 'data':
        write(bed.train, '{"user": "q2", "assistant": "a2"}\n' * 11)
    else:
        write(os.path.join(bed.student, 'model.safetensors'), 'other weights')
    kind, r = bed.run(**kw)
    assert kind == 'exit' and r['trained'] and r['model_dir'] != first['model_dir']
    assert os.path.isfile(first['gguf_path']) and os.path.isfile(r['gguf_path'])


def test_check_mode_and_force(bed):
    kind, r = bed.run(check=True)
    assert kind == 'exit' and r['changed'] and bed.starts() == [] and not os.path.exists(bed.out)
    bed.run()
    kind, r = bed.run(check=True)
    assert kind == 'exit' and not r['changed']
    kind, r = bed.run(force=True)
    assert kind == 'exit' and r['changed'] and len(bed.starts()) == 2
    assert os.listdir(bed.out) == [os.path.basename(r['model_dir'])]


def test_failed_or_killed_training_leaves_no_model_and_rerun_trains(bed):
    bed.rc = -9
    kind, r = bed.run()
    assert kind == 'fail' and r['rc'] == -9 and 'LINUX_TRAIN.PY' in r['msg']
    final = os.path.join(bed.out, 'train-' + r['fingerprint'].split(':')[1][:16])
    assert not os.path.exists(final) and os.listdir(bed.out) == []
    bed.rc = 0
    kind, r = bed.run()
    assert kind == 'exit' and r['trained'] and os.path.isfile(r['gguf_path'])


def test_success_without_a_model_fails(bed):
    bed.produce = False
    kind, r = bed.run()
    assert kind == 'fail' and 'no trained model' in r['msg']
    assert os.listdir(bed.out) == []


def test_full_pipeline_from_config_uses_messages_file(bed):
    kind, r = bed.run(pipeline=None, device=None, num_epochs=None, model_path=None, effective_batch_size=16,
                      max_seq_len=512, gpus=2, nnodes=2, node_rank=1, rdzv_id=7,
                      rdzv_endpoint='10.0.0.1:12222', disable_flash_attn=True, learning_rate=2e-5)
    assert kind == 'exit', r
    (dummy, argv, kw), = bed.starts()
    staging = kw['cwd']
    assert argv == [os.path.join(bed.venv, 'bin', 'ilab'), '--config', bed.cfg, 'model', 'train',
                    '--pipeline', 'full', '--device', 'cpu', '--model-path', bed.student,
                    '--data-path', bed.msgs, '--num-epochs', '7',
                    '--ckpt-output-dir', os.path.join(staging, 'checkpoints'),
                    '--data-output-dir', os.path.join(staging, 'data-output'),
                    '--effective-batch-size', '16', '--max-seq-len', '512', '--learning-rate', '2e-05',
                    '--gpus', '2', '--nnodes', '2', '--node-rank', '1', '--rdzv-id', '7',
                    '--rdzv-endpoint', '10.0.0.1:12222', '--disable-flash-attn']
    final = r['model_dir']
    assert r['hf_model_dir'] == os.path.join(final, 'checkpoints', 'hf_format', 'samples_16')
    assert r['gguf_path'] == os.path.join(final, 'checkpoints', 'hf_format', 'samples_16', 'pytorch_model.gguf')


def test_explicit_train_file_finds_its_test_file(bed):
    kind, r = bed.run(data_path=bed.train)
    assert kind == 'exit', r
    assert r['data']['train'] == bed.train and r['data']['test'] == bed.test


def test_latest_without_any_dataset_fails(bed):
    os.unlink(os.path.join(bed.datasets, fpu.GENERATE_POINTER))
    kind, r = bed.run()
    assert kind == 'fail' and 'no complete ilab_data_generate result' in r['msg']


@pytest.mark.parametrize('text,loss', [
    ("{'loss': 2.5, 'epoch': 0.5}\n{'loss': 1.25, 'epoch': 1.0}\n", 1.25),
    ('{"epoch": 0, "step": 3, "total_loss": 0.75, "lr": 1e-5}\n', 0.75),
    ("{'loss': 2.5}\n{'train_runtime': 1.0, 'train_loss': 3.5e-01}\n", 0.35),
    ('no numbers here\n', None),
])
def test_parse_final_loss(text, loss):
    assert mod.parse_final_loss(text) == (pytest.approx(loss) if loss is not None else None)
