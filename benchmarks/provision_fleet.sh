#!/usr/bin/env bash
# Provisioning, measured side by side in one run on this machine:
#   A  first provision of one fresh host   (labforge.instructlab.provision)
#   B  no-op rerun on that host
#   C  first provision of a fleet of 3 fresh hosts in one run
#   M  the seed's manual recipe on a fresh host (unpinned pip install),
#      run by benchmarks/install_vs_manual.sh, which also reports whether
#      the manual result works
# and prints the ratios B/A, C/A and A/M. Uses the local inventory's settings
# (inventories/local/group_vars) and the shared caches in $LABFORGE_CACHE
# (uv download cache warm), except the wheelhouse: A and C each start from an
# empty one, so each compiles llama-cpp-python once (C: once for the fleet).
# All hosts share this machine's cores (on a real fleet each host has its own).
# Containers are named lfbench-* and removed at the end.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091  # sourced from the repository
source "$repo/tests/testbed/env.sh"
use_controller_venv
image=${LABFORGE_TEST_IMAGE:-$("$repo/tests/testbed/build-image.sh")}
"$repo/tests/testbed/artefacts.sh"
export ANSIBLE_COLLECTIONS_PATH="$repo/build/collections"
work=$(mktemp -d)
hosts=(lfbench-one lfbench-f1 lfbench-f2 lfbench-f3)
run_id="bench-$(date +%s)"
remove_hosts() {  # one name per call: podman 4.3 `rm -f missing present` exits 0 and leaves "present"
  for h in "${hosts[@]}"; do podman rm -f "$h" >/dev/null 2>&1 || true; done
}
cleanup() {
  remove_hosts
  rm -rf "$work" "$LABFORGE_CACHE/wheelhouse/$run_id"
}
trap cleanup EXIT

start_host() {
  local volumes=(-v "$LABFORGE_CA_BUNDLE:/etc/ssl/certs/labforge-host-ca.crt:ro")
  while read -r v; do volumes+=(-v "$v"); done < <("$repo/tests/testbed/host-volumes.sh")
  podman rm -f "$1" >/dev/null 2>&1 || true
  podman run -d --name "$1" --hostname "$1" --systemd=always "${volumes[@]}" "$image" /sbin/init >/dev/null
  "$TESTBED_DIR/wait-boot.sh" "$1" >/dev/null || true
}

inventory() {  # label hosts... -> inventory file using the local group_vars
  local inv="$work/inv-$1"; shift
  mkdir -p "$inv"
  ln -sfn "$repo/inventories/local/group_vars" "$inv/group_vars"
  {
    echo "instructlab:"
    echo "  children:"
    echo "    instructlab_trainers:"
    echo "      hosts:"
    for h in "$@"; do echo "        $h:"; done
    echo "  vars:"
    echo "    ansible_connection: containers.podman.podman"
  } >"$inv/hosts.yml"
  echo "$inv/hosts.yml"
}

timed() {  # label inventory wheelhouse -> seconds on stdout; log in $work
  local start end
  start=$(date +%s.%N)
  ansible-playbook -i "$2" -e "instructlab_wheelhouse=/srv/labforge/wheelhouse/$run_id/$3" \
    labforge.instructlab.provision >"$work/$1.log" 2>&1 ||
    { tail -n 40 "$work/$1.log" >&2; echo "[bench] $1 failed" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "[bench] $1: $(grep -A10 'PLAY RECAP' "$work/$1.log" | grep -E 'ok=' | sed 's/^/    /')" >&2
  python3 -c "print(round($end - $start, 1))"
}

start_host lfbench-one
a=$(timed first-one "$(inventory one lfbench-one)" one)
b=$(timed rerun-one "$work/inv-one/hosts.yml" one)
for h in lfbench-f1 lfbench-f2 lfbench-f3; do start_host "$h"; done
c=$(timed first-fleet "$(inventory fleet lfbench-f1 lfbench-f2 lfbench-f3)" fleet)
compiles=$(grep -c "BUILD START llama-cpp-python" <(for h in lfbench-f1 lfbench-f2 lfbench-f3; do
  podman exec "$h" cat /var/log/labforge/instructlab-install.log; done) || true)
echo "[bench] fleet of 3: llama-cpp-python compiled $compiles time(s)" >&2
remove_hosts

manual_out="$work/manual.txt"
BENCH_OUT="$manual_out" "$repo/benchmarks/install_vs_manual.sh" >&2
m=$(sed -n 's/^manual recipe (pip, unpinned): *\([0-9.]*\)s.*/\1/p' "$manual_out" | head -n1)
python3 - "$a" "$b" "$c" "${m:-}" "$compiles" <<'PY'
import sys
a, b, c = (float(x) for x in sys.argv[1:4])
m = float(sys.argv[4]) if sys.argv[4] else None
print("first provision, one host      A = %7.1f s" % a)
print("no-op rerun, same host         B = %7.1f s   B/A = %.2f" % (b, b / a))
print("first provision, fleet of 3    C = %7.1f s   C/A = %.2f (3 hosts in %.2fx the time of one;"
      " llama-cpp-python compiled %s time(s))" % (c, c / a, c / a, sys.argv[5]))
if m:
    print("seed's manual recipe, one host M = %7.1f s   A/M = %.2f" % (m, a / m))
else:
    print("seed's manual recipe: see benchmarks/install_vs_manual.sh output above")
PY
