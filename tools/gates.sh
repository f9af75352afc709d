#!/usr/bin/env bash
# Runs each named gate (a make target), keeps going after a failure, prints
# how long each took and ends with one summary line:
#   gates: N passed, N failed, N skipped
# A gate that cannot run here (e.g. it needs a registry this machine cannot
# reach) writes "skipped" to $GATE_STATUS_FILE and is counted as skipped.
# Exit status: 0 only when no gate failed.
set -uo pipefail
passed=0 failed=0 skipped=0 report=()
GATE_STATUS_FILE=$(mktemp)
export GATE_STATUS_FILE
trap 'rm -f "$GATE_STATUS_FILE"' EXIT
for gate in "$@"; do
  start=$(date +%s)
  : >"$GATE_STATUS_FILE"
  printf '\n===== gate %s =====\n' "$gate"
  if make --no-print-directory "$gate"; then
    if grep -qx skipped "$GATE_STATUS_FILE"; then
      skipped=$((skipped + 1)); status=SKIP
    else
      passed=$((passed + 1)); status=PASS
    fi
  else
    failed=$((failed + 1)); status=FAIL
  fi
  report+=("$(printf '%-4s %-28s %5ss' "$status" "$gate" "$(( $(date +%s) - start ))")")
  # Every later gate relies on a usable test bed: stop at once without one.
  if [[ "$gate" == selfcheck && "$status" == FAIL ]]; then
    printf '\nThe test bed is not usable (see the selfcheck message above); later gates not run.\n'
    break
  fi
done
printf '\n===== summary =====\n'
printf '%s\n' "${report[@]}"
printf 'gates: %d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ]
