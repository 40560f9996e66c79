#!/usr/bin/env bash
# Benchmark: reviews-service (telemetry off / on with collector up / on with
# collector down) vs the FastAPI build, under wrk on loopback. Prints a table
# of req/s, p50 and p99 with ratios. Takes about 3-4 minutes.
#
# Needs: wrk (apt), the Python venv from tools/requirements.txt
# ($TELEMETRY_PYTHON or ~/.cache/thereview-telemetry/venv), a Rust toolchain.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
cargo build --release -p reviews-service --bin reviews-service --example otlp_sink
exec python3 "$here/bench.py" "$@"
