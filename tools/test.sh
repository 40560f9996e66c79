#!/usr/bin/env bash
# Runs every test of the project on this machine, installing what the tests need first:
#
#   1. Debian packages listed in tools/apt-packages.txt (promtool, wrk, ...), if missing;
#   2. the Go-built binaries (tools/build.sh: kube-apiserver, kubelet, etcd, kwok, helm, otelcol, CoreDNS);
#   3. the container images the real node runs (tools/images.sh: release builds of our three
#      programs, then OCI archives), so no test waits on a release build inside `cargo test`;
#   4. a Python virtualenv with tools/requirements.txt (OpenTelemetry SDK, FastAPI peer);
#   5. `cargo fmt --check`, then `cargo test --workspace` (unit, integration against a real API server, end-to-end
#      on a kwok cluster and on a real node; each test binary starts the clusters it needs by itself).
#
# Ends with one summary line, `tests: N passed, N failed`, and exits non-zero on any failure.
# Arguments replace `--workspace` for `cargo test` (e.g. `tools/test.sh -p telemetry-operator`).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${TELEMETRY_TOOLS_DIR:-$HOME/.cache/thereview-telemetry}
export TELEMETRY_TOOLS_DIR=$cache
start=$SECONDS
step() { printf '\n==> %s (%ss)\n' "$*" "$((SECONDS - start))" >&2; }

step "Debian packages (tools/packages.sh)"
"$root/tools/packages.sh"

step "Go-built binaries (tools/build.sh)"
export TELEMETRY_TOOLS_BIN
TELEMETRY_TOOLS_BIN=$("$root/tools/build.sh" all | tail -n 1)

step "Container images (tools/images.sh)"
"$root/tools/images.sh" >/dev/null
# The node fixture imports these archives; they are current, so it need not run cargo itself.
export NODE_IMAGES_SKIP_CARGO=1

step "Python virtualenv (tools/requirements.txt)"
# Keyed by the requirements' hash: a changed pin makes a new venv, an unchanged one is reused.
venv_key=$(sha256sum "$root/tools/requirements.txt" | cut -c1-12)
venv="$cache/venv-$venv_key"
# The stamp is written last, so an interrupted install is redone rather than trusted.
if [ ! -f "$venv/.installed" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/tools/requirements.txt"
  touch "$venv/.installed"
fi
ln -sfn "$venv" "$cache/venv"
export TELEMETRY_PYTHON="$venv/bin/python"
export PATH="$venv/bin:$PATH"

step "cargo fmt --check"
fmt_status=0
cargo fmt --all --check >/dev/null || { fmt_status=1; echo "cargo fmt --all --check: files need formatting (run cargo fmt --all)" >&2; }

[ $# -gt 0 ] || set -- --workspace
step "cargo test $*"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --locked --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# One line for the whole run, summed over every test binary's "test result:" line.
read -r passed failed ignored < <(awk '/^test result:/ {
  for (i = 1; i <= NF; i++) {
    if ($(i) ~ /^passed;?$/) p += $(i - 1); if ($(i) ~ /^failed;?$/) f += $(i - 1); if ($(i) ~ /^ignored;?$/) s += $(i - 1)
  }
} END { print p + 0, f + 0, s + 0 }' "$log")
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1 # a build failure counts as a failure
if [ "$fmt_status" -ne 0 ]; then failed=$((failed + 1)); status=1; fi # so does unformatted code
printf '\ntests: %s passed, %s failed, %s skipped (%ss)\n' "$passed" "$failed" "$ignored" "$((SECONDS - start))"
exit "$status"
