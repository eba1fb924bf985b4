#!/usr/bin/env bash
# Every GPU measurement of K* in one script, run on the device machine (an NVIDIA GPU, Vulkan driver, no Node):
#   bash scripts/gpu-run.sh [steps]
# Needs, carried beside the repo: .gl/libvulkan1_*.deb (the Vulkan loader), .device/node.xz (this machine's node
# binary, xz), .device/bundle.tar.xz (`pnpm bundle .device/bundle-dir` + tar). Writes reports and logs under $OUT
# and prints a table last.
set -uo pipefail
OUT=${OUT:-/tmp/kstar-out}
STEPS=${1:-20}
mkdir -p "$OUT" /tmp/k
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export XDG_RUNTIME_DIR=/tmp
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] || icd=$(find / -name nvidia_icd.json -not -path '*/proc/*' 2>/dev/null | head -1)
export VK_DRIVER_FILES="$icd"
xz -dc .device/node.xz > /tmp/k/node && chmod +x /tmp/k/node
tar -C /tmp/k -xJf .device/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
echo "VK_DRIVER_FILES=$VK_DRIVER_FILES node $(/tmp/k/node --version)"

# Every configuration in its own process (the WebGPU pool is a per-process high-water mark); table printed last.
/tmp/k/node /tmp/k/bundle-dir/kstar.mjs bench gpu --json "$OUT/h100-gpu.json" --steps "$STEPS" \
  --limit-seconds "${RUN_LIMIT:-70}" ${CONFIGS:+--configs "$CONFIGS"} 2> "$OUT/bench-gpu.log"
echo "bench gpu: exit $?"
