# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.ilab_model_train.

The runner's process methods are replaced by fakes that record the exact
command line, environment and working directory, and write what
``ilab model train`` 0.26.1 writes (read from its source at v0.26.1 and
instructlab-training 0.10.3):

- ``--pipeline simple``: ``training_results/`` in the CURRENT directory and the
  GGUF at ``$XDG_DATA_HOME/instructlab/checkpoints/ggml-model-f16.gguf``;
- ``--pipeline full`` (model/full_train.py): per epoch E
  ``CKPT/hf_format/samples_<E*8>/`` with pytorch_model.bin, config.json, the
  tokenizer, ``pytorch_model.gguf`` and ``pytorch_model-Q4_K_M.gguf``; the step
  losses in the log (``Actual Loss Per Batch = tensor(L)``);
- ``--pipeline accelerated`` (instructlab.training): ``CKPT/hf_format/samples_<seen>/``
  (safetensors, no GGUF), ``CKPT/full_state/epoch_E/`` and the step metrics in
  ``CKPT/training_params_and_metrics_global0.jsonl``;
- ``--strategy`` (model/accelerated_train.py): the same under
  ``PHASED/phase1/checkpoints`` and ``PHASED/phase2/checkpoints`` and the journal
  ``PHASED/journalfile.yaml`` naming the best phase-2 checkpoint (final_output).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import pwd

import pytest

from ansible.module_utils import basic

from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_runner
from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.module_utils import _fs
from ansible_collections.labforge.instructlab.plugins.modules import ilab_model_train as mod

from ilab_testlib import Exit, Fail, raiser, run_main


# the end of a real simple-pipeline log (test bed, 2026-11-25)
TRAIN_LOG = '''LINUX_TRAIN.PY: TRAINING
{'train_runtime': 3.637, 'train_samples_per_second': 2.75, 'train_steps_per_second': 2.75, 'train_loss': 6.818511199951172, 'epoch': 1.0}
LINUX_TRAIN.PY: MERGING ADAPTERS
LINUX_TRAIN.PY: FINISHED
Wrote training_results/final/ggml-model-f32.gguf
'''


