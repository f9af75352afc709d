#!/usr/bin/env bash
# Prints, one per line, the bind mounts a test host gets (podman -v syntax):
# the offline artefacts read-only, the package caches read-write.
set -euo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"
printf '%s\n' \
  "$LABFORGE_CACHE/python-mirror:/srv/labforge/python-mirror:ro" \
  "$LABFORGE_CACHE/models:/srv/labforge/models:ro" \
  "$LABFORGE_CACHE/uv:/srv/labforge/uv" \
  "$LABFORGE_CACHE/wheelhouse:/srv/labforge/wheelhouse"
