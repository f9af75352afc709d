#!/usr/bin/env bash
# Installs what the test bed needs on this (Debian) controller, only when
# missing: the packages of host-packages.txt. runc is installed in the SAME
# apt command as podman: otherwise apt picks crun, which cannot run
# containers on these hosts.
set -euo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"

mapfile -t want < <(sed -e 's/#.*//' "$TESTBED_DIR/host-packages.txt" | awk 'NF {print $1}')
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The package starts a registry on :5000 we do not want; tests run their own.
  if systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
else
  log "host packages present"
fi
# A labforge network created before the dnsname plugin was installed keeps
# dns_enabled: false for ever: remove it while no container uses it (the
# scenarios create it again, now with name resolution).
while read -r net; do
  [[ -n "$net" ]] || continue
  if [[ "$(podman network inspect -f '{{.DNSEnabled}}' "$net")" != "true" ]] &&
     [[ -z "$(podman ps -aq --filter "network=$net")" ]]; then
    podman network rm "$net" >/dev/null && log "removed podman network $net (created without name resolution)"
  fi
done < <(podman network ls --format '{{.Name}}' | grep '^labforge' || true)
