#!/usr/bin/env bash
# Installs a software Vulkan driver (Mesa lavapipe from bookworm-backports, Mesa 25) so that the WebGPU
# backend (Dawn, through the `webgpu` package) runs without a GPU: CI tests every WGSL kernel on the CPU.
# Debian bookworm's own Mesa is too old for Dawn. Idempotent; needs root (or sudo) and Debian's mirrors.
set -euo pipefail
ICD=/usr/share/vulkan/icd.d/lvp_icd.json
if [ -f "$ICD" ] && dpkg -s mesa-vulkan-drivers 2>/dev/null | grep -q '^Version: 25'; then
  echo "setup-webgpu: lavapipe already installed ($ICD)"; exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
# Derive the backports source from the existing bookworm source (deb822 or one-line format).
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  else
    uri=$(awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list)
  fi
  uri=${uri:-http://deb.debian.org/debian}
  echo "deb $uri bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/kstar-backports.list >/dev/null
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
test -f "$ICD" || { echo "setup-webgpu: $ICD missing after install" >&2; exit 1; }
echo "setup-webgpu: installed $(dpkg -s mesa-vulkan-drivers | awk '/^Version:/{print $2}') ($ICD)"
