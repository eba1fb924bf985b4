#!/usr/bin/env bash
# Every GPU measurement of K* in one script, run on the device machine (an NVIDIA GPU, Vulkan driver, no Node):
#   bash scripts/gpu-run.sh [steps]
# Needs, carried beside the repo: .gl/libvulkan1_*.deb (the Vulkan loader), .device/node.xz (this machine's node
# binary, xz), $BUNDLE (default .device/bundle.tar.xz: `pnpm bundle DIR/bundle-dir` + tar -C DIR). Writes JSON and
# logs under $OUT:
#   kernel-parity.json  every fused WGSL kernel against its tfjs-ops fallback at gpt2-124m shapes (PASS/FAIL)
#   gpu-profile.json    per-kernel GPU times of one gpt2-124m T=1024 B=8 AdamW step (timestamp queries)
#   gpu.json            `pnpm bench gpu` rows ($CONFIGS, default adamw-full-graph,adamw-segmented), pool bound on
#   gpu-unbounded.json  adamw-full-graph with tfjs's unbounded pool (KSTAR_WEBGPU_MAX_FREE_BYTES=Infinity), to compare
#   matmul.json         (MATMUL=1) gpt2-124m's products per matmul kernel choice (TFLOP/s) and K*'s matmul parity
#   gpu-tfjs-matmul.json (BEFORE_CONFIGS=a,b) those `bench gpu` rows with tfjs's own matmul (KSTAR_WEBGPU_MATMUL=tfjs)
#   attention-parity.json, gpu-attention-fused.json, gpu-attention-ops.json (ATTENTION=1) the fused attention's
#                       parity at gpt2-124m shapes, and $ATTENTION_CONFIGS (default adamw-full-graph) with the fused
#                       attention (the default on webgpu) and with KSTAR_ATTENTION=ops (and, ATTENTION_UNROLL=1,
#                       gpu-attention-fused-unroll.json: the fused WGSL with its head-dimension loops unrolled)
#   f16-probe.json, matmul-f16.json, gpu-f16-strict.json, gpu-f16-mixed.json (F16=1) Dawn's f16/subgroup-matrix
#                       features and a 16×16×16 product per operand layout (scripts/webgpu-f16-probe.mjs), K*'s
#                       float32 and f16-mixed matmuls ($F16_MATMUL_FLAGS, parity for both precisions), and
#                       $F16_CONFIGS (default adamw-full-graph) strict vs KSTAR_WEBGPU_MATMUL_PRECISION=f16-mixed
#                       (F16_GPU=0 leaves the training rows out; F16_CHOICES, default kstar,kstar-f16, the matmul
#                       table's columns, e.g. kstar,kstar-f16,kstar-f16-double for the f16 tile variants; SKIP_PROBE=1
#                       leaves the probe out)
# Session 3 (2026-12-03, the f16 kernel with vec4 reads and padded slices):
#   MATMUL=1 MATMUL_LIMIT=130 MATMUL_FLAGS="--choices kstar,kstar-f16,kstar-f16-quad,kstar-f16-tall,kstar-f16-single,
#     kstar-f16-unpadded --reps 5 --passes 2" SKIP_PARITY=1 SKIP_GPU=1 SKIP_UNBOUNDED=1 bash scripts/gpu-run.sh 12
#     (the tile variants and the step profile: bench/results/2026-12-03-s3-h200-f16-tiles.json, …-s3-h200-profile.json)
#   F16=1 SKIP_PROBE=1 F16_CHOICES=kstar,kstar-f16,kstar-f16-double F16_MATMUL_FLAGS="--reps 5 --passes 2"
#     F16_MATMUL_LIMIT=90 RUN_LIMIT=60 SKIP_PARITY=1 SKIP_PROFILE=1 SKIP_GPU=1 SKIP_UNBOUNDED=1 bash scripts/gpu-run.sh 12
#     (parity and the table with the chosen tile, strict vs f16-mixed training: …-s3-h200-f16-*.json)
# Session 4 (WebGPU speed, issue 18): scripts/gpu-run-webgpu-speed.sh (its header has the call): attention parity,
#   strict and f16-mixed step profiles, alternating rounds of `bench gpu --repeats`-style runs, every-plugin row.
# SKIP_PARITY=1, SKIP_PROFILE=1, SKIP_GPU=1, SKIP_UNBOUNDED=1 leave those parts out.
set -uo pipefail
. scripts/gpu-prelude.sh
OUT=${OUT:-/tmp/kstar-out}
STEPS=${1:-20}
BUNDLE=${BUNDLE:-.device/bundle.tar.xz}
mkdir -p "$OUT" /tmp/k
setup_vulkan
unpack_bundle "$OUT"
echo "VK_DRIVER_FILES=$VK_DRIVER_FILES node $(/tmp/k/node --version)"

if [ "${MATMUL:-0}" = 1 ]; then
  timeout "${MATMUL_LIMIT:-240}" "${B[@]}" matmul --json "$OUT/matmul.json" ${MATMUL_FLAGS:-} > "$OUT/matmul.log" 2>&1
  echo "bench matmul: exit $?"