# full_train.py logs each step through ilab's log format ("%(levelname)s %(asctime)s %(name)s:%(lineno)d: ")
FULL_STEP = ('INFO 2026-12-02 01:00:00,000 instructlab.model.full_train:349: \n'
             'Epoch: %d, Step: %d, Loss per batch: 0.00042, Actual Loss Per Batch = tensor(%s), '
             'accumulated loss: 1234.5\n')


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
        self.judge = os.path.join(self.tmp, 'judge')
        write(os.path.join(self.judge, 'config.json'), '{}')
        self.calls = []
        self.rc = 0
        self.produce = True
        # the step losses of each epoch (full: logged; accelerated: metrics jsonl)
        self.epoch_losses = [[3.0, 2.0], [1.0, 1.5], [1.5, 1.0]]
        self.log_text = None
        self.journal_best = 'samples_20'
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
            elif pipeline == 'full':
                self.log_text = self.write_full(argv)
            elif '--strategy' in argv:
                self.write_phased(argv)
            else:
                self.write_accelerated(argv[argv.index('--ckpt-output-dir') + 1])
        elif self.rc:
            write(os.path.join(cwd, 'training_results', 'checkpoint-1', 'x'), 'partial')
        write(log, (self.log_text or TRAIN_LOG) if self.rc == 0 else 'LINUX_TRAIN.PY: TRAINING\n')
        res = _ilab_runner.IlabResult(step, argv, rc=self.rc, log_path=log, log_tail='LINUX_TRAIN.PY: FINISHED',
                                      duration=19.0, log_text=open(log).read())
        return FakeJob(res, log[:-4] + '.status.json')

    def write_full(self, argv):
        """full_train.py: one checkpoint per epoch (samples_<E*8>), converted and quantized beside it."""
        ck = argv[argv.index('--ckpt-output-dir') + 1]
        text = ''
        for epoch in range(int(argv[argv.index('--num-epochs') + 1])):
            for step, loss in enumerate(self.epoch_losses[epoch % len(self.epoch_losses)]):
                text += FULL_STEP % (epoch, step + 1, loss)
            d = os.path.join(ck, 'hf_format', 'samples_%d' % (epoch * 8))
            text += 'INFO 2026-12-02 01:00:01,000 instructlab.model.full_train:399: Saving Model to: %s\n' % d
            for name in ('pytorch_model.bin', 'config.json', 'tokenizer.json', 'tokenizer_config.json',
                         'special_tokens_map.json', 'pytorch_model.gguf', 'pytorch_model-Q4_K_M.gguf'):
                write(os.path.join(d, name), name)
        return text + '\u1566(\xf2\u1d17\xf3\u02c7)\u1564 Full model training completed successfully!\n'

    def write_accelerated(self, ck, epochs=3, per_epoch=10):
        """instructlab-training 0.10.3: samples_<samples_seen> at each epoch end, metrics per step."""
        records = [dict(script_params=dict(output_dir=ck))]
        seen = 0
        for epoch in range(epochs):
            losses = self.epoch_losses[epoch % len(self.epoch_losses)]
            for step, loss in enumerate(losses):
                seen += per_epoch // len(losses)
                records.append(dict(epoch=epoch, step=len(records), rank=0, overall_throughput=3.5, lr=2e-5,
                                    cuda_mem_allocated=12.5, cuda_malloc_retries=0, num_loss_counted_tokens=900,
                                    batch_size=5, total_loss=loss, samples_seen=seen, gradnorm=1.5,
                                    total_samples=per_epoch, timestamp='2026-12-02T01:00:00'))
            d = os.path.join(ck, 'hf_format', 'samples_%d' % seen)
            for name in ('model.safetensors', 'config.json', 'generation_config.json', 'tokenizer.json',
                         'tokenizer_config.json', 'special_tokens_map.json'):
                write(os.path.join(d, name), name)
            write(os.path.join(ck, 'full_state', 'epoch_%d' % epoch, 'model.safetensors'), 'state')
        write(os.path.join(ck, 'training_params_and_metrics_global0.jsonl'),
              ''.join(json.dumps(r) + '\n' for r in records))
        write(os.path.join(ck, 'full_logs_global0.log'), 'Operation completed successfully!\n')

    def write_phased(self, argv):
        """accelerated_train.py: phase 1 and phase 2 as accelerated runs, then the journal."""
        base = argv[argv.index('--phased-base-dir') + 1]
        assert os.path.isdir(base)   # click: exists=True
        if '--phased-phase1-data' in argv:
            self.write_accelerated(os.path.join(base, 'phase1', 'checkpoints'), epochs=2)
        ck2 = os.path.join(base, 'phase2', 'checkpoints')
        self.write_accelerated(ck2, epochs=3)
        best = os.path.join(os.path.realpath(ck2), 'hf_format', self.journal_best)
        write(os.path.join(base, 'journalfile.yaml'),
              "run_id: 7f0c1e2a-1b2c-4d5e-8f90-1234567890ab\n"
              "started_at_utc: '2026-12-02 01:00:00.000000+00:00'\n"
              "current_phase: done\n"
              "eval_2:\n"
              "  results:\n"
              "  - ended_at_utc: '2026-12-02 03:00:00.000000+00:00'\n"
              "    checkpoint: %s\n"
              "    score: 6.4375\n"
              "final_output:\n"
              "  ended_at_utc: '2026-12-02 03:00:00.000000+00:00'\n"
              "  checkpoint: %s\n"
              "  score: 6.4375\n" % (best, best))

    def add_knowledge(self):
        """The generate result of a taxonomy with knowledge (knowledge_train_msgs_*.jsonl)."""
        self.knowledge = os.path.join(self.gen, 'knowledge_train_msgs_X.jsonl')
        write(self.knowledge, '{"messages": []}\n' * 12)
        m = fpu.read_manifest(self.gen)
        m['files']['knowledge_train_msgs'] = self.knowledge
        fpu.write_manifest(self.gen, m)

    def run(self, check=False, diff=False, **kw):
        args = dict(user='ignored', venv=self.venv, pipeline='simple', device='cpu', num_epochs=1,
                    model_path=self.student, output_dir=self.out)
        args.update(kw)
        args = dict((k, v) for k, v in args.items() if v is not None)
        return run_main(mod.main, args, check, diff)

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
    # the stored result is exported again (the same file, even after the export was removed)
    os.remove(first['export_path'])
    kind, r = bed.run()
    assert kind == 'exit' and not r['changed'] and r['export_path'] == first['export_path']
    assert os.stat(r['export_path']).st_ino == os.stat(first['gguf_path']).st_ino


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
    assert r['hf_model_dir'] == os.path.join(final, 'checkpoints', 'hf_format', 'samples_48')
    assert r['gguf_path'] == os.path.join(final, 'checkpoints', 'hf_format', 'samples_48', 'pytorch_model.gguf')


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


