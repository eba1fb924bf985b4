import { readFileSync } from 'node:fs';
import { uniqueBufferBytes } from '@kstar/core';
import { randn32 as randn, rng } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { Adam8bit, adam8bit, adam8bitFromReferenceHparams, adam8bitUpdate } from '../src/index.ts';

interface Golden {
  shapes: Record<string, number[]>;
  init: Record<string, number[]>;
  grads: Record<string, number[]>[];
  runs: {
    optimizer: string;
    hparams: Record<string, number>;
    params_used: string[];
    after: { step: number; params: Record<string, number[]> }[];
  }[];
}
export const golden = JSON.parse(
  readFileSync(new URL('../../../fixtures/golden/optimizers.json', import.meta.url), 'utf8'),
) as Golden;

export function rms(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / x.length);
}
/** RMS(p − ref) / RMS(ref). */
export function rmsRelErr(p: ArrayLike<number>, ref: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < ref.length; i++) s += (p[i]! - ref[i]!) ** 2;
  return Math.sqrt(s / ref.length) / rms(ref);
}
/** max |p − ref| / RMS(ref). */
export function relErr(p: ArrayLike<number>, ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(p[i]! - ref[i]!));
  return m / rms(ref);
}

export { randn, rng };

const roleOf = (name: string, shape: number[]) =>
  name === 'E' ? 'embedding' : shape.length === 1 ? 'vector' : 'matrix';

/** Replays the golden AdamW run (torch.optim.AdamW) with the adam8bit plugin; errors after each recorded step. */
export async function replayGoldenAdamw(
  extra: Parameters<typeof adam8bitFromReferenceHparams>[1],
  prefix: string,
): Promise<{
  errors: Record<number, Record<string, number>>;
  rmsErrors10: Record<string, number>;
  worst10: number;
  worstRms10: number;
  quantized: string[];
}> {
  const run = golden.runs.find((r) => r.optimizer === 'adamw')!;
  const plugin = adam8bitFromReferenceHparams(run.hparams, extra);
  const names = run.params_used;
  const vars: Record<string, tf.Variable> = {};
  const states: Record<string, Record<string, tf.Tensor>> = {};
  for (const name of names) {
    const shape = golden.shapes[name]!;
    vars[name] = tf.tidy(() =>
      tf.variable(tf.tensor(golden.init[name]!, shape, 'float32'), true, `${prefix}/${name}`),
    );
    states[name] = plugin.init({ name: `${prefix}/${name}`, shape, role: roleOf(name, shape) });
  }
  const errors: Record<number, Record<string, number>> = {};
  let worst10 = 0;
  let worstRms10 = 0;
  const rmsErrors10: Record<string, number> = {};
  for (let t = 1; t <= golden.grads.length; t++) {
    for (const name of names) {
      const g = tf.tensor(golden.grads[t - 1]![name]!, golden.shapes[name]!, 'float32');
      plugin.update(vars[name]!, g, states[name]!, t);
      g.dispose();
    }
    const rec = run.after.find((a) => a.step === t);
    if (rec == null) continue;
    errors[t] = {};
    for (const name of names) {
      const e = relErr(await vars[name]!.data(), rec.params[name]!);
      errors[t]![name] = e;
      if (t === 10) {
        worst10 = Math.max(worst10, e);
        rmsErrors10[name] = rmsRelErr(await vars[name]!.data(), rec.params[name]!);
        worstRms10 = Math.max(worstRms10, rmsErrors10[name]!);
      }
    }
  }
  const quantized = names.filter((n) => 'c1' in states[n]!);
  for (const name of names) {
    tf.dispose(Object.values(states[name]!));
    vars[name]!.dispose();
  }
  return { errors, rmsErrors10, worst10, worstRms10, quantized };
}

const fmt = (r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `${k} ${v.toExponential(2)}`)
    .join(', ');

