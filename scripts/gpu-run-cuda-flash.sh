#!/usr/bin/env bash
# The fused causal attention on cuda in one device call (issue 15): every kernel's parity against cpu (the
# KstarFlashAttention and KstarFlashAttentionGrad cases included), then gpt2-124m T=1024 B=8 tokens/s and step peak of
# adamw-segmented with the GPT's attention on matmul + causal softmax (KSTAR_ATTENTION=ops, cuda's default) and on the
# fused kernels (KSTAR_ATTENTION=fused). Stages are tarred as they finish (a call cut short still returns what finished).
#   run(command="bash .device/cudaflash/gpu-run-cuda-flash.sh", carry=[".device/cudaflash", ".device/node.xz", ".gl"])
# with .device/cudaflash/bundle.tar.xz (pnpm bundle tmp/bdl/bundle-dir; tar -C tmp/bdl -cJf … bundle-dir) and a copy
# of this script there. Writes $OUT/results.tgz: cuda-kernels.json, parity.log, gpu-cuda-{ops,fused}.json, bench-gpu.log.
set -uo pipefail
. scripts/gpu-prelude.sh
R=${OUT:-/tmp/kstar-out}; W=/tmp/w; mkdir -p "$R" "$W" /tmp/k
BUNDLE=${BUNDLE:-.device/cudaflash/bundle.tar.xz}
unpack_bundle "$W"
if [ "${SKIP_PARITY:-0}" != 1 ]; then
  cuda_parity "$W" "${PARITY_LIMIT:-90}" "KstarFlashAttention"
  save
fi
for attn in ops fused; do
  KSTAR_ATTENTION=$attn "${B[@]}" gpu --backend cuda --json "$W/gpu-cuda-$attn.json" --steps "${STEPS:-6}" \
    --limit-seconds "${RUN_LIMIT:-50}" --configs "${CONFIGS:-adamw-segmented}" >> "$W/bench-gpu.log" 2>&1
  echo "bench gpu cuda, attention $attn: exit $? after ${SECONDS}s"
  save
done
grep -vE '^(bench gpu:|Warning)' "$W/bench-gpu.log" | tail -8
