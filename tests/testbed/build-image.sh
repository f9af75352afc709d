#!/usr/bin/env bash
# Builds the Debian 12 systemd image the test hosts boot from, with
# debootstrap (no registry can be pulled from here). Cached: the tag is a hash
# of this recipe, so the image is rebuilt only when the recipe changes; older
# tags of the same image are removed. Prints the image reference.
set -euo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"

SUITE=bookworm
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,procps,iproute2,ca-certificates,locales-all
NAME=localhost/labforge-debian12

# The mirror the controller's own apt uses (deb822 or one-line sources).
mirror="${LABFORGE_DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  mirror=$(sed -n 's/^URIs:[[:space:]]*\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  [[ -n "$mirror" ]] || mirror=$(awk '$1=="deb" && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [[ -n "$mirror" ]] || mirror=http://deb.debian.org/debian
fi

recipe_hash=$( { cat "$0"; echo "$SUITE $PACKAGES"; } | sha256sum | cut -c1-12)
IMAGE="${NAME}:${recipe_hash}"

if podman image exists "$IMAGE"; then
  log "image cached: $IMAGE"
  echo "$IMAGE"
  exit 0
fi

log "building $IMAGE from $mirror (debootstrap, about a minute)"
rootfs=$(mktemp -d "${LABFORGE_CACHE}/rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$mirror" \
  >"${LABFORGE_CACHE}/debootstrap.log" 2>&1 || die "debootstrap failed: see ${LABFORGE_CACHE}/debootstrap.log"
rm -f "$rootfs"/var/cache/apt/archives/*.deb
# Containers have no console to log in on, and no hardware clock or udev.
for unit in getty@tty1.service console-getty.service systemd-udevd.service \
            systemd-udev-trigger.service systemd-hwdb-update.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
echo "labforge-testhost" >"$rootfs/etc/hostname"
tar -C "$rootfs" -c . | podman import --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' - "$IMAGE" >/dev/null

# Keep only the current recipe's image.
podman images --format '{{.Repository}}:{{.Tag}}' | grep "^${NAME}:" | grep -v ":${recipe_hash}\$" |
  xargs -r podman rmi -f >/dev/null 2>&1 || true
log "built $IMAGE"
echo "$IMAGE"
