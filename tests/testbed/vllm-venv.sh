#!/usr/bin/env bash
# The role's cuda-vllm lock (InstructLab 0.26.1 + vLLM, instructlab_extras: [vllm])
# installed for real into a venv on this GPU-less controller, for
# tests/integration/test_vllm_lock.py (pip check, import vllm). Prints the path.
#
# What is installed, and what is not:
#   requirements.txt  every wheel of the lock, exact pins, --require-hashes,
#                     --only-binary :all: (as the role installs it)
#   sdists.txt        the pure-Python source packages from their locked sdists
#                     (hashes checked); llama-cpp-python from its locked sdist
#                     too, but compiled for CPU (CMAKE_ARGS=-DGGML_NATIVE=off,
#                     as tests/testbed/ilab-venv.sh, so uv's cache shares that
#                     build): a CPU build of the same pinned version, standing in
#                     for the CUDA build the role makes on a GPU host (the CUDA
#                     compile is the gpu_sim scenario's test). flash-attn is left
#                     out, as the role does with instructlab_flash_attn: false
#                     (a CUDA compile of hours; an optional extra of
#                     instructlab-training, which `pip check` does not require).
# Built with Debian's /usr/bin/python3.11 and the shared uv cache
# ($LABFORGE_CACHE/uv). Cached as $LABFORGE_CACHE/vllm-venv-<key>, the key being
# the lock's files; an older key's venv is removed. Log: $LABFORGE_CACHE/vllm-venv.log.
set -euo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"
root="$(cd "$TESTBED_DIR/../.." && pwd)"
lockdir="$root/roles/instructlab/files/locks/0.26.1/cuda-vllm"
uv="$root/.venv/bin/uv"
python=/usr/bin/python3.11
cpu_args="-DGGML_NATIVE=off"
skip="flash-attn"
[[ -x "$uv" ]] || die "uv not found in $root/.venv (run make venv)"
[[ -x "$python" ]] || die "$python not found (apt-get install python3.11-venv)"
[[ -f "$lockdir/requirements.txt" && -f "$lockdir/sdists.txt" ]] || die "no cuda-vllm lock in $lockdir"
key=$( { cat "$lockdir/requirements.txt" "$lockdir/sdists.txt"; echo "$python $cpu_args -$skip"; } \
       | sha256sum | cut -c1-12)
venv="$LABFORGE_CACHE/vllm-venv-$key"
logfile="$LABFORGE_CACHE/vllm-venv.log"

if [[ -f "$venv/.complete" ]]; then
  echo "$venv"
  exit 0
fi
log "building $venv from the cuda-vllm lock (once, ~5 GB of wheels; log: $logfile)"
rm -rf "$LABFORGE_CACHE"/vllm-venv-*
export UV_CACHE_DIR="$LABFORGE_CACHE/uv" CMAKE_ARGS="$cpu_args" SSL_CERT_FILE="$LABFORGE_CA_BUNDLE"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the lock's source packages without those left out (each entry is a line plus its --hash lines)
awk -v skip="$skip" '/^[A-Za-z0-9]/ { split($1, a, "=="); keep = (a[1] != skip) } keep' \
  "$lockdir/sdists.txt" > "$tmp/sdists.txt"
start=$(date +%s)
{
  "$uv" venv --quiet --python "$python" --seed "$venv"
  echo "== wheels ($(date -u +%T))"
  "$uv" pip install --python "$venv/bin/python" --no-deps --require-hashes --only-binary :all: \
    --compile-bytecode -r "$lockdir/requirements.txt"
  echo "== source packages except $skip ($(date -u +%T))"
  "$uv" pip install --python "$venv/bin/python" --no-deps --require-hashes -r "$tmp/sdists.txt"
  echo "== done ($(date -u +%T))"
} >"$logfile" 2>&1 || die "building $venv failed: see $logfile"
echo "installed in $(($(date +%s) - start)) s" >>"$logfile"
touch "$venv/.complete"
log "built $venv in $(($(date +%s) - start)) s"
echo "$venv"
