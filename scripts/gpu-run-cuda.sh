#!/usr/bin/env bash
# The `cuda` backend's GPU measurements in one device call (an NVIDIA GPU with the driver, CUDA 13 NVRTC and cuBLAS,
# PyTorch; no Node):  bash scripts/gpu-run-cuda.sh
# Needs, beside the repo: .device/node.xz (this machine's node, xz) and $BUNDLE (default .device/bundle.tar.xz:
# `pnpm bundle DIR/bundle-dir` + `tar -C DIR -cJf … bundle-dir`), and scripts/torch-baseline.py ($TORCH_SCRIPT).
# Writes under $OUT:
#   cuda-kernels.json  every kernel of the cuda backend against the cpu backend (pnpm bench cuda-kernels)
#   tiny-cpu.json, tiny-cuda.json  tiny-model training reports (same seed) and tiny-parity.json, their losses compared
#   gpu-cuda.json      `pnpm bench gpu --backend cuda` rows ($CONFIGS, default adamw-full-graph), gpt2-124m T=1024 B=8
#   gpu-cuda-tf32.json the same with KSTAR_CUDA_MATMUL=tf32 (TF32=1; rows $TF32_CONFIGS)
#   gpu-cuda-bf16.json the same with KSTAR_CUDA_MATMUL=bf16 (= --precision bf16-mixed; BF16=1; rows $BF16_CONFIGS)
#   profile.json, profile-train.json  PROFILE=1: $PROFILE_STEPS steps of gpt2-124m T=1024 B=8 with every kernel timed
#                      (KSTAR_CUDA_PROFILE; CUDA events, per-step GPU busy/idle) and its report (per-step live tensors
#                      and device bytes); profile-tf32.json, profile-bf16.json with PROFILE_PRECISIONS="strict tf32 bf16"
#   leak.json          per-step live tensors and device bytes of the profile run: do they return to their level?
#   torch.json         scripts/torch-baseline.py (float32, TF32, bf16 autocast)
# and prints a table last.
set -uo pipefail
. scripts/gpu-prelude.sh
OUT=${OUT:-/tmp/kstar-out}
STEPS=${STEPS:-20}
BUNDLE=${BUNDLE:-.device/bundle.tar.xz}
TORCH_SCRIPT=${TORCH_SCRIPT:-scripts/torch-baseline.py}
mkdir -p "$OUT" /tmp/k
unpack_bundle "$OUT"

if [ "${SKIP_PARITY:-0}" != 1 ]; then
  timeout "${PARITY_LIMIT:-180}" "${B[@]}" cuda-kernels --json "$OUT/cuda-kernels.json" > "$OUT/parity.log" 2>&1
  echo "bench cuda-kernels: exit $?"
  grep -E "^FAIL|cases pass" "$OUT/parity.log"
  TINY=(train --preset tiny --steps "${TINY_STEPS:-10}" --batch 4 --seq 64 --eval-every 0 --sample-tokens 0)
  timeout 120 "${K[@]}" "${TINY[@]}" --backend cpu --report "$OUT/tiny-cpu.json" > "$OUT/tiny.log" 2>&1
  timeout 120 "${K[@]}" "${TINY[@]}" --backend cuda --report "$OUT/tiny-cuda.json" >> "$OUT/tiny.log" 2>&1
  echo "tiny training: exit $?"
  /tmp/k/node -e '
    const fs = require("fs"); const [a, b, out] = process.argv.slice(1);
    const cpu = JSON.parse(fs.readFileSync(a)).losses, cuda = JSON.parse(fs.readFileSync(b)).losses;
    const diffs = cpu.map((l, i) => Math.abs(l - cuda[i]));
    const r = { kind: "cuda-tiny-parity", cpu, cuda, maxAbsDiff: Math.max(...diffs), pass: cpu.length === cuda.length && Math.max(...diffs) < 1e-3 };
    fs.writeFileSync(out, JSON.stringify(r, null, 2) + "\n");
    console.log(`tiny losses cpu vs cuda: max |diff| ${r.maxAbsDiff.toExponential(2)} over ${cpu.length} steps: ${r.pass ? "PASS" : "FAIL"}`);
  ' "$OUT/tiny-cpu.json" "$OUT/tiny-cuda.json" "$OUT/tiny-parity.json"
