#!/usr/bin/env bash
# ZeRO data parallelism on the GPU machine: one rank per GPU under Open MPI's mpirun, the `cuda` backend.
#   bash scripts/gpu-run-multi.sh            (needs .device/node.xz and $BUNDLE as scripts/gpu-run-cuda.sh does)
# RANKS (default "1 2"), STAGES (default "2"), PRESET (gpt2-124m), SEQ (1024), BATCH_PER_RANK (8), STEPS (5).
# Each rank sees exactly one GPU: CUDA_VISIBLE_DEVICES = local rank mod the GPU count (scripts/rank-gpu.sh), so two
# ranks never share a GPU when there are at least as many GPUs as ranks. With fewer GPUs (DRY=1 on the one-GPU kind)
# ranks share them: a dry run of the launch, the collectives and the loss comparison, not a scaling measurement.
# Writes under $OUT: multi-r{N}-z{S}.json (rank 0's report) and multi.log; prints a table last: per configuration
# tokens/s, peak GPU memory, bytes sent per step, and the largest |loss − 1-rank loss| at the same global batch.
set -uo pipefail
OUT=${OUT:-/tmp/kstar-out}
BUNDLE=${BUNDLE:-.device/bundle.tar.xz}
RANKS=${RANKS:-1 2}
STAGES=${STAGES:-2}
PRESET=${PRESET:-gpt2-124m}
SEQ=${SEQ:-1024}
BPR=${BATCH_PER_RANK:-8}
STEPS=${STEPS:-5}
MAXR=$(for n in $RANKS; do echo "$n"; done | sort -n | tail -1)
mkdir -p "$OUT" /tmp/k
export NCCL_NVLS_ENABLE=0 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -x /tmp/k/node ] || { xz -dc .device/node.xz > /tmp/k/node && chmod +x /tmp/k/node; }
[ -f /tmp/k/bundle-dir/kstar.mjs ] || tar -C /tmp/k -xJf "$BUNDLE"
NGPU=$(nvidia-smi --list-gpus | wc -l)
echo "GPUs: $NGPU; ranks: $RANKS; stages: $STAGES" | tee "$OUT/multi.log"
if [ "$NGPU" -lt "$MAXR" ] && [ "${DRY:-0}" != 1 ]; then
  echo "$MAXR ranks need $MAXR GPUs, this machine has $NGPU: set DRY=1 to let ranks share GPUs (a dry run)" >&2
  exit 2
fi
# Every rank's global batch is the same (the largest rank count × BATCH_PER_RANK), so losses compare across N.
GLOBAL=$((MAXR * BPR))
for N in $RANKS; do
  for S in $STAGES; do
    rep="$OUT/multi-r$N-z$S.json"
    args=(train --sharding "zero$S" --backend cuda --preset "$PRESET" --seq "$SEQ" --batch "$GLOBAL" --steps "$STEPS"
      --eval-every 0 --warmup 0 --sample-tokens 0 --report "$rep")
    if [ "$N" = 1 ]; then
      cmd=(/tmp/k/node /tmp/k/bundle-dir/kstar.mjs "${args[@]}")
    else
      cmd=(mpirun --allow-run-as-root --oversubscribe -np "$N" -x NCCL_NVLS_ENABLE -x NGPU=$NGPU
        bash scripts/rank-gpu.sh /tmp/k/node /tmp/k/bundle-dir/kstar.mjs "${args[@]}")
    fi
    echo "== $N rank(s), zero$S: ${cmd[*]}" >> "$OUT/multi.log"
    timeout "${RUN_LIMIT:-240}" "${cmd[@]}" >> "$OUT/multi.log" 2>&1
    echo "$N rank(s) zero$S: exit $?"
  done
done
/tmp/k/node -e '
  const fs = require("fs"); const [out, ranks, stages] = process.argv.slice(1);
  const rows = [];
  for (const s of stages.split(" ")) {
    const base = JSON.parse(fs.readFileSync(`${out}/multi-r1-z${s}.json`, "utf8"));
    for (const n of ranks.split(" ")) {
      const f = `${out}/multi-r${n}-z${s}.json`;
      if (!fs.existsSync(f)) { rows.push({ ranks: +n, stage: +s, failed: true }); continue; }
      const r = JSON.parse(fs.readFileSync(f, "utf8"));
      const diff = Math.max(...r.losses.map((l, i) => Math.abs(l - base.losses[i])));
      rows.push({ ranks: +n, stage: +s, tokensPerSecond: r.tokensPerSecond, gpuPeakBytesInUse: r.memory?.gpu?.peakBytesInUse ?? null,
        bytesSentPerStep: r.sharding?.bytesSentPerStep ?? 0, maxLossDiffVsOneRank: diff, losses: r.losses });
    }
  }
  fs.writeFileSync(`${out}/multi.json`, JSON.stringify({ kind: "multi-gpu-zero", rows }, null, 2) + "\n");
  console.log("ranks stage tokens/s bytes-sent/step max|Δloss| vs 1 rank");
  for (const r of rows) console.log(r.failed ? `${r.ranks} ${r.stage} FAILED` :
    `${r.ranks} ${r.stage} ${Math.round(r.tokensPerSecond)} ${r.bytesSentPerStep} ${r.maxLossDiffVsOneRank.toExponential(2)}`);
' "$OUT" "$RANKS" "$STAGES"
