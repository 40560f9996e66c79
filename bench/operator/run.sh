#!/usr/bin/env bash
# Scale benchmark of telemetry-operator on a kwok cluster (real kube-apiserver, controller-manager,
# scheduler, fake nodes):
#
#   1. N Deployments (default 1000) exist before the operator starts, plus one TelemetryPipeline;
#   2. the release-built operator starts (leader election on, like in production);
#   3. N InstrumentedServices, one per Deployment, are applied at once;
#   4. we wait until all N report Ready=True, then read the operator's /metrics and peak RSS.
#
# Prints a table: time to all Ready, reconcile p50/p99 (from the operator's histogram), and
# peak RSS (VmHWM), each next to the issue's target with the ratio measured/target.
#
#   bench/operator/run.sh [N]          (env: KWOK_NODES, default 20; REPLICAS per Deployment, default 1)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
n=${1:-1000}
replicas=${REPLICAS:-1}
export KWOK_NODES=${KWOK_NODES:-20}
bin=${TELEMETRY_TOOLS_BIN:-$HOME/.cache/thereview-telemetry/bin}
kubectl="$bin/kubectl"
[ -x "$kubectl" ] || { echo "kubectl missing: run tools/build.sh" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/operator-bench.XXXXXX")
cluster_pid=""
op_pid=""
cleanup() {
  [ -z "$op_pid" ] || kill "$op_pid" 2>/dev/null || true
  [ -z "$cluster_pid" ] || { kill "$cluster_pid" 2>/dev/null || true; wait "$cluster_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

# OPERATOR_BIN: a release binary built already (skips the build, e.g. to compare two builds).
operator=${OPERATOR_BIN:-}
if [ -z "$operator" ]; then
  echo "building telemetry-operator (release)" >&2
  cargo build --release -q -p telemetry-operator --manifest-path "$root/Cargo.toml"
  operator="${CARGO_TARGET_DIR:-$root/target}/release/telemetry-operator"
fi

echo "starting kwok cluster ($KWOK_NODES fake nodes)" >&2
mkfifo "$work/ready"
bash "$root/tools/cluster.sh" kwok >"$work/ready" &
cluster_pid=$!
read -r line <"$work/ready"
kubeconfig=${line#READY }
[ -f "$kubeconfig" ] || { echo "cluster failed to start: $line" >&2; exit 1; }
k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

k apply -f "$root/crds/" >/dev/null
k wait --for=condition=Established crd --all --timeout=60s >/dev/null
k create namespace bench >/dev/null
k -n bench apply -f - >/dev/null <<YAML
apiVersion: telemetry.thereview.dev/v1alpha1
kind: TelemetryPipeline
metadata: {name: main}
spec:
  receivers: {prometheus: {}}
  exporters: {debug: {}, prometheus: {}}
YAML

echo "creating $n Deployments" >&2
python3 - "$n" "$replicas" >"$work/deployments.yaml" <<'PY'
import sys
n, replicas = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    print(f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app-{i}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: app-{i}}}}}
  template:
    metadata: {{labels: {{app: app-{i}}}}}
    spec:
      containers: [{{name: app, image: example/app:1}}]""")
PY
python3 - "$n" >"$work/isvcs.yaml" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"""---
apiVersion: telemetry.thereview.dev/v1alpha1
kind: InstrumentedService
metadata: {{name: app-{i}}}
spec:
  pipelineRef: {{name: main}}
  target: {{name: app-{i}}}
  metrics: {{port: 8000}}""")
PY
k -n bench apply --server-side -f "$work/deployments.yaml" >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "starting operator (metrics on :$port)" >&2
KUBECONFIG="$kubeconfig" METRICS_ADDR="127.0.0.1:$port" POD_NAMESPACE=default POD_NAME=bench RUST_LOG=warn \
  "$operator" run >"$work/operator.log" 2>&1 &
op_pid=$!
until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
  kill -0 "$op_pid" || { cat "$work/operator.log" >&2; exit 1; }
  sleep 0.2
done

# Readiness is counted from one watch stream, not by listing every object in a loop: a list of N
# objects every half second costs the API server and kubectl O(N) each time, O(N^2) over the run,
# and on two cores that was the largest superlinear part of the measured time (see README).
# CPU seconds (user + system) of the cluster's processes and the operator, read from /proc before and
# after the measured window: where the time goes, independent of how loaded the machine is.
cluster_dir=$(dirname "$kubeconfig")
cpu_by_process() {
  python3 - "$cluster_dir" "$op_pid" <<'PY'
import os, sys
cluster_dir, op_pid = sys.argv[1], sys.argv[2]
tick = os.sysconf("SC_CLK_TCK")
totals = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    if pid != op_pid and cluster_dir not in cmdline:
        continue
    comm = "telemetry-operator" if pid == op_pid else stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    totals[comm] = totals.get(comm, 0) + (int(fields[11]) + int(fields[12])) / tick
for comm, secs in sorted(totals.items()):
    print(comm, secs)
PY
}
cpu_by_process >"$work/cpu-before.txt"
echo "applying $n InstrumentedServices" >&2
start=$(date +%s.%N)
TIMEFORMAT='%U %S'
{ time k -n bench apply --server-side -f "$work/isvcs.yaml" >/dev/null; } 2>"$work/kubectl-apply-cpu.txt"
apply_end=$(date +%s.%N)
# custom-columns, not jsonpath: it prints the initial list item by item too.
ready=$(python3 - "$n" "$kubectl" --kubeconfig "$kubeconfig" -n bench get isvc --watch --no-headers \
  -o 'custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status' <<'PY'
import os, subprocess, sys, threading
n, cmd = int(sys.argv[1]), sys.argv[2:]
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
deadline = max(600, n // 5)  # seconds; 10 000 objects may take longer than 1000 on 2 cores
threading.Timer(deadline, proc.kill).start()  # the deadline: report how many were Ready by then
ready = set()
for line in proc.stdout:
    name, _, status = line.strip().partition(" ")
    status = status.strip()
    (ready.add if status == "True" else ready.discard)(name)
    if len(ready) >= n:
        break
proc.kill()
print(len(ready), flush=True)
os._exit(0)  # the deadline timer must not keep us waiting
PY
)
[ "$ready" -ge "$n" ] || echo "only $ready/$n Ready by the deadline" >&2
end=$(date +%s.%N)
cpu_by_process >"$work/cpu-after.txt"
hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$op_pid/status")
curl -fsS "http://127.0.0.1:$port/metrics" >"$work/metrics.txt"
injected=$(k -n bench get deploy -o jsonpath='{range .items[*]}{.spec.template.spec.containers[0].env[?(@.name=="OTEL_SERVICE_NAME")].value}{"\n"}{end}' | grep -c . || true)

python3 - "$start" "$end" "$hwm_kib" "$n" "$ready" "$injected" "$work/metrics.txt" "$apply_end" "$work" <<'PY'
import re, sys
start, end, hwm_kib, n, ready, injected, metrics, apply_end, work = sys.argv[1:]
elapsed = float(end) - float(start)
rss_mib = int(hwm_kib) / 1024
buckets = {}
count = 0
pipeline_count = 0
for line in open(metrics):
    if 'controller="telemetrypipeline"' in line and line.startswith("telemetry_operator_reconcile_duration_seconds_count{"):
        pipeline_count = float(line.split()[-1])
    # Label order is up to the exposition library: match the labels independently.
    if 'controller="instrumentedservice"' not in line:
        continue
    if line.startswith("telemetry_operator_reconcile_duration_seconds_bucket{"):
        le = re.search(r'le="([^"]+)"', line).group(1)
        buckets[float("inf") if le == "+Inf" else float(le)] = float(line.split()[-1])
    elif line.startswith("telemetry_operator_reconcile_duration_seconds_count{"):
        count = float(line.split()[-1])
def quantile(q):
    # Linear interpolation inside the histogram bucket, like PromQL's histogram_quantile.
    rank, prev_le, prev_c = q * count, 0.0, 0.0
    for le in sorted(buckets):
        c = buckets[le]
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / (c - prev_c) if c > prev_c else 0)
        prev_le, prev_c = le, c
    return float("nan")
p50, p99 = quantile(0.5) * 1000, quantile(0.99) * 1000
rows = [
    ("InstrumentedServices Ready", f"{ready}/{n}", f"{n}/{n}", ""),
    ("Deployments injected", f"{injected}/{n}", f"{n}/{n}", ""),
    ("time to all Ready (s)", f"{elapsed:.1f}", "60", f"{elapsed / 60:.2f}"),
    ("reconcile p50 (ms)", f"{p50:.1f}", "-", ""),
    ("reconcile p99 (ms)", f"{p99:.1f}", "-", ""),
    ("reconciles (isvc)", f"{int(count)}", "-", ""),
    ("reconciles per object", f"{count / int(n):.2f}", "1.5", f"{count / int(n) / 1.5:.2f}"),
    ("reconciles (pipeline)", f"{int(pipeline_count)}", "-", ""),
    ("operator peak RSS (MiB)", f"{rss_mib:.1f}", "64", f"{rss_mib / 64:.2f}"),
]
print(f"{'metric':<28} {'measured':>10} {'target':>10} {'ratio':>7}")
for r in rows:
    print(f"{r[0]:<28} {r[1]:>10} {r[2]:>10} {r[3]:>7}")

def cpu(path):
    return {c: float(s) for c, s in (line.split() for line in open(path))}
before, after = cpu(f"{work}/cpu-before.txt"), cpu(f"{work}/cpu-after.txt")
user, system = map(float, open(f"{work}/kubectl-apply-cpu.txt").read().split())
spent = {c: after[c] - before.get(c, 0.0) for c in after}
spent["kubectl apply"] = user + system
print(f"\nkubectl apply took {float(apply_end) - float(start):.1f} s of the {elapsed:.1f} s")
print(f"{'CPU seconds in the window':<28} {'total':>10} {'per 1000 objects':>17}")
for comm, secs in sorted(spent.items(), key=lambda kv: -kv[1]):
    print(f"{comm:<28} {secs:>10.1f} {secs / int(n) * 1000:>17.2f}")
print(f"{'all':<28} {sum(spent.values()):>10.1f} {sum(spent.values()) / int(n) * 1000:>17.2f}")
PY
