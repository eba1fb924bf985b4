/**
 * Where MsT's byte prediction is off: one training step of the tiny GPT with MsT's ops, chunk counts varied one op
 * at a time, measured (the engine's ledger: activation + temporary peak) against `predictActivationBreakdown`, with
 * the buffers alive at the measured peak grouped by shape (what the ops really hold).
 * Usage (repo root): node --conditions=@kstar/source --import tsx bench/packages/planner/mst-bytes-probe.ts
 *   [--backend wasm|cpu] [--preset tiny] [--batch 2] [--seq 64] [--trace] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { cpus, platform, release } from 'node:os';
import { checkpoint } from '@kstar/act-checkpoint';
import { mst } from '@kstar/act-mst';
import { type ActivationStrategy, type EngineInternals, engineInternals, TrainingEngine } from '@kstar/core';
import { createGPT, type GPTPresetName, predictActivationBreakdown, resolveConfig } from '@kstar/gpt';
import { inPlaceGradAccumulator, selectBackend } from '@kstar/kernels';
import { adamw } from '@kstar/optim-adamw';
import * as tf from '@tensorflow/tfjs';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const backend = arg('backend', 'wasm') as 'wasm' | 'cpu';
const preset = arg('preset', 'tiny') as GPTPresetName;
const B = Number(arg('batch', '2'));
const T = Number(arg('seq', '64'));
const trace = process.argv.includes('--trace');
const json = process.argv.includes('--json') ? arg('json', '') : undefined;
// --plain: the model's own ops (no MsT), one row per mode: the derivation's remainder outside MsT.
const plain = process.argv.includes('--plain');
// --segments '[[0],[1,2],[3]]': the checkpoint plan of the segmented rows (default every).
const segmentsFlag = process.argv.includes('--segments') ? arg('segments', '') : undefined;

await selectBackend(backend);
// --config '{"nEmbd":48,…}' overrides the preset's sizes (distinct sizes make the shapes at the peak readable).
const config = resolveConfig(preset, JSON.parse(arg('config', '{}')));
type Chunks = { mlpChunks: number; attentionChunk: number; lossChunks: number };
// The op not varied runs at its finest chunking here, so the varied one decides the peak where it can.
const base: Chunks = { mlpChunks: 16, attentionChunk: Math.max(1, Math.floor(T / 16)), lossChunks: 32 };
const grid: Chunks[] = [];
const only = arg('only', 'all');
for (const m of only === 'mlp' ? [1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 30] : [1, 2, 4, 8, 16])
  if (only === 'all' || only === 'mlp') grid.push({ ...base, mlpChunks: m });
for (const c of [1, 2, 4, 8, 16].map((k) => Math.max(1, Math.floor(T / k))))
  if (only !== 'mlp' && only !== 'loss') grid.push({ ...base, attentionChunk: c });
for (const l of [1, 2, 4, 8, 16, 32])
  if (only !== 'mlp' && only !== 'attn') grid.push({ ...base, lossChunks: l });

/** Buffers alive at the peak of `run`'s new unique buffers, by shape. */
async function traced<R>(run: () => Promise<R>) {
  const engine = engineInternals();
  const track = engine.trackTensor;
  const remove = engine.removeDataId;
  const alive = new Map<object, string>();
  const sizes = new Map<object, number>();
  let cur = 0;
  let peak = 0;
  let atPeak = new Map<string, number>();
  engine.trackTensor = function (this: EngineInternals, a: tf.Tensor, be: unknown) {
    const isNew = !this.state.tensorInfo.has(a.dataId);
    track.call(this, a, be);
    if (isNew) {
      const bytes = a.size * 4;
      alive.set(a.dataId, `${a.dtype}[${a.shape.join(',')}]`);
      sizes.set(a.dataId, bytes);
      cur += bytes;
      if (cur > peak) {
        peak = cur;
        atPeak = new Map();
        for (const s of alive.values()) atPeak.set(s, (atPeak.get(s) ?? 0) + 1);
      }
    }
  };
  engine.removeDataId = function (this: EngineInternals, id: object, be: unknown) {
    const had = this.state.tensorInfo.has(id);
    remove.call(this, id, be);
    if (had && !this.state.tensorInfo.has(id) && alive.has(id)) {
      cur -= sizes.get(id)!;
      alive.delete(id);
    }
  };
  try {
    return { result: await run(), peak, atPeak };
  } finally {
    engine.trackTensor = track;
    engine.removeDataId = remove;
  }
}

const rows = [];
for (const mode of ['full', 'segmented'] as const) {
  for (const chunks of plain ? grid.slice(0, 1) : grid) {
    const model = createGPT(config, { seed: 1 });
    const strategies: ActivationStrategy[] = [
      ...(mode === 'segmented'
        ? [checkpoint({ plan: segmentsFlag ? JSON.parse(segmentsFlag) : 'every' })]
        : []),
      ...(plain ? [] : [mst(chunks)]),
    ];
    const engine = new TrainingEngine(model, {
      optimizer: adamw(),
      mode,
      activations: strategies,
      gradAccumulator: inPlaceGradAccumulator,
    });
    const b = tf.tidy(() => ({
      inputs: tf.randomUniform([B, T], 0, config.vocabSize, 'int32', 3),
      targets: tf.randomUniform([B, T], 0, config.vocabSize, 'int32', 4),
    }));
    const t = await traced(() => engine.trainStep(b));
    const p = predictActivationBreakdown(config, {
      batch: B,
      seq: T,
      mode,
      backend,
      ...(mode === 'segmented' ? { segments: engine.segments.map((s) => [...s]) } : {}),
      ...(plain ? {} : { mst: chunks }),
    });
    const measured = t.result.activationPeakBytes;
    const row = {
      mode,
      ...chunks,
      measured,
      predicted: p.total,
      predictedOverMeasured: p.total / measured,
      predictedPeakSegment: p.peakSegment,
      predictedPhase: p.peakPhase,
    };
    rows.push(row);
    console.log(
      `${mode.padEnd(9)} mlp ${chunks.mlpChunks} attn ${String(chunks.attentionChunk).padStart(3)} loss ${String(chunks.lossChunks).padStart(2)}: measured ${measured} predicted ${p.total} (${((p.total / measured - 1) * 100).toFixed(2)}%) seg ${p.peakSegment} ${p.peakPhase} ${JSON.stringify(engine.segments)}`,
    );
    if (trace) {
      const list = [...t.atPeak.entries()].map(([s, n]) => `${n}×${s}`).join(' ');
      console.log(`  at the step's peak (${t.peak} B new): ${list}`);
    }
    tf.dispose([b.inputs, b.targets]);
    engine.dispose();
    model.dispose();
  }
}
const command = `node --conditions=@kstar/source --import tsx bench/packages/planner/mst-bytes-probe.ts ${process.argv.slice(2).join(' ')}`;
const machine = `${cpus()[0]?.model ?? 'unknown'} ×${cpus().length}, ${platform()} ${release()}, Node ${process.version}`;
if (json) {
  const out = { command, machine, preset, config, backend, batch: B, seq: T, rows };
  writeFileSync(json, `${JSON.stringify(out, null, 2)}\n`);
}