/** The acceptance test of the issue: 8-bit state everywhere (minQuantizedSize 0) within 2e-2 of RMS after 10 steps. */
export async function goldenCheck(backend: string): Promise<void> {
  const q = await replayGoldenAdamw({ minQuantizedSize: 0 }, `${backend}-golden8`);
  expect(q.quantized).toEqual(['W', 'b', 'T', 'E']);
  console.log(
    `[optim-adam8bit] ${backend}: golden adamw, 8-bit state on W b T E, step 10: RMS(Δp)/RMS(p) ${fmt(q.rmsErrors10)}; max|Δp|/RMS(p) ${fmt(q.errors[10]!)}; step 1 max ${fmt(q.errors[1]!)}`,
  );
  // The bar: RMS of the error within 2e-2 of the parameter RMS. The max over elements is reported, bounded looser:
  // in E (rows untouched for steps) v of an element can quantize to 0 while its m does not (bnb behaves the same).
  expect(q.worstRms10).toBeLessThanOrEqual(2e-2);
  expect(q.worst10).toBeLessThanOrEqual(5e-2);
  const qf = await replayGoldenAdamw({ minQuantizedSize: 0, impl: 'fallback' }, `${backend}-golden8f`);
  console.log(
    `[optim-adam8bit] ${backend}: same, tfjs-ops fallback, step 10: RMS ${fmt(qf.rmsErrors10)}; max ${fmt(qf.errors[10]!)}`,
  );
  expect(qf.worstRms10).toBeLessThanOrEqual(2e-2);
  expect(qf.worst10).toBeLessThanOrEqual(5e-2);
  // Default settings: every golden tensor is < 4096 elements, so float32 state = AdamW to float32 rounding.
  const f = await replayGoldenAdamw({}, `${backend}-golden32`);
  expect(f.quantized).toEqual([]);
  console.log(
    `[optim-adam8bit] ${backend}: golden adamw, default (float32 state below 4096): step 10 ${fmt(f.errors[10]!)}`,
  );
  expect(f.worst10).toBeLessThanOrEqual(1e-5);
}

/**
 * Independent float64 model of one 8-bit step (written from bnb's description, not from src/): argmin-|x − code|
 * nearest rounding with the golden maps, sign fix for m; returns new p and dequantized m, v.
 */
function reference8bitStep(
  p: Float64Array,
  g: Float32Array,
  m: Float64Array,
  v: Float64Array,
  B: number,
  hp: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number },
): void {
  const S = golden_maps().s;
  const U = golden_maps().u;
  const bc1 = 1 - hp.beta1 ** hp.step;
  const bc2 = 1 - hp.beta2 ** hp.step;
  const n = p.length;
  for (let i = 0; i < n; i++) {
    m[i] = hp.beta1 * m[i]! + (1 - hp.beta1) * g[i]!;
    v[i] = hp.beta2 * v[i]! + (1 - hp.beta2) * g[i]! * g[i]!;
    p[i] =
      p[i]! * (1 - hp.lr * hp.weightDecay) -
      (hp.lr / bc1) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(bc2) + hp.eps));
  }
  const requant = (x: Float64Array, map: number[], fix: boolean) => {
    for (let s = 0; s < n; s += B) {
      let a = 0;
      for (let i = s; i < Math.min(n, s + B); i++) a = Math.max(a, Math.abs(x[i]!));
      for (let i = s; i < Math.min(n, s + B); i++) {
        if (a === 0) continue;
        const y = x[i]! / a;
        let best = 0;
        for (let c = 1; c < 256; c++) if (Math.abs(map[c]! - y) < Math.abs(map[best]! - y)) best = c;
        if (fix && y < 0 && map[best]! >= 0) best -= 1;
        x[i] = map[best]! * a;
      }
    }
  };
  requant(m, S, true);
  requant(v, U, false);
}
let maps: { s: number[]; u: number[] } | undefined;
function golden_maps() {
  const raw = JSON.parse(
    readFileSync(new URL('../../../fixtures/golden/optimizers.json', import.meta.url), 'utf8'),
  ) as {
    quantization_maps: { dynamic_signed: number[]; dynamic_unsigned: number[] };
  };
  maps ??= {
    s: raw.quantization_maps.dynamic_signed.map(Math.fround),
    u: raw.quantization_maps.dynamic_unsigned.map(Math.fround),
  };
  return maps;
}

/**
 * Native kernel vs tfjs-ops fallback vs the float64 model, 5 steps on tensors with tails (n not a multiple of B or 4):
 * returns the worst max|p − p_ref| / RMS(p_ref) per implementation.
 */
