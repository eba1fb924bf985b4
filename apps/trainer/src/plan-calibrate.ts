import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { compress } from '@kstar/act-compress';
import type { Batch, ModelOps, OptimizerPlugin } from '@kstar/core';
import type { GPTModel } from '@kstar/gpt';
import { offloadCodec } from '@kstar/offload';
import { Calibration, type CalibrationData, medianMs } from '@kstar/planner';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from './atomic-write.ts';
import { machineInfo } from './machine.ts';
import {
  modelOpsOf,
  type OpsChoice,
  opsOptions,
  type PlanSpace,
  type StepCosts,
  type Store,
  storeBytes,
} from './plan-space.ts';
import { placedOptimizer, type StateChoice, type StateGroup } from './plan-state.ts';

/** Where measured op times are cached: `KSTAR_CALIBRATION_CACHE`, default `~/.cache/kstar/calibration.json`. */
export function calibrationPath(): string {
  return process.env.KSTAR_CALIBRATION_CACHE ?? join(homedir(), '.cache', 'kstar', 'calibration.json');
}

export function loadCalibration(path = calibrationPath()): Calibration {
  if (!existsSync(path)) return new Calibration();
  return new Calibration(JSON.parse(readFileSync(path, 'utf8')) as CalibrationData);
}

export function saveCalibration(c: Calibration, path = calibrationPath()): void {
  if (c.measured.length === 0) return;
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, `${JSON.stringify(c.toJSON(), null, 1)}\n`);
}

/** Wait for a tensor's values (WebGPU has no synchronous read-back in Node). */
async function settle(t: tf.Tensor): Promise<void> {
  await t.data();
}

/**
 * Forward and forward+backward milliseconds of the embedding, one block (the blocks are alike) and the head of
 * `model` at [batch, seq] with `ops`, each the median of 3 timed runs after a warm-up.
 */
async function stageTimes(model: GPTModel, batch: number, seq: number, ops: ModelOps) {
  const { nEmbd: D, vocabSize: V, nLayer } = model.config;
  const params = model.paramRecord();
  const b: Batch = {
    inputs: tf.randomUniform([batch, seq], 0, V, 'int32', 1),
    targets: tf.randomUniform([batch, seq], 0, V, 'int32', 2),
  };
  const h = tf.randomNormal([batch, seq, D], 0, 1, 'float32', 3); // [B, T, D]
  const dy = tf.onesLike(h);
  const forward: number[] = [];
  const forwardBackward: number[] = [];
  try {
    for (const i of [0, 1, nLayer + 1]) {
      const stage = model.stages[i]!;
      const x = i === 0 ? b.inputs : h;
      const names = [...new Set(stage.params)];
      const f = await medianMs(async () => {
        const y = tf.tidy(() => stage.forward(x, params, b, ops));
        await settle(y);
        y.dispose();
      });
      const fb = await medianMs(async () => {
        const wrtX = i !== 0;
        const fn = (...args: tf.Tensor[]) => {
          const ps: Record<string, tf.Tensor> = { ...params };
          const vals = wrtX ? args.slice(1) : args;
          names.forEach((n, k) => {
            ps[n] = vals[k]!;
          });
          return stage.forward(wrtX ? args[0]! : x, ps, b, ops);
        };
        const args = [...(wrtX ? [x] : []), ...names.map((n) => params[n]!)];
        const { value, grads } = tf.valueAndGrads(fn)(args, i === nLayer + 1 ? undefined : dy);
        await settle(grads[grads.length - 1]!);
        tf.dispose([value, ...grads]);
      });
      forward.push(f);
      forwardBackward.push(fb);
    }
  } finally {
    tf.dispose([b.inputs, b.targets, h, dy]);
  }
  // [embedding, one block, head]
  return { forward, forwardBackward };
}

/** Milliseconds to store and bring back one [B, T, D] input. */
async function storeTime(store: Exclude<Store, 'float32'>, shape: number[]): Promise<number> {
  const codec = store === 'offload' ? offloadCodec : compress({ format: store }).codec;
  const x = tf.randomNormal(shape, 0, 1, 'float32', 4);
  try {
    return await medianMs(async () => {
      const saved = codec.encode(x);
      await saved.settled?.();
      const y = saved.decode();
      await settle(y);
      y.dispose();
      saved.dispose();
    });
  } finally {
    x.dispose();
  }
}

