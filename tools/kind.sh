#!/usr/bin/env bash
# The path for machines WITH a container engine (Docker or Podman) and kind: builds our three
# images from their Dockerfiles, creates the kind cluster of kind-config.yaml, loads the images
# into its nodes (no registry needed) and installs the chart. It cannot run on the project's own
# CI machine, which has no container engine: there, `tools/cluster.sh node` is the real node.
#
# Usage: tools/kind.sh [--engine docker|podman]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
engine=docker
[ "${1:-}" = --engine ] && engine=$2
for tool in "$engine" kind helm kubectl; do
  command -v "$tool" >/dev/null || { echo "tools/kind.sh needs $tool on PATH" >&2; exit 1; }
done
version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$root/charts/telemetry-operator/Chart.yaml")

images=()
for spec in operator/Dockerfile:telemetry-operator collector/Dockerfile:telemetry-collector \
  sample-app/Dockerfile:reviews-service; do
  dockerfile=${spec%%:*}
  image="thereview.dev/${spec#*:}:$version"
  "$engine" build -f "$root/$dockerfile" -t "$image" "$root"
  images+=("$image")
done

if [ "$engine" = podman ]; then export KIND_EXPERIMENTAL_PROVIDER=podman; fi
kind get clusters 2>/dev/null | grep -qx telemetry || kind create cluster --config "$root/kind-config.yaml"
kind load docker-image --name telemetry "${images[@]}"

helm upgrade --install telemetry-operator "$root/charts/telemetry-operator" \
  --namespace telemetry-system --create-namespace --wait --timeout 3m
kubectl -n telemetry-system get pods
echo "next: kubectl create namespace demo && kubectl -n demo apply -f examples/"
