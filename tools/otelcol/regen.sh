#!/usr/bin/env bash
# Regenerates the committed collector sources (dist/) from builder-config.yaml with the
# OpenTelemetry Collector Builder, without compiling: tools/build.sh compiles them, so
# the build only depends on the committed go.mod/go.sum, not on the builder's choices.
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=local
bin=$(mktemp -d)
GOBIN=$bin go install go.opentelemetry.io/collector/cmd/builder@v0.155.0
# The builder writes go.mod and then runs `go mod tidy`, which fails on test-only
# dependencies whose archives the module proxy does not serve (pkg/golden, ...);
# `tidy -e` then records everything the binary itself needs.
"$bin/builder" --config builder-config.yaml --skip-compilation ||
  echo "builder's tidy failed; finishing with 'go mod tidy -e'" >&2
test -f dist/go.mod
(cd dist && go mod tidy -e)
rm -rf "$bin"
