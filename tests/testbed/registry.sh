#!/usr/bin/env bash
# A local OCI registry for model-download tests: Debian's docker-registry on
# 127.0.0.1:PORT with TLS from a CA made here and htpasswd (bcrypt) auth, and a
# `podman login`-style auth file written by `skopeo login --password-stdin`.
#
#   registry.sh start            start (idempotent); prints KEY=VALUE lines
#   registry.sh push NAME TAG FILE...   push FILEs as an OCI model image
#                                models/NAME:TAG (one layer per file, titled
#                                with its base name); prints the manifest digest
#   registry.sh push-index NAME TAG OS/ARCH=FILE[,FILE...]...
#                                push a multi-platform image: one model
#                                manifest per OS/ARCH (its FILEs) under an OCI
#                                image index tagged TAG; prints the index digest,
#                                then "OS/ARCH DIGEST" per platform
#   registry.sh sign NAME TAG    sign models/NAME:TAG with a throwaway GPG key
#                                (made once in DIR/gnupg) as a simple-signing
#                                signature in the lookaside store DIR/sigstore;
#                                prints the signed manifest digest. Hosts read
#                                the store through DIR/registries.d/*.yaml
#                                (copy it to /etc/containers/registries.d/, as
#                                RHEL ships registry.redhat.io.yaml).
#   registry.sh env              prints the KEY=VALUE lines again
#   registry.sh stop             stop it and remove its state
#
# Settings (environment): LABFORGE_REGISTRY_DIR (state; default
# /tmp/labforge-registry), LABFORGE_REGISTRY_PORT (default 5443),
# LABFORGE_REGISTRY_USER (default labforge). The password is random, kept in
# DIR/password (0600) and fed to htpasswd and skopeo on stdin only.
# Needs: docker-registry, skopeo, apache2-utils (htpasswd), openssl, python3;
# gpg and gpg-agent for sign.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DIR="${LABFORGE_REGISTRY_DIR:-/tmp/labforge-registry}"
PORT="${LABFORGE_REGISTRY_PORT:-5443}"
RUSER="${LABFORGE_REGISTRY_USER:-labforge}"
HOSTPORT="127.0.0.1:${PORT}"

log() { printf '[registry] %s\n' "$*" >&2; }
die() { printf '[registry] ERROR: %s\n' "$*" >&2; exit 1; }

print_env() {
  cat <<OUT
REGISTRY=${HOSTPORT}
REGISTRY_DIR=${DIR}
REGISTRY_USER=${RUSER}
REGISTRY_PASSWORD_FILE=${DIR}/password
REGISTRY_AUTH_FILE=${DIR}/auth.json
REGISTRY_CERT_DIR=${DIR}/certs.d
REGISTRY_CA=${DIR}/ca.crt
REGISTRY_REGISTRIES_D=${DIR}/registries.d
OUT
}

running() { [[ -f "$DIR/registry.pid" ]] && kill -0 "$(cat "$DIR/registry.pid")" 2>/dev/null; }

start() {
  for t in docker-registry skopeo htpasswd openssl python3; do
    command -v "$t" >/dev/null || die "$t is missing (apt-get install docker-registry skopeo apache2-utils openssl)"
  done
  if running; then print_env; return 0; fi
  install -d -m 0700 "$DIR" "$DIR/data"
  install -d -m 0755 "$DIR/certs.d"
  if [[ ! -f "$DIR/server.crt" ]]; then
    log "making a CA and a server certificate for ${HOSTPORT}"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=labforge test CA" \
      -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$DIR/server.key" -out "$DIR/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$DIR/san.ext"
    openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" \
      -CAcreateserial -days 2 -extfile "$DIR/san.ext" -out "$DIR/server.crt" 2>/dev/null
    cp "$DIR/ca.crt" "$DIR/certs.d/ca.crt"
  fi
  if [[ ! -f "$DIR/password" ]]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$DIR/password")
  fi
  htpasswd -B -i -c "$DIR/htpasswd" "$RUSER" <"$DIR/password" 2>/dev/null
  install -d -m 0755 "$DIR/registries.d" "$DIR/sigstore"
  cat >"$DIR/registries.d/labforge-test-registry.yaml" <<YAML
# Signatures of ${HOSTPORT} live in a lookaside store (as registry.redhat.io's do)
docker:
  ${HOSTPORT}:
    lookaside: file://${DIR}/sigstore
    lookaside-staging: file://${DIR}/sigstore
YAML
  cat >"$DIR/config.yml" <<CFG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${DIR}/data
  delete:
    enabled: true
http:
  addr: ${HOSTPORT}
  tls:
    certificate: ${DIR}/server.crt
    key: ${DIR}/server.key
auth:
  htpasswd:
    realm: labforge
    path: ${DIR}/htpasswd
CFG
  log "starting docker-registry on https://${HOSTPORT}"
  nohup docker-registry serve "$DIR/config.yml" >"$DIR/registry.log" 2>&1 &
  echo $! >"$DIR/registry.pid"
  for _ in $(seq 1 50); do
    if python3 - "$PORT" <<'PY' 2>/dev/null; then break; fi
import socket, sys
socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2).close()
PY
    sleep 0.2
  done
  running || { cat "$DIR/registry.log" >&2; die "docker-registry did not start"; }
  (umask 077; skopeo login --authfile "$DIR/auth.json" --cert-dir "$DIR/certs.d" \
      --username "$RUSER" --password-stdin "$HOSTPORT" <"$DIR/password" >/dev/null)
  chmod 0600 "$DIR/auth.json"
  print_env
}