fi
if [ "${PROFILE:-0}" = 1 ]; then
  for P in ${PROFILE_PRECISIONS:-strict}; do
    SUF=$([ "$P" = strict ] && echo "" || echo "-$P")
    KSTAR_CUDA_MATMUL=$P KSTAR_CUDA_PROFILE="$OUT/profile$SUF.json" timeout "${PROFILE_LIMIT:-120}" "${K[@]}" train \
      --preset gpt2-124m --tokenizer gpt2 --backend cuda --seq 1024 --batch 8 --steps "${PROFILE_STEPS:-4}" --warmup 5 \
      --eval-every 0 --sample-tokens 0 --report "$OUT/profile-train$SUF.json" > "$OUT/profile$SUF.log" 2>&1
    echo "profile run $P: exit $?"
    /tmp/k/node -e '
      const fs = require("fs"); const [file, train, out, p] = process.argv.slice(1);
      const prof = JSON.parse(fs.readFileSync(file)); const r = JSON.parse(fs.readFileSync(train));
      const s = prof.perStep;
      console.log(`[${p}] per step (after ${prof.warmupSteps} warm-up, ${prof.measuredSteps} measured): wall ${s.wallMs.toFixed(1)} ms, GPU busy ${s.gpuBusyMs.toFixed(1)} ms, GPU idle inside the step ${s.gpuIdleMs.toFixed(1)} ms, ${s.calls} kernel calls; slowest (GPU ms, idle before):`);
      console.log(`  longest GPU idle gaps of the last step: ${(prof.steps.at(-1)?.longestGaps ?? []).map((g) => `${g.ms.toFixed(2)} ms before call ${g.index} (${g.after} → ${g.before})`).join("; ")}`);
      for (const row of prof.rows.slice(0, 16)) console.log(`  ${row.kernel.padEnd(28)} ${String(row.calls).padStart(6)} calls ${row.ms.toFixed(1).padStart(8)} ms ${(100 * row.ms / prof.totalMs).toFixed(1).padStart(5)}% idle-before ${row.gapBeforeMs.toFixed(1)} ms`);
      if (p !== "strict") process.exit(0);
      const t = r.stepTensors, g = r.stepGpuBytes ?? [];
      const flat = (xs) => xs.length > 2 && xs.slice(1).every((x) => x === xs[1]);
      const leak = { kind: "cuda-leak-check", steps: r.steps, stepTensors: t, stepGpuBytes: g, tensorsFlat: flat(t), gpuBytesFlat: flat(g) };
      fs.writeFileSync(out, JSON.stringify(leak, null, 2) + "\n");
      console.log(`per-step live tensors ${t.join(",")}; device bytes ${g.join(",")}: ${leak.tensorsFlat && leak.gpuBytesFlat ? "no leak after step 1" : "LEVEL CHANGES"}`);
    ' "$OUT/profile$SUF.json" "$OUT/profile-train$SUF.json" "$OUT/leak.json" "$P"
  done
fi
if [ "${SKIP_GPU:-0}" != 1 ]; then
  "${B[@]}" gpu --backend cuda --json "$OUT/gpu-cuda.json" --steps "$STEPS" --limit-seconds "${RUN_LIMIT:-110}" \
    --configs "${CONFIGS:-adamw-full-graph}" > "$OUT/bench-gpu.log" 2>&1
  echo "bench gpu cuda: exit $?"
  if [ "${TF32:-0}" = 1 ]; then
    KSTAR_CUDA_MATMUL=tf32 "${B[@]}" gpu --backend cuda --json "$OUT/gpu-cuda-tf32.json" --steps "$STEPS" \
      --limit-seconds "${RUN_LIMIT:-110}" --configs "${TF32_CONFIGS:-adamw-full-graph}" >> "$OUT/bench-gpu.log" 2>&1
    echo "bench gpu cuda tf32: exit $?"
  fi
  if [ "${BF16:-0}" = 1 ]; then
    KSTAR_CUDA_MATMUL=bf16 "${B[@]}" gpu --backend cuda --json "$OUT/gpu-cuda-bf16.json" --steps "$STEPS" \
      --limit-seconds "${RUN_LIMIT:-110}" --configs "${BF16_CONFIGS:-adamw-full-graph}" >> "$OUT/bench-gpu.log" 2>&1
    echo "bench gpu cuda bf16: exit $?"
  fi
fi
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  timeout "${TORCH_LIMIT:-180}" python3 "$TORCH_SCRIPT" "$OUT/torch.json" --steps "$STEPS" ${TORCH_FLAGS:-} > "$OUT/torch.log" 2>&1
  echo "torch baseline: exit $?"
fi
grep -vE '^(bench gpu:|Warning)' "$OUT/bench-gpu.log" 2>/dev/null | tail -30
cat "$OUT/torch.log" 2>/dev/null | tail -5
