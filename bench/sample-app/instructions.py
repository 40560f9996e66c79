#!/usr/bin/env python3
"""Instructions per request of the reviews service, per telemetry mode.

A load-independent companion to bench.py: on a shared machine requests/s
and even CPU time per request move with what else runs (and, in a VM, with
what the host runs), while the number of instructions a request executes
does not. Each mode (rust/off, rust/on-up, rust/on-down) runs the release
binary under valgrind's callgrind; after seeding and a warm-up the counters
are zeroed, wrk drives one endpoint for a fixed time, the counters are
dumped, and the total (every thread: request handling, span export and
metric export alike) is divided by the number of requests wrk completed.

Under callgrind the service runs ~100x slower, so the load is light (a few
hundred requests/s) and batches are smaller than at full speed; the
per-request work is the same code. User-space instructions only: kernel
time (socket I/O, including the export's) is not counted.

Usage: after run.sh has built the binaries,
  python3 bench/sample-app/instructions.py        (BENCH_CG_DURATION, default 8s)
BENCH_BINARY=path measures another build of the service (before/after).
Needs valgrind (Debian package) and wrk.
"""

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import bench

DURATION = os.environ.get("BENCH_CG_DURATION", "8s")
MODES = ("rust/off", "rust/on-up", "rust/on-down")


def total_instructions(dump):
    with open(dump) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit(f"{dump}: no totals")


def wrk(url, script, duration):
    argv = ["wrk", "-t1", f"-c{bench.CONNECTIONS}", f"-d{duration}"] + (["-s", script] if script else []) + [url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return bench.parse_wrk(out)


def measure(tmp, mode, endpoint, path, script, otlp_port, dead_port):
    port = bench.free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LISTEN_ADDR": f"127.0.0.1:{port}",
        "DATABASE_URL": f"sqlite://{tmp}/cg-{port}.db",
        "RUST_LOG": "warn",
        "ENABLE_TELEMETRY": "false" if mode == "rust/off" else "true",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{dead_port if mode == 'rust/on-down' else otlp_port}",
        "OTEL_SERVICE_NAME": "reviews-bench",
    }
    out = os.path.join(tmp, f"callgrind.{port}")
    binary = os.environ.get("BENCH_BINARY") or os.path.join(bench.TARGET_DIR, "release", "reviews-service")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bench.wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
        bench.seed(port)
        url = f"http://127.0.0.1:{port}{path}"
        wrk(url, script, "5s")  # warm-up: caches, connection pools, the collector connection
        subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True)
        r = wrk(url, script, DURATION)
        subprocess.run(["callgrind_control", "--dump=measured", str(proc.pid)], check=True, capture_output=True)
    finally:
        bench.stop(proc, signal.SIGKILL)
    dumps = [d for d in glob.glob(out + ".*") if os.path.getsize(d) > 0]
    if len(dumps) != 1 or not r["requests"]:
        raise SystemExit(f"{mode} {endpoint}: expected one dump and some requests, got {dumps}, {r}")
    ir = total_instructions(dumps[0]) / r["requests"]
    print(f"  {mode:14} {endpoint:22} {r['requests']:7d} requests  {ir:9.0f} instructions/request  "
          f"non-2xx {r['bad']}", flush=True)
    return ir


def main():
    for tool in ("valgrind", "callgrind_control", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install valgrind wrk")
    with tempfile.TemporaryDirectory() as tmp:
        collector, otlp_port, collector_name = bench.start_collector(tmp)
        dead_port = bench.free_port()
        print(f"collector: {collector_name}; callgrind, wrk -t1 -c{bench.CONNECTIONS} -d{DURATION} per mode", flush=True)
        results = {}
        try:
            for endpoint, path, script in bench.ENDPOINTS:
                for mode in MODES:
                    results[(mode, endpoint)] = measure(tmp, mode, endpoint, path, script, otlp_port, dead_port)
        finally:
            bench.stop(collector, signal.SIGINT)
    print()
    print("| mode | endpoint | instructions/request | vs rust/off |")
    print("|---|---|---:|---:|")
    for endpoint, _, _ in bench.ENDPOINTS:
        off = results[("rust/off", endpoint)]
        for mode in MODES:
            ir = results[(mode, endpoint)]
            print(f"| {mode} | {endpoint} | {ir:.0f} | {100 * (ir / off - 1):+.1f} % |")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
