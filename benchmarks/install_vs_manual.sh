#!/usr/bin/env bash
# First-install time of InstructLab 0.26.1 (cpu) with role
# labforge.instructlab.instructlab vs the seed's manual recipe (an unpinned
# `pip install instructlab==0.26.1` in a venv), on fresh Debian 12 test hosts,
# one after the other on the same machine; then the role's no-op rerun.
# Prints the times, the ratio, and whether each result works (pip check,
# imports, ilab --version) -- a broken manual result is reported as broken.
#
#   benchmarks/install_vs_manual.sh            cold: empty caches for both
#   BENCH_WARM=1 benchmarks/install_vs_manual.sh
#       the role with the fleet caches ($LABFORGE_CACHE/uv and the wheelhouse
#       BENCH_WHEELHOUSE, default $LABFORGE_CACHE/wheelhouse/bench, which a
#       first run fills), i.e. every host of a fleet after the first
#   BENCH_CONNECTION=podman benchmarks/install_vs_manual.sh
#       Ansible reaches the role's host with `podman exec` (the molecule
#       scenarios' connection: no pipelining, ~0.8 s per task) instead of the
#       default, SSH with pipelining, as a fleet is managed (~0.1 s per task)
#
# Needs the test bed (make testbed): podman, the image, CONTAINERS_CONF.
# Containers are named ${BENCH_PREFIX:-lfbench}-{manual,role} and removed at
# the end. Writes a summary to ${BENCH_OUT:-reports/install_vs_manual.txt}.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091  # sourced from the repository
source "$repo/tests/testbed/env.sh"
use_controller_venv
image=${LABFORGE_TEST_IMAGE:-$("$repo/tests/testbed/build-image.sh")}
prefix=${BENCH_PREFIX:-lfbench}
out=${BENCH_OUT:-$repo/reports/install_vs_manual.txt}
warm=${BENCH_WARM:-0}
connection=${BENCH_CONNECTION:-ssh}
case $connection in ssh|podman) ;; *) echo "BENCH_CONNECTION must be ssh or podman" >&2; exit 2 ;; esac
version=0.26.1
work=$(mktemp -d)
mkdir -p "$(dirname "$out")" "$LABFORGE_CACHE/apt-archives/partial"

cleanup() {
    # one name per call: podman 4.3 `rm -f missing present` exits 0 and leaves "present"
    for c in "$prefix-manual" "$prefix-role"; do podman rm -f "$c" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

start_host() {  # name packages [extra podman args...]
    local name=$1 packages=$2; shift 2
    podman rm -f "$name" >/dev/null 2>&1 || true
    podman run -d --name "$name" --hostname "$name" --systemd=always \
        -v "$LABFORGE_CA_BUNDLE:/etc/ssl/certs/labforge-host-ca.crt:ro" \
        -v "$LABFORGE_CACHE/apt-archives:/var/cache/apt/archives" \
        "$@" "$image" /sbin/init >/dev/null
    "$TESTBED_DIR/wait-boot.sh" "$name" >/dev/null || true
    # the same OS packages on both hosts, installed before any timing
    podman exec "$name" bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        build-essential cmake git skopeo python3.11 python3.11-venv procps $packages >/dev/null"
}

ssh_access() {  # name -> an inventory line reaching it over SSH as root, with a key made for this run
    [ -f "$work/id" ] || ssh-keygen -q -t ed25519 -N '' -C labforge-bench -f "$work/id"
    podman exec -i "$1" bash -c 'install -d -m 0700 /root/.ssh && cat >/root/.ssh/authorized_keys \
        && chmod 0600 /root/.ssh/authorized_keys && systemctl is-active -q ssh' <"$work/id.pub"
    echo "$1 ansible_host=$(podman inspect -f '{{.NetworkSettings.IPAddress}}' "$1") ansible_user=root" \
        "ansible_ssh_private_key_file=$work/id" \
        "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'"
}

check_result() {  # name python -> "works" or "BROKEN: ..."
    local name=$1 py=$2 problems=()
    podman exec "$name" "$py" -m pip check >"$work/$name.check" 2>&1 || problems+=("pip check: $(head -3 "$work/$name.check" | tr '\n' ';')")
    # what `ilab data generate` / `ilab model train` import (datasets+pyarrow+numpy, transformers)
    podman exec "$name" "$py" -c 'import torch, llama_cpp, instructlab, numpy, pyarrow, datasets, transformers, instructlab.sdg, instructlab.training' \
        >"$work/$name.import" 2>&1 \
        || problems+=("import: $(tail -1 "$work/$name.import")")
    podman exec "$name" bash -c "PATH=\$(dirname $py):\$PATH ilab --version" >"$work/$name.ilab" 2>&1 \
        || problems+=("ilab --version: $(tail -1 "$work/$name.ilab")")
    if [ "${#problems[@]}" -eq 0 ]; then echo "works ($(cat "$work/$name.ilab"))"; else echo "BROKEN: ${problems[*]}"; fi
}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b-a}'; }

