#!/usr/bin/env bash
# The save-cost goal on one NVIDIA GPU (issue 13: "writing a checkpoint costs ≤ 5% of a 100-step run's time at
# --save-every 25 on small"), in one device call (no Node there):  bash scripts/gpu-run-save-cost.sh
# Needs, beside the repo: .device/node.xz (this machine's node, xz) and $BUNDLE (default .device/bundle.tar.xz:
# `pnpm bundle DIR/bundle-dir` + `tar -C DIR -cJf … bundle-dir`). Runs the same `kstar train --backend cuda` of
# `small` for 100 steps $REPEAT times each (default 2), alternating: without saving, then with --save-every 25
# (4 checkpoints, the last at step 100, written in the background since s3), and takes medians (run-to-run spread
# on a fresh GPU process is large). Writes under $OUT: nosave-K.json, save-K.json (training reports), train.log,
# and save-cost.json (the summary; SUMMARY_ONLY=1 OUT=DIR recomputes it here from DIR's reports). First (unless
# SKIP_STAGED=1) `bench checkpoint staged-read`: the staged (pinned, batched) read of small's weights and AdamW state
# against the per-tensor read, byte for byte ($OUT/staged-read.json). Everything is also packed into
# $OUT/save-cost.tgz (one file comes back from the device). Device session s3 ran it as:
#   OUT=$OUT BUNDLE=.device/ckpt/bundle.tar.xz RUN_LIMIT=30 bash .device/ckpt/gpu-run-save-cost.sh
# and s4 (pinned staging) as: run(command="OUT=$OUT/r BUNDLE=.device/ckpt/bundle.tar.xz RUN_LIMIT=30 REPEAT=3
#   bash .device/ckpt/gpu-run-save-cost.sh; tar -C $OUT -czf $OUT/save-cost.tgz r",
#   carry=[".device/ckpt", ".device/node.xz", ".gl"])  (bench/results/2026-12-03-s4-checkpoint-save-cost-first-h200-cuda.json
#   and …-s4-checkpoint-staged-read-h200-cuda.json), then with SKIP_STAGED=1 for the write started on a later
#   event-loop turn (…-s4-checkpoint-save-cost-h200-cuda.json). s5 ran two intermediate versions of "each file written
#   from its parts, no file-sized buffer" as: run(command="OUT=$OUT/r BUNDLE=.device/ckpt/bundle.tar.xz RUN_LIMIT=30
#   REPEAT=3 SKIP_STAGED=1 bash .device/ckpt/gpu-run-save-cost.sh", carry=[…as s4]) (…-s5-checkpoint-save-cost-
#   partwise-h200-cuda.json, …-s5-checkpoint-save-cost-sliced-h200-cuda.json); the committed version (one writev,
#   one-pass hash) as: run(command="OUT=$OUT/r BUNDLE=.device/s5lead/bundle.tar.xz RUN_LIMIT=30 REPEAT=3 SKIP_STAGED=1
#   bash .device/s5lead/gpu-run-save-cost.sh; tar -C $OUT -czf $OUT/save-cost.tgz r", carry=[".device/node.xz",
#   ".device/s5lead", ".gl"]) (…-s5-checkpoint-save-cost-h200-cuda.json: blocked 10.9%, last write 0.19–0.21 s).
#   The last lines printed are a table of the saving runs.
set -uo pipefail
. scripts/gpu-prelude.sh
OUT=${OUT:-/tmp/kstar-out}
BUNDLE=${BUNDLE:-.device/bundle.tar.xz}
STEPS=${STEPS:-100}
REPEAT=${REPEAT:-2}
NODE=/tmp/k/node
if [ -n "${SUMMARY_ONLY:-}" ]; then
  # Only the summary, from the reports already in $OUT (e.g. fetched from the device): uses this machine's node.
  NODE=node
else
mkdir -p "$OUT" /tmp/k
unpack_bundle "$OUT"
K=(/tmp/k/node /tmp/k/bundle-dir/kstar.mjs)
if [ -z "${SKIP_STAGED:-}" ]; then
  timeout "${RUN_LIMIT:-50}" /tmp/k/node /tmp/k/bundle-dir/bench.mjs checkpoint staged-read --json "$OUT/staged-read.json" \
    --preset small --backend cuda > "$OUT/staged-read.log" 2>&1
  echo "staged-read: exit $?"; tail -2 "$OUT/staged-read.log"