# ------------------------------------------------------------------ the model each pipeline produced
def test_simple_returns_its_gguf_as_the_model(bed):
    dummy, first = bed.run()
    m = first['model']
    assert m == dict(format='gguf', path=first['gguf_path'], checkpoint=None, checkpoint_choice=None,
                     loss=pytest.approx(6.818511199951172), score=None, hf_path=None,
                     gguf_path=first['gguf_path'], gguf_quantized_path=None)
    assert first['checkpoints'] == []
    assert fpu.read_manifest(first['model_dir'])['model'] == m
    kind, r = bed.run()
    assert kind == 'exit' and not r['changed'] and r['model'] == m


def test_full_returns_the_last_checkpoint_with_its_ggufs(bed):
    kind, r = bed.run(pipeline='full', num_epochs=3)
    assert kind == 'exit', r
    hf = os.path.join(r['model_dir'], 'checkpoints', 'hf_format')
    last = os.path.join(hf, 'samples_16')
    assert r['model'] == dict(format='hf', path=last, checkpoint='samples_16', checkpoint_choice='last',
                              loss=pytest.approx(1.25), score=None, hf_path=last,
                              gguf_path=os.path.join(last, 'pytorch_model.gguf'),
                              gguf_quantized_path=os.path.join(last, 'pytorch_model-Q4_K_M.gguf'))
    assert [(c['name'], c['loss']) for c in r['checkpoints']] == [
        ('samples_0', pytest.approx(2.5)), ('samples_8', pytest.approx(1.25)), ('samples_16', pytest.approx(1.25))]
    assert all(os.path.isfile(c['gguf_quantized_path']) for c in r['checkpoints'])
    assert r['gguf_path'] == r['model']['gguf_path'] and r['hf_model_dir'] == last
    assert r['final_loss'] == pytest.approx(1.25)   # the log has no train_loss: the last checkpoint's
    # root's own copies of both GGUFs (the same files)
    export = os.path.join(_fs.STATE_ROOT, 'users', 'ignored', 'export')
    assert r['export_path'] == os.path.join(export, 'train.gguf')
    assert r['export_quantized_path'] == os.path.join(export, 'train-Q4_K_M.gguf')
    assert os.stat(r['export_quantized_path']).st_ino == os.stat(r['model']['gguf_quantized_path']).st_ino
    manifest = fpu.read_manifest(r['model_dir'])
    assert manifest['model'] == r['model'] and manifest['checkpoints'] == r['checkpoints']
    # a vLLM server is given the checkpoint without the GGUF files beside it
    assert r['export_hf_files'] and not [f for f in r['export_hf_files'] if f.endswith('.gguf')]
    assert sorted(os.listdir(r['export_hf_path'])) == sorted(
        n for n in os.listdir(last) if not n.endswith('.gguf'))
    kind, again = bed.run(pipeline='full', num_epochs=3)
    assert kind == 'exit' and not again['changed'] and len(bed.starts()) == 1
    assert again['model'] == r['model'] and again['checkpoints'] == r['checkpoints']


def test_full_best_checkpoint_by_its_logged_loss_without_training_again(bed):
    bed.epoch_losses = [[3.0, 2.0], [1.0, 1.2], [1.5, 1.3]]
    kind, r = bed.run(pipeline='full', num_epochs=3, checkpoint_choice='best')
    assert kind == 'exit', r
    assert r['model']['checkpoint'] == 'samples_8' and r['model']['checkpoint_choice'] == 'best'
    assert r['model']['loss'] == pytest.approx(1.1)
    assert r['gguf_path'].endswith('/samples_8/pytorch_model.gguf')
    assert fpu.read_manifest(r['model_dir'])['model']['checkpoint'] == 'samples_8'
    # the choice selects among the result's checkpoints: no new training
    kind, last = bed.run(pipeline='full', num_epochs=3, checkpoint_choice='last')
    assert kind == 'exit' and not last['changed'] and len(bed.starts()) == 1
    assert last['model_dir'] == r['model_dir'] and last['model']['checkpoint'] == 'samples_16'


