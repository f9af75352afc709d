#!/usr/bin/env bash
# `make demo`: the whole InstructLab pipeline on a local test host.
#  1. host packages, the Debian 12 systemd image and the offline artefacts
#     (cached in $LABFORGE_CACHE; the first run builds them);
#  2. the test host `labforge-demo` (a podman systemd container; reused when
#     it is already running, so a second `make demo` is a fast no-op run);
#  3. ansible-playbook -i inventories/local/hosts.yml labforge.instructlab.site
#     (CPU profile, the test-bed teacher model, a student built at run time);
#  4. a chat answer from the served model and the path of the run report.
# Remove the host afterwards with `make demo-clean`.
set -euo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"
root="$(cd "$TESTBED_DIR/../.." && pwd)"
HOST=labforge-demo

"$TESTBED_DIR/setup-host.sh"
image=$("$TESTBED_DIR/build-image.sh")
LABFORGE_TEST_IMAGE=$image "$TESTBED_DIR/selfcheck.sh"
"$TESTBED_DIR/artefacts.sh"

if [[ "$(podman container inspect -f '{{.State.Running}}' "$HOST" 2>/dev/null)" != "true" ]]; then
  podman rm -f "$HOST" >/dev/null 2>&1 || true
  log "starting test host $HOST ($image)"
  volumes=(-v "${LABFORGE_CA_BUNDLE}:/etc/ssl/certs/labforge-host-ca.crt:ro")
  while read -r v; do volumes+=(-v "$v"); done < <("$TESTBED_DIR/host-volumes.sh")
  podman run -d --name "$HOST" --hostname "$HOST" --systemd=always \
    --label labforge.test=demo "${volumes[@]}" "$image" /sbin/init >/dev/null
fi
podman exec "$HOST" systemctl is-system-running --wait >/dev/null || true

export ANSIBLE_CALLBACKS_ENABLED=labforge.instructlab.run_report,ansible.posix.profile_tasks
export LABFORGE_REPORT_DIR="$root/reports"
export ANSIBLE_CALLBACK_RESULT_FORMAT=yaml
log "running labforge.instructlab.site on $HOST (long steps name their log file on the host)"
cd "$root"
ansible-playbook -i inventories/local/hosts.yml "labforge.instructlab.${LABFORGE_DEMO_PLAYBOOK:-site}"

report="$LABFORGE_REPORT_DIR/latest.md"
python3 - "$LABFORGE_REPORT_DIR/latest.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
for name, host in data["hosts"].items():
    print("\n=== %s: %s" % (name, host.get("endpoint") or "no endpoint"))
    for art in host.get("artifacts", []):
        for a in art.get("answers") or []:
            print("Q: %s\nA: %s" % (a.get("question"), a.get("answer")))
PY
echo "run report: $(readlink -f "$report")"
echo "the host keeps running: podman exec -it $HOST bash; remove it with: make demo-clean"
