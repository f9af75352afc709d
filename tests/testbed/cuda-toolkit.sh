#!/usr/bin/env bash
# Assembles (once; cached in $LABFORGE_CACHE/cuda-toolkit) a CUDA 12.4 toolkit
# tree in NVIDIA's own layout (bin/nvcc, nvvm/, include/, lib64/, lib64/stubs),
# points $LABFORGE_CACHE/cuda-toolkit/cuda-12.4 at it and prints its path. The gpu_sim scenario mounts it read-only into a test
# host and gives it to the instructlab role as a user-provided toolkit
# (instructlab_cuda_toolkit: provided, instructlab_cuda_home: /opt/cuda-12.4),
# the layout NVIDIA's runfile installer leaves in --toolkitpath.
#
# Why this toolkit (see molecule/gpu_sim/molecule.yml): the lock's torch is a
# cu126 build, so the toolkit must be CUDA 12.x, and the simulated A10G host's
# driver 565 (CUDA 12.7) runs 12.x builds only (13.x needs driver >= 580). The
# only CUDA 12 nvcc the reachable registries carry is Debian 13 (trixie)
# non-free's nvidia-cuda-toolkit 12.4.131 (NVIDIA's binaries, repackaged).
# apt cannot install it on the Debian 12 test hosts: nvidia-cuda-dev needs
# libcuda1 >= 550, whose libnvidia-pkcs11-openssl3 needs trixie's libssl3t64
# and libc6 >= 2.38. So the exact package versions below are downloaded with
# apt (signatures checked against Debian's archive keys, private apt state:
# the controller's own apt is not touched), unpacked with dpkg-deb (no
# maintainer scripts) and laid out as NVIDIA's installer would. The binaries
# need glibc >= 2.34 (Debian 12 has 2.36) and a host g++ <= 13 (Debian 12: 12).
set -euo pipefail
# shellcheck source=tests/testbed/env.sh
. "$(dirname "$0")/env.sh"

SUITE=trixie
PACKAGES=(
  "nvidia-cuda-toolkit=12.4.131~12.4.1-2"   # nvcc, ptxas, cicc, fatbinary, nvlink, libdevice
  "nvidia-cuda-dev=12.4.127~12.4.1-2"       # headers, static cudart, stubs/libcuda.so, .so links
  "libcudart12=12.4.127~12.4.1-2"
  "libcublas12=12.4.5.8~12.4.1-2"
  "libcublaslt12=12.4.5.8~12.4.1-2"
  "libnvvm4=12.4.131~12.4.1-2"
  "libcu++-dev=2.3.2-2"
  "libcub-dev=2.3.2-2"
  "libthrust-dev=2.3.2-2"
)
VERSION=12.4.131
BASE="$LABFORGE_CACHE/cuda-toolkit"

recipe_hash=$( { cat "$0"; printf '%s\n' "${PACKAGES[@]}"; } | sha256sum | cut -c1-12)
TREE="$BASE/cuda-$VERSION-$recipe_hash"
LINK="$BASE/cuda-${VERSION%.*}"
if [[ -x "$TREE/bin/nvcc" && -f "$TREE/.complete" ]]; then
  ln -sfn "$(basename "$TREE")" "$LINK"
  log "CUDA toolkit cached: $TREE"
  echo "$TREE"
  exit 0
fi

mirror="${LABFORGE_DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  mirror=$(sed -n 's/^URIs:[[:space:]]*\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  [[ -n "$mirror" ]] || mirror=$(awk '$1=="deb" && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [[ -n "$mirror" ]] || mirror=http://deb.debian.org/debian
fi

debs="$BASE/debs"
state="$BASE/apt-state"
mkdir -p "$debs" "$state"/{lists/partial,cache/archives/partial}
printf 'deb %s %s non-free main\n' "$mirror" "$SUITE" >"$state/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
          -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o APT::Sandbox::User=root)
missing=()
for p in "${PACKAGES[@]}"; do
  name=${p%%=*} ver=${p#*=}
  compgen -G "$debs/${name}_${ver//\~/%7e}_*.deb" >/dev/null || compgen -G "$debs/${name}_${ver}_*.deb" >/dev/null \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  log "downloading ${#missing[@]} Debian $SUITE package(s) from $mirror (about 1.3 GB, once)"
  apt-get "${apt_opts[@]}" -qq update
  (cd "$debs" && apt-get "${apt_opts[@]}" -qq download "${missing[@]}") \
    || die "apt-get download of the CUDA $VERSION packages failed"
fi

log "assembling the CUDA $VERSION toolkit tree in $TREE"
rm -rf "$TREE" "$BASE"/cuda-"$VERSION"-* "$BASE"/stage.*
stage=$(mktemp -d "$BASE/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
for p in "${PACKAGES[@]}"; do
  name=${p%%=*}
  dpkg-deb -x "$(compgen -G "$debs/${name}_*.deb" | head -n1)" "$stage/root"
done
r="$stage/root"
t="$stage/tree"
mkdir -p "$t"/{bin,nvvm/bin,nvvm/lib64,nvvm/include,include,lib64/stubs}
tk="$r/usr/lib/nvidia-cuda-toolkit"
cp -a "$tk/bin/nvcc" "$tk/bin/cicc" "$t/bin/"
cp -a "$tk/bin/crt" "$t/bin/"
mv "$t/bin/cicc" "$t/nvvm/bin/"
cp -a "$tk/libdevice" "$t/nvvm/libdevice"
for tool in bin2c cu++filt cudafe++ cuobjdump fatbinary nvdisasm nvlink nvprune ptxas __nvcc_device_query; do
  cp -a "$r/usr/bin/$tool" "$t/bin/"
done
# NVIDIA's profile (relative paths), not Debian's /etc/nvcc.profile (absolute /usr paths).
cat >"$t/bin/nvcc.profile" <<'EOF'

TOP              = $(_HERE_)/..

NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice

LD_LIBRARY_PATH += $(TOP)/lib64:
PATH            += $(TOP)/nvvm/bin:$(_HERE_):

INCLUDES        +=  "-I$(TOP)/include" $(_SPACE_)

LIBRARIES        =+ $(_SPACE_) "-L$(TOP)/lib64/stubs" "-L$(TOP)/lib64"

CUDAFE_FLAGS    +=
PTXAS_FLAGS     +=
EOF
cp -a "$r/usr/include/." "$t/include/"
cp -a "$r/usr/include/nvvm.h" "$t/nvvm/include/"
lib="$r/usr/lib/x86_64-linux-gnu"
cp -a "$lib"/libnvvm.so* "$t/nvvm/lib64/"
for pat in 'libcudart.so*' 'libcublas.so*' 'libcublasLt.so*' libcudart_static.a libcudadevrt.a libculibos.a; do
  # shellcheck disable=SC2086
  cp -a $lib/$pat "$t/lib64/"
done
cp -a "$lib"/stubs/{libcuda.so,libcublas.so,libcublasLt.so} "$t/lib64/stubs/"
printf '{"cuda": {"name": "CUDA SDK", "version": "%s"}}\n' "$VERSION" >"$t/version.json"
"$t/bin/nvcc" --version | grep -q "V$VERSION" || die "the assembled nvcc does not report V$VERSION"
touch "$t/.complete"
mv "$t" "$TREE"
ln -sfn "$(basename "$TREE")" "$LINK"
# the packages (1.3 GB) are downloaded again only when the recipe changes
rm -rf "$debs" "$state"
log "CUDA $VERSION toolkit ready: $TREE ($(du -sh "$TREE" | cut -f1))"
echo "$TREE"
