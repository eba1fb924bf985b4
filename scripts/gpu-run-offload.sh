#!/usr/bin/env bash
# Issue 17's H200 goals for offload, in one device call on WebGPU (Dawn/Vulkan; an NVIDIA GPU, no Node):
#   bash scripts/gpu-run-offload.sh   (2026-12-03 s3, the 1.5 GiB goal only: STEPS=3 RUN_LIMIT=55 BASE_TS= ;
#   bench/results/2026-12-03-s3-offload-h200.json). That device call, with this script and the bundle in .device/planner/
#   (carry .device/planner .device/node.xz .gl): STEPS=3 RUN_LIMIT=55 BASE_TS= BUNDLE=.device/planner/bundle.tar.xz
#   OUT=/tmp/ko bash .device/planner/gpu-run-offload.sh
# Needs, carried beside the repo: .gl/libvulkan1_*.deb, .device/node.xz (this machine's node, xz), $BUNDLE (default
# .device/bundle.tar.xz: `pnpm bundle DIR/bundle-dir` + `tar -C DIR -cJf … bundle-dir`). Writes under $OUT:
#   offload.json  every run below (peak device bytes in use, tokens/s, losses) and the goals checked:
#   1. gpt2-124m T=1024 B=8 with every memory plugin (8-bit Adam, split24 weights, gradient release, one block a
#      checkpoint segment and the embedding a segment of its own, MsT chunks $MST), saved inputs bf16 on the device
#      ("resident") vs saved inputs and optimizer state in host memory ("offload": --activations …,offload
#      --offload-state): peak ≤ 1.5 GiB at ≥ 0.7× the speed; $EXTRA_BATCHES adds offload rows at those batch sizes;
#   2. the longest T that trains in 8 GiB at batch 1: the baseline (AdamW, full graph) over $BASE_TS, then the
#      offload configuration at 12× the baseline's longest (≥ 12× is the goal), $LONG_STEPS steps.
# Tokens/s are over steps 2… (the first step compiles the pipelines).
# 2026-12-03 s4, the coarse-chunk row alone (bundle and this script in .device/planner/, same carry):
#   ROWS= BASE_TS= STEPS=3 RUN_LIMIT=55 COARSE_MST=mst:mlp=2,attn=128,loss=8 BUNDLE=.device/planner/bundle.tar.xz
#   OUT=$OUT bash .device/planner/gpu-run-offload.sh
set -uo pipefail
. scripts/gpu-prelude.sh
OUT=${OUT:-/tmp/kstar-out}
STEPS=${STEPS:-6}
BUNDLE=${BUNDLE:-.device/bundle.tar.xz}
BASE_TS=${BASE_TS-2048 3072 4096}
LONG_STEPS=${LONG_STEPS:-2}
mkdir -p "$OUT/reports" /tmp/k
setup_vulkan
unpack_bundle "$OUT"
COMMON=(train --preset gpt2-124m --tokenizer gpt2 --backend webgpu --warmup 5 --eval-every 0 --sample-tokens 0)
# One segment per stage: the embedding alone, so wte's [V, D] gradient is not alive during block 0's recompute (with
# `checkpoint:every` the embedding shares block 0's segment: 0.32 GiB more predicted at B=8). Finer MsT chunks than
# last session's mlp=1,attn=256,loss=16 (predicted act 1.19 → 0.80 GiB with both changes).
N_STAGES=${N_STAGES:-14}
SEGMENTS=[$(seq -s, 0 $((N_STAGES - 1)) | sed 's/[0-9]*/[&]/g')]
MST=checkpoint:$SEGMENTS,${MST:-mst:mlp=8,attn=64,loss=64}
EXTRA_BATCHES=${EXTRA_BATCHES:-}
PLUGINS=(--optimizer adam8bit --master-weights split24)

# train NAME LIMIT_S FLAGS…: one run in its own process (the pool's peaks are per process), its report kept.
train() {
  local name=$1 limit=$2
  shift 2
  timeout "$limit" "${K[@]}" "${COMMON[@]}" --report "$OUT/reports/$name.json" "$@" > "$OUT/$name.log" 2>&1
  local code=$?
  echo "$name: exit $code ($(tail -1 "$OUT/$name.log"))"
  return $code
}

# ROWS names the T = 1024 rows to run (default both; ROWS= with COARSE_MST runs the coarse row alone).
ROWS=${ROWS-resident offload}
case " $ROWS " in *" resident "*)
  train resident "${RUN_LIMIT:-100}" "${PLUGINS[@]}" --seq 1024 --batch 8 --steps "$STEPS" --activations "$MST,compress:bf16"
esac
case " $ROWS " in *" offload "*)
  train offload "${RUN_LIMIT:-100}" "${PLUGINS[@]}" --seq 1024 --batch 8 --steps "$STEPS" --activations "$MST,offload" \
    --offload-state
