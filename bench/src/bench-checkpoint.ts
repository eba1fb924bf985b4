import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { composePlugins, InputError, TrainingEngine } from '@kstar/core';
import { createGPT, resolveConfig } from '@kstar/gpt';
import { selectBackend } from '@kstar/kernels';
import { split24 } from '@kstar/master-split24';
import {
  CHECKPOINT_FORMAT_VERSION,
  encodePayloadInBackground,
  encodePayloadPartsInBackground,
  hostCopies,
  MODEL_FILE,
  machineInfo,
  optimizerEntry,
  optimizerFile,
  parseFlags,
  saveCheckpoint,
  selectTrainerBackend,
  sha256InBackground,
  snapshotTensors,
  stagedHostCopies,
  toNumber,
  writeFileAtomic,
  writeFileAtomicInBackground,
  writePendingFiles,
} from '@kstar/trainer/internal';
import * as tf from '@tensorflow/tfjs';
import { benchRun } from './bench-run.ts';

export const BENCH_CHECKPOINT_HELP = `pnpm bench checkpoint size --json FILE [--preset gpt2-124m]
pnpm bench checkpoint cost --json FILE [--preset small] [--steps 100] [--save-every 25] [--batch 8] [--seq T]
                            [--optimizer adamw] [--master-weights fp32|split24]

size: bytes of a checkpoint (weights + optimizer state + trainer state, as written) for adamw with float32 weights and
for adam8bit with split24 weights, on the preset's shapes after one training step on random tokens (batch 1 × 16):
weights as initialized plus one update, optimizer state non-zero (an untrained state of zeros would compress
unrealistically well).
pnpm bench checkpoint staged-read --json FILE [--preset small] [--backend cuda]
pnpm bench checkpoint write --json FILE [--preset small] [--rounds 5]
cost: a training run saving every N steps; the seconds spent writing checkpoints over the run's wall time.
staged-read: after one AdamW step, the weights and optimizer state read as a checkpoint takes them (the backend's
batched staged read: cuda's pinned staging) against the per-tensor read, byte for byte, both timed.
write: one checkpoint's files (weights + AdamW state after one step, on cpu) written --rounds times each way,
alternating: 'one buffer' (each file encoded into one buffer, then written and hashed from it: session 4's path) and
'parts' (the trainer's writePendingFiles: each file's parts written by one writev in the thread pool while the main
thread hashes them). Wall seconds and the longest main-thread stall (event-loop delay, max) of each
write, medians; the files' SHA-256 must agree.
`;

/** A `preset` GPT and its engine after one step on random tokens (non-zero optimizer state). */
async function trainedEngine(preset: string, optimizer: string, weights: 'fp32' | 'split24') {
  const config = resolveConfig(preset as 'tiny');
  const model = createGPT(config);
  const opt = optimizerEntry(optimizer).create(optimizerEntry(optimizer).defaultLr, {});
  const split = weights === 'split24' ? split24() : undefined;
  const composition = composePlugins(split ? [opt, split] : [opt]);
  const engine = new TrainingEngine(model, {
    optimizer: composition.optimizer,
    ...(split ? { masterWeights: split } : {}),
  });
  // One step on random tokens: non-zero moments, so their stored (compressed) size is that of a training run.
  const batch = tf.tidy(() => {
    const ids = tf.randomUniform([1, 17], 0, config.vocabSize, 'int32', 1);
    return {
      inputs: tf.slice(ids, [0, 0], [1, 16]),
      targets: tf.slice(ids, [0, 1], [1, 16]),
    };
  });
  await engine.trainStep(batch);
  tf.dispose([batch.inputs, batch.targets]);
  return { config, model, engine, split };
}

