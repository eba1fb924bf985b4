import { InputError, MemoryLedger, TrainingEngine } from '@kstar/core';
import { createGPT, type GPTModel } from '@kstar/gpt';
import { inPlaceGradAccumulator } from '@kstar/kernels';
import { type LazyAdagradPlugin, lazyAdagrad } from '@kstar/optim-lazy-adagrad';
import {
  machineInfo,
  parseTrainConfig,
  prepareRun,
  segmentPlan,
  selectTrainerBackend,
  writeFileAtomic,
} from '@kstar/trainer/internal';
import * as tf from '@tensorflow/tfjs';
import { benchFlags } from './bench-flags.ts';
import type { RowsBenchmark } from './bench-results.ts';

/**
 * Windowed Lazy Adagrad against exact Adagrad: one `tiny` GPT per run (same seed), segmented mode (one block a
 * segment, so the window's groups — `wte`, `wpe`, `h0`, `h1`, `lnf` — are updated segment by segment), identical
 * batches; run 0 is the window off (exact Adagrad, row-lazy embeddings), then one run per K.
 */
export interface LazyWindowRow {
  window: number | null;
  steps: number;
  lr: number;
  valLoss: number;
  /** valLoss − exact run's valLoss. */
  valLossDiff: number | null;
  /** max over parameters of max|p_K − p_exact| / RMS(p_exact). */
  maxRelParamErr: number | null;
  /** ‖p_K − p_exact‖ / ‖p_exact‖ over every parameter. */
  rmsRelParamErr: number | null;
  /** max over parameters of ‖p_K − p_exact‖ / ‖p_exact − p_0‖: error relative to how far training moved it. */
  maxRelToUpdate: number | null;
  /** Measured unique buffer bytes of the optimizer state after the last step. */
  stateBytes: number;
  /** Bytes the same state would take with every accumulator float32 (the window off). */
  stateBytesFloat32: number;
  /** Rows of `wte` / `wpe` whose accumulators exist (row-lazy) and their vocabulary / context sizes. */
  rowsSeen: Record<string, { rows: number; of: number }>;
  /** Groups in the window (float32) after the last step, least recent first. */
  windowGroups: string[];
  wallSeconds: number;
}

