#!/usr/bin/env bash
# Starts a real local Kubernetes cluster and keeps it running in the foreground until
# SIGINT/SIGTERM, then stops every process it started and removes its state. Three kinds:
#
#   tools/cluster.sh apiserver [--dir DIR]   etcd + kube-apiserver only (integration tests):
#                                            real API machinery, no controllers, no nodes.
#   tools/cluster.sh kwok [--dir DIR]        kwokctl "binary" cluster (end-to-end tests, demo):
#                                            apiserver, controller-manager, scheduler, kwok
#                                            with fake nodes, so Deployments become Available.
#   tools/cluster.sh node [--dir DIR]        a real node (root only): the control plane plus
#                                            containerd, runc, kubelet, kube-proxy, CNI bridge
#                                            and CoreDNS, in a network namespace of its own,
#                                            with the images of tools/images.sh imported, so
#                                            pods really run (tools/node/node.sh).
#
# Each writes DIR/kubeconfig and prints "READY DIR/kubeconfig" on stdout once the cluster is
# usable (the API server's /readyz; for a node also the node Ready and CoreDNS Available).
# DIR defaults to a new temporary folder, removed on exit. Binaries come from tools/build.sh
# (built on demand).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kind=${1:-}
shift || true
dir=""
keep=false
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; keep=true; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
case $kind in
  apiserver | kwok | node) ;;
  *) echo "usage: tools/cluster.sh apiserver|kwok|node [--dir DIR]" >&2; exit 2 ;;
esac

bin=$("$here/build.sh" etcd kubernetes $([ "$kind" = kwok ] && echo kwok) | tail -n 1)
# shellcheck source=node/node.sh
source "$here/node/node.sh"
[ -n "$dir" ] || dir=$(mktemp -d "${TMPDIR:-/tmp}/telemetry-cluster.XXXXXX")
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
kubeconfig="$dir/kubeconfig"
pids=()
sleeper=""

log() { printf '[cluster] %s\n' "$*" >&2; }

# A port the kernel just handed out and released: free unless raced, which the
# readiness wait below would surface as a start-up failure with the log path.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Newest first (the API server before its etcd); a throwaway cluster gets 5 s to
# exit gracefully and is then killed, so stopping never hangs on watch draining.
stop_processes() {
  local i pid deadline
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    deadline=$((SECONDS + 5))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}

stopped=false
stop() {
  $stopped && return
  stopped=true
  trap - INT TERM EXIT
  # Teardown goes on past any failing step: a cluster half stopped is worse than a warning.
  set +e +o pipefail
  log "stopping $kind cluster"
  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
  case $kind in
    kwok) KWOK_WORKDIR="$dir/kwok" "$bin/kwokctl" delete cluster --name "$cluster_name" >/dev/null 2>&1 || true ;;
    node) stop_node ;;
  esac
  stop_processes
  $keep || rm -rf "$dir"
}
trap stop EXIT
trap 'stop; exit 0' INT TERM

wait_ready() {
  local deadline=$((SECONDS + ${READY_TIMEOUT:-120}))
  until [ "$("$bin/kubectl" --kubeconfig "$kubeconfig" get --raw /readyz 2>/dev/null)" = ok ]; do
    if [ $SECONDS -ge $deadline ]; then
      log "API server not ready after ${READY_TIMEOUT:-120}s; logs in $dir"
      tail -n 20 "$dir"/*.log >&2 || true
      exit 1
    fi
    sleep 0.2
  done
}

# Certificates the way envtest makes them: one CA signs the serving certificate and an
# admin client certificate in system:masters; a separate key pair signs service-account tokens.
make_certs() {
  local pki="$dir/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=telemetry-test-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=admin" -keyout admin.key -out admin.csr 2>/dev/null
    # Extensions make these X.509 v3 certificates: rustls (kube-rs) refuses v1 ones.
    printf 'extendedKeyUsage=clientAuth\n' > admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile admin.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

start_apiserver() {
  make_certs
  local pki="$dir/pki" etcd_port peer_port api_port
  etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
  "$bin/etcd" --name default --data-dir "$dir/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port" >"$dir/etcd.log" 2>&1 &
  pids+=($!)
  "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --cert-dir "$dir/pki" --tls-cert-file "$pki/server.crt" --tls-private-key-file "$pki/server.key" \
    --client-ca-file "$pki/ca.crt" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    >"$dir/kube-apiserver.log" 2>&1 &
  pids+=($!)
  "$bin/kubectl" config set-cluster test --kubeconfig "$kubeconfig" \
    --server "https://127.0.0.1:$api_port" --certificate-authority "$pki/ca.crt" --embed-certs >/dev/null
  "$bin/kubectl" config set-credentials admin --kubeconfig "$kubeconfig" \
    --client-certificate "$pki/admin.crt" --client-key "$pki/admin.key" --embed-certs >/dev/null
  "$bin/kubectl" config set-context test --kubeconfig "$kubeconfig" --cluster test --user admin >/dev/null
  "$bin/kubectl" config use-context test --kubeconfig "$kubeconfig" >/dev/null
  wait_ready
}

start_kwok() {
  cluster_name="telemetry-$$"
  export KWOK_WORKDIR="$dir/kwok"
  "$bin/kwokctl" create cluster --name "$cluster_name" --runtime binary \
    --kubeconfig "$kubeconfig" \
    --kube-apiserver-binary "$bin/kube-apiserver" \
    --kube-controller-manager-binary "$bin/kube-controller-manager" \
    --kube-scheduler-binary "$bin/kube-scheduler" \
    --etcd-binary "$bin/etcd" \
    --kwok-controller-binary "$bin/kwok" \
    --wait 2m >"$dir/kwokctl.log" 2>&1 || {
    log "kwokctl create cluster failed:"; tail -n 30 "$dir/kwokctl.log" >&2; exit 1
  }
  wait_ready
  "$bin/kwokctl" scale node --name "$cluster_name" --replicas "${KWOK_NODES:-2}" >>"$dir/kwokctl.log" 2>&1
}

log "starting $kind cluster in $dir"
"start_$kind"
echo "READY $kubeconfig"
log "ready: export KUBECONFIG=$kubeconfig (Ctrl-C stops the cluster)"
# Stay in the foreground until told to stop; the signal traps tear everything down.
while :; do
  sleep 3600 &
  sleeper=$!
  wait "$sleeper" || true
done
