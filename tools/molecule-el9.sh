#!/usr/bin/env bash
# Runs the el9 molecule scenario where its images can be pulled; where the
# registries are not reachable (this test bed reaches only package indexes),
# says so and marks the gate as skipped instead of failing or pretending.
set -uo pipefail
images=$(python3 -c 'import yaml,sys; print(" ".join(p["image"] for p in yaml.safe_load(open("molecule/el9/molecule.yml"))["platforms"]))')
for image in $images; do
  if ! timeout 30 skopeo inspect --retry-times 0 --no-tags "docker://$image" >/dev/null 2>&1; then
    echo "SKIPPED molecule el9: image $image cannot be reached from this machine (no registry access)."
    echo "        Run 'make molecule-el9' where quay.io and docker.io are reachable."
    [ -n "${GATE_STATUS_FILE:-}" ] && echo skipped >"$GATE_STATUS_FILE"
    exit 0
  fi
done
for image in $images; do podman pull -q "$image" >/dev/null; done
exec molecule test -s el9
