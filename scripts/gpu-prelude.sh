# The prelude the scripts/gpu-run*.sh device scripts share, sourced from the repo root (where `run` starts them; a
# copy of a script run from .device/… still finds it there):  . scripts/gpu-prelude.sh
# Sourcing defines K (`kstar` in the bundle), B (`pnpm bench` in the bundle) and the steps below, which the script runs.

K=(/tmp/k/node /tmp/k/bundle-dir/kstar.mjs)
B=(/tmp/k/node /tmp/k/bundle-dir/bench.mjs)

# Tars the work folder $W into $R/results.tgz: after each stage, so that a call cut short still returns what finished.
save() { tar -C "$W" -czf "$R/results.tgz" . ; }

# Unpacks this machine's node (.device/node.xz) and $BUNDLE (`pnpm bundle DIR/bundle-dir` + `tar -C DIR -cJf …
# bundle-dir`) into /tmp/k, and records the GPU (name, memory, driver) in $1/gpu.txt.
unpack_bundle() {
  mkdir -p /tmp/k
  xz -dc .device/node.xz > /tmp/k/node && chmod +x /tmp/k/node
  tar -C /tmp/k -xJf "$BUNDLE"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$1/gpu.txt"
}

# For Dawn (WebGPU): the Vulkan loader from the carried .gl/*.deb (and $EXTRA_DEBS), NVIDIA's ICD in VK_DRIVER_FILES.
setup_vulkan() {
  for f in .gl/*.deb ${EXTRA_DEBS:-}; do dpkg -x "$f" /; done
  ldconfig
  export XDG_RUNTIME_DIR=/tmp
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] || icd=$(find / -name nvidia_icd.json -not -path '*/proc/*' 2>/dev/null | head -1)
  export VK_DRIVER_FILES="$icd"
}

# Every kernel of the cuda backend against the cpu backend (`pnpm bench cuda-kernels`, at most $2 seconds) into
# $1/cuda-kernels.json and $1/parity.log; prints the failures, the pass count and the log's lines matching $3.
cuda_parity() {
  timeout "$2" "${B[@]}" cuda-kernels --json "$1/cuda-kernels.json" > "$1/parity.log" 2>&1
  echo "bench cuda-kernels: exit $? after ${SECONDS}s"
  grep -E "^FAIL|cases pass" "$1/parity.log"
  grep -E "$3" "$1/parity.log"
}
