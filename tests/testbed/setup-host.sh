#!/usr/bin/env bash
# Installs what the test bed needs on this (Debian) controller, only when
# missing. runc is installed in the SAME apt command as podman: otherwise apt
# picks crun, which cannot run containers on these hosts.
set -euo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"

want=(podman runc debootstrap golang-github-containernetworking-plugin-dnsname skopeo docker-registry apache2-utils shellcheck git openssl)
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
