#!/usr/bin/env bash
# The no-op rerun, measured side by side in one run on this machine:
#   A  `labforge.instructlab.site` on one fresh test host, reached over SSH
#      with pipelining (as a fleet is managed), with the local inventory's
#      settings (inventories/local: CPU, the test-bed teacher, a tiny student);
#   B  the same playbook again on that host, nothing changed.
# Prints A, B, the ratio B/A, the rerun's changed= count, and how many `ilab`
# processes the rerun started on the host, counted by the kernel's process
# accounting (accton/lastcomm from Debian's `acct`: every process that ends is
# recorded, however short-lived, in the test host's container too), and the
# rerun's five slowest tasks (profile_tasks).
# Targets (issue 19): B <= 15 s, B/A <= 0.05, 0 ilab processes.
#
#   benchmarks/noop_rerun.sh
#
# Needs the test bed (made here when missing: podman, the image, the offline
# artefacts in $LABFORGE_CACHE) and root (process accounting). The host is
# named ${BENCH_PREFIX:-lfbench}-noop and removed at the end; the summary also
# goes to ${BENCH_OUT:-reports/noop_rerun.txt}.
#
# To work on the rerun without paying for the first run each time:
#   BENCH_KEEP=1   keep the host and its work directory (key, inventory, logs,
#                  the first run's time) in ${BENCH_WORK:-/tmp/HOST-bench};
#   BENCH_REUSE=1  reuse them: skip the first run, measure the rerun only
#                  (A is the kept first run's time).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091  # sourced from the repository
source "$repo/tests/testbed/env.sh"
use_controller_venv
"$repo/tests/testbed/setup-host.sh"
image=${LABFORGE_TEST_IMAGE:-$("$repo/tests/testbed/build-image.sh")}
"$repo/tests/testbed/artefacts.sh"
export ANSIBLE_COLLECTIONS_PATH="$repo/build/collections"
host=${BENCH_PREFIX:-lfbench}-noop
out=${BENCH_OUT:-$repo/reports/noop_rerun.txt}
keep=${BENCH_KEEP:-0}
reuse=${BENCH_REUSE:-0}
if [ "$keep" = 1 ] || [ "$reuse" = 1 ]; then
  work=${BENCH_WORK:-/tmp/$host-bench}
  mkdir -p "$work"
else
  work=$(mktemp -d)
fi
acct_file="$work/pacct"
command -v accton >/dev/null || { echo "[bench] installing Debian's acct (process accounting)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq acct >/dev/null; }

cleanup() {
  accton off >/dev/null 2>&1 || true
  if [ "$keep" != 1 ]; then
    podman rm -f "$host" >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
}
trap cleanup EXIT

inv="$work/inventory"
if [ "$reuse" = 1 ] && [ -s "$work/first.seconds" ] && podman container exists "$host"; then
  echo "[bench] reusing $host and $work (BENCH_REUSE=1)" >&2
else
  rm -rf "$inv" "$work/id" "$work/id.pub" "$work/first.seconds"
  echo "[bench] starting $host (logs of the runs: $work/first.log, $work/rerun.log)" >&2
  volumes=(-v "$LABFORGE_CA_BUNDLE:/etc/ssl/certs/labforge-host-ca.crt:ro")
  while read -r v; do volumes+=(-v "$v"); done < <("$repo/tests/testbed/host-volumes.sh")
  podman rm -f "$host" >/dev/null 2>&1 || true
  podman run -d --name "$host" --hostname "$host" --systemd=always "${volumes[@]}" "$image" /sbin/init >/dev/null
  "$TESTBED_DIR/wait-boot.sh" "$host" >/dev/null || true
  podman exec "$host" bash -c "command -v sshd >/dev/null || { apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null; }"
  ssh-keygen -q -t ed25519 -N '' -C labforge-bench -f "$work/id"
  podman exec -i "$host" bash -c 'install -d -m 0700 /root/.ssh && cat >/root/.ssh/authorized_keys \
      && chmod 0600 /root/.ssh/authorized_keys && systemctl enable --now -q ssh && systemctl is-active -q ssh' <"$work/id.pub"

  # The local inventory's settings and taxonomy, this host over SSH in every group.
  mkdir -p "$inv"
  ln -s "$repo/inventories/local/group_vars" "$inv/group_vars"
  ln -s "$repo/inventories/local/files" "$inv/files"
  cat >"$inv/hosts.yml" <<EOF
instructlab:
  children:
    instructlab_teachers: {hosts: {$host: }}
    instructlab_trainers: {hosts: {$host: }}
    instructlab_servers: {hosts: {$host: }}
  vars:
    ansible_host: $(podman inspect -f '{{.NetworkSettings.IPAddress}}' "$host")
    ansible_user: root
    ansible_python_interpreter: /usr/bin/python3
    ansible_ssh_private_key_file: $work/id
    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    labforge_artifacts_dir: $work/artifacts
EOF
fi

run_site() {  # label -> seconds on stdout
  local start end rc=0
  start=$(date +%s.%N)
  ANSIBLE_PIPELINING=1 ANSIBLE_NOCOLOR=1 ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks \
    PROFILE_TASKS_TASK_OUTPUT_LIMIT=all \
    ansible-playbook -i "$inv/hosts.yml" labforge.instructlab.site >"$work/$1.log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$work/$1.log" >&2
    echo "[bench] the $1 run failed (rc $rc); its log: $work/$1.log" >&2
    exit 1
  fi
  python3 -c "print(round($end - $start, 1))"
}

if [ "$reuse" = 1 ] && [ -s "$work/first.seconds" ]; then
  a=$(cat "$work/first.seconds")
  echo "[bench] A: the kept first run on $host (${a}s)" >&2
else
  echo "[bench] A: first run of site on $host over SSH" >&2
  a=$(run_site first)
  echo "$a" >"$work/first.seconds"
fi
echo "[bench] B: rerun, with process accounting on" >&2
: >"$acct_file"   # accton switches accounting on into an existing file
accton "$acct_file" >/dev/null
b=$(run_site rerun)
accton off >/dev/null
# the command name the kernel records for the venv's `ilab` entry point is "ilab"
ilab_procs=$(lastcomm -f "$acct_file" --command ilab 2>/dev/null | wc -l)
all_procs=$(lastcomm -f "$acct_file" 2>/dev/null | wc -l)
changed=$(grep -Eo 'changed=[0-9]+' "$work/rerun.log" | tail -1)
slowest=$(sed -n '/^=\{10,\}/,$p' "$work/rerun.log" | grep -E -- '-+ [0-9.]+s$' | sed -n '1,5s/^/    /p')

verdict() { awk -v v="$1" -v lim="$2" 'BEGIN{print (v <= lim) ? "met" : "NOT met"}'; }
ratio=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b/a}')
mkdir -p "$(dirname "$out")"
{
  echo "site on one fresh Debian 12 test host over SSH (pipelining), $(nproc) cores, $(date -u +%FT%TZ)"
  echo "A first run:              ${a}s"
  echo "B no-op rerun:            ${b}s   (target <= 15 s: $(verdict "$b" 15))"
  echo "ratio B/A:                $ratio   (target <= 0.05: $(verdict "$ratio" 0.05))"
  echo "rerun:                    $changed"
  echo "ilab processes in B:      $ilab_procs   (target 0: $(verdict "$ilab_procs" 0); $all_procs processes in all on this machine)"
  echo "B's five slowest tasks:"
  echo "$slowest"
} | tee "$out"
