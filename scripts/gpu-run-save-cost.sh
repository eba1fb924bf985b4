#!/usr/bin/env bash
# The save-cost goal on one NVIDIA GPU (issue 13: "writing a checkpoint costs ≤ 5% of a 100-step run's time at
# --save-every 25 on small"), in one device call (no Node there):  bash scripts/gpu-run-save-cost.sh
# Needs, beside the repo: .device/node.xz (this machine's node, xz) and $BUNDLE (default .device/bundle.tar.xz:
# `pnpm bundle DIR/bundle-dir` + `tar -C DIR -cJf … bundle-dir`). Runs the same `kstar train --backend cuda` of
# `small` for 100 steps three times: without saving, with --save-every 25 (4 checkpoints, the last at step 100),
# and without saving again (the two unsaved runs show the run-to-run spread). Writes under $OUT: nosave-1.json,
# save.json, nosave-2.json (training reports), train.log, and save-cost.json (the summary).
set -uo pipefail
OUT=${OUT:-/tmp/kstar-out}
BUNDLE=${BUNDLE:-.device/bundle.tar.xz}
STEPS=${STEPS:-100}
mkdir -p "$OUT" /tmp/k
xz -dc .device/node.xz > /tmp/k/node && chmod +x /tmp/k/node
tar -C /tmp/k -xJf "$BUNDLE"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
K=(/tmp/k/node /tmp/k/bundle-dir/kstar.mjs)
TRAIN=(train --preset small --backend cuda --steps "$STEPS" --eval-every 0 --sample-tokens 0)
SAVE_DIR=$(mktemp -d /tmp/kstar-save-XXXX)
timeout "${RUN_LIMIT:-50}" "${K[@]}" "${TRAIN[@]}" --report "$OUT/nosave-1.json" > "$OUT/train.log" 2>&1
echo "nosave-1: exit $?"
timeout "${RUN_LIMIT:-50}" "${K[@]}" "${TRAIN[@]}" --save-dir "$SAVE_DIR" --save-every 25 --keep 2 \
  --report "$OUT/save.json" >> "$OUT/train.log" 2>&1
echo "save: exit $?"
du -sb "$SAVE_DIR"/* | tee -a "$OUT/train.log"
timeout "${RUN_LIMIT:-50}" "${K[@]}" "${TRAIN[@]}" --report "$OUT/nosave-2.json" >> "$OUT/train.log" 2>&1
echo "nosave-2: exit $?"
/tmp/k/node -e '
  const fs = require("fs"); const [dir, gpu, steps] = process.argv.slice(1);
  const read = (f) => JSON.parse(fs.readFileSync(`${dir}/${f}.json`, "utf8"));
  const [a, s, b] = ["nosave-1", "save", "nosave-2"].map(read);
  const trainSeconds = (r) => r.stepSeconds.reduce((x, y) => x + y, 0);
  const noSaveWall = (a.wallSeconds + b.wallSeconds) / 2;
  const r = {
    benchmark: "checkpoint-save-cost-cuda",
    command: "bash scripts/gpu-run-save-cost.sh (kstar train --preset small --backend cuda --steps " + steps +
      " --eval-every 0 --sample-tokens 0 [--save-dir D --save-every 25 --keep 2])",
    gpu: gpu.trim(),
    settings: { preset: "small", backend: "cuda", steps: Number(steps), batch: s.config?.batch, saveEvery: 25 },
    checkpointsWritten: s.checkpoints.saved.length,
    saveSeconds: s.checkpoints.seconds,
    wallSecondsWithSaving: s.wallSeconds,
    wallSecondsWithoutSaving: [a.wallSeconds, b.wallSeconds],
    trainSecondsWithSaving: trainSeconds(s),
    trainSecondsWithoutSaving: [trainSeconds(a), trainSeconds(b)],
    saveFractionOfWall: s.checkpoints.seconds / s.wallSeconds,
    wallDifferenceFraction: (s.wallSeconds - noSaveWall) / s.wallSeconds,
    goal: 0.05,
  };
  fs.writeFileSync(`${dir}/save-cost.json`, JSON.stringify(r, null, 2) + "\n");
  console.log(JSON.stringify(r, null, 2));
' "$OUT" "$(cat "$OUT/gpu.txt")" "$STEPS"
rm -rf "$SAVE_DIR"
tail -5 "$OUT/train.log"
