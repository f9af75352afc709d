#!/usr/bin/env bash
# Test-bed self-check: proves in seconds what the later gates rely on, and
# names the missing piece and the Debian package that brings it:
#   - the tools the gates call (podman, runc, debootstrap, skopeo, ...);
#   - a podman network resolves container names (CNI: the dnsname plugin;
#     netavark: aardvark-dns) and no labforge network predates that plugin;
#   - systemd boots in a test container;
#   - the host's CA bundle is mounted into test hosts.
# It installs nothing (tests/testbed/setup-host.sh does): run alone, it only
# tells. `make test` and `make demo` run it right after setting up the host.
set -euo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"

fail() { printf '[selfcheck] FAILED: %s\n' "$*" >&2; exit 1; }
ok() { printf '[selfcheck] ok: %s\n' "$*" >&2; }
start=$(date +%s)

# 1. The commands the gates call, each with the package that brings it.
while read -r pkg tools; do
  for tool in $tools; do
    command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is missing: install the Debian package $pkg (make testbed does)"
  done
done < <(sed -e 's/#.*//' "$TESTBED_DIR/host-packages.txt" | awk 'NF')
ok "tools present"

# 2. Name resolution on podman networks.
backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null) || fail "podman info failed: is podman usable? ($(podman info 2>&1 | tail -n1))"
case "$backend" in
  cni)
    found=
    for d in /usr/local/libexec/cni /usr/libexec/cni /usr/local/lib/cni /usr/lib/cni /opt/cni/bin; do
      [[ -x "$d/dnsname" ]] && found="$d/dnsname"
    done
    [[ -n "$found" ]] || fail "container names do not resolve on podman networks: the CNI plugin 'dnsname' is missing (Debian package golang-github-containernetworking-plugin-dnsname)"
    ;;
  netavark)
    for d in /usr/libexec/podman /usr/lib/podman /usr/local/libexec/podman; do
      [[ -x "$d/aardvark-dns" ]] && found="$d/aardvark-dns"
    done
    [[ -n "${found:-}" ]] || fail "container names do not resolve on podman networks: 'aardvark-dns' is missing (Debian package aardvark-dns)"
    ;;
  *) fail "unknown podman network backend '$backend'" ;;
esac
# A network created before the plugin was installed keeps dns_enabled: false.
while read -r net; do
  [[ -n "$net" ]] || continue
  if [[ "$(podman network inspect -f '{{.DNSEnabled}}' "$net")" != "true" ]]; then
    fail "podman network $net was created without name resolution (dns_enabled: false); remove it: podman network rm $net"
  fi
done < <(podman network ls --format '{{.Name}}' | grep '^labforge' || true)
ok "podman network backend $backend resolves names"

# 3. The image, systemd in a container, the CA bundle, and DNS for real.
if [[ -n "${LABFORGE_TEST_IMAGE:-}" ]]; then
  image=$LABFORGE_TEST_IMAGE
else
  # The image build-image.sh made (it keeps only the current recipe's tag).
  image=$(podman images --format '{{.Repository}}:{{.Tag}}' | grep -m1 '^localhost/labforge-debian12:' || true)
  [[ -n "$image" ]] || fail "the test-host image is not built yet: run make testbed (tests/testbed/build-image.sh)"
fi
[[ -s "$LABFORGE_CA_BUNDLE" ]] || fail "the CA bundle $LABFORGE_CA_BUNDLE is missing (Debian package ca-certificates; or set LABFORGE_CA_BUNDLE)"

net=labforge-selfcheck-$$
a=lf-selfcheck-$$
cleanup() {
  podman rm -f -t 0 "$a" >/dev/null 2>&1 || true
  podman network rm -f "$net" >/dev/null 2>&1 || true
}
trap cleanup EXIT
podman network create "$net" >/dev/null || fail "podman network create failed"
[[ "$(podman network inspect -f '{{.DNSEnabled}}' "$net")" == "true" ]] ||
  fail "a new podman network has dns_enabled: false: container names will not resolve (CNI: Debian package golang-github-containernetworking-plugin-dnsname)"
podman run -d --name "$a" --hostname "$a" --network "$net" --systemd=always \
  -v "$LABFORGE_CA_BUNDLE:/etc/ssl/certs/labforge-host-ca.crt:ro" "$image" /sbin/init >/dev/null ||
  fail "cannot start a test container from $image (see podman's message above; CONTAINERS_CONF=$CONTAINERS_CONF must select runc: Debian package runc)"
state=$("$TESTBED_DIR/wait-boot.sh" "$a" 120) ||
  fail "systemd does not boot in a test container from $image (state: '$state'); podman needs runc (Debian package runc) and $CONTAINERS_CONF"
ok "systemd boots in a test container ($state)"
want=$(sha256sum <"$LABFORGE_CA_BUNDLE" | cut -d' ' -f1)
got=$(podman exec "$a" sh -c 'sha256sum < /etc/ssl/certs/labforge-host-ca.crt' 2>/dev/null | cut -d' ' -f1 || true)
[[ "$got" == "$want" ]] || fail "the CA bundle $LABFORGE_CA_BUNDLE is not mounted into test hosts at /etc/ssl/certs/labforge-host-ca.crt"
ok "CA bundle mounted"
podman run --rm --network "$net" "$image" getent hosts "$a" >/dev/null 2>&1 ||
  fail "container name $a does not resolve on podman network $net (CNI: Debian package golang-github-containernetworking-plugin-dnsname)"
ok "container names resolve on a podman network"
printf '[selfcheck] test bed ready (%ss)\n' "$(( $(date +%s) - start ))" >&2
