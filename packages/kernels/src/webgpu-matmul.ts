import * as tf from '@tensorflow/tfjs-core';
import { kernelOverride } from './kernel-override.ts';
import type { FusedBackend } from './row-program.ts';
import { absMaxOnDevice } from './webgpu-absmax.ts';
import { deviceSubgroupMatrixSupport, webgpuMatMulPrecision } from './webgpu-f16-support.ts';
import {
  F16_TILES,
  type F16MatMulSpec,
  type F16TileName,
  f16MatMulProgram,
  isF16TileName,
} from './webgpu-matmul-f16-program.ts';
import {
  type MatMulActivation,
  type MatMulProgramSpec,
  matMulProgram,
  matMulUniforms,
  splitKReduceProgram,
  splitKReduceUniforms,
} from './webgpu-matmul-program.ts';
import {
  chooseF16Tile,
  chooseMatMulSplit,
  chooseMatMulTile,
  isMatMulTileName,
  MATMUL_TILES,
  type MatMulTileName,
  matMulPrefersTfjs,
} from './webgpu-matmul-tiles.ts';
import { flat, type WebGPUBackendLike } from './wgsl.ts';

/**
 * K*'s register-tiled matmul (webgpu-matmul-program.ts) installed over tfjs-backend-webgpu's `BatchMatMul` and
 * `_FusedMatMul`. tfjs 4.22 picks its program by workgroup count (the packed program only above a threshold) and
 * reads a transposed B column by column, so every dx = dy·Wᵀ and attention's q·kᵀ ran at a tenth of the forward
 * products; this kernel reads every transpose combination coalesced, for any batch (one side may broadcast), with
 * the bias and activation of `_FusedMatMul` applied before the single write. Calls it does not handle (int32, prelu,
 * a bias that is not per column, batch shapes that broadcast both ways, more than 65,535 workgroups in a dimension,
 * and the thin long-K products tfjs's program measured faster on, `matMulPrefersTfjs`) go to tfjs's own kernel.
 *
 * `KSTAR_WEBGPU_MATMUL=tfjs` keeps tfjs's kernels (the "before" of benchmarks); `KSTAR_WEBGPU_MATMUL=<tile>` (large,
 * wide, medium, small) forces one tile; unset or `kstar` chooses per shape (webgpu-matmul-tiles.ts).
 *
 * With the f16-mixed precision (`--matmul-precision f16-mixed`, webgpu-f16-support.ts) and an adapter offering
 * subgroup matrices, the same calls run webgpu-matmul-f16-program.ts on tensor cores instead (`counts.f16`).
 */
const counts = { kstar: 0, tfjs: 0, f16: 0 };
let f16Logged = false;
let forcedTile: MatMulTileName | null = null;
let forcedF16Tile: F16TileName | null = null;

const ACTIVATIONS = new Set<string>(['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu']);
const MAX_WORKGROUPS_PER_DIM = 65_535;

type Info = tf.TensorInfo;
interface MatMulAttrs {
  transposeA?: boolean;
  transposeB?: boolean;
  activation?: string | null;
  leakyreluAlpha?: number;
}

function envSetting(): string {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return (env?.KSTAR_WEBGPU_MATMUL ?? 'kstar').trim();
}

/** Reads `KSTAR_WEBGPU_MATMUL`: 'kstar' (choose per shape), 'tfjs' (keep tfjs's kernels) or a tile name. */
export function webgpuMatMulSetting(value: string = envSetting()): {
  impl: 'kstar' | 'tfjs';
  tile: MatMulTileName | null;
} {
  if (value === '' || value === 'kstar') return { impl: 'kstar', tile: null };
  if (value === 'tfjs') return { impl: 'tfjs', tile: null };
  if (isMatMulTileName(value)) return { impl: 'kstar', tile: value };
  throw new Error(
    `KSTAR_WEBGPU_MATMUL must be kstar, tfjs or a tile (${Object.keys(MATMUL_TILES).join(', ')}); got '${value}'`,
  );
}

/**
 * Forces one tile for every product (benchmarks compare tiles): a float32 tile name, or `f16-<tile>` for the f16
 * program's; `null` goes back to the per-shape choice for both.
 */
export function forceWebGPUMatMulTile(tile: MatMulTileName | `f16-${F16TileName}` | null): void {
  forcedTile = null;
  forcedF16Tile = null;
  if (tile === null) return;
  if (tile.startsWith('f16-')) {
    const name = tile.slice('f16-'.length);
    if (!isF16TileName(name))
      throw new Error(`unknown f16 matmul tile '${name}': use one of ${Object.keys(F16_TILES).join(', ')}`);
    forcedF16Tile = name;
  } else if (isMatMulTileName(tile)) forcedTile = tile;
  else throw new Error(`unknown matmul tile '${tile}': use one of ${Object.keys(MATMUL_TILES).join(', ')}`);
}

