#!/usr/bin/env python3
"""Prints what the Alloy stand-in received (its file exporter's OTLP JSON lines), for the demo.

Usage: show_otlp.py ALLOY_JSONL [--spans N]   -> counts, then N spans of the reviews service
       show_otlp.py ALLOY_JSONL --count KIND  -> one number: spans | metrics | scraped
"""

import json
import sys


def attributes(holder):
    out = {}
    for attribute in holder.get("attributes", []):
        value = attribute.get("value", {})
        out[attribute["key"]] = next(iter(value.values()), "") if value else ""
    return out


def read(path):
    spans, metrics, scraped = [], [], []
    try:
        lines = open(path).read().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        try:
            request = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written right now
        for resource_spans in request.get("resourceSpans", []):
            resource = attributes(resource_spans.get("resource", {}))
            for scope in resource_spans.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    spans.append((resource, span))
        for resource_metrics in request.get("resourceMetrics", []):
            resource = attributes(resource_metrics.get("resource", {}))
            for scope in resource_metrics.get("scopeMetrics", []):
                for metric in scope.get("metrics", []):
                    # Scraped series carry the scrape job as service.name; the app's OTLP ones its own name.
                    (scraped if resource.get("service.name", "").startswith("telemetry-pipeline/") else metrics).append(
                        (resource, metric)
                    )
    return spans, metrics, scraped


def main():
    path = sys.argv[1]
    spans, metrics, scraped = read(path)
    if "--count" in sys.argv:
        kind = sys.argv[sys.argv.index("--count") + 1]
        print(len({"spans": spans, "metrics": metrics, "scraped": scraped}[kind]))
        return
    shown = int(sys.argv[sys.argv.index("--spans") + 1]) if "--spans" in sys.argv else 5
    print(f"  {len(spans)} spans, {len(metrics)} OTLP metric items, {len(scraped)} scraped metric items")
    # The API's server spans, not the kubelet's probes of /health and /ready.
    servers = [(r, s) for r, s in spans if s.get("kind") in (2, "SPAN_KIND_SERVER") and "/api/" in s.get("name", "")]
    for resource, span in (servers or spans)[-shown:]:
        duration_ms = (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6
        children = [s for _, s in spans if s.get("parentSpanId") == span.get("spanId")]
        print(f"\n  span {span['name']!r}  {duration_ms:.2f} ms  trace {span['traceId'][:16]}…")
        print(f"    resource: " + ", ".join(f"{k}={v}" for k, v in sorted(resource.items()) if not k.startswith("telemetry.sdk")))
        print(f"    attributes: " + ", ".join(f"{k}={v}" for k, v in sorted(attributes(span).items())))
        for child in children:
            child_ms = (int(child["endTimeUnixNano"]) - int(child["startTimeUnixNano"])) / 1e6
            print(f"    └─ child {child['name']!r} {child_ms:.2f} ms")


if __name__ == "__main__":
    main()
