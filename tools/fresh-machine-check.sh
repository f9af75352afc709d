#!/usr/bin/env bash
# What would a fresh machine lack compared with this one? Run before you
# submit (CONTRIBUTING.md): a package installed here by hand, that the test
# bed uses but tests/testbed/setup-host.sh does not install, passes every
# gate here and fails them all on a new machine.
#
# It collects the files the test bed really uses on this controller:
#   - each command of tests/testbed/host-packages.txt,
#   - podman's OCI runtime, conmon and slirp4netns,
#   - every CNI plugin a new podman network is configured with (this is
#     where the dnsname plugin hid),
#   - the controller python that `make venv` starts from,
# finds the Debian package of each (dpkg -S) and checks that a fresh machine
# gets it: listed in host-packages.txt, pulled in by one of those through
# Depends/Pre-Depends (setup-host.sh installs without recommends), or part of
# every Debian system (Essential, Priority required). Prints one line per
# file and exits 1 when something would be missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=tests/testbed/env.sh
. "$root/tests/testbed/env.sh"

mapfile -t wanted < <(sed -e 's/#.*//' "$root/tests/testbed/host-packages.txt" | awk 'NF {print $1}')

# Virtual packages (Provides) of what is installed here, e.g. podman's
# container-network-stack -> containernetworking-plugins.
declare -A provider=()
while read -r pkg provides; do
  read -r -a virtuals <<<"$(sed -e 's/([^)]*)//g' -e 's/,/ /g' <<<"$provides")"
  for v in "${virtuals[@]}"; do provider[$v]=$pkg; done
done < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Provides}\n' | awk '$1=="ii" {$1=""; print}')

# The packages setup-host.sh brings: the list and its Depends/Pre-Depends closure.
declare -A brings=()
queue=("${wanted[@]}")
while ((${#queue[@]})); do
  pkg=${queue[0]}; queue=("${queue[@]:1}")
  [[ -z "${brings[$pkg]:-}" ]] || continue
  brings[$pkg]=1
  while read -r dep; do
    [[ -n "$dep" && -z "${brings[$dep]:-}" ]] && queue+=("$dep")
  done < <(dpkg-query -W -f='${Depends}, ${Pre-Depends}\n' "$pkg" 2>/dev/null |
           tr ',' '\n' | sed -e 's/([^)]*)//g' -e 's/:any//g' -e 's/^ *//' |
           while read -r alt; do
             # of "a | b", the alternative that is installed here
             for a in ${alt//|/ }; do
               if dpkg-query -W -f='${Status}' "$a" 2>/dev/null | grep -q 'install ok installed'; then
                 echo "$a"; break
               elif [[ -n "${provider[$a]:-}" ]]; then
                 echo "${provider[$a]}"; break
               fi
             done
           done)
done

files=()
while read -r _pkg tools; do
  for t in $tools; do p=$(command -v "$t" || true); [[ -n "$p" ]] && files+=("$(readlink -f "$p")"); done
done < <(sed -e 's/#.*//' "$root/tests/testbed/host-packages.txt" | awk 'NF')
for f in '{{.Host.OCIRuntime.Path}}' '{{.Host.Conmon.Path}}' '{{.Host.Slirp4NetNS.Executable}}'; do
  p=$(podman info --format "$f" 2>/dev/null || true)
  [[ -n "$p" ]] && files+=("$(readlink -f "$p")")
done
# The CNI plugins of a network created now, as the scenarios create theirs.
net=labforge-freshcheck-$$
trap 'podman network rm -f "$net" >/dev/null 2>&1 || true' EXIT
if podman network create "$net" >/dev/null 2>&1; then
  conf=$(ls /etc/cni/net.d/"$net".conflist 2>/dev/null || true)
  if [[ -n "$conf" ]]; then
    for type in $(python3 -c 'import json,sys; print(" ".join(p["type"] for p in json.load(open(sys.argv[1]))["plugins"]))' "$conf"); do
      for d in /usr/local/libexec/cni /usr/libexec/cni /usr/local/lib/cni /usr/lib/cni /opt/cni/bin; do
        [[ -x "$d/$type" ]] && { files+=("$(readlink -f "$d/$type")"); break; }
      done
    done
  fi
fi
files+=("$(readlink -f "$(command -v python3)")")

missing=0
for f in $(printf '%s\n' "${files[@]}" | sort -u); do
  owner=$(dpkg -S "$f" 2>/dev/null | head -n1 | cut -d: -f1 || true)
  if [[ -z "$owner" ]]; then
    printf 'not from a Debian package (the machine image brings it): %s\n' "$f"
    continue
  fi
  essential=$(dpkg-query -W -f='${Essential} ${Priority}' "$owner" 2>/dev/null || true)
  if [[ -n "${brings[$owner]:-}" ]]; then
    printf 'ok       %-55s %s\n' "$f" "$owner"
  elif [[ "$essential" == yes* || "$essential" == *required ]]; then
    printf 'ok       %-55s %s (every Debian has it)\n' "$f" "$owner"
  else
    printf 'MISSING  %-55s %s: used by the test bed, installed here by hand; add it to tests/testbed/host-packages.txt\n' "$f" "$owner"
    missing=1
  fi
done
exit "$missing"