/** How many products K*'s kernel computed and how many it handed to tfjs's, since the process started. */
export function webgpuMatMulCounts(): { kstar: number; tfjs: number; f16: number } {
  return { ...counts };
}

function batchOf(shape: number[]): number {
  let p = 1;
  for (let i = 0; i < shape.length - 2; i++) p *= shape[i]!;
  return p;
}

/** A call K*'s kernels compute: the float32 register-tiled program or the f16 subgroup-matrix one. */
export type MatMulPlan = { outShape: number[]; batchA: number; batchB: number } & (
  | { kind: 'f32'; spec: MatMulProgramSpec }
  | { kind: 'f16'; spec: F16MatMulSpec }
);

/**
 * Whether this backend's matmuls run f16-mixed: the precision asks for it and the device has subgroup matrices.
 * Logs once which way it went.
 */
export function webgpuMatMulUsesF16(backend: unknown): boolean {
  if (webgpuMatMulPrecision() !== 'f16-mixed') return false;
  const support = deviceSubgroupMatrixSupport((backend as { device?: object }).device);
  if (!f16Logged) {
    f16Logged = true;
    console.warn(
      support.ok
        ? `f16-mixed matmul: ${support.reason}`
        : `f16-mixed matmul unavailable: ${support.reason}; matmuls stay float32`,
    );
  }
  return support.ok;
}

/** The program spec for a call, or null when tfjs's kernel must take it (see the file comment). */
export function planWebGPUMatMul(
  a: Info,
  b: Info,
  bias: Info | undefined,
  attrs: MatMulAttrs,
  options: { f16?: boolean } = {},
): MatMulPlan | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || (bias && bias.dtype !== 'float32')) return null;
  if (a.shape.length < 2 || b.shape.length < 2) return null;
  const activation = attrs.activation ?? 'linear';
  if (!ACTIVATIONS.has(activation)) return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const tA = !!attrs.transposeA;
  const tB = !!attrs.transposeB;
  const m = tA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = tA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const n = tB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if ((tB ? b.shape[rb - 1] : b.shape[rb - 2]) !== k) return null; // tfjs's kernel reports the mismatch
  const batchA = batchOf(a.shape);
  const batchB = batchOf(b.shape);
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  } catch {
    return null;
  }
  const batch = Math.max(batchA, batchB);
  // Broadcasting one side whole (or none); [2, 1] against [1, 3] needs per-dimension strides: tfjs's kernel.
  if (!(batchA === batchB || batchA === 1 || batchB === 1) || tf.util.sizeFromShape(outer) !== batch)
    return null;
  if (m === 0 || n === 0 || k === 0 || batch === 0) return null;
  if (batch * m * n >= 2 ** 31 || batchA * m * k >= 2 ** 31 || batchB * k * n >= 2 ** 31) return null;
  let biasKind: MatMulProgramSpec['bias'] = 'none';
  if (bias) {
    const size = tf.util.sizeFromShape(bias.shape);
    const lastIsColumn = bias.shape.length >= 1 && bias.shape[bias.shape.length - 1] === n && size === n;
    if (size === 1) biasKind = 'scalar';
    else if (lastIsColumn) biasKind = 'column';
    else return null;
  }
  const forced = forcedTile ?? webgpuMatMulSetting().tile;
  // Thin long-K products (attention's probs·v) run faster on tfjs's float32 program than on either of K*'s.
  if (!forced && !forcedF16Tile && matMulPrefersTfjs(m, n, k)) return null;
  if (options.f16) {
    const auto = chooseF16Tile(batch, m, n, k);
    // A forced tile (benchmarks) keeps the split-K the per-shape choice gives `large`.
    const choice = forcedF16Tile
      ? { tile: forcedF16Tile, splits: auto.tile === 'large' ? auto.splits : 1 }
      : auto;
    const t = F16_TILES[choice.tile];
    if (Math.ceil(n / t.tn) > MAX_WORKGROUPS_PER_DIM || Math.ceil(m / t.tm) > MAX_WORKGROUPS_PER_DIM)
      return null;
    if (batch * choice.splits > MAX_WORKGROUPS_PER_DIM) return null;
    const f16: F16MatMulSpec = {
      tile: t,
      transposeA: tA,
      transposeB: tB,
      m,
      n,
      k,
      batch,
      splits: choice.splits,
      bias: biasKind,
      activation: activation as MatMulActivation,
    };
    return { kind: 'f16', spec: f16, outShape: [...outer, m, n], batchA, batchB };
  }
  const split = forced ? null : chooseMatMulSplit(batch, m, n, k);
  const tile = MATMUL_TILES[forced ?? split?.tile ?? chooseMatMulTile(batch, m, n)];
  const splits = split?.splits ?? 1;
  if (
    Math.ceil(n / tile.tn) > MAX_WORKGROUPS_PER_DIM ||
    Math.ceil(m / tile.tm) > MAX_WORKGROUPS_PER_DIM ||
    batch * splits > MAX_WORKGROUPS_PER_DIM
  )
    return null;
  return {
    kind: 'f32',
    spec: {
      tile,
      transposeA: tA,
      transposeB: tB,
      m,
      n,
      k,
      batch,
      splits,
      bias: biasKind,
      activation: activation as MatMulActivation,
    },
    outShape: [...outer, m, n],
    batchA,
    batchB,
  };
}

