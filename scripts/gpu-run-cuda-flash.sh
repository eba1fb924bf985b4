#!/usr/bin/env bash
# The fused causal attention on cuda and the cuda-vs-WebGPU losses in one device call (issue 15):
#   1. parity of KstarFlashAttention and its gradient against cpu (`bench cuda-kernels --only KstarFlashAttention`,
#      odd shapes, an offset query chunk, head dim 128 and GPT-2's T = 1024 × hd 64)
#   2. gpt2-124m T=1024 B=8 adamw-full-graph on cuda with the GPT's attention on matmul + causal softmax
#      (KSTAR_ATTENTION=ops) and on the fused kernels (KSTAR_ATTENTION=fused), strict float32 ($STEPS steps), then
#      TF32 and bf16-mixed ($SHORT_STEPS steps): tokens/s, step peak and every step's loss
#   3. the same model on WebGPU (Dawn/Vulkan, its default fused attention), $STEPS steps, and its losses compared with
#      cuda strict ops and fused (cuda-vs-webgpu.json)
# One `run` call from the repo root:
#   run(command="bash .device/cuda/gpu-run-cuda-flash.sh", carry=[".device/cuda", ".device/node.xz", ".gl"])
# with .device/cuda/bundle.tar.xz (pnpm bundle tmp/bdl/bundle-dir; tar -C tmp/bdl -cJf … bundle-dir) and a copy of
# this script there. Writes $OUT/results.tgz (tarred after each stage: a call cut short keeps what finished).
# Session 4 (2026-12-03): STEPS=20 SHORT_STEPS=10 → bench/results/2026-12-03-s4-cuda-flash-*.json,
# …-s4-cuda-vs-webgpu.json.
set -uo pipefail
R=${OUT:-/tmp/kstar-out}; W=$(mktemp -d /tmp/cudaflash-XXXX); mkdir -p "$R" /tmp/k
D=${DEV_DIR:-.device/cuda}
STEPS=${STEPS:-20}; SHORT_STEPS=${SHORT_STEPS:-10}
save() { tar -C "$W" -czf "$R/results.tgz" . ; }
xz -dc .device/node.xz > /tmp/k/node && chmod +x /tmp/k/node
rm -rf /tmp/k/bundle-dir && tar -C /tmp/k -xJf "$D/bundle.tar.xz"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$W/gpu.txt"
N=/tmp/k/node; B=("$N" /tmp/k/bundle-dir/bench.mjs) # `pnpm bench` in the bundle

if [ "${SKIP_PARITY:-0}" != 1 ]; then
  timeout "${PARITY_LIMIT:-90}" "${B[@]}" cuda-kernels --only KstarFlashAttention --json "$W/flash-parity.json" \
    > "$W/parity.log" 2>&1
  echo "flash parity: exit $? after ${SECONDS}s"; grep -E "^(PASS|FAIL)|cases pass" "$W/parity.log"; save
fi
row() { # precision attention steps
  KSTAR_CUDA_MATMUL=$1 KSTAR_ATTENTION=$2 "${B[@]}" gpu --backend cuda --json "$W/gpu-$1-$2.json" --steps "$3" \
    --limit-seconds "${RUN_LIMIT:-60}" --configs adamw-full-graph > "$W/gpu-$1-$2.log" 2>&1
  echo "cuda $1 attention $2: exit $? after ${SECONDS}s"; grep -E "^adamw" "$W/gpu-$1-$2.log"; save
}
row strict ops "$STEPS"; row strict fused "$STEPS"
if [ "${SKIP_WEBGPU:-0}" != 1 ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
  export XDG_RUNTIME_DIR=/tmp VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  "${B[@]}" gpu --backend webgpu --json "$W/gpu-webgpu.json" --steps "$STEPS" --limit-seconds "${WEBGPU_LIMIT:-90}" \
    --configs adamw-full-graph > "$W/gpu-webgpu.log" 2>&1
  echo "webgpu: exit $? after ${SECONDS}s"; grep -E "^adamw" "$W/gpu-webgpu.log"
  "$N" -e '
    const fs = require("fs"); const [web, ops, fused, out] = process.argv.slice(1);
    const losses = (f) => { try { return JSON.parse(fs.readFileSync(f)).rows[0].losses; } catch { return null; } };
    const w = losses(web);
    const cmp = (c) => { if (!w || !c || c.length !== w.length) return null;
      const d = c.map((l, i) => Math.abs(l - w[i]));
      return { maxAbsDiff: Math.max(...d), maxRelDiff: Math.max(...d.map((x, i) => x / Math.abs(w[i]))) }; };
    const r = { kind: "cuda-vs-webgpu-losses", preset: "gpt2-124m", seq: 1024, batch: 8, config: "adamw-full-graph",
      webgpu: w, cudaOps: losses(ops), cudaFused: losses(fused) };
    r.opsVsWebgpu = cmp(r.cudaOps); r.fusedVsWebgpu = cmp(r.cudaFused);
    fs.writeFileSync(out, JSON.stringify(r, null, 2) + "\n");
    console.log(`losses over ${w ? w.length : 0} steps: cuda ops vs webgpu ${JSON.stringify(r.opsVsWebgpu)}; cuda fused vs webgpu ${JSON.stringify(r.fusedVsWebgpu)}`);
  ' "$W/gpu-webgpu.json" "$W/gpu-strict-ops.json" "$W/gpu-strict-fused.json" "$W/cuda-vs-webgpu.json"
  save
fi
for P in ${SHORT_PRECISIONS:-tf32 bf16}; do row "$P" ops "$SHORT_STEPS"; row "$P" fused "$SHORT_STEPS"; done
save