fi
TRAIN=(train --preset small --backend cuda --steps "$STEPS" --eval-every 0 --sample-tokens 0)
: > "$OUT/train.log"
for k in $(seq 1 "$REPEAT"); do
  timeout "${RUN_LIMIT:-50}" "${K[@]}" "${TRAIN[@]}" --report "$OUT/nosave-$k.json" >> "$OUT/train.log" 2>&1
  echo "nosave-$k: exit $?"
  SAVE_DIR=$(mktemp -d /tmp/kstar-save-XXXX)
  timeout "${RUN_LIMIT:-50}" "${K[@]}" "${TRAIN[@]}" --save-dir "$SAVE_DIR" --save-every 25 --keep 2 \
    --report "$OUT/save-$k.json" >> "$OUT/train.log" 2>&1
  echo "save-$k: exit $?"
  du -sb "$SAVE_DIR"/* | tee -a "$OUT/train.log"
  rm -rf "$SAVE_DIR"
done
tail -4 "$OUT/train.log"
fi
"$NODE" -e '
  const fs = require("fs"); const [dir, gpu, steps, repeat] = process.argv.slice(1);
  const read = (f) => JSON.parse(fs.readFileSync(`${dir}/${f}.json`, "utf8"));
  const ks = Array.from({ length: Number(repeat) }, (_, i) => i + 1);
  const nosave = ks.map((k) => read(`nosave-${k}`));
  const save = ks.map((k) => read(`save-${k}`));
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const trainSeconds = (r) => r.stepSeconds.reduce((x, y) => x + y, 0);
  const blocked = save.map((r) => r.checkpoints.seconds);
  const wallSave = save.map((r) => r.wallSeconds);
  const wallNoSave = nosave.map((r) => r.wallSeconds);
  const r = {
    benchmark: "checkpoint-save-cost-cuda",
    command: "bash scripts/gpu-run-save-cost.sh (kstar train --preset small --backend cuda --steps " + steps +
      " --eval-every 0 --sample-tokens 0 [--save-dir D --save-every 25 --keep 2]), each variant " + repeat + "x, medians",
    gpu: gpu.trim(),
    settings: { preset: "small", backend: "cuda", steps: Number(steps), batch: save[0].config?.batch, saveEvery: 25 },
    checkpointsWritten: save.map((r) => r.checkpoints.saved.length),
    blockedSaveSeconds: blocked,
    // Of the blocked time: waiting for a background write (the previous save, and the last one at the end);
    // the rest is the copy of the state to host memory.
    waitSeconds: save.map((r) => r.checkpoints.waitSeconds),
    copySeconds: save.map((r) => r.checkpoints.seconds - r.checkpoints.waitSeconds),
    backgroundWriteSeconds: save.map((r) => r.checkpoints.writeSeconds),
    // The last checkpoint (step 100): nothing trains while it is written, so its write is the wait at the end.
    lastWritePhases: save.map((r) => r.checkpoints.writes?.at(-1)),
    stagedRead: fs.existsSync(`${dir}/staged-read.json`) ? (({ tensors, bytes, equal, perTensorSeconds,
      stagedSeconds, perTensorGBps, stagedGBps }) => ({ tensors, bytes, equal, perTensorSeconds, stagedSeconds,
      perTensorGBps, stagedGBps }))(read("staged-read")) : undefined,
    wallSecondsWithSaving: wallSave,
    wallSecondsWithoutSaving: wallNoSave,
    trainSecondsWithSaving: save.map(trainSeconds),
    trainSecondsWithoutSaving: nosave.map(trainSeconds),
    medianBlockedFractionOfWall: median(blocked.map((b, i) => b / wallSave[i])),
    medianCopyFractionOfWall: median(save.map((r) => (r.checkpoints.seconds - r.checkpoints.waitSeconds) / r.wallSeconds)),
    medianWallDifferenceFraction: (median(wallSave) - median(wallNoSave)) / median(wallSave),
    goal: 0.05,
  };
  fs.writeFileSync(`${dir}/save-cost.json`, JSON.stringify(r, null, 2) + "\n");
  console.log(JSON.stringify(r, null, 2));
  // The table (last): each saving run, its blocked time and the last write'"'"'s phases.
  const f3 = (x) => (x ?? 0).toFixed(3);
  console.log("| run | blocked s | wait s | copy s | wall s | blocked / wall | last write: encode / hash / file / commit / total s |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  save.forEach((s, i) => { const w = s.checkpoints.writes?.at(-1) ?? {};
    console.log(`| save-${i + 1} | ${f3(blocked[i])} | ${f3(r.waitSeconds[i])} | ${f3(r.copySeconds[i])} | ${f3(wallSave[i])} | ${(100 * blocked[i] / wallSave[i]).toFixed(1)}% | ${[w.encode, w.hash, w.file, w.commit, w.total].map(f3).join(" / ")} |`); });
  console.log(`| median | | | | | ${(100 * r.medianBlockedFractionOfWall).toFixed(1)}% (goal 5%) | |`);
' "$OUT" "$(cat "$OUT/gpu.txt")" "$STEPS" "$REPEAT"
