#!/usr/bin/env python3
"""Benchmark of the reviews service against its FastAPI peer.

Modes (same run, same machine, same load):
  rust/off         ENABLE_TELEMETRY=false (Prometheus /metrics still on)
  rust/on-up       ENABLE_TELEMETRY=true, OTLP/gRPC to a live collector
  rust/on-down     ENABLE_TELEMETRY=true, collector port closed
  fastapi/off      FastAPI + uvicorn + prometheus-fastapi-instrumentator
  fastapi/on-up    ... + opentelemetry-instrumentation-fastapi, OTLP/gRPC

Load: wrk (Debian package) over loopback, GET /api/v1/reviews?limit=20 and
POST /api/v1/reviews. The server is pinned to CPU 0 (one core each, so the
Rust runtime and uvicorn's single worker get the same hardware), wrk and the
collector to CPU 1. The collector is the upstream `otelcol` when built
(tools/build.sh), else the crate's `otlp_sink` example.

Besides wrk's requests/s and latencies, each run reads the server's CPU time
(utime + stime of all its threads, /proc/PID/stat) before and after, and
reports CPU microseconds per request: on a shared machine this moves far
less than requests/s, because it does not depend on how much of the core
the server got, only on what each request cost it (export work included:
the export tasks run in the same process).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
DURATION = os.environ.get("BENCH_DURATION", "5s")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "16")
SEED = int(os.environ.get("BENCH_SEED_ROWS", "200"))
TOOLS_BIN = os.environ.get("TELEMETRY_TOOLS_BIN", os.path.expanduser("~/.cache/thereview-telemetry/bin"))
PYTHON = os.environ.get("TELEMETRY_PYTHON", os.path.expanduser("~/.cache/thereview-telemetry/venv/bin/python"))
HAVE_TASKSET = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
# Where run.sh's `cargo build --release` put the binaries.
TARGET_DIR = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR", "target"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads, live and exited)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pinned(cpu, argv):
    return ["taskset", "-c", str(cpu), *argv] if HAVE_TASKSET else argv


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not become healthy within {timeout}s")


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"port {port} did not open within {timeout}s")


def stop(proc, sig=signal.SIGTERM):
    if proc and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_collector(tmp):
    port = free_port()
    otelcol = os.path.join(TOOLS_BIN, "otelcol")
    if os.path.exists(otelcol) and os.environ.get("BENCH_COLLECTOR", "auto") != "sink":
        cfg = os.path.join(tmp, "otelcol.yaml")
        with open(cfg, "w") as f:
            f.write(
                "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:%d\n"
                "processors:\n  batch: {}\n"
                "exporters:\n  debug:\n    verbosity: basic\n"
                "service:\n  telemetry:\n    metrics:\n      level: none\n"
                "  pipelines:\n    traces:\n      receivers: [otlp]\n      processors: [batch]\n      exporters: [debug]\n"
                "    metrics:\n      receivers: [otlp]\n      processors: [batch]\n      exporters: [debug]\n" % port
            )
        proc = subprocess.Popen(pinned(1, [otelcol, "--config", cfg]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        name = "otelcol"
    else:
        sink = os.path.join(TARGET_DIR, "release", "examples", "otlp_sink")
        proc = subprocess.Popen(pinned(1, [sink, f"127.0.0.1:{port}"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        name = "otlp_sink"
    wait_port(port)
    return proc, port, name


def start_rust(tmp, telemetry, otlp_port):
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LISTEN_ADDR": f"127.0.0.1:{port}",
        "DATABASE_URL": f"sqlite://{tmp}/rust-{port}.db",
        "RUST_LOG": "warn",
        "ENABLE_TELEMETRY": "true" if telemetry else "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
        "OTEL_SERVICE_NAME": "reviews-bench",
    }
    binary = os.path.join(TARGET_DIR, "release", "reviews-service")
    proc = subprocess.Popen(pinned(0, [binary]), env=env, stdout=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/health")
    return proc, port


def start_fastapi(tmp, telemetry, otlp_port):
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_PATH": f"{tmp}/fastapi-{port}.db",
        "ENABLE_TELEMETRY": "true" if telemetry else "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
        "OTEL_SERVICE_NAME": "reviews-fastapi-bench",
    }
    argv = [PYTHON, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(pinned(0, argv), env=env, cwd=os.path.join(HERE, "fastapi_app"), stdout=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/health")
    return proc, port


def seed(port):
    for i in range(SEED):
        body = json.dumps({"entity_type": ["book", "movie"][i % 2], "entity_id": str(i), "rating": 1 + i % 5, "author": "seed"})
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/reviews", data=body.encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 201, r.status


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(out):
    def latency(pct):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "p50": latency(50),
        "p99": latency(99),
        "bad": int(non2xx.group(1)) if non2xx else 0,
        "sockerr": errors.group(0) if errors else "",
    }


def wrk(url, script=None, duration=DURATION, server_pid=None):
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}", "--latency"]
    if script:
        argv += ["-s", script]
    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    out = subprocess.run(pinned(1, argv + [url]), capture_output=True, text=True, check=True).stdout
    r = parse_wrk(out)
    if server_pid and r["requests"]:
        r["cpu_us"] = (cpu_seconds(server_pid) - cpu_before) * 1e6 / r["requests"]
    else:
        r["cpu_us"] = float("nan")
    return r


ENDPOINTS = (
    ("GET /api/v1/reviews", "/api/v1/reviews?limit=20", None),
    ("POST /api/v1/reviews", "/api/v1/reviews", os.path.join(HERE, "post.lua")),
)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install wrk (listed in tools/apt-packages.txt)")
    if not os.path.exists(PYTHON):
        raise SystemExit(f"{PYTHON} not found: create the venv from tools/requirements.txt")
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        collector, otlp_port, collector_name = start_collector(tmp)
        dead_port = free_port()  # nothing listens here: "collector down"
        print(f"collector: {collector_name}; load: wrk -t1 -c{CONNECTIONS} -d{DURATION} x {ROUNDS} interleaved rounds "
              f"(median reported); pinning: {'server cpu0, wrk+collector cpu1' if HAVE_TASKSET else 'none'}", flush=True)
        modes = [
            ("rust/off", start_rust, False, otlp_port),
            ("rust/on-up", start_rust, True, otlp_port),
            ("rust/on-down", start_rust, True, dead_port),
            ("fastapi/off", start_fastapi, False, otlp_port),
            ("fastapi/on-up", start_fastapi, True, otlp_port),
        ]
        procs, ports = {}, {}
        raw = {m[0]: {e[0]: [] for e in ENDPOINTS} for m in modes}
        try:
            for name, starter, telemetry, port in modes:
                procs[name], ports[name] = starter(tmp, telemetry, port)
                seed(ports[name])
            # Modes are interleaved round by round, so load from anything
            # else on the machine hits all of them alike.
            for endpoint, path, script in ENDPOINTS:
                for rnd in range(ROUNDS):
                    for name, *_ in modes:
                        url = f"http://127.0.0.1:{ports[name]}{path}"
                        if rnd == 0:
                            wrk(url, script, duration="2s")  # warm-up
                        r = wrk(url, script, server_pid=procs[name].pid)
                        raw[name][endpoint].append(r)
                        print(f"  round {rnd + 1} {name:14} {endpoint:22} {r['rps']:10.0f} req/s  "
                              f"p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms  cpu {r['cpu_us']:7.2f} us/req  "
                              f"non-2xx {r['bad']}", flush=True)
        finally:
            for p in procs.values():
                stop(p)
            stop(collector, signal.SIGINT)

    results = {
        name: {
            endpoint: {
                "rps": median([r["rps"] for r in runs]),
                "p50": median([r["p50"] for r in runs]),
                "p99": median([r["p99"] for r in runs]),
                "cpu_us": median([r["cpu_us"] for r in runs]),
                "bad": sum(r["bad"] for r in runs),
            }
            for endpoint, runs in eps.items()
        }
        for name, eps in raw.items()
    }
    print()
    print("| mode | endpoint | req/s | p50 ms | p99 ms | non-2xx | server CPU µs/req | req/s vs rust/off "
          "| p99 vs rust/off | CPU/req vs rust/off | rust/on-up req/s ÷ this |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in results:
        for endpoint, r in results[name].items():
            base = results["rust/off"][endpoint]
            on = results["rust/on-up"][endpoint]
            print(f"| {name} | {endpoint} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['bad']} | "
                  f"{r['cpu_us']:.2f} | {r['rps'] / base['rps']:.3f} | {r['p99'] / base['p99']:.2f} | "
                  f"{r['cpu_us'] / base['cpu_us']:.3f} | {on['rps'] / r['rps']:.1f}x |")
    print()
    for endpoint in results["rust/off"]:
        off = results["rust/off"][endpoint]
        for mode in ("rust/on-up", "rust/on-down"):
            r = results[mode][endpoint]
            print(f"{endpoint}: {mode}: throughput cost {100 * (1 - r['rps'] / off['rps']):+.1f}% "
                  f"(target <= 5%), p99 change {100 * (r['p99'] / off['p99'] - 1):+.1f}% (target <= 10%), "
                  f"server CPU per request {100 * (r['cpu_us'] / off['cpu_us'] - 1):+.1f}%")
        fa = results["fastapi/on-up"][endpoint]
        on = results["rust/on-up"][endpoint]
        print(f"{endpoint}: rust/on-up vs fastapi/on-up: {on['rps'] / fa['rps']:.1f}x requests/s (target >= 20x)")
    print(f"\ntotal bench time {time.time() - started:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