export async function parityCheck(backend: string): Promise<void> {
  const hp = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
  const rows: string[] = [];
  for (const [n, B] of [
    [4099, 256],
    [1000, 64],
    [37, 16],
  ] as const) {
    const next = rng(n + B);
    const p0 = randn(next, n, 0.5);
    const grads = Array.from({ length: 5 }, () => randn(next, n, 0.01));
    const run = async (impl: 'auto' | 'fallback') => {
      const plugin = adam8bit({ ...hp, blockSize: B, minQuantizedSize: 0, impl });
      const p = tf.tidy(() => tf.variable(tf.tensor1d(p0.slice()), true, `${backend}-par-${impl}-${n}`));
      const s = plugin.init({ name: p.name, shape: [n], role: 'matrix' });
      for (let t = 1; t <= 5; t++) {
        const g = tf.tensor1d(grads[t - 1]!);
        plugin.update(p, g, s, t);
        g.dispose();
      }
      const out = Float32Array.from(await p.data());
      tf.dispose([p, ...Object.values(s)]);
      return out;
    };
    const native = await run('auto');
    const fallback = await run('fallback');
    const p = Float64Array.from(p0);
    const m = new Float64Array(n);
    const v = new Float64Array(n);
    for (let t = 1; t <= 5; t++) reference8bitStep(p, grads[t - 1]!, m, v, B, { ...hp, step: t });
    const eN = relErr(native, p);
    const eF = relErr(fallback, p);
    rows.push(
      `n ${n} B ${B}: native ${eN.toExponential(2)}, fallback ${eF.toExponential(2)}, native vs fallback ${relErr(native, fallback).toExponential(2)}`,
    );
    expect(eN).toBeLessThanOrEqual(1e-3);
    expect(eF).toBeLessThanOrEqual(1e-3);
  }
  console.log(`[optim-adam8bit] ${backend}: 5 steps vs float64 model (max|Δp|/RMS): ${rows.join('; ')}`);
}

/** Measured unique state bytes = stateBytes, for 8-bit, float32 and embedding cases. */
export function stateBytesCheck(): void {
  const cases: [number[], 'matrix' | 'vector' | 'embedding', Record<string, unknown>][] = [
    [[64, 64], 'matrix', {}],
    [[4099], 'vector', {}],
    [[4095], 'vector', {}],
    [[50, 16], 'embedding', { minQuantizedSize: 0 }],
    [[50, 16], 'embedding', { minQuantizedSize: 0, float32Embeddings: true }],
    [[7, 3, 5], 'matrix', { minQuantizedSize: 0, blockSize: 64 }],
  ];
  for (const [shape, role, o] of cases) {
    const plugin = adam8bit(o);
    const s = plugin.init({ name: `bytes-${shape}-${role}`, shape, role });
    const n = shape.reduce((a, b) => a * b, 1);
    const measured = uniqueBufferBytes(Object.values(s));
    expect(measured).toBe(plugin.stateBytes(shape, role));
    const q = 'c1' in s;
    const B = (o.blockSize as number) ?? 256;
    expect(measured).toBe(q ? 2 * 4 * Math.ceil(n / 4) + 2 * 4 * Math.ceil(n / B) : 8 * n);
    // stays true after an update (in place: same buffers)
    const p = tf.tidy(() =>
      tf.variable(tf.ones(shape), true, `bytes-p-${shape}-${role}-${JSON.stringify(o)}`),
    );
    const g = tf.fill(shape, 0.1);
    plugin.update(p, g, s, 1);
    expect(uniqueBufferBytes(Object.values(s))).toBe(measured);
    tf.dispose([p, g, ...Object.values(s)]);
  }
}

/** NaN/Inf gradient elements: p unchanged there, their states zero; others update normally. */
export async function nanCheck(impl: 'auto' | 'fallback'): Promise<void> {
  const plugin = adam8bit({ lr: 0.1, minQuantizedSize: 0, blockSize: 4, impl });
  const p = tf.tidy(() => tf.variable(tf.ones([8]), true, `nan-p-${impl}-${tf.getBackend()}`));
  const s = plugin.init({ name: p.name, shape: [8], role: 'vector' });
  const g = tf.tensor1d([1, Number.NaN, -1, Number.POSITIVE_INFINITY, 0.5, 0.5, 0.5, 0.5]);
  plugin.update(p, g, s, 1);
  const got = Array.from(await p.data());
  expect(got[1]).toBe(1);
  expect(got[3]).toBe(1);
  expect(got[0]).toBeCloseTo(0.9, 5);
  expect(got[2]).toBeCloseTo(1.1, 5);
  expect(Array.from(await s.a1!.data()).every(Number.isFinite)).toBe(true);
  tf.dispose([p, g, ...Object.values(s)]);
}

