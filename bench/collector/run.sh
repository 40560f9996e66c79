#!/usr/bin/env bash
# Collector benchmark: ours vs upstream otelcol vs rotel in three scenarios (pass-through, traces
# processing, metrics processing; see collector_bench.rs). BENCH_SCENARIOS picks some.
# The collector under test is pinned to core ${BENCH_CORE:-0}; generator+sink to the other core(s).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN_DIR="${TELEMETRY_TOOLS_BIN:-$HOME/.cache/thereview-telemetry/bin}"
PY="${TELEMETRY_PYTHON:-$HOME/.cache/thereview-telemetry/venv/bin/python}"
OTELCOL="$BIN_DIR/otelcol"
[ -x "$OTELCOL" ] || { echo "otelcol not found in $BIN_DIR; run tools/build.sh" >&2; exit 1; }
ROTEL="$("$PY" -c 'import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')"
[ -x "$ROTEL" ] || { echo "rotel-agent not found; pip install -r tools/requirements.txt" >&2; exit 1; }
cargo build --release -p telemetry-collector --bin telemetry-collector --example collector_bench
TARGET="${CARGO_TARGET_DIR:-target}"
CORE="${BENCH_CORE:-0}"
NCPU="$(nproc)"
LOADCORES="$(seq -s, 0 $((NCPU - 1)) | tr ',' '\n' | grep -vx "$CORE" | paste -sd, -)"
taskset -c "${LOADCORES:-0}" "$TARGET/release/examples/collector_bench" \
  --core "$CORE" --seconds "${BENCH_SECONDS:-10}" \
  --scenarios "${BENCH_SCENARIOS:-passthrough,traces,metrics}" \
  --ours "$TARGET/release/telemetry-collector" --otelcol "$OTELCOL" --rotel "$ROTEL"
