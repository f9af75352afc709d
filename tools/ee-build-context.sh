#!/usr/bin/env bash
# Writes the build context of the labforge.instructlab execution environment
# (execution-environment.yml) to build/ee-context with `ansible-builder create`,
# and checks what it wrote. Builds no image: `podman build build/ee-context`
# (or `ansible-builder build`) does that where the base image and Galaxy are
# reachable.
#
# Needs: ansible-builder and ansible-galaxy (the controller venv has both;
# .venv/bin is used when present). Needs no network.
#
# Environment: EE_CONTEXT (default build/ee-context); EE_COLLECTION_TARBALL
# (default: build the collection from the work tree into build/ee/).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
context="${EE_CONTEXT:-build/ee-context}"
builder="${ANSIBLE_BUILDER:-}"
if [[ -z "$builder" ]]; then
  if [[ -x .venv/bin/ansible-builder ]]; then builder=.venv/bin/ansible-builder; else builder=ansible-builder; fi
fi
command -v "$builder" >/dev/null || { echo "[ee] ansible-builder not found (make venv)" >&2; exit 1; }

version=$(sed -n 's/^version:[[:space:]]*["'\'']\{0,1\}\([^"'\'' ]*\).*/\1/p' galaxy.yml)
[[ -n "$version" ]] || { echo "[ee] no version in galaxy.yml" >&2; exit 1; }

# The EE definition takes the collection from build/ee/labforge-instructlab.tar.gz
# (a version-free name). By default it is built here from the work tree, the
# same way `make build` builds build/dist/ (so it can never be stale); set
# EE_COLLECTION_TARBALL to use a tarball built elsewhere, e.g. the one CI tested.
mkdir -p build/ee
rm -f build/ee/labforge-instructlab*.tar.gz
if [[ -n "${EE_COLLECTION_TARBALL:-}" ]]; then
  cp -f "$EE_COLLECTION_TARBALL" build/ee/labforge-instructlab.tar.gz
else
  galaxy=ansible-galaxy
  [[ -x .venv/bin/ansible-galaxy ]] && galaxy=.venv/bin/ansible-galaxy
  "$galaxy" collection build --force --output-path build/ee . >/dev/null
  mv -f "build/ee/labforge-instructlab-${version}.tar.gz" build/ee/labforge-instructlab.tar.gz
fi

rm -rf "$context"
"$builder" create --file execution-environment.yml --context "$context" --output-filename Containerfile -v 1

fail=0
check() {  # check PATH [WHAT]
  if [[ -e "$context/$1" ]]; then echo "[ee] ok   $1"; else echo "[ee] MISSING $1${2:+ ($2)}" >&2; fail=1; fi
}
check Containerfile
check _build/requirements.yml "galaxy requirements"
check _build/collections/labforge-instructlab.tar.gz "the collection tarball"
check _build/scripts/assemble
check _build/scripts/introspect.py
check _build/scripts/install-from-bindep
check _build/scripts/check_ansible
check _build/scripts/entrypoint

# What the Containerfile must do with them.
grep -qxF "FROM \$EE_BASE_IMAGE AS base" "$context/Containerfile" || { echo "[ee] no base stage" >&2; fail=1; }
grep -q 'ansible-galaxy collection install' "$context/Containerfile" || { echo "[ee] no galaxy install" >&2; fail=1; }
grep -q '^ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' "$context/Containerfile" \
  || { echo "[ee] unexpected base image" >&2; fail=1; }
grep -q 'collections/labforge-instructlab.tar.gz' "$context/_build/requirements.yml" \
  || { echo "[ee] the collection is not in the galaxy requirements" >&2; fail=1; }

# The tarball in the context is the collection as built, with the EE metadata
# ansible-builder will read from it once installed in the image.
tar -tzf "$context/_build/collections/labforge-instructlab.tar.gz" > build/ee/tarball.list
for f in MANIFEST.json meta/execution-environment.yml tools/ee-requirements.txt tools/ee-bindep.txt \
         plugins/callback/run_report.py; do
  grep -qx "$f" build/ee/tarball.list || { echo "[ee] the tarball lacks $f" >&2; fail=1; }
done

[[ $fail -eq 0 ]] || { echo "[ee] build context incomplete" >&2; exit 1; }
echo "[ee] build context ready in $context (collection $version, sha256 $(sha256sum build/ee/labforge-instructlab.tar.gz | cut -c1-16)...); build it with: podman build -t labforge-instructlab-ee:$version $context"
