#!/usr/bin/env bash
# The main job: what a platform team does with this project, end to end, on a real single-node
# Kubernetes cluster built on this machine (no container engine, no registry, no internet):
#
#   1. builds the Kubernetes binaries, helm, the upstream collector and CoreDNS from Go modules,
#      and our three programs as container images (tools/build.sh, tools/images.sh; cached);
#   2. starts a real node (tools/cluster.sh node: containerd, kubelet, kube-proxy, CoreDNS) in
#      a network namespace of its own;
#   3. `helm install`s charts/telemetry-operator: the operator runs as a pod;
#   4. starts an Alloy stand-in (the upstream collector receiving OTLP, tools/node/alloy-standin.yaml)
#      and `kubectl apply`s examples/ with the Grafana Cloud exporter switched off, so nothing
#      leaves the machine: the reviews service, the `main` TelemetryPipeline, its InstrumentedService,
#      and an `agent` pipeline (DaemonSet with host metrics);
#   5. sends traffic to the reviews Service from a pod;
#   6. shows what arrived: spans at the Alloy stand-in, and PromQL results from a real Prometheus
#      server scraping the collector's :8889 (request rate by route, host CPU).
#
# Needs root (network namespace, containerd, kubelet).
# Usage: tools/demo.sh [--keep]   (--keep leaves the cluster running until Ctrl-C)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
keep=false
[ "${1:-}" = --keep ] && keep=true
[ "$(id -u)" -eq 0 ] || { echo "tools/demo.sh runs a real node and needs root" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/telemetry-demo.XXXXXX")
chmod 755 "$work"
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

start=$SECONDS
say() { printf '\n\033[1m==> %s\033[0m (%ss)\n' "$*" "$((SECONDS - start))"; }
# until_true SECONDS WHAT COMMAND...: waits for COMMAND to succeed (never a fixed sleep).
until_true() {
  local timeout=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "timed out after ${timeout}s waiting for $what" >&2; return 1; }
    sleep 1
  done
}

say "Debian packages: containerd, runc, CNI plugins, Prometheus, ... (tools/packages.sh)"
"$root/tools/packages.sh"

say "Building Kubernetes, helm, otelcol and CoreDNS from Go modules (first run: ~20 min; cached after)"
bin=$("$root/tools/build.sh" all | tail -n 1)
export PATH="$bin:$PATH"
say "Building our images: telemetry-operator, telemetry-collector, reviews-service (first run: ~8 min)"
CARGO_TERM_PROGRESS_WHEN=never "$root/tools/images.sh" | tail -n 1 >/dev/null

say "Starting a real node (containerd, kubelet, kube-proxy, CoreDNS)"
mkfifo "$work/cluster.out"
NODE_IMAGES_SKIP_CARGO=1 bash "$root/tools/cluster.sh" node --dir "$work/cluster" >"$work/cluster.out" 2>"$work/cluster.log" &
pids+=($!)
read -r ready kubeconfig <"$work/cluster.out" || true
if [ "${ready:-}" != READY ]; then
  cat "$work/cluster.log" >&2
  exit 1
fi
export KUBECONFIG=$kubeconfig
kubectl get nodes -o wide

say "helm install charts/telemetry-operator (the operator runs as a pod)"
helm install telemetry-operator "$root/charts/telemetry-operator" \
  --namespace telemetry-system --create-namespace --wait --timeout 3m
kubectl -n telemetry-system get pods -o wide

say "An Alloy stand-in in namespace monitoring (the upstream collector, receiving OTLP)"
mkdir -p "$work/alloy" && chmod 777 "$work/alloy"
kubectl create namespace monitoring >/dev/null
sed "s#@OUT_DIR@#$work/alloy#" "$root/tools/node/alloy-standin.yaml" | kubectl -n monitoring apply -f - >/dev/null
kubectl -n monitoring rollout status deployment/alloy --timeout=2m

say "kubectl apply -f examples/ (the Grafana Cloud exporter switched off: nothing leaves this machine)"
kubectl create namespace demo
kubectl -n demo apply -f "$root/examples/reviews-deployment.yaml"
# Every exporter of the example that points outside the cluster (https://...) is removed.
kubectl create --dry-run=client -o json -f "$root/examples/pipeline.yaml" | python3 -c '
import json, sys
text, decoder, items = sys.stdin.read(), json.JSONDecoder(), []
while text.strip():  # one JSON document per object of the file
    item, end = decoder.raw_decode(text.lstrip())
    items.append(item)
    text = text.lstrip()[end:]
doc = {"apiVersion": "v1", "kind": "List", "items": items}
for item in items:
    item["metadata"].pop("namespace", None)  # the dry run fills in the current namespace
    exporters = item.get("spec", {}).get("exporters", {})
    if "otlp" in exporters:
        exporters["otlp"] = [e for e in exporters["otlp"] if not e["endpoint"].startswith("https://")]
    if item["kind"] == "TelemetryPipeline":
        item["spec"]["receivers"]["prometheus"]["scrapeInterval"] = "5s"
