#!/usr/bin/env bash
# The cuda speed work's device calls (issue 15), each one `run` call from the repo root with
#   carry=[".device/cudaspeed", ".device/node.xz", ".gl"]
# and .device/cudaspeed/ holding bundle.tar.xz (pnpm bundle tmp/bdl/bundle-dir; tar -C tmp/bdl -cJf … bundle-dir) and
# copies of scripts/gpu-run-cuda.sh and scripts/torch-baseline.py. Writes $OUT/results.tgz.
#   STAGE=profile  4 steps of gpt2-124m T=1024 B=8 per precision with KSTAR_CUDA_PROFILE (CUDA events): GPU busy and
#                  idle per step, kernel rows (→ bench/results/2026-12-03-s3-cuda-profile-{strict,tf32,bf16}.json)
#   STAGE=rows     PyTorch baseline and the adamw full-graph rows in strict, tf32 and bf16-mixed (one call: ratios)
#   STAGE=final    rows; two A/B rows (at commit 1c608ba: tf32 with KSTAR_CUDA_TF32_TRANSPOSE_A=1, bf16-mixed with
#                  KSTAR_CUDA_BF16_MIN_MACS=0; both knobs were removed after this call, so today the A/B rows repeat
#                  the defaults); the tf32 and bf16 profiles
#   STAGE=s4       (session 4, DEV_DIR=.device/cuda) parity of the matmul and AdamW cases with the GEMM speed table
#                  (`bench cuda-kernels --only BatchMatMul,_FusedMatMul,KstarAdamW --speed`), then the rows and PyTorch
#                  (→ bench/results/2026-12-03-s4-cuda-*.json):
#                    run(command="STAGE=s4 DEV_DIR=.device/cuda bash .device/cuda/gpu-run-cuda-speed.sh",
#                        carry=[".device/cuda", ".device/node.xz", ".gl"])
#   STAGE=s5       (session 5, DEV_DIR=.device/cuda) parity of the matmul and AdamW cases with the GEMM speed table,
#                  then the rows and PyTorch, A/B tf32 rows without the transposed-A copy (KSTAR_CUDA_TRANSPOSE_FIRST=0)
#                  and without the batched AdamW (KSTAR_CUDA_ADAMW_BATCH=0), the tf32 and bf16 profiles; the ratio table last (a copy of scripts/cuda-summary.mjs in DEV_DIR)
#                  (→ bench/results/2026-12-03-s5-cuda-*.json):
#                    run(command="STAGE=s5 DEV_DIR=.device/cuda bash .device/cuda/gpu-run-cuda-speed.sh",
#                        carry=[".device/cuda", ".device/node.xz", ".gl"])
#   STAGE=kstar    parity of K*'s own kernels only (see the case below)
#   STAGE=all      rows, then kernel parity + tiny training (cpu vs cuda) + matmul speed/precision tables, then the
#                  profile; results tarred after each stage (a call cut short keeps what finished)
set -uo pipefail
# A fresh work folder: a warm machine keeps /tmp from earlier calls (other runs' files would be tarred too).
R=${OUT:-/tmp/kstar-out}; W=$(mktemp -d /tmp/cudaspeed-XXXX); mkdir -p "$R"
D=${DEV_DIR:-.device/cudaspeed}
export BUNDLE=$D/bundle.tar.xz TORCH_SCRIPT=$D/torch-baseline.py
save() { tar -C "$W" -czf "$R/results.tgz" . ; }
# Parity of the $ONLY kernels with the GEMM speed table (at most $1 seconds); prints the log's lines matching $2.
speed_parity() {
  mkdir -p /tmp/k && xz -dc .device/node.xz > /tmp/k/node && chmod +x /tmp/k/node
  rm -rf /tmp/k/bundle-dir && tar -C /tmp/k -xJf "$BUNDLE"
  timeout "$1" /tmp/k/node /tmp/k/bundle-dir/bench.mjs cuda-kernels --only \
    "${ONLY:-BatchMatMul,_FusedMatMul,KstarAdamW}" $([ "${SPEED:-1}" = 1 ] && echo --speed) \
    --json "$W/cuda-kernels.json" > "$W/parity.log" 2>&1
  echo "cuda-kernels --only: exit $? after ${SECONDS}s"; grep -E "^FAIL|cases pass|$2" "$W/parity.log"; save
}
# The adamw full-graph rows in strict, tf32 and bf16-mixed, then PyTorch (torch at most $1 seconds).
rows_and_torch() {
  OUT=$W SKIP_PARITY=1 STEPS=${STEPS:-12} RUN_LIMIT=${RUN_LIMIT:-60} TORCH_LIMIT=${TORCH_LIMIT:-$1} TF32=1 BF16=1 \
    bash "$D/gpu-run-cuda.sh"; echo "rows and torch done after ${SECONDS}s"
}
case "${STAGE:-profile}" in
  profile)
    OUT=$W SKIP_PARITY=1 SKIP_GPU=1 SKIP_TORCH=1 PROFILE=1 PROFILE_STEPS=4 PROFILE_PRECISIONS="strict tf32 bf16" \
      PROFILE_LIMIT=75 bash "$D/gpu-run-cuda.sh" ;;
  rows)
    OUT=$W SKIP_PARITY=1 STEPS=${STEPS:-12} RUN_LIMIT=${RUN_LIMIT:-60} TORCH_LIMIT=${TORCH_LIMIT:-110} TF32=1 BF16=1 \
      bash "$D/gpu-run-cuda.sh" ;;
  all)
    OUT=$W SKIP_PARITY=1 STEPS=${STEPS:-12} RUN_LIMIT=${RUN_LIMIT:-60} TORCH_LIMIT=${TORCH_LIMIT:-110} TF32=1 BF16=1 \
      bash "$D/gpu-run-cuda.sh"; save
    OUT=$W SKIP_GPU=1 SKIP_TORCH=1 PARITY_LIMIT=${PARITY_LIMIT:-150} bash "$D/gpu-run-cuda.sh"; save
    OUT=$W/prof SKIP_PARITY=1 SKIP_GPU=1 SKIP_TORCH=1 PROFILE=1 PROFILE_STEPS=4 PROFILE_PRECISIONS="strict tf32 bf16" \
      PROFILE_LIMIT=60 bash "$D/gpu-run-cuda.sh" ;;
  s4)
    speed_parity "${PARITY_LIMIT:-100}" "LM head|dWte"
    rows_and_torch 100 ;;
  kstar)
    # Parity of K*'s own kernels (no speed table): the session-5 fix of KstarAdam8bit's constant names and the shared
    # block reductions (→ bench/results/2026-12-03-s5-cuda-kstar-parity.json):
    #   run(command="STAGE=kstar DEV_DIR=.device/cuda bash .device/cuda/gpu-run-cuda-speed.sh", carry=[…as above])
    SPEED=0 ONLY=${ONLY:-KstarAdafactor,KstarAdaLomo,KstarLomo,KstarCameFactored,KstarCameVector,KstarLayerNorm,KstarLayerNormGrad,KstarCausalSoftmax,KstarCausalSoftmaxGrad,KstarCrossEntropy,KstarCrossEntropyGrad,KstarAdamW,KstarLion,KstarQuantize8,KstarDequantize8,KstarAdam8bit,KstarLazyAdagrad} \
      speed_parity 90 "Adam8bit" ;;
  s5)
    speed_parity "${PARITY_LIMIT:-120}" "dW|LM head"
    rows_and_torch 100; save
    for AB in TRANSPOSE_FIRST ADAMW_BATCH; do
      F=$W/gpu-cuda-tf32-no-$(echo $AB | tr 'A-Z_' 'a-z-').json
      env KSTAR_CUDA_MATMUL=tf32 KSTAR_CUDA_$AB=0 timeout 90 /tmp/k/node /tmp/k/bundle-dir/bench.mjs gpu \
        --backend cuda --steps "${STEPS:-12}" --limit-seconds 60 --configs adamw-full-graph --json "$F" >> "$W/ab.log" 2>&1
      echo "A/B tf32 with KSTAR_CUDA_$AB=0: exit $?"; grep -E "^adamw" "$W/ab.log" | tail -1; save
    done
    OUT=$W/prof SKIP_PARITY=1 SKIP_GPU=1 SKIP_TORCH=1 PROFILE=1 PROFILE_STEPS=4 PROFILE_PRECISIONS="${PROFILES:-tf32 bf16}" \
      PROFILE_LIMIT=60 bash "$D/gpu-run-cuda.sh"; echo "profiles done after ${SECONDS}s"; save
    /tmp/k/node "$D/cuda-summary.mjs" "$W" "$W/summary.json" ;;
  final)
    OUT=$W SKIP_PARITY=1 STEPS=${STEPS:-12} RUN_LIMIT=${RUN_LIMIT:-60} TORCH_LIMIT=${TORCH_LIMIT:-110} TF32=1 BF16=1 \
      bash "$D/gpu-run-cuda.sh"; save
    B=(/tmp/k/node /tmp/k/bundle-dir/bench.mjs gpu --backend cuda --steps "${STEPS:-12}" --limit-seconds 60 --configs adamw-full-graph)
    KSTAR_CUDA_MATMUL=tf32 KSTAR_CUDA_TF32_TRANSPOSE_A=1 "${B[@]}" --json "$W/gpu-cuda-tf32-transpose-a.json" > "$W/ab.log" 2>&1
    echo "tf32 + transposed first operand: exit $?"
    KSTAR_CUDA_MATMUL=bf16 KSTAR_CUDA_BF16_MIN_MACS=0 "${B[@]}" --json "$W/gpu-cuda-bf16-all-bf16.json" >> "$W/ab.log" 2>&1
    echo "bf16 every product: exit $?"; grep -E "^adamw" "$W/ab.log"; save
    OUT=$W/prof SKIP_PARITY=1 SKIP_GPU=1 SKIP_TORCH=1 PROFILE=1 PROFILE_STEPS=4 PROFILE_PRECISIONS="tf32 bf16" \
      PROFILE_LIMIT=60 bash "$D/gpu-run-cuda.sh" ;;
esac
tar -C "$W" -czf "$R/results.tgz" .