echo "[bench] manual recipe: python3.11 -m venv + pip install instructlab==$version (unpinned, seed recipe)"
start_host "$prefix-manual" ""
t0=$(now)
podman exec "$prefix-manual" bash -c "set -e; python3.11 -m venv /root/ilab-venv
    PIP_CERT=/etc/ssl/certs/labforge-host-ca.crt /root/ilab-venv/bin/pip install --no-input -q 'instructlab==$version'" \
    >"$work/manual.log" 2>&1 && manual_rc=0 || manual_rc=$?
t1=$(now)
manual_time=$(secs "$t0" "$t1")
manual_state=$( [ "$manual_rc" -eq 0 ] && check_result "$prefix-manual" /root/ilab-venv/bin/python || echo "BROKEN: pip install failed rc=$manual_rc: $(tail -2 "$work/manual.log" | tr '\n' ' ')")
podman rm -f "$prefix-manual" >/dev/null

echo "[bench] role labforge.instructlab.instructlab (cpu, tested lock, uv; Ansible over $connection)"
packages=""
if [ "$connection" = ssh ]; then packages=openssh-server; fi
if [ "$warm" = 1 ]; then
    wheelhouse=${BENCH_WHEELHOUSE:-$LABFORGE_CACHE/wheelhouse/bench}
    mkdir -p "$LABFORGE_CACHE/uv" "$wheelhouse"
    start_host "$prefix-role" "$packages" -v "$LABFORGE_CACHE/uv:/var/cache/instructlab/uv" \
        -v "$wheelhouse:/var/cache/instructlab/wheelhouse"
else
    start_host "$prefix-role" "$packages"
fi
if [ "$connection" = ssh ]; then
    ssh_access "$prefix-role" >"$work/inventory"
else
    echo "$prefix-role ansible_connection=containers.podman.podman" >"$work/inventory"
fi
cat >"$work/play.yml" <<EOF
- hosts: all
  gather_facts: false
  roles:
    - role: labforge.instructlab.instructlab
      vars:
        instructlab_python: /usr/bin/python3.11
        instructlab_accelerator: cpu
        instructlab_ca_bundle: /etc/ssl/certs/labforge-host-ca.crt
EOF
collections=$(mktemp -d)
mkdir -p "$collections/ansible_collections/labforge"
ln -s "$repo" "$collections/ansible_collections/labforge/instructlab"
run_role() {
    ANSIBLE_COLLECTIONS_PATH="$collections" ANSIBLE_NOCOLOR=1 ANSIBLE_PIPELINING=1 ansible-playbook \
        -i "$work/inventory" "$work/play.yml" >"$work/role-$1.log" 2>&1
}
t0=$(now); run_role first && role_rc=0 || role_rc=$?; t1=$(now)
role_time=$(secs "$t0" "$t1")
role_state=$( [ "$role_rc" -eq 0 ] && check_result "$prefix-role" /opt/instructlab/venv/bin/python || echo "BROKEN: role failed rc=$role_rc: $(grep -A3 'fatal:' "$work/role-first.log" | head -5 | tr '\n' ' ')")
t0=$(now); run_role noop && noop_rc=0 || noop_rc=$?; t1=$(now)
noop_time=$(secs "$t0" "$t1")
noop_changed=$(grep -Eo 'changed=[0-9]+' "$work/role-noop.log" | tail -1)
compile=$(podman exec "$prefix-role" bash -c 'grep -h "BUILD DONE" /var/log/labforge/instructlab-install.log' || true)
rm -rf "$collections"

ratio=$(awk -v r="$role_time" -v m="$manual_time" 'BEGIN{printf "%.2f", r/m}')
{
    echo "InstructLab $version cpu, first install on a fresh Debian 12 host ($(nproc) cores), $(date -u +%FT%TZ)"
    echo "caches for the role: $([ "$warm" = 1 ] && echo 'warm (fleet uv cache + wheelhouse)' || echo 'cold (empty)')"
    echo "Ansible connection:  $([ "$connection" = ssh ] && echo 'ssh, pipelining' || echo 'podman exec (no pipelining)')"
    echo "manual recipe (pip, unpinned):   ${manual_time}s   result: $manual_state"
    echo "role (uv, tested lock):          ${role_time}s   result: $role_state"
    echo "role no-op rerun:                ${noop_time}s   (rc $noop_rc, $noop_changed)"
    echo "compiled by the role:            ${compile:-nothing (wheelhouse hit)}"
    echo "ratio role/manual:               $ratio   (goal <= 0.6)"
} | tee "$out"
