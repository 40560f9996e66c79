#!/usr/bin/env bash
# Installs the Debian packages of tools/apt-packages.txt that are missing (promtool and the
# Prometheus server, containerd, runc, CNI plugins, iptables, busybox-static, ...). Used by
# tools/test.sh and tools/demo.sh, so either is the first command on a fresh machine.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
packages=()
while read -r package; do
  [ -n "$package" ] && [ "${package:0:1}" != "#" ] || continue
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || packages+=("$package")
done < "$root/tools/apt-packages.txt"
if [ ${#packages[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd=sudo
  echo "[packages] installing ${packages[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
