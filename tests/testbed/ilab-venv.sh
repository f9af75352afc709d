#!/usr/bin/env bash
# A ready InstructLab venv on the controller for the module integration tests
# (tests/integration/), which mount it into their test host at the same path:
# InstructLab 0.26.1 from the role's cpu lock (exact pins and hashes),
# installed with uv from PyPI; llama-cpp-python compiled with native CPU
# features off. Built with Debian's /usr/bin/python3.11, which the test-host
# image has too. Cached as $LABFORGE_CACHE/ilab-venv-<lock hash>; prints the
# path. (Hosts get InstructLab from the instructlab role; this is test
# plumbing, so module tests need not wait for a whole provisioning run.)
set -euo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"
root="$(cd "$TESTBED_DIR/../.." && pwd)"
lockdir="$root/roles/instructlab/files/locks/0.26.1/cpu"
lock="$lockdir/requirements.txt"      # wheels
sdists="$lockdir/sdists.txt"          # packages PyPI has only as source
key=$(cat "$lock" "$sdists" | sha256sum | cut -c1-12)
venv="$LABFORGE_CACHE/ilab-venv-$key"
uv="$root/.venv/bin/uv"
[[ -x "$uv" ]] || die "uv not found in $root/.venv (run make venv)"

if [[ -f "$venv/.complete" ]]; then
  echo "$venv"
  exit 0
fi
log "building $venv from the cpu lock (once; log: $LABFORGE_CACHE/ilab-venv.log)"
rm -rf "$LABFORGE_CACHE"/ilab-venv-*
export UV_CACHE_DIR="$LABFORGE_CACHE/uv" CMAKE_ARGS="-DGGML_NATIVE=off"
{
  "$uv" venv --quiet --python /usr/bin/python3.11 --seed "$venv"
  "$uv" pip install --python "$venv/bin/python" --require-hashes -r "$lock" -r "$sdists"
  "$venv/bin/python" -m pip check
  "$venv/bin/ilab" --version
} >"$LABFORGE_CACHE/ilab-venv.log" 2>&1 || die "building $venv failed: see $LABFORGE_CACHE/ilab-venv.log"
chmod -R a+rX "$venv"
touch "$venv/.complete"
echo "$venv"
