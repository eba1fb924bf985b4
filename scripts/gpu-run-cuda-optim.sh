#!/usr/bin/env bash
# The native optimizer kernels on cuda in one device call (issue 15): every kernel's parity against cpu (the 8-bit,
# pack and Adagrad kernels included), then gpt2-124m T=1024 B=8 tokens/s and step peak of adam8bit + split24 and of
# every memory plugin. Stages are tarred as they finish (a call cut short still returns what finished).
#   run(command="bash .device/cudaoptim/gpu-run-cuda-optim.sh", carry=[".device/cudaoptim", ".device/node.xz", ".gl"])
# with .device/cudaoptim/bundle.tar.xz (pnpm bundle tmp/bdl/bundle-dir; tar -C tmp/bdl -cJf … bundle-dir) and a copy
# of this script there. Writes $OUT/results.tgz: cuda-kernels.json, parity.log, gpu-cuda.json, bench-gpu.log.
set -uo pipefail
. scripts/gpu-prelude.sh
R=${OUT:-/tmp/kstar-out}; W=/tmp/w; mkdir -p "$R" "$W" /tmp/k
BUNDLE=${BUNDLE:-.device/cudaoptim/bundle.tar.xz}
unpack_bundle "$W"
if [ "${SKIP_PARITY:-0}" != 1 ]; then
  cuda_parity "$W" "${PARITY_LIMIT:-75}" "Kstar(Quantize8|Dequantize8|Pack|Unpack|Adam8bit|LazyAdagrad|Adafactor|Came|AdaLomo)"
  save
fi
"${B[@]}" gpu --backend cuda --json "$W/gpu-cuda.json" --steps "${STEPS:-6}" --limit-seconds "${RUN_LIMIT:-50}" \
  --configs "${CONFIGS:-adam8bit+split24,adam8bit+split24+checkpoint+mst-coarse+compress}" > "$W/bench-gpu.log" 2>&1
echo "bench gpu cuda: exit $? after ${SECONDS}s"
grep -vE '^(bench gpu:|Warning)' "$W/bench-gpu.log" | tail -8
save