json.dump(doc, sys.stdout)' | kubectl -n demo apply -f -
kubectl -n demo apply -f "$root/examples/instrumented-service.yaml"
# The node agent: one collector per node reporting the node's own CPU, memory and filesystems.
kubectl -n demo apply -f - <<'EOF'
apiVersion: telemetry.thereview.dev/v1alpha1
kind: TelemetryPipeline
metadata: {name: agent}
spec:
  mode: daemonset
  receivers:
    otlp: {enabled: false}
    hostMetrics: {collectionInterval: 5s, scrapers: [cpu, memory, filesystem, load]}
  exporters:
    otlp:
      - {name: alloy, protocol: grpc, endpoint: "http://alloy.monitoring.svc:4317", tls: {insecure: true}}
    prometheus: {}
EOF
kubectl -n demo wait --for=condition=Ready telemetrypipeline/main telemetrypipeline/agent instrumentedservice/reviews --timeout=3m
kubectl -n demo rollout status deployment/reviews --timeout=2m
kubectl -n demo get telemetrypipelines,instrumentedservices,pods

say "A real Prometheus server (Debian's) scraping the collectors: :8889 (what they export), :8888 (their own metrics)"
main_ip=$(kubectl -n demo get service main-collector -o jsonpath='{.spec.clusterIP}')
agent_ip=$(kubectl -n demo get service agent-collector -o jsonpath='{.spec.clusterIP}')
prom_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/prometheus.yml" <<EOF
global: {scrape_interval: 5s}
scrape_configs:
  - job_name: telemetry-collector
    static_configs: [{targets: ["$main_ip:8889", "$agent_ip:8889"]}]
  - job_name: collector-self-metrics
    static_configs: [{targets: ["$main_ip:8888", "$agent_ip:8888"]}]
EOF
prometheus --config.file "$work/prometheus.yml" --storage.tsdb.path "$work/prometheus" \
  --web.listen-address "127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)

say "Traffic: 60 requests over ~20 s to http://reviews.demo.svc:8000 from a pod"
kubectl -n demo run traffic --image=localhost/thereview/busybox:1.35 --image-pull-policy=Never --restart=Never \
  --overrides='{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":65532,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"traffic","image":"localhost/thereview/busybox:1.35","imagePullPolicy":"Never","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},"command":["sh","-c","for i in $(seq 1 30); do wget -q -O /dev/null --header content-type:application/json --post-data \"{\\\"entity_type\\\":\\\"product\\\",\\\"entity_id\\\":\\\"p-$i\\\",\\\"rating\\\":5,\\\"title\\\":\\\"great\\\",\\\"comment\\\":\\\"works\\\",\\\"author\\\":\\\"demo\\\"}\" http://reviews.demo.svc:8000/api/v1/reviews && wget -q -O /dev/null http://reviews.demo.svc:8000/api/v1/reviews && sleep 0.5; done; echo sent 60"]}]}}' \
  >/dev/null
until_true 120 "the traffic pod" sh -c '[ "$(kubectl -n demo get pod traffic -o jsonpath={.status.phase})" = Succeeded ]'
kubectl -n demo logs traffic

say "What arrived at the Alloy stand-in"
show() { python3 "$root/tools/node/show_otlp.py" "$work/alloy/alloy.jsonl" "$@"; }
until_true 120 "spans at the Alloy stand-in" sh -c "[ \$(python3 '$root/tools/node/show_otlp.py' '$work/alloy/alloy.jsonl' --count spans) -gt 0 ]"
until_true 120 "scraped /metrics at the Alloy stand-in" sh -c "[ \$(python3 '$root/tools/node/show_otlp.py' '$work/alloy/alloy.jsonl' --count scraped) -gt 0 ]"
show --spans 3

say "PromQL against that Prometheus"
promql() { python3 "$root/tools/node/promql.py" "http://127.0.0.1:$prom_port" "$1"; }
has_result() { promql "$1" >/dev/null; }
requests='sum by (handler, method) (rate(reviews_http_requests_total{handler=~"/api/.*"}[1m])) > 0'
cpu='sum by (state) (rate(system_cpu_time_seconds_total[1m]))'
until_true 120 "request rates in Prometheus" has_result "$requests"
until_true 120 "host CPU in Prometheus" has_result "$cpu"
echo "  $requests"
promql "$requests"
echo "  $cpu"
promql "$cpu"

say "Done in $((SECONDS - start))s"
printf '  spans at Alloy: %s; OTLP metric items: %s; scraped metric items: %s; Prometheus series from :8889: %s\n' \
  "$(show --count spans)" "$(show --count metrics)" "$(show --count scraped)" \
  "$(promql 'count({job="telemetry-collector"})' | awk '{print int($NF)}')"
if $keep; then
  echo
  echo "The cluster is kept (Ctrl-C stops everything). Look around:"
  echo "  export KUBECONFIG=$KUBECONFIG"
  echo "  kubectl get pods -A; kubectl -n demo get tp,isvc; kubectl -n demo logs deploy/main-collector"
  echo "  Prometheus: http://127.0.0.1:$prom_port   Alloy stand-in output: $work/alloy/alloy.jsonl"
  wait "${pids[0]}"
fi