/** K*'s program for the calls it handles (`planWebGPUMatMul`), `original` (tfjs's kernel) for the others. */
function kstarMatMul(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const inputs = args.inputs as { a: Info; b: Info; bias?: Info; preluActivationWeights?: Info };
    const attrs = args.attrs as MatMulAttrs;
    const f16 = webgpuMatMulUsesF16(args.backend);
    const plan = inputs.preluActivationWeights
      ? null
      : planWebGPUMatMul(inputs.a, inputs.b, inputs.bias, attrs, { f16 });
    if (!plan) {
      counts.tfjs++;
      return original(args);
    }
    counts.kstar++;
    if (plan.kind === 'f16') counts.f16++;
    const program = (s: typeof plan.spec) =>
      plan.kind === 'f16' ? f16MatMulProgram(s as F16MatMulSpec) : matMulProgram(s as MatMulProgramSpec);
    const backend = args.backend as unknown as WebGPUBackendLike;
    const bound = [flat(inputs.a), flat(inputs.b)];
    if (inputs.bias) bound.push(flat(inputs.bias));
    // f16: each operand's max |x| (1-element tensors on the GPU) sets its power-of-two scale in the program.
    const scales =
      plan.kind === 'f16'
        ? [
            absMaxOnDevice(backend, flat(inputs.a) as Parameters<typeof absMaxOnDevice>[1]),
            absMaxOnDevice(backend, flat(inputs.b) as Parameters<typeof absMaxOnDevice>[1]),
          ]
        : [];
    const release = () => {
      for (const x of scales) (backend as unknown as FusedBackend).disposeData(x.dataId);
    };
    const alpha = attrs.leakyreluAlpha ?? 0.2;
    const spec = plan.spec;
    if (spec.splits === 1) {
      const out = backend.runWebGPUProgram(
        program(spec),
        [...bound, ...scales],
        'float32',
        matMulUniforms(spec, plan.batchA, plan.batchB, alpha),
      );
      release();
      return { dataId: out.dataId, shape: plan.outShape, dtype: 'float32' }; // [...batch, m, n]
    }
    // Split-K: partial products [batch, splits, m, n] without bias or activation, then their sum with both.
    const partialSpec: typeof spec = { ...spec, bias: 'none', activation: 'linear' };
    const partial = backend.runWebGPUProgram(
      program(partialSpec),
      [...bound.slice(0, 2), ...scales],
      'float32',
      matMulUniforms(partialSpec, plan.batchA, plan.batchB, alpha),
    );
    const reduceInputs = inputs.bias ? [partial, flat(inputs.bias)] : [partial];
    const out = backend.runWebGPUProgram(
      splitKReduceProgram(spec),
      reduceInputs,
      'float32',
      splitKReduceUniforms(spec, alpha),
    );
    (backend as unknown as FusedBackend).disposeData(partial.dataId);
    release();
    return { dataId: out.dataId, shape: plan.outShape, dtype: 'float32' };
  };
}

const override = kernelOverride('webgpuMatMul', 'webgpu', ['BatchMatMul', '_FusedMatMul'], kstarMatMul);

/**
 * Installs K*'s matmul over the webgpu backend's `BatchMatMul` and `_FusedMatMul` (idempotent; a no-op before
 * tfjs-backend-webgpu registered its kernels, or when `KSTAR_WEBGPU_MATMUL=tfjs`).
 */
export function registerWebGPUMatMul(): void {
  if (webgpuMatMulSetting().impl === 'tfjs') return;
  override.install();
}

/** Puts tfjs's own webgpu matmul kernels back (benchmarks compare both; `registerWebGPUMatMul` reinstalls). */
export function unregisterWebGPUMatMul(): void {
  override.restore();
}
