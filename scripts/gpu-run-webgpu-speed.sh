#!/usr/bin/env bash
# WebGPU speed on the device machine (issue 18), in one call, most valuable first; each part under its own timeout and
# every result tarred into $OUT/webgpu-speed.tar.xz after each part (a call cut short still returns what it finished):
#   attention-parity.json   the fused attention (one-pass dk/dv backward) at gpt2-124m shapes vs the fallback/float64
#   profile-{strict,f16-mixed}.json  per-kernel GPU times of one gpt2-124m T=1024 B=8 AdamW step (timestamp queries)
#   gpu-{strict,f16-mixed}-{new,before}.json  `bench gpu adamw-full-graph`, $ROUNDS alternating rounds of
#                           (precision × kernels), each run its own process; `before` = KSTAR_FLASH_DKV=split
#                           KSTAR_WEBGPU_SUM=tfjs (the two-program dk/dv and tfjs's transpose-then-sum)
#                           ($VARIANTS, default "new before"; `rows64`/`rows128` = KSTAR_FLASH_ROWS, `looped`/`unroll` =
#                           KSTAR_FLASH_UNROLL=0/1 (PARITY_UNROLL, PROFILE_UNROLL: the same for those parts); $PRECISIONS, default
#                           "strict f16-mixed"; $PROFILES, default "strict f16-mixed"; SKIP_PARITY=1, SKIP_PROFILE=1
#                           leave those parts out)
#   gpu-plugins.json        (PLUGINS=1) every memory plugin at once, $PLUGIN_CONFIGS
#   profile-plugins-{new,chunked}.json, gpu-plugins-{new,chunked}.json, plugin-losses.json
#                           (PLUGIN_VARIANTS="new chunked") the same row per MsT attention: `new` = the fused kernel
#                           (default since session 5), `chunked` = KSTAR_MST_ATTENTION=chunked (MsT's query chunks);
#                           per-kernel GPU times of $PLUGIN_PROFILE_STEPS steps (PLUGIN_PROFILE=1), $PLUGIN_STEPS
#                           steps each, and the two runs' losses compared step by step (float32 tolerance 1e-3 abs.)
#   gpu-plugins-NAME.json   (EXTRA_PLUGIN_CONFIGS="NAME …") other `bench gpu` rows, $PLUGIN_STEPS steps each
# Needs beside the repo: .gl/*.deb, .device/node.xz, $BUNDLE (`pnpm bundle tmp/bdl/bundle-dir`, tar -C tmp/bdl -cJf).
# Session 4 (2026-12-03), from /work/main with the bundle and this script under .device/webgpu/:
#   run(carry=[".device/webgpu", ".device/node.xz", ".gl"], timeout_s=400,
#       command="BUNDLE=.device/webgpu/bundle.tar.xz ROUNDS=2 PLUGINS=1 bash .device/webgpu/gpu-run-webgpu-speed.sh")
#   (one-pass dk/dv + column sums vs before: bench/results/2026-12-03-s4-h200-{gpu-rounds,profile-*,attention-parity,
#   gpu-plugins}.json), then with the packed attention:
#   run(…, timeout_s=150, command="BUNDLE=.device/webgpu/bundle.tar.xz ROUNDS=1 VARIANTS='new rows128'
#       PROFILES=f16-mixed bash .device/webgpu/gpu-run-webgpu-speed.sh")
#   (bench/results/2026-12-03-s4-h200-{gpu-packed-rows,profile-f16-mixed-packed,attention-parity-rows64}.json; `new`
#   ran 64 rows then, the default at the time: today's equivalent is VARIANTS='rows64 rows128')
# Session 5 (2026-12-03), the same way (MsT's attention through the fused kernel, every-plugin row):
#   run(carry=[".device/webgpu", ".device/node.xz", ".gl"], timeout_s=420,
#       command="BUNDLE=.device/webgpu/bundle.tar.xz SKIP_PARITY=1 SKIP_PROFILE=1 ROUNDS=0 PLUGIN_VARIANTS='new chunked'
#       PLUGIN_PROFILE=1 PLUGIN_STEPS=20 EXTRA_PLUGIN_CONFIGS=adam8bit+split24+checkpoint+mst-coarse+compress
#       bash .device/webgpu/gpu-run-webgpu-speed.sh")
#   (bench/results/2026-12-03-s5-h200-{gpu-plugins-fused,gpu-plugins-chunked,gpu-plugins-coarse-fused,
#   profile-plugins-fused,profile-plugins-chunked,plugin-losses}.json: gpu-plugins-new.json → …-gpu-plugins-fused.json,
#   gpu-plugins-adam8bit+split24+checkpoint+mst-coarse+compress.json → …-gpu-plugins-coarse-fused.json)
#   then the attention's head-dimension loops unrolled in the WGSL (KSTAR_FLASH_UNROLL=1) against looped (the default):
#   run(…, timeout_s=240, command="BUNDLE=.device/webgpu/bundle.tar.xz PARITY_UNROLL=1 PROFILES=f16-mixed
#       PROFILE_UNROLL=1 ROUNDS=1 STEPS=12 VARIANTS='looped unroll' PRECISIONS='f16-mixed strict'
#       bash .device/webgpu/gpu-run-webgpu-speed.sh")
#   (bench/results/2026-12-03-s5-h200-{attention-parity-unroll,profile-f16-mixed-unroll,gpu-f16-mixed-looped,
#   gpu-f16-mixed-unroll,gpu-strict-looped,gpu-strict-unroll}.json: gpu-P-V-round1.json → …-gpu-P-V.json)
set -uo pipefail
OUT=${OUT:-/tmp/kstar-out}
RES=/tmp/webgpu-speed
BUNDLE=${BUNDLE:-.device/bundle.tar.xz}
STEPS=${STEPS:-10}
mkdir -p "$OUT" "$RES" /tmp/k
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export XDG_RUNTIME_DIR=/tmp
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] || icd=$(find / -name nvidia_icd.json -not -path '*/proc/*' 2>/dev/null | head -1)
export VK_DRIVER_FILES="$icd"
xz -dc .device/node.xz > /tmp/k/node && chmod +x /tmp/k/node
tar -C /tmp/k -xJf "$BUNDLE"
B=(/tmp/k/node /tmp/k/bundle-dir/bench.mjs)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,power.draw,temperature.gpu \
  --format=csv | tee "$RES/gpu.txt"
