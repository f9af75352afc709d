#!/usr/bin/env bash
# Runs `ansible-test sanity` on a copy of the tracked tree laid out as
# ansible_collections/labforge/instructlab (what ansible-test requires),
# with the local Python 3.11 and no container engine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${SANITY_WORKDIR:-$root/build/sanity}"
dest="$work/ansible_collections/labforge/instructlab"

# ansible-test downloads get-pip.py from a host that is not reachable here:
# put the offline stand-in where it looks first.
pip_version=$(python - <<'PY'
import re, ansible_test, pathlib
src = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
cmp -s "$root/tools/get_pip_standin.py" "$cache" || cp "$root/tools/get_pip_standin.py" "$cache"

rm -rf "$dest"
mkdir -p "$dest"
# Only tracked and untracked-but-not-ignored files: what a clean clone has.
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' _ ) \
  | (cd "$root" && tar --null -T - -cf -) | tar -C "$dest" -xf -
cd "$dest"
git init -q . && git add -A >/dev/null
exec ansible-test sanity --python 3.11 --local --requirements --color no "$@"