def test_accelerated_returns_hf_checkpoints_only(bed):
    kind, r = bed.run(pipeline='accelerated', device='cuda', gpus=8)
    assert kind == 'exit', r
    (dummy, argv, kw), = bed.starts()
    assert argv[argv.index('--pipeline') + 1] == 'accelerated' and '--strategy' not in argv
    ck = os.path.join(r['model_dir'], 'checkpoints')
    last = os.path.join(ck, 'hf_format', 'samples_30')
    assert r['model'] == dict(format='hf', path=last, checkpoint='samples_30', checkpoint_choice='last',
                              loss=pytest.approx(1.25), score=None, hf_path=last, gguf_path=None,
                              gguf_quantized_path=None)
    assert [c['name'] for c in r['checkpoints']] == ['samples_10', 'samples_20', 'samples_30']
    assert r['gguf_path'] is None and 'export_path' not in r and r['checkpoint_dir'] == ck
    # the checkpoint a vLLM server is given: root's own names for its very files
    export = os.path.join(_fs.STATE_ROOT, 'users', 'ignored', 'export', 'train-hf')
    assert r['export_hf_path'] == export and r['export_hf_files'] and 'config.json' in r['export_hf_files']
    for rel in r['export_hf_files']:
        assert os.stat(os.path.join(export, rel)).st_ino == os.stat(os.path.join(last, rel)).st_ino
    kind, best = bed.run(pipeline='accelerated', device='cuda', gpus=8, checkpoint_choice='best')
    assert kind == 'exit' and not best['changed']
    # the metrics' total_loss: epoch means 2.5, 1.25, 1.25 -> the first of the lowest
    assert best['model']['checkpoint'] == 'samples_20' and best['model']['loss'] == pytest.approx(1.25)
    # the export follows the choice
    assert os.stat(os.path.join(export, 'config.json')).st_ino == os.stat(
        os.path.join(ck, 'hf_format', 'samples_20', 'config.json')).st_ino


def test_best_without_any_reported_loss_takes_the_last_with_a_warning(bed, monkeypatch):
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, msg: warnings.append(msg))
    bed.epoch_losses = [[float('nan')]]
    kind, r = bed.run(pipeline='accelerated', device='cuda', checkpoint_choice='best')
    assert kind == 'exit', r
    assert r['model']['checkpoint'] == 'samples_30' and r['model']['checkpoint_choice'] == 'last'
    assert warnings and 'no loss' in warnings[0]


def test_results_of_earlier_releases_still_return_a_model(bed):
    """A manifest written before RV(model) existed (no checkpoints list) keeps working."""
    dummy, first = bed.run(pipeline='full', num_epochs=3)
    manifest = fpu.read_manifest(first['model_dir'])
    for key in ('model', 'checkpoints', 'best_checkpoint'):
        del manifest[key]
    fpu.write_manifest(first['model_dir'], manifest)
    kind, r = bed.run(pipeline='full', num_epochs=3)
    assert kind == 'exit' and not r['changed']
    assert r['model']['checkpoint'] == 'samples_16' and r['model']['format'] == 'hf'


@pytest.mark.parametrize('loss_text,expected', [
    ('tensor(2.3456)', 2.3456), ('2.5', 2.5), ('tensor(1.5e-01)', 0.15)])
def test_full_losses_parses_the_full_train_log(loss_text, expected):
    text = ('INFO 2026-12-02 01:00:00,000 instructlab.model.full_train:349: \n'
            'Epoch: 1, Step: 3, Loss per batch: 0.0001, Actual Loss Per Batch = %s, accumulated loss: 9.5\n'
            % loss_text)
    assert mod.full_losses(text) == dict(samples_8=pytest.approx(expected))


