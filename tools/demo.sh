#!/usr/bin/env bash
# The main job: what a platform team does with this project, end to end, on a local
# cluster built from real Kubernetes binaries (no container engine needed).
#
#   1. builds the control plane, helm, the operator and the collector;
#   2. starts a kwok cluster (real apiserver, controller-manager, scheduler; fake nodes);
#   3. `helm install`s charts/telemetry-operator (CRDs, RBAC, the operator Deployment);
#   4. runs the operator binary against the cluster (kwok nodes run no containers, so the
#      in-cluster replicas are stand-ins; the real process runs here, with the same RBAC-free
#      admin kubeconfig a developer would use);
#   5. `kubectl apply`s examples/: the reviews Deployment, a TelemetryPipeline, an
#      InstrumentedService; waits for both to be Ready;
#   6. shows what the operator made: the collector's objects, its validated config (also
#      checked by our collector's and the upstream collector's own `validate`), and the env and annotations
#      injected into the reviews Deployment.
#
# Usage: tools/demo.sh [--keep]   (--keep leaves the cluster running until Ctrl-C)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
keep=false
[ "${1:-}" = --keep ] && keep=true
work=$(mktemp -d "${TMPDIR:-/tmp}/telemetry-demo.XXXXXX")
pids=()
cleanup() {
  local pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "Building kube-apiserver, etcd, kwok, helm, otelcol (cached after the first run)"
bin=$("$root/tools/build.sh" all | tail -n 1)
export PATH="$bin:$PATH"

say "Building telemetry-operator and telemetry-collector"
cargo build --release --locked -p telemetry-operator -p telemetry-collector --manifest-path "$root/Cargo.toml" 2>&1 | tail -n 2
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
operator="$target_dir/release/telemetry-operator"
collector="$target_dir/release/telemetry-collector"

say "Starting a kwok cluster"
mkfifo "$work/cluster.out"
bash "$root/tools/cluster.sh" kwok --dir "$work/cluster" >"$work/cluster.out" 2>"$work/cluster.log" &
pids+=($!)
read -r ready kubeconfig <"$work/cluster.out" || true
if [ "${ready:-}" != READY ]; then
  cat "$work/cluster.log" >&2
  exit 1
fi
export KUBECONFIG=$kubeconfig
kubectl version | tail -n 1
kubectl get nodes

say "helm install charts/telemetry-operator"
helm install telemetry-operator "$root/charts/telemetry-operator" \
  --namespace telemetry-system --create-namespace --wait --timeout 2m
kubectl get crd | grep telemetry.thereview.dev
kubectl -n telemetry-system get deployment

say "Running the operator against the cluster (log: $work/operator.log)"
RUST_LOG=info "$operator" run --metrics-addr 127.0.0.1:0 --lease-namespace telemetry-system \
  >"$work/operator.log" 2>&1 &
pids+=($!)

say "kubectl apply -f examples/"
kubectl create namespace demo
kubectl -n demo apply -f "$root/examples/reviews-deployment.yaml"
kubectl -n demo apply -f "$root/examples/pipeline.yaml"
kubectl -n demo apply -f "$root/examples/instrumented-service.yaml"

say "Waiting for the pipeline and the instrumented service to be Ready"
if ! kubectl -n demo wait --for=condition=Ready telemetrypipeline/main instrumentedservice/reviews --timeout=120s; then
  kubectl -n demo get telemetrypipeline,instrumentedservice -o yaml
  tail -n 40 "$work/operator.log"
  exit 1
fi
kubectl -n demo get telemetrypipelines,instrumentedservices
kubectl -n demo get configmap,deployment,service,serviceaccount,role,rolebinding -l app.kubernetes.io/managed-by=telemetry-operator

say "The collector config the operator rendered and validated"
kubectl -n demo get configmap main-collector -o jsonpath='{.data.collector\.yaml}' >"$work/collector.yaml"
cat "$work/collector.yaml"
say "Checked by our collector and by the upstream OpenTelemetry Collector's own validate command"
# The config reads credentials from env vars the collector Pod gets from the Secret;
# validation needs them set, so give it placeholders.
placeholders=$(grep -o '\${env:[A-Z0-9_]*}' "$work/collector.yaml" | sort -u | sed 's/\${env:\(.*\)}/\1=placeholder/')
env $placeholders "$collector" validate --config "$work/collector.yaml" && echo "telemetry-collector validate: ok"
env $placeholders otelcol validate --config "$work/collector.yaml" && echo "otelcol validate: ok"

say "What the InstrumentedService injected into the reviews Deployment"
kubectl -n demo get deployment reviews -o jsonpath='{range .spec.template.spec.containers[0].env[*]}{.name}={.value}{"\n"}{end}'
kubectl -n demo get deployment reviews -o jsonpath='{.spec.template.metadata.annotations}{"\n"}'

say "Demo complete"
if $keep; then
  echo "Cluster kept: export KUBECONFIG=$KUBECONFIG   (Ctrl-C stops everything)"
  wait "${pids[0]}"
fi