/** save (getWeights) → fresh optimizer → setWeights → step: bit-identical to the uninterrupted optimizer. */
export async function resumeCheck(prefix: string): Promise<void> {
  const next = rng(5);
  const shapes = { W: [80, 64], b: [64], E: [33, 130] };
  const make = (tag: string) => {
    const vs: Record<string, tf.Variable> = {};
    for (const [k, shape] of Object.entries(shapes)) {
      const init = randn(
        rng(shape[0]!),
        shape.reduce((a, b) => a * b, 1),
        0.3,
      );
      vs[k] = tf.tidy(() => tf.variable(tf.tensor(init, shape), true, `${prefix}-${tag}/${k}`));
    }
    return vs;
  };
  const grads = Array.from({ length: 4 }, () =>
    Object.fromEntries(
      Object.entries(shapes).map(([k, s]) => [
        k,
        randn(
          next,
          s.reduce((a, b) => a * b, 1),
          0.05,
        ),
      ]),
    ),
  );
  const apply = (opt: Adam8bit, vs: Record<string, tf.Variable>, t: number) => {
    const map: tf.NamedTensorMap = {};
    for (const [k, v] of Object.entries(vs)) map[v.name] = tf.tensor(grads[t]![k]!, v.shape);
    opt.applyGradients(map);
    tf.dispose(Object.values(map));
  };
  const a = make('a');
  const optA = new Adam8bit({ lr: 1e-2, weightDecay: 0.01 });
  for (let t = 0; t < 3; t++) apply(optA, a, t);
  // Save: weights with names keyed by variable; copy the values (a checkpoint on disk).
  const saved = (await optA.getWeights()).map((w) => ({
    name: w.name.replace(`${prefix}-a/`, `${prefix}-b/`),
    tensor: tf.clone(w.tensor),
  }));
  expect(saved.map((w) => w.name)).toContain(`${prefix}-b/W/c1`);
  expect(saved.find((w) => w.name === `${prefix}-b/W/c1`)!.tensor.dtype).toBe('int32');
  const b = make('b');
  // A copy (assign would share a's buffer: on cpu tensors keep the array they are given).
  for (const k of Object.keys(shapes)) {
    const copy = tf.tensor((await a[k]!.data()).slice(), a[k]!.shape);
    b[k]!.assign(copy);
    copy.dispose(); // b must hold its buffer alone (refCount 1), or the update takes the fallback path
  }
  const optB = new Adam8bit({ lr: 1e-2, weightDecay: 0.01 });
  await optB.setWeights(saved);
  tf.dispose(saved.map((w) => w.tensor));
  expect(optB.iterations).toBe(3);
  apply(optA, a, 3);
  apply(optB, b, 3);
  for (const k of Object.keys(shapes)) {
    const da = await a[k]!.data();
    const db = await b[k]!.data();
    let diff = 0;
    for (let i = 0; i < da.length; i++) if (da[i] !== db[i]) diff++;
    if (diff) console.log(`resume ${k}: ${diff} differ`);
    expect(Array.from(db)).toEqual(Array.from(da));
    const sa = optA.stateOf(a[k]!.name)!;
    const sb = optB.stateOf(b[k]!.name)!;
    for (const key of Object.keys(sa))
      expect(Array.from(await sb[key]!.data())).toEqual(Array.from(await sa[key]!.data()));
  }
  optA.dispose();
  optB.dispose();
  tf.dispose([...Object.values(a), ...Object.values(b)]);
}

/**
 * The cases each native backend runs after its golden check: native kernel and fallback against the float64 model;
 * state bytes, NaN gradients and save → resume.
 */
export function itChecksParityAndState(backend: 'wasm' | 'webgpu'): void {
  it('native kernel and fallback vs the float64 model', async () => {
    await parityCheck(backend);
  });
  it('state bytes, NaN gradients, resume', async () => {
    stateBytesCheck();
    await nanCheck('auto');
    await resumeCheck(`${backend}-resume`);
  });
}

export { adam8bitUpdate };
