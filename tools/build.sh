#!/usr/bin/env bash
# Builds the real Kubernetes and OpenTelemetry binaries the tests run against, from
# Go modules, into a version-keyed cache outside the repository:
#
#   $TELEMETRY_TOOLS_DIR/<name>-<version>-<key>/bin/...   one folder per build
#   $TELEMETRY_TOOLS_DIR/bin/<binary>                      symlinks to the current ones
#
# <key> is a hash of the wrapper module (go.mod, go.sum, sources), of the pinned
# versions and of the build function's own text, so a build is redone only when a
# version or a build flag changes, not on every edit of this script. Each build goes to
# a temporary folder first and is renamed into place, so an interrupted build never
# leaves a half-filled cache entry behind.
#
# Usage: tools/build.sh [all|etcd|kubernetes|kwok|helm|otelcol|coredns]...
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${TELEMETRY_TOOLS_DIR:-$HOME/.cache/thereview-telemetry}
mkdir -p "$cache/bin"

# Upstream pins: bump here and in the wrapper modules together.
K8S_VERSION=v1.36.3
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0

# Reproducible, static builds with the machine's own toolchain (no toolchain download).
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath"

log() { printf '[tools] %s\n' "$*" >&2; }

# key_of BUILD_FN FILE... -> short hash of the files, the versions and the function.
key_of() {
  local fn=$1; shift
  { cat "$@" /dev/null; echo "$K8S_VERSION $KWOK_VERSION $HELM_VERSION $GOFLAGS"; declare -f "$fn"; } |
    sha256sum | cut -c1-12
}

# install_build NAME VERSION KEY BUILD_FN: runs BUILD_FN with $1 = a temporary bin dir
# unless the keyed folder already exists, then links every binary into $cache/bin.
install_build() {
  local name=$1 version=$2 key=$3 build_fn=$4
  local dest="$cache/$name-$version-$key"
  # One builder per entry: a second run (another terminal, a test run) waits for the
  # first instead of compiling the same thing again.
  exec {lock}>"$cache/.$name.lock"
  flock "$lock"
  if [ ! -d "$dest/bin" ]; then
    local tmp="$dest.partial.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp/bin"
    log "building $name $version (cache miss: $dest)"
    local start=$SECONDS
    "$build_fn" "$tmp/bin"
    rm -rf "$dest"
    mv "$tmp" "$dest"
    log "built $name $version in $((SECONDS - start))s"
  fi
  local bin
  for bin in "$dest"/bin/*; do
    ln -sfn "$bin" "$cache/bin/$(basename "$bin")"
  done
  exec {lock}>&-
}

build_kubernetes() {
  local major=${K8S_VERSION#v}; major=${major%%.*}
  local minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  local ldflags="-s -w"
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
  done
  (cd "$here/kubernetes" && go build -tags selinux,notest -ldflags "$ldflags" -o "$1/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy)
}

build_etcd() {
  (cd "$here/etcd" && go build -ldflags "-s -w" -o "$1/etcd" .)
}

build_kwok() {
  GOBIN=$1 go install -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

build_otelcol() {
  (cd "$here/otelcol/dist" && go build -ldflags "-s -w" -o "$1/otelcol" .)
}

build_coredns() {
  (cd "$here/coredns" && go build -ldflags "-s -w" -o "$1/coredns" .)
}

build_helm() {
  GOBIN=$1 go install -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

build() {
  case $1 in
    kubernetes) install_build kubernetes "$K8S_VERSION" "$(key_of build_kubernetes "$here"/kubernetes/go.*)" build_kubernetes ;;
    etcd) install_build etcd v3.6 "$(key_of build_etcd "$here"/etcd/go.* "$here"/etcd/main.go)" build_etcd ;;
    kwok) install_build kwok "$KWOK_VERSION" "$(key_of build_kwok)" build_kwok ;;
    helm) install_build helm "$HELM_VERSION" "$(key_of build_helm)" build_helm ;;
    coredns) install_build coredns v1.15.0 "$(key_of build_coredns "$here"/coredns/*)" build_coredns ;;
    otelcol) install_build otelcol v0.155.0 "$(key_of build_otelcol "$here"/otelcol/dist/*)" build_otelcol ;;
    *) log "unknown target: $1"; exit 2 ;;
  esac
}

targets=${*:-all}
[ "$targets" = all ] && targets="etcd kubernetes kwok helm otelcol coredns"
for target in $targets; do build "$target"; done
echo "$cache/bin"
