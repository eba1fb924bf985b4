import { InputError, ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { customOp } from './custom-op.ts';
import { defineKernel } from './define-kernel.ts';
import {
  FLASH_ROWS,
  type FlashShape,
  flashDkvProgram,
  flashDqProgram,
  flashForwardProgram,
  flashHeadDimOk,
  flashRowDotProgram,
  flashUniforms,
  keyTile,
  queryTile,
} from './flash-attention-program.ts';
import { chain, shaped } from './row-program.ts';
import { flat } from './wgsl.ts';

/**
 * Fused causal attention (flash-style): o = softmax(scale·q·kᵀ + causal mask)·v without the [Tq, Tk] scores.
 * q [B, H, Tq, hd], k and v [B, H, Tk, hd]; query row i is position `queryOffset + i` and sees keys j ≤ queryOffset + i
 * (queryOffset = Tk − Tq for the last query chunk of a sequence, 0 for the whole sequence).
 *
 * - `KstarFlashAttention`: q, k, v → o [B, H, Tq, hd] and lse [B, H, Tq] (the row log-sum-exp of the scaled, masked
 *   scores). WebGPU: one dispatch (online softmax), o and lse written to one buffer, then sliced.
 * - `KstarFlashAttentionGrad`: q, k, v, o, lse, do → dq, dk, dv. WebGPU: D = rowsum(do∘o), then dq (one thread per
 *   query) and dk with dv in one pass over the query tiles (one thread per key; p = exp(scale·q·k − lse) recomputed
 *   in registers once for both), or dk and dv in two programs with `KSTAR_FLASH_DKV=split`.
 * - The tfjs-ops fallback (every other backend, and head dims the native kernel does not take) materialises the
 *   scores: it is the reference, not a memory saving.
 * - `flashAttention(q, k, v, {scale, queryOffset})`: the differentiable op; the tape keeps q, k, v, o and lse.
 */
export interface FlashAttentionArgs {
  q: tf.Tensor; // [B, H, Tq, hd]
  k: tf.Tensor; // [B, H, Tk, hd]
  v: tf.Tensor; // [B, H, Tk, hd]
  scale: number;
  queryOffset: number;
}
export interface FlashAttentionResult {
  o: tf.Tensor; // [B, H, Tq, hd]
  lse: tf.Tensor; // [B, H, Tq]
}
export interface FlashAttentionGradArgs extends FlashAttentionArgs {
  o: tf.Tensor; // [B, H, Tq, hd]
  lse: tf.Tensor; // [B, H, Tq]
  dO: tf.Tensor; // [B, H, Tq, hd]
}
export interface FlashAttentionGrads {
  dq: tf.Tensor;
  dk: tf.Tensor;
  dv: tf.Tensor;
}

/** Additive mask [Tq, Tk]: 0 where key j ≤ off + i, −1e9 elsewhere (exp gives exactly 0 there). */
function maskTensor(tq: number, tk: number, off: number): tf.Tensor {
  const m = new Float32Array(tq * tk);
  for (let i = 0; i < tq; i++) for (let j = off + i + 1; j < tk; j++) m[i * tk + j] = -1e9;
  return tf.tensor2d(m, [tq, tk]);
}

/** Scaled, masked scores [B, H, Tq, Tk] (fallback only). */
function maskedScores(q: tf.Tensor, k: tf.Tensor, scale: number, off: number): tf.Tensor {
  const mask = maskTensor(q.shape[2]!, k.shape[2]!, off);
  const s = chain(
    chain(tf.matMul(q, k, false, true), (t) => tf.mul(t, scale)),
    (t) => tf.add(t, mask),
  );
  mask.dispose();
  return s;
}

export function flashOps({ q, k, v, scale, queryOffset }: FlashAttentionArgs): FlashAttentionResult {
  return tf.tidy(() => {
    const s = maskedScores(q, k, scale, queryOffset); // [B, H, Tq, Tk]
    const lse = tf.logSumExp(s, -1); // [B, H, Tq]
    const p = chain(s, (t) => tf.exp(tf.sub(t, tf.expandDims(lse, -1)))); // [B, H, Tq, Tk]
    return { o: tf.matMul(p, v), lse };
  }) as FlashAttentionResult;
}

export function flashGradOps({
  q,
  k,
  v,
  o,
  lse,
  dO,
  scale,
  queryOffset,
}: FlashAttentionGradArgs): FlashAttentionGrads {
  return tf.tidy(() => {
    const p = chain(maskedScores(q, k, scale, queryOffset), (t) => tf.exp(tf.sub(t, tf.expandDims(lse, -1))));
    const dv = tf.matMul(p, dO, true, false); // [B, H, Tk, hd]
    const d = tf.sum(tf.mul(dO, o), -1, true); // [B, H, Tq, 1]
    const ds = tf.mul(tf.mul(p, tf.sub(tf.matMul(dO, v, false, true), d)), scale); // [B, H, Tq, Tk]
    return { dq: tf.matMul(ds, k), dk: tf.matMul(ds, q, true, false), dv };
  }) as FlashAttentionGrads;
}

/**
 * Whether the WGSL unrolls the head-dimension loops: `KSTAR_FLASH_UNROLL=1` (or `0`); default off, since Mesa lavapipe
 * (CI) compiles the unrolled hd = 64 programs for minutes.
 */
export function flashUnroll(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.KSTAR_FLASH_UNROLL === '1';
}

/**
 * Rows (threads) per workgroup of the fused attention's programs: `KSTAR_FLASH_ROWS` = 128 (the default) or 64 (the
 * layout before session 4; finer causal skipping, each tile serving half the rows).
 */
export function flashRows(): number {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const v = env?.KSTAR_FLASH_ROWS ?? String(FLASH_ROWS);
  if (v !== '64' && v !== '128')
    throw new InputError(`KSTAR_FLASH_ROWS is '${v}'; set it to 128 (the default) or 64`);
  return Number(v);
}

/**
 * Whether dk and dv come from one pass over the query tiles (`KSTAR_FLASH_DKV=one-pass`, the default) or from two
 * programs (`KSTAR_FLASH_DKV=split`: three register rows per thread instead of four).
 */
export function flashDkvOnePass(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const v = env?.KSTAR_FLASH_DKV ?? 'one-pass';
  if (v !== 'one-pass' && v !== 'split')
    throw new InputError(`KSTAR_FLASH_DKV is '${v}'; set it to 'one-pass' (the default) or 'split'`);
  return v === 'one-pass';
}

function flashShape(q: tf.TensorInfo, k: tf.TensorInfo): FlashShape {
  const [B, H, tq, hd] = q.shape as number[];
  return {
    bh: B! * H!,
    tq: tq!,
    tk: k.shape[2]!,
    hd: hd!,
    unroll: flashUnroll(),
    layout: 'bhtd',
    heads: H!,
    rows: flashRows(),
  };
}

/** Native only for float32, hd a multiple of 4 up to 128, and fewer than 65,536 × 64 rows per dispatch dimension. */
function nativeOk({ q, k }: { q: tf.Tensor; k: tf.Tensor }): boolean {
  const s = flashShape(q, k);
  return (
    q.dtype === 'float32' && flashHeadDimOk(s.hd) && s.bh <= 65_535 && Math.max(s.tq, s.tk) <= 65_535 * 64
  );
}

/** The attributes both kernels take. */
type FlashAttrs = { scale: number; queryOffset: number };

export const flashAttentionKernel = defineKernel<
  FlashAttentionArgs,
  FlashAttentionResult,
  Record<'q' | 'k' | 'v', tf.TensorInfo>,
  FlashAttrs
>({
  name: 'KstarFlashAttention',
  backends: {
    webgpu: ({ inputs: { q, k, v }, backend, attrs: { scale, queryOffset } }) => {
      const s = flashShape(q, k);
      const out = backend.runWebGPUProgram(
        flashForwardProgram(s),
        [flat(q), flat(k), flat(v)],
        'float32',
        flashUniforms(s, queryOffset, Math.ceil(s.tk / keyTile(s.hd)), scale),
      );
      return out; // [BH·Tq·hd + BH·Tq]: o, then lse
    },
  },
  invoke: ({ q, k, v, scale, queryOffset }) => ({ inputs: { q, k, v }, attrs: { scale, queryOffset } }),
  finish: ([packed], { q }) => {
    const [B, H, tq, hd] = q.shape as number[];
    const n = B! * H! * tq! * hd!;
    const o = tf.tidy(() => tf.reshape(tf.slice(packed!, [0], [n]), q.shape)); // the slice copies
    const lse = tf.tidy(() => tf.reshape(tf.slice(packed!, [n], [B! * H! * tq!]), [B!, H!, tq!]));
    packed!.dispose();
    return { o, lse };
  },
  fallback: flashOps,
  canRunNative: (args) => nativeOk(args),
});

export const flashAttentionGradKernel = defineKernel<
  FlashAttentionGradArgs,
  FlashAttentionGrads,
  Record<'q' | 'k' | 'v' | 'o' | 'lse' | 'dO', tf.TensorInfo>,
  FlashAttrs
>({
  name: 'KstarFlashAttentionGrad',
  backends: {
    webgpu: ({ inputs: { q, k, v, o, lse, dO }, backend: b, attrs: { scale, queryOffset } }) => {
      const s = flashShape(q, k);
      const d = b.runWebGPUProgram(flashRowDotProgram(s), [flat(o!), flat(dO!)], 'float32'); // [BH·Tq]
      const kTiles = Math.ceil(s.tk / keyTile(s.hd));
      const qTiles = Math.ceil(s.tq / queryTile(s.hd));
      const [fq, fk, fv, fdo, fl] = [q!, k!, v!, dO!, lse!].map(flat) as tf.TensorInfo[];
      const dq = b.runWebGPUProgram(
        flashDqProgram(s),
        [fq!, fk!, fv!, fdo!, fl!, d],
        'float32',
        flashUniforms(s, queryOffset, kTiles, scale),
      );
      if (flashDkvOnePass()) {
        // One pass over the query tiles for dk and dv together: [2 · BH·Tk·hd], dk then dv (sliced in `finish`).
        const dkv = b.runWebGPUProgram(
          flashDkvProgram(s, 'dkv'),
          [fq!, fk!, fv!, fdo!, fl!, d],
          'float32',
          flashUniforms(s, queryOffset, qTiles, scale, s.bh * s.tk * s.hd),
        );
        b.disposeData(d.dataId);
        return [shaped(dq, q!.shape), dkv];
      }
      const dk = b.runWebGPUProgram(
        flashDkvProgram(s, 'dk'),
        [fq!, fk!, fv!, fdo!, fl!, d],
        'float32',
        flashUniforms(s, queryOffset, qTiles, scale),
      );
      const dv = b.runWebGPUProgram(
        flashDkvProgram(s, 'dv'),
        [fq!, fk!, fdo!, fl!],
        'float32',
        flashUniforms(s, queryOffset, qTiles, scale),
      );
      b.disposeData(d.dataId);
      return [shaped(dq, q!.shape), shaped(dk, k!.shape), shaped(dv, k!.shape)];
    },
  },
  invoke: ({ q, k, v, o, lse, dO, scale, queryOffset }) => ({
    inputs: { q, k, v, o, lse, dO },
    attrs: { scale, queryOffset },
  }),
  finish: ([dq, dk, dv], { k }) => {
    if (dv) return { dq: dq!, dk: dk!, dv };
    const n = k.size; // the one-pass output: dk then dv
    const split = tf.tidy(() => ({
      dk: tf.reshape(tf.slice(dk!, [0], [n]), k.shape), // the slices copy
      dv: tf.reshape(tf.slice(dk!, [n], [n]), k.shape),
    }));
    dk!.dispose();
    return { dq: dq!, ...split };
  },
  fallback: flashGradOps,
  canRunNative: (args) => nativeOk(args),
});

export interface FlashAttentionOptions {
  /** Softmax scale, usually 1/√hd. */
  scale: number;
  /** Position of query row 0 among the keys (default 0: q and k cover the same positions). */
  queryOffset?: number;
  /** `fallback` forces the tfjs-ops kernels (parity tests). */
  impl?: 'auto' | 'fallback';
}

function checkShapes(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, off: number): void {
  const ok =
    q.rank === 4 &&
    k.rank === 4 &&
    v.rank === 4 &&
    q.shape[0] === k.shape[0] &&
    q.shape[1] === k.shape[1] &&
    q.shape[3] === k.shape[3] &&
    k.shape.every((d, i) => d === v.shape[i]);
  if (!ok) {
    throw new ShapeError(
      `flashAttention needs q [B, H, Tq, hd] and k, v [B, H, Tk, hd]; got q [${q.shape}], k [${k.shape}], v [${v.shape}]`,
    );
  }
  if (!Number.isInteger(off) || off < 0 || off + q.shape[2]! > k.shape[2]!) {
    throw new InputError(
      `flashAttention queryOffset ${off} must be an integer with 0 ≤ queryOffset and queryOffset + Tq (${q.shape[2]}) ≤ Tk (${k.shape[2]}): every query needs its own key`,
    );
  }
}

/**
 * Causal attention o = softmax(scale·q·kᵀ + mask)·v [B, H, Tq, hd], differentiable in q, k and v. On WebGPU the
 * fused kernels (no [Tq, Tk] tensor forward or backward); elsewhere the tfjs-ops fallback.
 */
export function flashAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  options: FlashAttentionOptions,
): tf.Tensor {
  const queryOffset = options.queryOffset ?? 0;
  const { scale } = options;
  checkShapes(q, k, v, queryOffset);
  const run = { impl: options.impl ?? 'auto' } as const;
  const op = customOp(([qi, ki, vi], save) => {
    const { o, lse } = flashAttentionKernel.run({ q: qi!, k: ki!, v: vi!, scale, queryOffset }, run);
    save([qi!, ki!, vi!, o, lse]);
    return {
      value: o,
      gradFunc: (dO, [qs, ks, vs, os, ls]) => {
        const g = flashAttentionGradKernel.run(
          { q: qs!, k: ks!, v: vs!, o: os!, lse: ls!, dO, scale, queryOffset },
          run,
        );
        return [g.dq, g.dk, g.dv];
      },
    };
  });
  return op(q, k, v);
}
