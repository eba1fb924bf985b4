#!/usr/bin/env bash
# The cuda backend's full measurement in one device call, in stages ordered by value, results tarred after each stage
# (a call cut short still returns what finished): PyTorch baseline; parity, tiny training, kernel-time profile and
# no-leak check, adamw full graph in strict / tf32 / bf16-mixed; then the memory-plugin rows.
#   run(command="bash scripts/gpu-run-cuda-full.sh", carry=[".device/cuda", ".device/node.xz"])
# with .device/cuda/bundle.tar.xz (pnpm bundle tmp/bdl/bundle-dir; tar -C tmp/bdl -cJf … bundle-dir) and copies of
# scripts/gpu-run-cuda.sh and scripts/torch-baseline.py in .device/cuda/. Writes $OUT/results.tgz.
R=${OUT:-/tmp/kstar-out}; W=/tmp/w; mkdir -p "$R" "$W/more"
export BUNDLE=${BUNDLE:-.device/cuda/bundle.tar.xz} TORCH_SCRIPT=${TORCH_SCRIPT:-.device/cuda/torch-baseline.py}
export STEPS=${STEPS:-12} RUN_LIMIT=${RUN_LIMIT:-70}
S=${GPU_RUN_CUDA:-.device/cuda/gpu-run-cuda.sh}
save() { tar -C "$W" -czf "$R/results.tgz" . ; }
OUT=$W SKIP_PARITY=1 SKIP_GPU=1 TORCH_LIMIT=110 bash "$S"; save
OUT=$W SKIP_TORCH=1 PROFILE=1 PROFILE_STEPS=3 TF32=1 BF16=1 CONFIGS=adamw-full-graph bash "$S"; save
OUT=$W/more SKIP_PARITY=1 SKIP_TORCH=1 STEPS=8 \
  CONFIGS=adamw-segmented,adam8bit+split24,adam8bit+split24+checkpoint+mst-coarse+compress bash "$S"; save