/**
 * The step costs of every option of `space` for `model` at [batch, seq] on the current backend: read from the
 * cache when this machine measured them before, measured (and cached) otherwise.
 */
export async function calibrate(
  model: GPTModel,
  batch: number,
  seq: number,
  space: PlanSpace,
  cache: Calibration,
): Promise<StepCosts> {
  const c = model.config;
  const m = machineInfo();
  const prefix = `${m.cpuModel} ×${m.cpus}|${tf.getBackend()}|L${c.nLayer} D${c.nEmbd} H${c.nHead} V${c.vocabSize}|B${batch} T${seq}`;
  const ops = opsOptions(c, space);
  const stages: StepCosts['stages'] = {};
  for (const o of ops) {
    if (o.slot !== 'ops') continue;
    const ops: OpsChoice = o.ops;
    // [embedding, one block, head], forward and forward+backward
    const fKeys = ['embed', 'block', 'head'].map((k) => `${prefix}|${o.label}|forward ${k}`);
    const fbKeys = ['embed', 'block', 'head'].map((k) => `${prefix}|${o.label}|forward+backward ${k}`);
    let measured: { forward: number[]; forwardBackward: number[] } | undefined;
    const measure = async () => {
      measured ??= await stageTimes(model, batch, seq, modelOpsOf(c, batch * seq, ops));
      return measured;
    };
    const f: number[] = [];
    const fb: number[] = [];
    for (let k = 0; k < 3; k++) {
      f.push(await cache.time(fKeys[k]!, async () => (await measure()).forward[k]!));
      fb.push(await cache.time(fbKeys[k]!, async () => (await measure()).forwardBackward[k]!));
    }
    // Stage order: embedding, nLayer blocks, head.
    const expand = (t: number[]) => [t[0]!, ...Array.from({ length: c.nLayer }, () => t[1]!), t[2]!];
    stages[o.label] = { forward: expand(f), forwardBackward: expand(fb) };
  }
  const shape = [batch, seq, c.nEmbd];
  const store: StepCosts['store'] = { float32: 0, bf16: 0, int8: 0, offload: 0 };
  for (const s of [...space.compress, ...(space.offload ? (['offload'] as const) : [])]) {
    store[s] = await cache.time(`${prefix}|store ${s} ${storeBytes(s, shape)}`, () => storeTime(s, shape));
  }
  return { stages, store };
}

/**
 * Milliseconds of one group's updates with its state placed per `choice` (upload, update and copy-out landed for
 * offload), the median of 3 after a warm-up, on `model`'s parameters (a probe model: they change).
 */
async function stateUpdateTime(
  model: GPTModel,
  base: OptimizerPlugin,
  group: StateGroup,
  choice: StateChoice,
): Promise<number> {
  const placed = placedOptimizer(base, new Map(group.params.map((n) => [n, choice])));
  const vars = group.params.map((n) => model.variables.get(n)!);
  const states = group.params.map((n) => placed.init(model.paramInfo(n)));
  const grads = vars.map((v, k) => tf.randomNormal(v.shape, 0, 1e-3, 'float32', 5 + k));
  let step = 0;
  try {
    return await medianMs(async () => {
      step++;
      for (const [k, v] of vars.entries()) placed.update(v, grads[k]!, states[k]!, step);
      await settle(vars.at(-1)!);
      await placed.settled();
    });
  } finally {
    tf.dispose(grads);
    for (const s of states) tf.dispose(Object.values(s));
    placed.dispose();
  }
}

/** Per group, the update ms of each placement in `space.state` (groups of equal shapes measured once, cached). */
export async function calibrateState(
  model: GPTModel,
  base: OptimizerPlugin,
  groups: readonly StateGroup[],
  space: PlanSpace,
  cache: Calibration,
): Promise<NonNullable<StepCosts['state']>> {
  const m = machineInfo();
  const prefix = `${m.cpuModel} ×${m.cpus}|${tf.getBackend()}|${base.name}`;
  const out: NonNullable<StepCosts['state']> = [];
  for (const g of groups) {
    const shapes = g.params.map((n) => model.variables.get(n)!.shape.join('×')).join(',');
    const times: Partial<Record<StateChoice, number>> = {};
    for (const choice of space.state)
      times[choice] = await cache.time(`${prefix}|state ${choice} [${shapes}]`, () =>
        stateUpdateTime(model, base, g, choice),
      );
    out.push(times);
  }
  return out;
}
