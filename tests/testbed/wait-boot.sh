#!/usr/bin/env bash
# Usage: wait-boot.sh CONTAINER [SECONDS]
# Waits until systemd inside the test container has booted and prints its
# state (running or degraded; exit 0), or the last state seen (exit 1).
# Right after `podman run`, systemctl answers "offline" (/run/systemd/system
# does not exist yet) or cannot reach the bus at all: both mean "not yet",
# not "failed" (a CI run failed on treating "offline" as the answer).
# The one place that waits for a test host's boot; molecule's prepare.yml
# does the same with Ansible's retries.
set -uo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"
name=$1
limit=${2:-120}
state=
deadline=$((SECONDS + limit))
while ((SECONDS < deadline)); do
  state=$(timeout 60 podman exec "$name" systemctl is-system-running --wait 2>/dev/null)
  case "$state" in
    running | degraded)
      echo "$state"
      exit 0
      ;;
    maintenance | stopping) break ;;
  esac
  sleep 1
done
echo "${state:-no answer}"
exit 1