fi
if [ "${F16:-0}" = 1 ]; then
  if [ "${SKIP_PROBE:-0}" != 1 ]; then
    cp "${F16_PROBE:-scripts/webgpu-f16-probe.mjs}" /tmp/k/bundle-dir/webgpu-f16-probe.mjs
    (cd /tmp/k/bundle-dir && timeout 60 /tmp/k/node webgpu-f16-probe.mjs) > "$OUT/f16-probe.json" 2> "$OUT/f16-probe.log"
    echo "f16 probe: exit $?"; grep -E '"(subgroupM|maxRelErr|error)' "$OUT/f16-probe.json"; grep -A3 '"messages"' "$OUT/f16-probe.json" | head -20
  fi
  timeout "${F16_MATMUL_LIMIT:-240}" "${B[@]}" matmul --json "$OUT/matmul-f16.json" --choices "${F16_CHOICES:-kstar,kstar-f16}" \
    ${F16_MATMUL_FLAGS:-} > "$OUT/matmul-f16.log" 2>&1
  echo "bench matmul (f16): exit $?"
  grep -E "^(PASS|FAIL|f16)" "$OUT/matmul-f16.log"; sed -n '/^TFLOP/,$p' "$OUT/matmul-f16.log"; tail -5 "$OUT/matmul-f16.log"
  if [ "${F16_GPU:-1}" = 1 ]; then
    for p in strict f16-mixed; do
      KSTAR_WEBGPU_MATMUL_PRECISION=$p "${B[@]}" gpu --json "$OUT/gpu-f16-$p.json" --steps "$STEPS" \
        --limit-seconds "${RUN_LIMIT:-110}" --configs "${F16_CONFIGS:-adamw-full-graph}" > "$OUT/bench-gpu-f16-$p.log" 2>&1
      echo "bench gpu (matmul $p): exit $?"; grep -vE '^(bench gpu:|Warning)' "$OUT/bench-gpu-f16-$p.log"
    done
  fi
fi
if [ -n "${BEFORE_CONFIGS:-}" ]; then
  KSTAR_WEBGPU_MATMUL=tfjs "${B[@]}" gpu --json "$OUT/gpu-tfjs-matmul.json" --steps "$STEPS" \
    --limit-seconds "${RUN_LIMIT:-110}" --configs "$BEFORE_CONFIGS" > "$OUT/bench-gpu-before.log" 2>&1
  echo "bench gpu (tfjs matmul): exit $?"
fi
if [ "${ATTENTION:-0}" = 1 ]; then
  timeout "${PARITY_LIMIT:-240}" "${B[@]}" kernels --only attention --shapes gpt2 \
    --json "$OUT/attention-parity.json" > "$OUT/attention-parity.log" 2>&1
  echo "bench kernels --only attention: exit $?"
  # ATTENTION_UNROLL=1 adds a fused run with the head-dimension loops unrolled in the WGSL (KSTAR_FLASH_UNROLL=1).
  for a in fused ops ${ATTENTION_UNROLL:+fused-unroll}; do
    KSTAR_ATTENTION=${a%-unroll} KSTAR_FLASH_UNROLL=$([ "$a" = fused-unroll ] && echo 1 || echo 0) "${B[@]}" gpu --json "$OUT/gpu-attention-$a.json" --steps "$STEPS" \
      --limit-seconds "${RUN_LIMIT:-110}" --configs "${ATTENTION_CONFIGS:-adamw-full-graph}" \
      > "$OUT/bench-gpu-attention-$a.log" 2>&1
    echo "bench gpu (attention $a): exit $?"
  done
  grep -E "^(PASS|FAIL)" "$OUT/attention-parity.log"
  for a in fused ops ${ATTENTION_UNROLL:+fused-unroll}; do echo "attention $a:"; grep -vE '^(bench gpu:|Warning)' "$OUT/bench-gpu-attention-$a.log"; done
fi
if [ "${SKIP_PARITY:-0}" != 1 ]; then
  timeout "${PARITY_LIMIT:-240}" "${B[@]}" kernels --json "$OUT/kernel-parity.json" --shapes gpt2 > "$OUT/parity.log" 2>&1
  echo "bench kernels: exit $?"
fi
if [ "${SKIP_PROFILE:-0}" != 1 ]; then
  KSTAR_DAWN_FLAGS=enable-dawn-features=allow_unsafe_apis timeout 150 "${B[@]}" profile \
    --json "$OUT/gpu-profile.json" --preset gpt2-124m --seq 1024 --batch 8 > "$OUT/profile.log" 2>&1
  echo "bench profile: exit $?"
fi
# Every configuration in its own process (the pool's peaks are per process); table printed last.
if [ "${SKIP_GPU:-0}" != 1 ]; then
  "${B[@]}" gpu --json "$OUT/gpu.json" --steps "$STEPS" --limit-seconds "${RUN_LIMIT:-110}" \
    --configs "${CONFIGS:-adamw-full-graph,adamw-segmented}" > "$OUT/bench-gpu.log" 2>&1
  echo "bench gpu: exit $?"
fi
if [ "${SKIP_UNBOUNDED:-0}" != 1 ]; then
  KSTAR_WEBGPU_MAX_FREE_BYTES=Infinity "${B[@]}" gpu --json "$OUT/gpu-unbounded.json" --steps "$STEPS" \
    --limit-seconds "${RUN_LIMIT:-110}" --configs adamw-full-graph >> "$OUT/bench-gpu.log" 2>&1
  echo "bench gpu (unbounded pool): exit $?"
fi
grep -E "^(PASS|FAIL)" "$OUT/parity.log" 2>/dev/null
grep -cE "^PASS matmul" "$OUT/matmul.log" 2>/dev/null && grep -E "^FAIL matmul" "$OUT/matmul.log"
sed -n '/^TFLOP/,$p' "$OUT/matmul.log" 2>/dev/null
[ -n "${BEFORE_CONFIGS:-}" ] && echo "with tfjs's matmul:" && grep -vE '^(bench gpu:|Warning)' "$OUT/bench-gpu-before.log"
head -22 "$OUT/profile.log" 2>/dev/null | grep -v '^Warning'
grep -E 'sum of kernel times' "$OUT/profile.log" 2>/dev/null
grep -vE '^(bench gpu:|Warning)' "$OUT/bench-gpu.log" 2>/dev/null
