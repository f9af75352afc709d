# Copyright: (c) 2026, labforge engineers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the tiny trainable student model for `ilab model train --pipeline simple`.

Run it with the InstructLab venv's python (it needs sentencepiece, transformers
and torch). The shipped test model (SmolLM2, BPE tokenizer, GGUF) cannot be
trained by InstructLab 0.26.1's simple pipeline: it needs a Hugging Face
safetensors model with a SentencePiece tokenizer (``tokenizer.model``) and
``added_tokens.json`` (see tests/testbed/TESTBED facts). This script makes one
in ~15 s on 2 CPU cores, ~750 KB:

* a SentencePiece BPE model (vocab 1000, byte fallback, identity
  normalisation, unk/bos/eos = 0/1/2, no pad) trained on a few KB of generated
  text, wrapped as the slow ``LlamaTokenizer`` (legacy);
* ``<|endoftext|>`` (eos), ``<|pad|>`` (pad), ``<|system|>``, ``<|user|>``,
  ``<|assistant|>`` added as ADDED special tokens (they must land in
  ``added_tokens.json``), and a chat template;
* ``tokenizer.json``, the same tokenizer converted to a fast one (with its
  added tokens): ``ilab model evaluate`` 0.26.1 takes a Hugging Face directory
  only with ``tokenizer.json`` (``is_model_safetensors``), so the rollout gate
  (mmlu_branch) can evaluate the student and what it is trained into. The
  slow files above are kept as they were: the simple pipeline reads them. The
  conversion needs protobuf (sentencepiece's model proto);
* ``LlamaForCausalLM`` from a tiny ``LlamaConfig`` (hidden 64, 2 layers,
  4 heads, intermediate 128, untied embeddings), saved with safetensors.

Usage: make-student.py [DEST]. Without DEST the model goes to
``$LABFORGE_CACHE/models/student-<sha256 of this script, 12 hex>/`` (default
cache /var/cache/labforge). Idempotent: a complete model there is reused. The
path of the model directory is printed on stdout.
"""

import hashlib
import os
import random
import shutil
import sys
import tempfile

REQUIRED = ('config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.model',
            'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'tokenizer.json')
DONE = '.labforge-complete'

WORDS = ('the a an one two three four five six seven eight nine ten cat dog bird fish tree '
         'river stone cloud light water fire earth wind red blue green yellow small big fast '
         'slow happy sad bright dark old new write read tell ask answer question poem story '
         'haiku line word rhyme sing make build give take see look find keep say think know '
         'and or but with for from into over under about because when where what why how '
         'is are was were be been has have had do does did will would can could should').split()

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' + message['content'] + '<|endoftext|>' + '\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")


def script_hash():
    with open(os.path.abspath(__file__), 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def corpus(rng, lines=600):
    out = []
    for dummy in range(lines):
        n = rng.randint(4, 14)
        sent = ' '.join(rng.choice(WORDS) for dummy in range(n))
        out.append(sent.capitalize() + rng.choice(['.', '?', '!', ',', ':']))
    out.append('0123456789 + - * / = ( ) [ ] { } " \' # @ & % $')
    return '\n'.join(out) + '\n'


def build(dest):
    import sentencepiece as spm
    import torch
    from transformers import (AddedToken, GenerationConfig, LlamaConfig, LlamaForCausalLM,
                              LlamaTokenizer, LlamaTokenizerFast)

    rng = random.Random(1234)
    torch.manual_seed(1234)
    work = tempfile.mkdtemp(prefix='.student-', dir=os.path.dirname(dest))
    try:
        text = os.path.join(work, 'corpus.txt')
        with open(text, 'w') as f:
            f.write(corpus(rng))
        prefix = os.path.join(work, 'sp')
        spm.SentencePieceTrainer.train(
            input=text, model_prefix=prefix, model_type='bpe', vocab_size=1000,
            byte_fallback=True, normalization_rule_name='identity',
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=1.0,
            hard_vocab_limit=False, minloglevel=2, num_threads=2)
        out = os.path.join(work, 'model')
        os.mkdir(out)
        tok = LlamaTokenizer(vocab_file=prefix + '.model', legacy=True)
        special = ['<|endoftext|>', '<|pad|>', '<|system|>', '<|user|>', '<|assistant|>']
        tok.add_special_tokens({
            'eos_token': AddedToken('<|endoftext|>', special=True, normalized=False),
            'pad_token': AddedToken('<|pad|>', special=True, normalized=False),
            'additional_special_tokens': [AddedToken(t, special=True, normalized=False)
                                          for t in special[2:]],
        })
        tok.chat_template = CHAT_TEMPLATE
        tok.save_pretrained(out)
        # tokenizer.json only: the fast tokenizer converted from the files just saved (added
        # tokens included); the slow tokenizer's own files stay as saved above
        fast = LlamaTokenizerFast.from_pretrained(out, from_slow=True, legacy=True)
        if len(fast) != len(tok) or fast.convert_tokens_to_ids(special) != tok.convert_tokens_to_ids(special):
            raise SystemExit('the fast tokenizer differs from the slow one (%d/%d tokens)' % (len(fast), len(tok)))
        fast.backend_tokenizer.save(os.path.join(out, 'tokenizer.json'))

        config = LlamaConfig(
            vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, intermediate_size=128, max_position_embeddings=2048,
            tie_word_embeddings=False, bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
            torch_dtype='float32')
        model = LlamaForCausalLM(config)
        model.save_pretrained(out, safe_serialization=True)
        GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id).save_pretrained(out)
        missing = [n for n in REQUIRED if not os.path.isfile(os.path.join(out, n))]
        if missing:
            raise SystemExit('student model incomplete, missing: %s' % ', '.join(missing))
        with open(os.path.join(out, DONE), 'w') as f:
            f.write(script_hash() + '\n')
        for dirpath, dirnames, filenames in os.walk(out):
            os.chmod(dirpath, 0o755)
            for n in filenames:
                os.chmod(os.path.join(dirpath, n), 0o644)
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        os.rename(out, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    if len(sys.argv) > 1:
        dest = os.path.abspath(sys.argv[1])
    else:
        cache = os.environ.get('LABFORGE_CACHE', '/var/cache/labforge')
        dest = os.path.join(cache, 'models', 'student-' + script_hash())
    if os.path.isfile(os.path.join(dest, DONE)) and all(
            os.path.isfile(os.path.join(dest, n)) for n in REQUIRED):
        print(dest)
        return
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    build(dest)
    print(dest)


if __name__ == '__main__':
    main()