save() { tar -C /tmp -cJf "$OUT/webgpu-speed.tar.xz" webgpu-speed; }
# GPU clocks and power every second in the background: do float32 timings vary with the clock state?
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu --format=csv \
  -l 1 > "$RES/clocks.csv" 2>&1 &
smi=$!
t0=$SECONDS
mark() { echo "[$((SECONDS - t0)) s] $*" | tee -a "$RES/timeline.txt"; }

if [ "${SKIP_PARITY:-0}" != 1 ]; then
mark attention parity
KSTAR_FLASH_UNROLL=${PARITY_UNROLL:-${KSTAR_FLASH_UNROLL:-}} timeout "${PARITY_LIMIT:-60}" "${B[@]}" kernels --only attention --shapes gpt2 --json "$RES/attention-parity.json" \
  > "$RES/attention-parity.log" 2>&1
mark "attention parity: exit $?"; grep -E "^(PASS|FAIL)" "$RES/attention-parity.log"; save
fi

for p in $([ "${SKIP_PROFILE:-0}" = 1 ] || echo "${PROFILES:-strict f16-mixed}"); do
  KSTAR_FLASH_UNROLL=${PROFILE_UNROLL:-${KSTAR_FLASH_UNROLL:-}} KSTAR_WEBGPU_MATMUL_PRECISION=$p KSTAR_DAWN_FLAGS=enable-dawn-features=allow_unsafe_apis timeout 60 "${B[@]}" profile \
    --json "$RES/profile-$p.json" --preset gpt2-124m --seq 1024 --batch 8 > "$RES/profile-$p.log" 2>&1
  mark "profile $p: exit $?"; head -16 "$RES/profile-$p.log" | grep -v '^Warning'; grep 'sum of kernel' "$RES/profile-$p.log"
  save
done

for r in $(seq 1 "${ROUNDS:-2}"); do
  for p in ${PRECISIONS:-strict f16-mixed}; do
    for k in ${VARIANTS:-new before}; do
      dkv=one-pass sum=kstar rows=128 unroll=${KSTAR_FLASH_UNROLL:-} # `new`: today's defaults
      case "$k" in
        before) dkv=split sum=tfjs rows=64 ;; # the kernels before session 4
        rows64) rows=64 ;;
        rows128) rows=128 ;;
        looped) unroll=0 ;;
        unroll) unroll=1 ;;
      esac
      KSTAR_FLASH_UNROLL=$unroll KSTAR_FLASH_ROWS=$rows KSTAR_FLASH_DKV=$dkv KSTAR_WEBGPU_SUM=$sum KSTAR_WEBGPU_MATMUL_PRECISION=$p "${B[@]}" gpu \
        --json "$RES/gpu-$p-$k-round$r.json" --steps "$STEPS" --limit-seconds "${RUN_LIMIT:-45}" \
        --configs adamw-full-graph > "$RES/gpu-$p-$k-round$r.log" 2>&1
      mark "gpu $p $k round $r: exit $?"; grep -E '^adamw' "$RES/gpu-$p-$k-round$r.log"
    done
  done
  save
