#!/usr/bin/env bash
# Builds (once; cached in $LABFORGE_CACHE) every offline artefact the test
# hosts use, and the cache directories they share with the controller:
#   python-mirror/   pyenv clone + CPython tarball mirror  (make-python-mirror.sh)
#   models/SmolLM2-135M-Instruct.Q4_1.gguf   teacher test model (make-test-model.sh)
#   models/student -> student-<hash>/        tiny trainable student (make-student.py)
#   cuda-toolkit/cuda-12.4 -> cuda-12.4.131-<hash>/   CUDA toolkit of the gpu_sim
#                                            scenario (cuda-toolkit.sh)
#   uv/, wheelhouse/                         caches shared by the test hosts
#   apt-archives/   apt cache of the integration hosts (one host at a time)
# Test hosts get them under /srv/labforge (see host-volumes.sh).
set -euo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"

mkdir -p "$LABFORGE_CACHE"/{uv,wheelhouse,models,apt-archives/partial}
"$TESTBED_DIR/make-python-mirror.sh" >/dev/null
"$TESTBED_DIR/make-test-model.sh" >/dev/null
"$TESTBED_DIR/cuda-toolkit.sh" >/dev/null

# The student builder needs torch, transformers and sentencepiece: a small
# controller venv for it, cached and keyed by its requirements.
reqs="torch==2.13.0 transformers==4.52.4 sentencepiece==0.2.0 numpy<2"
key=$(printf '%s' "$reqs" | sha256sum | cut -c1-12)
tools="$LABFORGE_CACHE/student-venv-$key"
if [[ ! -x "$tools/bin/python" ]] || ! "$tools/bin/python" -c 'import torch, transformers, sentencepiece' 2>/dev/null; then
  log "creating the student-builder venv $tools (once)"
  rm -rf "$tools" "$LABFORGE_CACHE"/student-venv-*
  python3 -m venv "$tools"
  # shellcheck disable=SC2086
  "$tools/bin/pip" install --quiet --disable-pip-version-check $reqs 2>&1 | grep -v 'is ignored: it is neither' || true
  "$tools/bin/python" -c 'import torch, transformers, sentencepiece'
fi
# make-student.py writes tokenizer.json too (converted from the SentencePiece
# model, which needs protobuf): added to the cached venv in place, so that an
# existing venv is not rebuilt (torch) for it.
if ! "$tools/bin/python" -c 'import google.protobuf' 2>/dev/null; then
  log "adding protobuf to the student-builder venv $tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check "protobuf==6.31.1" 2>&1 | grep -v 'is ignored: it is neither' || true
  "$tools/bin/python" -c 'import google.protobuf'
fi
student=$("$tools/bin/python" "$TESTBED_DIR/make-student.py")
ln -sfn "$(basename "$student")" "$LABFORGE_CACHE/models/student"
log "artefacts ready in $LABFORGE_CACHE"