esac
# COARSE_MST=mst:mlp=2,attn=128,loss=8 adds an offload row with coarser chunks that the corrected byte model (2026-12-03
# s4) predicts at the same activation peak as $MST's default (bench/packages/planner/h200-chunks.ts,
# bench/results/2026-12-03-s4-h200-chunks-prediction.json): 18 chunk calls per block and head instead of 88. Measured
# (2026-12-03 s4, bench/results/2026-12-03-s4-offload-coarse-h200.json): the same ledger peak, 2.34× the tokens/s, but
# WebGPU's bytes in use peak at 2.79 GiB.
if [ -n "${COARSE_MST:-}" ]; then
  train offload-coarse "${RUN_LIMIT:-100}" "${PLUGINS[@]}" --seq 1024 --batch 8 --steps "$STEPS" \
    --activations "checkpoint:$SEGMENTS,$COARSE_MST,offload" --offload-state
fi
for b in $EXTRA_BATCHES; do
  train "offload-b$b" "${RUN_LIMIT:-100}" "${PLUGINS[@]}" --seq 1024 --batch "$b" --steps "$STEPS" \
    --activations "$MST,offload" --offload-state
done
# The baseline's longest T in 8 GiB (full graph AdamW, batch 1): increasing T until a run fails or exceeds 8 GiB.
best=0
for t in $BASE_TS; do
  train "baseline-t$t" "${BASE_LIMIT:-40}" --optimizer adamw --mode full --seq "$t" --context "$t" --batch 1 --steps 2 \
    || break
  peak=$(/tmp/k/node -e 'const r=require(process.argv[1]); console.log(r.gpu?.peakBytesInUse ?? r.memory.peakBytes)' \
    "$OUT/reports/baseline-t$t.json")
  [ "$peak" -le $((8 * 1024 ** 3)) ] || break
  best=$t
done
long=$((12 * best))
if [ "$best" -gt 0 ]; then
  train "offload-long-t$long" "${LONG_LIMIT:-120}" "${PLUGINS[@]}" --seq "$long" --context "$long" --batch 1 \
    --steps "$LONG_STEPS" --activations "$MST,offload" --offload-state
fi

/tmp/k/node - "$OUT" "$best" "$long" <<'EOF'
const fs = require('fs');
const [out, best, long] = process.argv.slice(2);
const GiB = 2 ** 30;
const row = (name) => {
  const f = `${out}/reports/${name}.json`;
  if (!fs.existsSync(f)) return { name, ran: false };
  const r = JSON.parse(fs.readFileSync(f, 'utf8'));
  const tokens = r.config.batch * r.config.seq;
  const later = (r.stepSeconds ?? []).slice(1);
  return {
    name, ran: true, seq: r.config.seq, batch: r.config.batch, steps: r.steps,
    activations: r.config.activations ?? null, offloadState: r.config.offloadState ?? false,
    tokensPerSecond: r.tokensPerSecond,
    tokensPerSecondSteady: later.length ? (later.length * tokens) / later.reduce((a, b) => a + b, 0) : null,
    peakGpuBytesInUse: r.gpu?.peakBytesInUse ?? r.memory.peakBytes,
    ledgerPeakBytes: r.memory.peakBytes, predictedPeakBytes: r.memory.predictedPeakBytes,
    gpuBytesAllocated: r.gpu?.peakBytesAllocated ?? null, optimizerStateBytes: r.memory.optimizerStateBytes,
    rssBytes: r.memory.rssBytes ?? null, losses: r.losses,
  };
};
const names = fs.readdirSync(`${out}/reports`).map((f) => f.replace(/\.json$/, ''));
const rows = names.map(row);
const get = (n) => rows.find((r) => r.name === n);
const res = get('resident'), off = get('offload'), longRow = get(`offload-long-t${long}`);
const speed = res?.tokensPerSecondSteady && off?.tokensPerSecondSteady ? off.tokensPerSecondSteady / res.tokensPerSecondSteady : null;
const goals = {
  offloadPeakGiB: off?.ran ? off.peakGpuBytesInUse / GiB : null,
  offloadPeakAtMost1_5GiB: off?.ran ? off.peakGpuBytesInUse <= 1.5 * GiB : false,
  speedVsResident: speed,
  speedAtLeast0_7: speed !== null && speed >= 0.7,
  baselineLongestTIn8GiB: Number(best),
  offloadLongT: Number(long),
  offloadLongTrainedIn8GiB: !!(longRow?.ran && longRow.steps > 0 && longRow.peakGpuBytesInUse <= 8 * GiB),
  lossesEqualResidentVsOffload: res?.ran && off?.ran ? Math.max(...res.losses.map((l, i) => Math.abs(l - off.losses[i]))) : null,
};
fs.writeFileSync(`${out}/offload.json`, JSON.stringify({ kind: 'offload-h200', date: new Date().toISOString(),
  gpu: fs.readFileSync(`${out}/gpu.txt`, 'utf8').trim(), backend: 'webgpu', rows, goals }, null, 2) + '\n');
for (const r of rows) console.log(`${r.name.padEnd(24)} ${r.ran ? `steps ${r.steps} peak ${(r.peakGpuBytesInUse / GiB).toFixed(3)} GiB pred ${(r.predictedPeakBytes / GiB).toFixed(3)} steady ${Math.round(r.tokensPerSecondSteady ?? 0)} tok/s` : 'no report'}`);
console.log(JSON.stringify(goals));
EOF
tar -C "$OUT" -czf "$OUT/offload-logs.tgz" --exclude offload-logs.tgz reports $(cd "$OUT" && ls *.log) 2>/dev/null
