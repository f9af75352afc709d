#!/usr/bin/env bash
# Builds the offline artefacts the `python` role's tests install from, under
# $LABFORGE_CACHE/python-mirror/ (idempotent: nothing is redone when present
# and valid):
#   pyenv.git/        bare clone of the machine's pyenv checkout (~/.pyenv),
#                     pinned commit checked for; the role's `python_pyenv_source`
#   mirror/<sha256>   CPython source tarballs named by their sha256, the layout
#                     pyenv's PYTHON_BUILD_MIRROR_URL expects
#   pyenv.env         the values the tests read (PYENV_REF, PYTHON_VERSION, ...)
# Nothing here reaches beyond the Debian archive: the CPython 3.11.2 tarball is
# Debian's python3.11 orig tarball, which is byte-identical to python.org's
# Python-3.11.2.tgz; its sha256 is checked against pyenv's own definition.
set -euo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"

PYENV_SRC="${LABFORGE_PYENV_SRC:-${HOME}/.pyenv}"
PYENV_REF="${LABFORGE_PYENV_REF:-f6a5b409e9fd1ad78aa4350ddc1fc5fc3d0fa666}"
PYTHON_VERSION=3.11.2
DEB_SOURCE=python3.11
OUT="${LABFORGE_CACHE}/python-mirror"
DEB_SRC_LIST=/etc/apt/sources.list.d/labforge-deb-src.sources

mkdir -p "${OUT}/mirror"

# 1. pyenv: a bare clone of the local checkout, holding the pinned commit.
if ! git -C "${OUT}/pyenv.git" cat-file -e "${PYENV_REF}^{commit}" 2>/dev/null; then
  [[ -d "${PYENV_SRC}/.git" ]] || die "no pyenv checkout at ${PYENV_SRC} (set LABFORGE_PYENV_SRC)"
  git -C "${PYENV_SRC}" cat-file -e "${PYENV_REF}^{commit}" 2>/dev/null ||
    die "${PYENV_SRC} does not hold pyenv commit ${PYENV_REF}"
  log "cloning ${PYENV_SRC} -> ${OUT}/pyenv.git"
  tmp=$(mktemp -d "${OUT}/pyenv.git.XXXXXX")
  git clone --quiet --bare --no-local "file://${PYENV_SRC}" "${tmp}/pyenv.git"
  git -C "${tmp}/pyenv.git" cat-file -e "${PYENV_REF}^{commit}" ||
    die "the clone lacks ${PYENV_REF}"
  # world-readable: the test hosts read it through a read-only bind mount
  chmod -R a+rX "${tmp}/pyenv.git"
  rm -rf "${OUT}/pyenv.git"
  mv "${tmp}/pyenv.git" "${OUT}/pyenv.git"
  rmdir "${tmp}"
fi

# 2. The checksum pyenv's definition expects for the .tgz (the branch taken
#    with _PYTHON_BUILD_FORCE_SKIP_XZ=1), read from the pinned commit.
definition=$(git -C "${OUT}/pyenv.git" show "${PYENV_REF}:plugins/python-build/share/python-build/${PYTHON_VERSION}")
want=$(sed -n "s|.*/Python-${PYTHON_VERSION}\.tgz#\([0-9a-f]\{64\}\).*|\1|p" <<<"${definition}")
[[ ${#want} -eq 64 ]] || die "no .tgz checksum for ${PYTHON_VERSION} in pyenv's definition"

# 3. The tarball, from Debian's source package, named by its sha256.
if [[ -f "${OUT}/mirror/${want}" ]] && [[ "$(sha256sum <"${OUT}/mirror/${want}" | cut -d' ' -f1)" == "${want}" ]]; then
  log "mirror cached: ${OUT}/mirror/${want} (Python-${PYTHON_VERSION}.tgz)"
else
  if ! apt-cache showsrc "${DEB_SOURCE}" 2>/dev/null | grep -q '^Package:'; then
    mirror=$(sed -n 's/^URIs:[[:space:]]*\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    [[ -n "$mirror" ]] || mirror=$(awk '$1=="deb" && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [[ -n "$mirror" ]] || mirror=http://deb.debian.org/debian
    log "adding deb-src for bookworm (${mirror}) in ${DEB_SRC_LIST}"
    cat >"${DEB_SRC_LIST}" <<SRC
# Added by labforge tests/testbed/make-python-mirror.sh (CPython source for
# the offline pyenv mirror).
Types: deb-src
URIs: ${mirror}
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -qq >/dev/null
  fi
  work=$(mktemp -d "${LABFORGE_CACHE}/python-src.XXXXXX")
  chmod 0755 "$work"  # apt-get source downloads as _apt
  trap 'rm -rf "$work"' EXIT
  log "downloading the ${DEB_SOURCE} source package"
  (cd "$work" && apt-get source --download-only -qq "${DEB_SOURCE}" >/dev/null)
  orig="${work}/${DEB_SOURCE}_${PYTHON_VERSION}.orig.tar.gz"
  [[ -f "$orig" ]] || die "apt-get source gave no ${orig##*/} (got: $(ls "$work"))"
  got=$(sha256sum <"$orig" | cut -d' ' -f1)
  [[ "$got" == "$want" ]] || die "${orig##*/} has sha256 ${got}, pyenv expects ${want} for Python-${PYTHON_VERSION}.tgz"
  chmod 0644 "$orig"
  mv "$orig" "${OUT}/mirror/${want}.tmp"
  mv "${OUT}/mirror/${want}.tmp" "${OUT}/mirror/${want}"
  log "mirror ready: ${OUT}/mirror/${want} (Python-${PYTHON_VERSION}.tgz)"
fi
chmod a+rx "${OUT}" "${OUT}/mirror"

cat >"${OUT}/pyenv.env.tmp" <<ENV
PYENV_REF=${PYENV_REF}
PYTHON_VERSION=${PYTHON_VERSION}
PYTHON_TGZ_SHA256=${want}
ENV
mv "${OUT}/pyenv.env.tmp" "${OUT}/pyenv.env"
echo "${OUT}"