# ------------------------------------------------------------------ refused before anything changes
@pytest.mark.parametrize('kw,words', [
    (dict(pipeline='accelerated', device='cpu'),
     ['device cpu', 'only on device cuda or hpu', 'Unable to train with device=cpu and pipeline=accelerated']),
    (dict(pipeline='accelerated', device='cpu', strategy='lab-multiphase'),
     ['device cpu', 'strategy lab-multiphase', 'only on device cuda or hpu']),
    (dict(pipeline='full', device='cuda'), ['device cuda', 'pipeline full only on device cpu or mps']),
    (dict(pipeline='full', device='cpu', strategy='lab-skills-only'),
     ['strategy lab-skills-only', 'only with pipeline accelerated']),
    (dict(pipeline='simple', phased_phase2_data='latest'), ['phased_phase2_data', 'strategy is not set']),
    (dict(pipeline='simple', phased_mt_bench_judge='/x', phased_phase1_num_epochs=7),
     ['phased_mt_bench_judge, phased_phase1_num_epochs', 'strategy is not set']),
    (dict(pipeline='accelerated', device='cuda', strategy='lab-skills-only', phased_phase1_data='latest'),
     ['phased_phase1_data', 'lab-skills-only trains phase 2 only']),
])
def test_what_ilab_cannot_run_is_refused_early(bed, kw, words):
    kind, r = bed.run(**kw)
    assert kind == 'fail', r
    for word in words:
        assert word in r['msg']
    assert bed.calls == [] and not os.path.exists(bed.out)


# ------------------------------------------------------------------ phased training
def phased_argv(bed, staging, p1, p2, extra=()):
    return ([os.path.join(bed.venv, 'bin', 'ilab'), '--config', bed.cfg, 'model', 'train',
             '--pipeline', 'accelerated', '--device', 'cuda', '--model-path', bed.student,
             '--data-path', p2, '--num-epochs', '1',
             '--ckpt-output-dir', os.path.join(staging, 'checkpoints'),
             '--data-output-dir', os.path.join(staging, 'data-output'),
             '--gpus', '8'] + list(extra[0] if extra else []) +
            ['--phased-base-dir', os.path.join(staging, 'phased')] +
            (['--phased-phase1-data', p1] if p1 else []) +
            ['--phased-phase2-data', p2] + list(extra[1] if extra else []) +
            ['--phased-mt-bench-judge', bed.judge, '--skip-user-confirm'])


def test_lab_multiphase_wires_the_generated_knowledge_and_skills_data(bed):
    bed.add_knowledge()
    kind, r = bed.run(pipeline='accelerated', device='cuda', gpus=8, strategy='lab-multiphase',
                      phased_mt_bench_judge=bed.judge, diff=True)
    assert kind == 'exit', r
    (dummy, argv, kw), = bed.starts()
    staging = kw['cwd']
    assert argv == phased_argv(bed, staging, bed.knowledge, bed.msgs, (['--strategy', 'lab-multiphase'], []))
    assert r['cmd'] == ' '.join(argv)
    assert r['data']['phase1'] == bed.knowledge and r['data']['phase2'] == bed.msgs
    m = fpu.read_manifest(r['model_dir'])
    assert m['inputs']['data']['phase1'] == _fs.path_digest(bed.knowledge)
    assert m['inputs']['data']['phase2'] == _fs.path_digest(bed.msgs)
    assert m['inputs']['params']['phased_mt_bench_judge'] == bed.judge
    ck2 = os.path.join(r['model_dir'], 'phased', 'phase2', 'checkpoints')
    assert r['checkpoint_dir'] == ck2
    assert r['model']['path'] == os.path.join(ck2, 'hf_format', 'samples_30')   # last by default
    assert [c['name'] for c in r['checkpoints']] == ['samples_10', 'samples_20', 'samples_30']
    # best: InstructLab's own pick, the journal's final_output (MT-Bench), recorded in the manifest
    kind, best = bed.run(pipeline='accelerated', device='cuda', gpus=8, strategy='lab-multiphase',
                         phased_mt_bench_judge=bed.judge, checkpoint_choice='best')
    assert kind == 'exit' and not best['changed']
    assert best['model']['checkpoint'] == 'samples_20' and best['model']['score'] == pytest.approx(6.4375)