/** Bytes of one checkpoint of `preset` with this optimizer and weight format, written to a temporary directory. */
async function checkpointBytes(preset: string, optimizer: string, weights: 'fp32' | 'split24') {
  const { config, model, engine, split } = await trainedEngine(preset, optimizer, weights);
  const dir = mkdtempSync(join(tmpdir(), 'kstar-bench-ckpt-'));
  const t0 = performance.now();
  const path = await saveCheckpoint(dir, 1, {
    engine,
    model,
    ...(split ? { split } : {}),
    trainer: {
      step: 1,
      samplerState: 0,
      schedule: { peakLr: 0, warmup: 0, totalSteps: 0 },
      config: { preset, optimizer, masterWeights: weights },
      model: { ...config },
      losses: [],
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const files = Object.fromEntries(readdirSync(path).map((f) => [f, statSync(join(path, f)).size]));
  rmSync(dir, { recursive: true, force: true });
  engine.dispose();
  split?.dispose();
  model.dispose();
  const bytes = Object.values(files).reduce((a, b) => a + b, 0);
  return {
    optimizer,
    weights,
    params: model.paramCount,
    bytes,
    bytesPerParam: bytes / model.paramCount,
    files,
    seconds,
  };
}

/**
 * The weights and AdamW state of `preset` after one step read twice: per tensor (`hostCopies`) and staged
 * (`stagedHostCopies`, twice: the second reuses the staging); every tensor's bytes compared.
 */
async function stagedRead(preset: string) {
  const { model, engine } = await trainedEngine(preset, 'adamw', 'fp32');
  const named: Array<[string, tf.Tensor]> = [...model.variables];
  for (const name of engine.stateNames()) {
    for (const [key, t] of Object.entries(engine.stateOf(name) ?? {})) named.push([`${name}::${key}`, t]);
  }
  const tensors = named.map(([, t]) => t);
  const timed = async <T>(f: () => Promise<T>) => {
    const t0 = performance.now();
    const out = await f();
    return { out, seconds: (performance.now() - t0) / 1000 };
  };
  const perTensor = await timed(() => hostCopies(tensors));
  const staged = [await timed(() => stagedHostCopies(tensors))];
  staged[0]!.out.release();
  staged.push(await timed(() => stagedHostCopies(tensors)));
  const mismatched = tensors
    .map((t, i) => ({ t, i }))
    .filter(({ i }) => Buffer.compare(perTensor.out[i]!.data, staged[1]!.out.copies[i]!.data) !== 0)
    .map(({ t, i }) => `${named[i]![0]} [${t.shape}]`);
  staged[1]!.out.release();
  const bytes = perTensor.out.reduce((a, c) => a + c.data.byteLength, 0);
  engine.dispose();
  model.dispose();
  return {
    tensors: tensors.length,
    bytes,
    equal: mismatched.length === 0,
    mismatched,
    perTensorSeconds: perTensor.seconds,
    stagedSeconds: staged.map((s) => s.seconds),
    perTensorGBps: bytes / perTensor.seconds / 1e9,
    stagedGBps: bytes / staged[1]!.seconds / 1e9,
  };
}

/** One checkpoint's files written both ways (see the help's `write`), alternating; medians and every round. */
async function writeCost(preset: string, rounds: number) {
  const { model, engine } = await trainedEngine(preset, 'adamw', 'fp32');
  const state: Array<[string, tf.Tensor]> = [];
  for (const name of engine.stateNames()) {
    for (const [key, t] of Object.entries(engine.stateOf(name) ?? {})) state.push([`${name}::${key}`, t]);
  }
  const files = [
    { path: MODEL_FILE, snapshot: await snapshotTensors([...model.variables], { format: 'float32' }) },
    { path: optimizerFile(0), snapshot: await snapshotTensors(state, { optimizer: 'adamw' }) },
  ];
  engine.dispose();
  model.dispose();
  const dir = mkdtempSync(join(tmpdir(), 'kstar-bench-write-'));
  const ways = {
    oneBuffer: (sub: string) =>
      Promise.all(
        files.map(async (f) => {
          const data = await encodePayloadInBackground(f.snapshot.entries, f.snapshot.metadata);
          const [, digest] = await Promise.all([
            writeFileAtomicInBackground(join(sub, f.path), data),
            sha256InBackground(data),
          ]);
          return digest;
        }),
      ),
    parts: async (sub: string) =>
      (
        await writePendingFiles(
          sub,
          files.map((f) => ({
            path: f.path,
            encode: () => encodePayloadPartsInBackground(f.snapshot.entries, f.snapshot.metadata),
          })),
        )
      ).map((m) => m.sha256),
  };
  const runs: Record<keyof typeof ways, Array<{ seconds: number; longestStallMs: number }>> = {
    oneBuffer: [],
    parts: [],
  };
  const digests = new Set<string>();
  for (let r = 0; r < rounds; r++) {
    for (const way of Object.keys(ways) as Array<keyof typeof ways>) {
      const sub = mkdtempSync(join(dir, `${way}-`));
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      const t0 = performance.now();
      const shas = await ways[way](sub);
      const seconds = (performance.now() - t0) / 1000;
      delay.disable();
      runs[way].push({ seconds, longestStallMs: delay.max / 1e6 });
      digests.add(shas.join());
      rmSync(sub, { recursive: true, force: true });
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const summary = (way: keyof typeof ways) => ({
    seconds: median(runs[way].map((x) => x.seconds)),
    longestStallMs: median(runs[way].map((x) => x.longestStallMs)),
  });
  const bytes = files.reduce(
    (n, f) => n + f.snapshot.entries.reduce((m, [, t]) => m + t.data.byteLength, 0),
    0,
  );
  return {
    bytes,
    rounds,
    sameHashes: digests.size === 1,
    median: { oneBuffer: summary('oneBuffer'), parts: summary('parts') },
    runs,
  };
}

/** `pnpm bench checkpoint size|cost|staged-read|write`. */
export async function benchCheckpoint(
  argv: string[],
  log: (line: string) => void,
): Promise<{ file: string; summary: string }> {
  const [kind, ...rest] = argv;
  const v = parseFlags(
    rest,
    [
      'json',
      'preset',
      'steps',
      'save-every',
      'batch',
      'seq',
      'backend',
      'optimizer',
      'master-weights',
      'rounds',
    ],
    "see 'pnpm bench checkpoint --help'",
  );
  if (!['size', 'cost', 'staged-read', 'write'].includes(kind ?? '') || typeof v.json !== 'string') {
    throw new InputError(
      `usage: ${BENCH_CHECKPOINT_HELP.split('\n')[0]} (or 'cost', 'staged-read', 'write'; got '${kind}')`,
      'E_FLAG',
    );
  }
  const machine = { ...machineInfo(), note: '2-core x86-64, shared with parallel jobs' };
  if (kind === 'staged-read') {
    const preset = (v.preset as string | undefined) ?? 'small';
    const backend = (v.backend as string | undefined) ?? 'cuda';
    resolveConfig(preset as 'tiny');
    await selectTrainerBackend(backend as 'cpu', { log });
    const r = await stagedRead(preset);
    writeFileAtomic(
      v.json,
      `${JSON.stringify({ benchmark: 'checkpoint-staged-read', command: `pnpm bench checkpoint ${argv.join(' ')}`, preset, backend: tf.getBackend(), machine: machineInfo(), ...r }, null, 2)}\n`,
    );
    const summary = `${r.tensors} tensors, ${(r.bytes / 1e6).toFixed(1)} MB: staged ${r.equal ? 'equal to' : 'DIFFERS from'} the per-tensor read; per tensor ${r.perTensorSeconds.toFixed(3)} s, staged ${r.stagedSeconds.map((s) => s.toFixed(3)).join(' / ')} s`;
    if (!r.equal) throw new Error(`${summary}: ${r.mismatched.join(', ')}`);
    return { file: v.json, summary };
  }
  if (kind === 'write') {
    const preset = (v.preset as string | undefined) ?? 'small';
    resolveConfig(preset as 'tiny');
    await selectBackend('cpu', { log });
    const rounds = v.rounds === undefined ? 5 : toNumber('rounds', String(v.rounds), true);
    const r = await writeCost(preset, rounds);
    writeFileAtomic(
      v.json,
      `${JSON.stringify({ benchmark: 'checkpoint-write', command: `pnpm bench checkpoint ${argv.join(' ')}`, preset, machine, ...r }, null, 2)}\n`,
    );
    const line = (w: { seconds: number; longestStallMs: number }) =>
      `${w.seconds.toFixed(3)} s (longest main-thread stall ${w.longestStallMs.toFixed(0)} ms)`;
    const summary = `${(r.bytes / 1e6).toFixed(1)} MB, medians of ${rounds}: one buffer ${line(r.median.oneBuffer)}, parts ${line(r.median.parts)}${r.sameHashes ? '' : '; HASHES DIFFER'}`;
    if (!r.sameHashes) throw new Error(summary);
    return { file: v.json, summary };
  }
  if (kind === 'size') {
    const preset = (v.preset as string | undefined) ?? 'gpt2-124m';
    resolveConfig(preset as 'tiny'); // an unknown preset is refused before the backend probe prints
    await selectBackend('cpu', { log });
    const adamw = await checkpointBytes(preset, 'adamw', 'fp32');
    log(`adamw fp32: ${adamw.bytes} bytes`);
    const compact = await checkpointBytes(preset, 'adam8bit', 'split24');
    const ratio = compact.bytes / adamw.bytes;
    writeFileAtomic(
      v.json,
      `${JSON.stringify({ benchmark: 'checkpoint-size', command: `pnpm pnpm bench checkpoint size --json ${v.json} --preset ${preset}`, preset, formatVersion: CHECKPOINT_FORMAT_VERSION, trainedSteps: 1, machine, rows: [adamw, compact], ratio, goal: 0.4, flashOptimRatio: 0.43 }, null, 2)}\n`,
    );
    return {
      file: v.json,
      summary: `adam8bit+split24 ${compact.bytes} bytes / adamw fp32 ${adamw.bytes} bytes = ${(100 * ratio).toFixed(1)}%`,
    };
  }
  const int = (flag: string, fallback: number) =>
    v[flag] === undefined ? fallback : toNumber(flag, String(v[flag]), true);
  const steps = int('steps', 100);
  const saveEvery = int('save-every', 25);
  const saveDir = mkdtempSync(join(tmpdir(), 'kstar-bench-cost-'));
  const settings = {
    preset: (v.preset as string | undefined) ?? 'small',
    backend: (v.backend as string | undefined) ?? 'cpu',
    steps,
    batch: int('batch', 8),
    ...(v.optimizer !== undefined ? { optimizer: String(v.optimizer) } : {}),
    ...(v['master-weights'] !== undefined ? { masterWeights: String(v['master-weights']) } : {}),
    ...(v.seq !== undefined ? { seq: int('seq', 0) } : {}),
    saveDir,
    saveEvery,
    keep: 2,
    sampleTokens: 0,
  };
  const progress = {
    write: (s: string) => {
      log(s.trimEnd());
      return true;
    },
  };
  const { report } = await benchRun(settings, progress);
  rmSync(saveDir, { recursive: true, force: true });
  const saveSeconds = report.checkpoints!.seconds;
  const share = saveSeconds / report.wallSeconds;
  writeFileAtomic(
    v.json,
    `${JSON.stringify(
      {
        benchmark: 'checkpoint-cost',
        command: `pnpm pnpm bench checkpoint cost ${rest.join(' ')}`,
        formatVersion: CHECKPOINT_FORMAT_VERSION,
        machine,
        settings: { ...settings, saveDir: undefined },
        checkpointsWritten: report.checkpoints!.saved.length,
        saveSeconds,
        wallSeconds: report.wallSeconds,
        trainSeconds: report.stepSeconds.reduce((a, b) => a + b, 0),
        share,
        goal: 0.05,
      },
      null,
      2,
    )}\n`,
  );
  return {
    file: v.json,
    summary: `${report.checkpoints!.saved.length} checkpoints: ${saveSeconds.toFixed(2)} s of ${report.wallSeconds.toFixed(1)} s (${(100 * share).toFixed(2)}%)`,
  };
}