push() {
  local name="$1" tag="$2"; shift 2
  [[ $# -ge 1 ]] || die "usage: registry.sh push NAME TAG FILE..."
  running || die "registry not running (registry.sh start)"
  local layout
  layout=$(mktemp -d "${TMPDIR:-/tmp}/labforge-oci.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$layout'" RETURN
  local digest
  digest=$(python3 "$HERE/oci_layout.py" "$layout" "$tag" "$@")
  skopeo copy --quiet --preserve-digests --dest-authfile "$DIR/auth.json" --dest-cert-dir "$DIR/certs.d" \
    "oci:${layout}:${tag}" "docker://${HOSTPORT}/models/${name}:${tag}" >&2
  echo "$digest"
}

push_index() {
  local name="$1" tag="$2"; shift 2
  [[ $# -ge 2 ]] || die "usage: registry.sh push-index NAME TAG OS/ARCH=FILE[,FILE...] OS/ARCH=FILE[,FILE...]..."
  running || die "registry not running (registry.sh start)"
  local layout
  layout=$(mktemp -d "${TMPDIR:-/tmp}/labforge-oci.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$layout'" RETURN
  local digests
  digests=$(python3 "$HERE/oci_layout.py" --index "$layout" "$tag" "$@")
  skopeo copy --quiet --all --preserve-digests --dest-authfile "$DIR/auth.json" --dest-cert-dir "$DIR/certs.d" \
    "oci:${layout}:${tag}" "docker://${HOSTPORT}/models/${name}:${tag}" >&2
  echo "$digests"
}

sign() {
  local name="$1" tag="$2"
  running || die "registry not running (registry.sh start)"
  for t in gpg gpg-agent; do
    command -v "$t" >/dev/null || die "$t is missing (apt-get install gpg gpg-agent)"
  done
  export GNUPGHOME="$DIR/gnupg"
  if [[ ! -f "$DIR/gnupg/fingerprint" ]]; then
    log "making a throwaway GPG signing key in $GNUPGHOME"
    install -d -m 0700 "$GNUPGHOME"
    gpg --batch --quiet --passphrase '' --quick-gen-key 'labforge test registry <registry@labforge.invalid>' \
      rsa2048 sign 1d 2>/dev/null
    gpg --batch --list-keys --with-colons 2>/dev/null | awk -F: '/^fpr/ {print $10; exit}' >"$DIR/gnupg/fingerprint"
  fi
  local ref="docker://${HOSTPORT}/models/${name}:${tag}"
  # copied onto itself with a signature: the manifest (and its digest) stay the same
  skopeo --registries.d "$DIR/registries.d" copy --quiet --preserve-digests \
    --src-authfile "$DIR/auth.json" --src-cert-dir "$DIR/certs.d" \
    --dest-authfile "$DIR/auth.json" --dest-cert-dir "$DIR/certs.d" \
    --sign-by "$(cat "$DIR/gnupg/fingerprint")" "$ref" "$ref" >&2
  local digest
  digest=$(skopeo inspect --raw --authfile "$DIR/auth.json" --cert-dir "$DIR/certs.d" "$ref" | sha256sum | cut -d' ' -f1)
  ls "$DIR/sigstore/models/${name}@sha256=${digest}/signature-1" >/dev/null || die "no signature written for $ref"
  echo "sha256:${digest}"
}

stop() {
  if running; then kill "$(cat "$DIR/registry.pid")" || true; fi
  rm -rf "$DIR"
}

case "${1:-}" in
  start) start ;;
  push) shift; push "$@" ;;
  push-index) shift; push_index "$@" ;;
  sign) shift; sign "$@" ;;
  env) print_env ;;
  stop) stop ;;
  *) die "usage: registry.sh start|push NAME TAG FILE...|push-index NAME TAG OS/ARCH=FILE...|sign NAME TAG|env|stop" ;;
esac