def test_lab_skills_only_with_explicit_files_and_phase_options(bed):
    with open(bed.cfg, 'a') as f:
        f.write('  phased_mt_bench_judge: %s\n' % bed.judge)
    skills = os.path.join(bed.tmp, 'my-skills.jsonl')
    write(skills, '{"messages": []}\n')
    kind, r = bed.run(pipeline='accelerated', device='cuda', gpus=8, strategy='lab-skills-only',
                      phased_phase2_data=skills, phased_phase2_num_epochs=10, phased_phase2_samples_per_save=0,
                      phased_phase2_learning_rate=6e-6, phased_phase2_effective_batch_size=3840)
    assert kind == 'exit', r
    (dummy, argv, kw), = bed.starts()
    assert argv == phased_argv(bed, kw['cwd'], None, skills, (
        ['--strategy', 'lab-skills-only'],
        ['--phased-phase2-num-epochs', '10', '--phased-phase2-samples-per-save', '0',
         '--phased-phase2-learning-rate', '6e-06', '--phased-phase2-effective-batch-size', '3840']))
    assert r['model']['checkpoint'] == 'samples_30'


@pytest.mark.parametrize('case', ['no-knowledge', 'missing-file', 'no-judge', 'data-path-file'])
def test_phased_inputs_are_checked_before_anything_changes(bed, case):
    kw = dict(pipeline='accelerated', device='cuda', strategy='lab-multiphase', phased_mt_bench_judge=bed.judge)
    if case == 'missing-file':
        bed.add_knowledge()
        kw['phased_phase2_data'] = os.path.join(bed.tmp, 'nope.jsonl')
        words = ['phased_phase2_data', 'nope.jsonl is not a file']
    elif case == 'data-path-file':
        kw['data_path'] = bed.msgs
        words = ['phased_phase1_data not set', 'data_path %s is not a directory' % bed.msgs]
    elif case == 'no-judge':
        kw['phased_mt_bench_judge'] = os.path.join(bed.tmp, 'no-judge')
        words = ['phased_mt_bench_judge', 'no-judge is not a model directory']
    else:
        words = ['phased_phase1_data (latest)', 'no knowledge_train_msgs file', 'lab-skills-only']
    kind, r = bed.run(**kw)
    assert kind == 'fail', r
    for word in words:
        assert word in r['msg']
    assert bed.calls == [] and not os.path.exists(bed.out)


def test_no_stale_export_of_an_earlier_result_under_the_same_name(bed):
    dummy, full = bed.run(pipeline='full', num_epochs=3)
    assert os.path.isfile(full['export_path']) and os.path.isfile(full['export_quantized_path'])
    kind, r = bed.run(pipeline='accelerated', device='cuda')
    assert kind == 'exit' and r['trained'] and r['model']['gguf_path'] is None
    assert 'export_path' not in r and 'export_quantized_path' not in r
    assert not os.path.exists(full['export_path']) and not os.path.exists(full['export_quantized_path'])
    kind, r = bed.run(pipeline='simple')   # a GGUF only: no Hugging Face export left from before
    assert kind == 'exit' and 'export_hf_path' not in r and not os.path.exists(full['export_hf_path'])


def test_phase_files_come_from_the_data_path_directory(bed):
    """pipeline.yml hands over the generate result's directory as data_path."""
    bed.add_knowledge()
    write(os.path.join(bed.gen, 'knowledge_train_msgs_0.jsonl'), '{"messages": []}\n')   # older
    os.utime(os.path.join(bed.gen, 'knowledge_train_msgs_0.jsonl'), (1, 1))
    kind, r = bed.run(pipeline='accelerated', device='cuda', gpus=8, strategy='lab-multiphase',
                      phased_mt_bench_judge=bed.judge, data_path=bed.gen)
    assert kind == 'exit', r
    (dummy, argv, kw), = bed.starts()
    assert argv == phased_argv(bed, kw['cwd'], bed.knowledge, bed.msgs, (['--strategy', 'lab-multiphase'], []))


def test_check_mode_on_a_dataset_not_generated_yet_predicts_training(bed):
    """A dry run of the pipeline: generate predicted a dataset directory that does not
    exist yet; training on it would run. Outside check mode the same input is an error."""
    missing = os.path.join(bed.datasets, 'generate-not-yet')
    kind, r = bed.run(check=True, data_path=missing)
    assert kind == 'exit' and r['changed'] and r['trained'] and r['fingerprint'] is None, r
    assert 'does not exist yet' in r['reason'] and bed.starts() == []
    kind, r = bed.run(data_path=missing)
    assert kind == 'fail' and 'data_path %s does not exist' % missing in r['msg'], r