done

if [ "${PLUGINS:-0}" = 1 ]; then
  "${B[@]}" gpu --json "$RES/gpu-plugins.json" --steps "${PLUGIN_STEPS:-6}" --limit-seconds "${RUN_LIMIT:-45}" \
    --configs "${PLUGIN_CONFIGS:-adam8bit+split24+checkpoint+mst-medium+compress}" > "$RES/gpu-plugins.log" 2>&1
  mark "gpu plugins: exit $?"; grep -vE '^(bench gpu:|Warning)' "$RES/gpu-plugins.log"
fi
PLUGIN_CONFIG=${PLUGIN_CONFIG:-adam8bit+split24+checkpoint+mst-medium+compress}
for k in ${PLUGIN_VARIANTS:-}; do
  mst=auto
  [ "$k" = chunked ] && mst=chunked
  if [ "${PLUGIN_PROFILE:-0}" = 1 ]; then
    KSTAR_MST_ATTENTION=$mst timeout 90 "${B[@]}" profile --config "$PLUGIN_CONFIG" --steps "${PLUGIN_PROFILE_STEPS:-3}" \
      --json "$RES/profile-plugins-$k.json" > "$RES/profile-plugins-$k.log" 2>&1
    mark "profile plugins $k: exit $?"; grep -vE '^(Warning|step |kstar:|backend)' "$RES/profile-plugins-$k.log" | head -14
    save
  fi
  KSTAR_MST_ATTENTION=$mst "${B[@]}" gpu --json "$RES/gpu-plugins-$k.json" --steps "${PLUGIN_STEPS:-6}" \
    --limit-seconds "${RUN_LIMIT:-45}" --configs "$PLUGIN_CONFIG" > "$RES/gpu-plugins-$k.log" 2>&1
  mark "gpu plugins $k: exit $?"; grep -vE '^(bench gpu:|Warning)' "$RES/gpu-plugins-$k.log"
  save
done
if [ -f "$RES/gpu-plugins-new.json" ] && [ -f "$RES/gpu-plugins-chunked.json" ]; then
  RES=$RES /tmp/k/node -e '
    const fs = require("fs"), res = process.env.RES;
    const row = (k) => JSON.parse(fs.readFileSync(`${res}/gpu-plugins-${k}.json`)).rows[0];
    const a = row("new"), b = row("chunked");
    const n = Math.min(a.losses.length, b.losses.length);
    let max = 0;
    for (let i = 0; i < n; i++) max = Math.max(max, Math.abs(a.losses[i] - b.losses[i]));
    const r = { kind: "plugin-losses", config: a.name, steps: n, maxAbsDiff: max, tolerance: 1e-3, pass: max <= 1e-3,
      fused: a.losses, chunked: b.losses };
    fs.writeFileSync(`${res}/plugin-losses.json`, JSON.stringify(r, null, 2) + "\n");
    console.log(`losses fused vs chunked MsT attention over ${n} steps: max |diff| ${max.toExponential(2)}: ${r.pass ? "PASS" : "FAIL"}`);
    console.log("variant   tok/s (median)   GiB in use   ledger GiB   loss at end");
    for (const [k, x] of [["new", a], ["chunked", b]])
      console.log(`${k.padEnd(10)}${x.tokensPerSecondMedian.toFixed(0).padStart(14)}${(x.peakGpuBytesInUse / 2 ** 30).toFixed(2).padStart(13)}${(x.ledgerPeakBytes / 2 ** 30).toFixed(2).padStart(13)}${x.lossAtEnd.toFixed(4).padStart(14)}`);
  ' | tee "$RES/plugin-table.txt"
fi
for c in ${EXTRA_PLUGIN_CONFIGS:-}; do # other rows of bench gpu, MsT attention fused
  "${B[@]}" gpu --json "$RES/gpu-plugins-$c.json" --steps "${PLUGIN_STEPS:-6}" --limit-seconds "${RUN_LIMIT:-45}" \
    --configs "$c" > "$RES/gpu-plugins-$c.log" 2>&1
  mark "gpu $c: exit $?"; grep -vE '^(bench gpu:|Warning)' "$RES/gpu-plugins-$c.log"
  save
done
[ -f "$RES/plugin-table.txt" ] && cat "$RES/plugin-table.txt"
kill "$smi" 2>/dev/null
save
