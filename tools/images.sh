#!/usr/bin/env bash
# Builds the container images the real node runs, as OCI image archives, without a container
# engine or a registry (tools/oci_image.py writes them):
#
#   thereview.dev/telemetry-operator:0.1.0    the chart's default operator image
#   thereview.dev/telemetry-collector:0.1.0   the operator's default collector image
#   thereview.dev/reviews-service:0.1.0       the sample app (examples/reviews-deployment.yaml)
#   localhost/thereview/otelcol:0.155.0           the upstream collector (the Alloy stand-in)
#   localhost/thereview/coredns:1.15.0            cluster DNS (tools/coredns)
#   localhost/thereview/pause:3.10                the pod sandbox (tools/images/pause.c)
#   localhost/thereview/busybox:1.35              a shell, wget and nslookup for tests inside pods
#
# Our three images carry the names and tags the chart and the operator use by default, so
# pods start with `imagePullPolicy: IfNotPresent` and no pull. The others are tools of this
# machine's node, named under `localhost/` so nobody mistakes them for published images.
#
# Each archive is keyed by the sha256 of everything it is made of (binary, script, options):
# an unchanged binary reuses the archive. Archives go to $TELEMETRY_TOOLS_DIR/images/<key>/,
# and $TELEMETRY_TOOLS_DIR/images/current/ links the current one of each image.
# Prints that folder on its last line of stdout.
#
# Usage: tools/images.sh [--skip-cargo]   (--skip-cargo: use the release binaries already built)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${TELEMETRY_TOOLS_DIR:-$HOME/.cache/thereview-telemetry}
target=${CARGO_TARGET_DIR:-$root/target}
images="$cache/images"
mkdir -p "$images/current"
log() { printf '[images] %s\n' "$*" >&2; }

skip_cargo=false
[ "${1:-}" = --skip-cargo ] && skip_cargo=true

version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$root/charts/telemetry-operator/Chart.yaml")

if ! $skip_cargo; then
  log "cargo build --release (operator, collector, reviews service)"
  start=$SECONDS
  (cd "$root" && cargo build --locked --release --quiet \
    -p telemetry-operator -p telemetry-collector -p reviews-service)
  log "release binaries ready in $((SECONDS - start))s"
fi
bin=$("$here/build.sh" otelcol coredns | tail -n 1)

# The sandbox binary, static, rebuilt when its source changes.
pause_key=$(sha256sum "$here/images/pause.c" | cut -c1-12)
pause="$cache/pause-$pause_key"
if [ ! -x "$pause" ]; then
  gcc -static -O2 -s -o "$pause.partial" "$here/images/pause.c"
  mv "$pause.partial" "$pause"
fi

busybox=/bin/busybox
# ldd fails on a static binary: that is the one wanted (the image has no libc for it).
[ -x "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1 || {
  log "$busybox is not the static busybox: install the busybox-static package (tools/apt-packages.txt)"
  exit 1
}

# image FILE REF BINARY [oci_image.py options...]: builds unless the keyed archive exists.
image() {
  local file=$1 ref=$2 binary=$3
  shift 3
  [ -x "$binary" ] || { log "$binary is missing (build it: tools/images.sh without --skip-cargo)"; exit 1; }
  local key
  key=$({ sha256sum "$binary" "$here/oci_image.py"; echo "$ref $*"; } | sha256sum | cut -c1-16)
  local archive="$images/$key/$file.tar"
  if [ ! -f "$archive" ]; then
    mkdir -p "$images/$key"
    log "building $ref: $(python3 "$here/oci_image.py" --ref "$ref" --binary "$binary" --out "$archive" "$@")"
  fi
  ln -sfn "$archive" "$images/current/$file.tar"
}

# Our release binaries carry line tables (profile.release debug = "line-tables-only"); the images
# get them without debug sections (symbol names stay, for backtraces), as the Dockerfiles do.
stripped="$images/stripped"
mkdir -p "$stripped"
strip_debug() {
  local binary=$1 out
  [ -x "$binary" ] || { log "$binary is missing (build it: tools/images.sh without --skip-cargo)"; exit 1; }
  out="$stripped/$(basename "$binary")-$(sha256sum "$binary" | cut -c1-16)"
  [ -x "$out" ] || { strip --strip-debug -o "$out.partial" "$binary" && mv "$out.partial" "$out"; }
  echo "$out"
}
release="$target/release"
image telemetry-operator "thereview.dev/telemetry-operator:$version" "$(strip_debug "$release/telemetry-operator")" --name telemetry-operator \
  --port 8080 --arg run
image telemetry-collector "thereview.dev/telemetry-collector:$version" "$(strip_debug "$release/telemetry-collector")" --name telemetry-collector \
  --port 4317 --port 4318 --port 8888 --port 8889 --port 13133
image reviews-service "thereview.dev/reviews-service:$version" "$(strip_debug "$release/reviews-service")" --name reviews-service \
  --port 8000 --dir /data --env LISTEN_ADDR=0.0.0.0:8000 --env DATABASE_URL=sqlite:///data/reviews.db \
  --env LOG_FORMAT=json
image otelcol localhost/thereview/otelcol:0.155.0 "$bin/otelcol" --port 4317 --port 4318
image coredns localhost/thereview/coredns:1.15.0 "$bin/coredns" --port 53
# The sandbox runs as the pod's user when the pod sets one; 65535 otherwise, as upstream's pause.
image pause localhost/thereview/pause:3.10 "$pause" --name pause --user 65535:65535
image busybox localhost/thereview/busybox:1.35 "$busybox" \
  --symlink /bin/sh:/usr/local/bin/busybox --symlink /bin/wget:/usr/local/bin/busybox \
  --symlink /bin/nslookup:/usr/local/bin/busybox --symlink /bin/nc:/usr/local/bin/busybox \
  --symlink /bin/cat:/usr/local/bin/busybox --symlink /bin/sleep:/usr/local/bin/busybox

echo "$images/current"
