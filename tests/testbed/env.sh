# shellcheck shell=bash
# Common settings for the test-bed scripts: sourced, never executed.
# LABFORGE_CACHE lives OUTSIDE the clone so that a fresh clone (CI) reuses the
# expensive results (host image, Python mirror, test model, pip/uv caches).
TESTBED_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export TESTBED_DIR
export LABFORGE_CACHE="${LABFORGE_CACHE:-/var/cache/labforge}"
export CONTAINERS_CONF="${TESTBED_DIR}/containers.conf"
# The host's CA bundle: on TLS-inspecting networks pip/uv inside the test
# hosts only reach the package index with it (roles take it as a variable).
export LABFORGE_CA_BUNDLE="${LABFORGE_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
mkdir -p "${LABFORGE_CACHE}"

log() { printf '[testbed] %s\n' "$*" >&2; }
die() { printf '[testbed] ERROR: %s\n' "$*" >&2; exit 1; }

# Scripts run outside make (benchmarks) call this: the project's controller
# venv (ansible-playbook, molecule) on PATH and the collection built, both
# made when missing.
use_controller_venv() {
  local repo
  repo="$(cd "$TESTBED_DIR/../.." && pwd)"
  make -C "$repo" --no-print-directory venv build >&2
  export PATH="$repo/.venv/bin:$PATH"
}