export const benchLazyWindow: RowsBenchmark<LazyWindowRow> = async (argv, log) => {
  const values = benchFlags(
    argv,
    ['json', 'steps', 'windows', 'batch', 'seq', 'lr', 'backend', 'encoding'],
    'lazy-window',
  );
  const windows = String(values.windows ?? '1,2,3,4')
    .split(',')
    .map(Number);
  const encoding = String(values.encoding ?? 'dynamic');
  if (encoding !== 'sqrt' && encoding !== 'linear' && encoding !== 'dynamic')
    throw new InputError(`--encoding ${encoding}: use sqrt, linear or dynamic`, 'E_FLAG');
  if (windows.some((k) => !(Number.isInteger(k) && k >= 1)))
    throw new InputError(`--windows ${values.windows}: need positive integers, e.g. 1,2,3`, 'E_FLAG');
  const config = parseTrainConfig(
    {
      preset: 'tiny',
      optimizer: 'lazy-adagrad',
      mode: 'segmented',
      steps: Number(values.steps ?? 100),
      batch: Number(values.batch ?? 8),
      ...(values.seq !== undefined ? { seq: Number(values.seq) } : {}),
      ...(values.lr !== undefined ? { lr: Number(values.lr) } : {}),
      backend: values.backend ?? 'wasm',
    },
    'bench',
  );
  const run = prepareRun(config);
  const { backend } = await selectTrainerBackend(config.backend, { log });
  const valBatches = run.dataset.valBatches(config.batch, run.seq, 8);
  const segments = segmentPlan(run.modelConfig.nLayer, 1);
  const rows: LazyWindowRow[] = [];
  let exact: { params: Map<string, Float32Array>; valLoss: number } | null = null;
  let init: Map<string, Float32Array> | null = null;
  try {
    for (const window of [null, ...windows]) {
      const t0 = performance.now();
      const model: GPTModel = createGPT(run.modelConfig, { seed: config.seed });
      if (init == null) init = await snapshot(model);
      const plugin: LazyAdagradPlugin = lazyAdagrad({ lr: run.lr, window, windowEncoding: encoding });
      const ledger = new MemoryLedger();
      const engine = new TrainingEngine(model, {
        optimizer: plugin,
        mode: 'segmented',
        segments,
        ledger,
        gradAccumulator: inPlaceGradAccumulator,
      });
      // The same batches for every run: a fresh dataset from the same seed.
      const dataset = prepareRun(config).dataset;
      for (let step = 1; step <= config.steps; step++) {
        const batch = dataset.trainBatch(config.batch, run.seq);
        try {
          await engine.trainStep(batch);
        } finally {
          tf.dispose([batch.inputs, batch.targets]);
        }
      }
      let valLoss = 0;
      for (const b of valBatches) valLoss += await engine.evaluate(b);
      valLoss /= valBatches.length;
      const params = await snapshot(model);
      let stateBytesFloat32 = 0;
      const rowsSeen: LazyWindowRow['rowsSeen'] = {};
      for (const [name, v] of model.variables) {
        const info = model.paramInfo(name);
        const state = engine.stateOf(name);
        const seen = state ? plugin.rowsTouched(state) : null;
        if (seen != null) rowsSeen[name] = { rows: seen, of: v.shape[0]! };
        stateBytesFloat32 += plugin.stateBytesFor(v.shape, seen ?? undefined, { role: info.role });
      }
      const row: LazyWindowRow = {
        window,
        steps: config.steps,
        lr: run.lr,
        valLoss,
        valLossDiff: null,
        maxRelParamErr: null,
        rmsRelParamErr: null,
        maxRelToUpdate: null,
        stateBytes: engine.optimizerStateBytes(),
        stateBytesFloat32,
        rowsSeen,
        windowGroups: [...plugin.windowGroups()],
        wallSeconds: (performance.now() - t0) / 1000,
      };
      if (exact == null) exact = { params, valLoss };
      else Object.assign(row, compare(params, exact.params, init), { valLossDiff: valLoss - exact.valLoss });
      log(
        `window ${window ?? 'off'}: val loss ${valLoss.toFixed(5)}, state ${row.stateBytes} B, max rel param err ${row.maxRelParamErr ?? '-'}`,
      );
      rows.push(row);
      engine.dispose();
      ledger.detach();
      model.dispose();
    }
  } finally {
    tf.dispose(valBatches.flatMap((b) => [b.inputs, b.targets]));
  }
  const machine = machineInfo();
  writeFileAtomic(
    values.json,
    `${JSON.stringify(
      {
        kind: 'lazy-window',
        encoding,
        date: new Date().toISOString(),
        backend,
        machine,
        preset: 'tiny',
        batch: config.batch,
        seq: run.seq,
        segments,
        rows,
      },
      null,
      2,
    )}\n`,
  );
  return { rows, file: values.json };
};

async function snapshot(model: GPTModel): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of model.variables) out.set(name, Float32Array.from(await v.data()));
  return out;
}

function compare(
  got: Map<string, Float32Array>,
  want: Map<string, Float32Array>,
  init: Map<string, Float32Array>,
): Pick<LazyWindowRow, 'maxRelParamErr' | 'rmsRelParamErr' | 'maxRelToUpdate'> {
  let maxRel = 0;
  let maxToUpdate = 0;
  let errSq = 0;
  let refSq = 0;
  for (const [name, w] of want) {
    const g = got.get(name)!;
    const p0 = init.get(name)!;
    let e2 = 0;
    let r2 = 0;
    let u2 = 0;
    let maxAbs = 0;
    for (let i = 0; i < w.length; i++) {
      const d = g[i]! - w[i]!;
      e2 += d * d;
      r2 += w[i]! * w[i]!;
      u2 += (w[i]! - p0[i]!) ** 2;
      maxAbs = Math.max(maxAbs, Math.abs(d));
    }
    const rms = Math.sqrt(r2 / w.length);
    if (rms > 0) maxRel = Math.max(maxRel, maxAbs / rms);
    if (u2 > 0) maxToUpdate = Math.max(maxToUpdate, Math.sqrt(e2 / u2));
    errSq += e2;
    refSq += r2;
  }
  return {
    maxRelParamErr: maxRel,
    rmsRelParamErr: Math.sqrt(errSq / refSq),
    maxRelToUpdate: maxToUpdate,
  };
}
