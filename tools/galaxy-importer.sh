#!/usr/bin/env bash
# Gate `importer`: Galaxy's own importer (galaxy-importer, pinned in
# tools/requirements-importer.txt) on the built collection tarball, as Galaxy
# runs it on upload (ansible-lint included, ansible-test left to `sanity`).
# Passes only with 0 warnings and 0 errors. Its venv is cached in
# $LABFORGE_CACHE, keyed by the requirements.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=tests/testbed/env.sh
. "$root/tests/testbed/env.sh"
reqs="$root/tools/requirements-importer.txt"
key=$(sha256sum <"$reqs" | cut -c1-12)
venv="$LABFORGE_CACHE/galaxy-importer-$key"
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import galaxy_importer' 2>/dev/null; then
  log "creating the galaxy-importer venv $venv (once)"
  rm -rf "$venv" "$LABFORGE_CACHE"/galaxy-importer-*
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs" 2>&1 | grep -v 'is ignored: it is neither' || true
  "$venv/bin/python" -c 'import galaxy_importer'
fi
tarball=$(ls "$root"/build/dist/labforge-instructlab-*.tar.gz)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/galaxy-importer.cfg" <<'CFG'
[galaxy-importer]
RUN_ANSIBLE_TEST = False
RUN_ANSIBLE_LINT = True
CFG
out="$root/build/galaxy-importer.log"
rc=0
(cd "$work" && GALAXY_IMPORTER_CONFIG="$work/galaxy-importer.cfg" PATH="$venv/bin:$PATH" \
  "$venv/bin/python" -m galaxy_importer.main "$tarball") >"$out" 2>&1 || rc=$?
warnings=$(grep -c -E '^(WARNING|ERROR)' "$out" || true)
grep -E '^(WARNING|ERROR)' "$out" || true
echo "[importer] $(basename "$tarball"): rc=$rc, $warnings warning(s)/error(s); full output in $out"
[[ "$rc" -eq 0 && "$warnings" -eq 0 ]]
