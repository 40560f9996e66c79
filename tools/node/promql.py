#!/usr/bin/env python3
"""Runs one PromQL query against a Prometheus server's HTTP API and prints the result, for the demo.

Usage: promql.py PROMETHEUS_URL QUERY   -> one line per series; exit status 1 when the result is empty
"""

import json
import sys
import urllib.parse
import urllib.request


def main():
    url, query = sys.argv[1], sys.argv[2]
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}", timeout=10) as response:
            body = json.load(response)
    except OSError as error:  # not up yet, or gone: no result
        sys.exit(f"Prometheus at {url}: {error}")
    if body.get("status") != "success":
        sys.exit(f"PromQL error: {body}")
    results = body["data"]["result"]
    for result in results:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(result["metric"].items()) if k not in ("job", "instance"))
        print(f"    {{{labels}}} {float(result['value'][1]):.3f}")
    sys.exit(0 if results else 1)


if __name__ == "__main__":
    main()
