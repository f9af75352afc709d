#!/usr/bin/env bash
# Runs the ilab_* module integration tests (real InstructLab on a test host).
# Needs: podman test bed (make testbed), the InstructLab venv at
# LABFORGE_ILAB_VENV (default /opt/labforge-ilab-venv).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=tests/testbed/env.sh
. "$ROOT/tests/testbed/env.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest -v -p no:cacheprovider tests/integration/test_ilab_modules.py "$@"
