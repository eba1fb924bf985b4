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

run() {
  local name=$1; shift
  # SIGINT makes kstar stop after the current step and still write its report.
  timeout -s INT "${RUN_LIMIT:-240}" /tmp/k/node /tmp/k/bundle-dir/kstar.mjs train --preset gpt2-124m --tokenizer gpt2 \
    --backend webgpu --seq 1024 --eval-every 0 --warmup 5 --report "$OUT/$name.json" "$@" > "$OUT/$name.log" 2>&1
  echo "$name: exit $?"
}
run adamw-segmented-b8 --batch 8 --steps "$STEPS" --mode segmented --lr 6e-4
run adamw-full-b8 --batch 8 --steps "$STEPS" --mode full --lr 6e-4

/tmp/k/node -e '
const fs = require("fs"); const out = process.argv[1];
const rows = fs.readdirSync(out).filter((f) => f.endsWith(".json")).map((f) => [f, JSON.parse(fs.readFileSync(out + "/" + f))]);
console.log("run                   steps  tokens/s  loss first→last    peak GiB  GPU in use GiB  GPU pool GiB");
for (const [f, r] of rows) {
  const m = r.memory, g = (b) => b === undefined ? "-" : (b / 2 ** 30).toFixed(2);
  console.log(f.replace(".json", "").padEnd(22), String(r.steps).padStart(5), Math.round(r.tokensPerSecond).toString().padStart(9),
    ` ${r.losses[0].toFixed(3)}→${r.losses.at(-1).toFixed(3)}`.padEnd(18), g(m.peakBytes).padStart(9), g(m.gpuBytesInUse).padStart(15), g(m.gpuBytesAllocated).padStart(13));
}' "$OUT"
