import { ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { customOp } from './custom-op.ts';
import { defineKernel } from './define-kernel.ts';
import { flashGradOps, flashOps, flashRows, flashUnroll } from './flash-attention.ts';
import {
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
import { shaped } from './row-program.ts';
import { flat } from './wgsl.ts';

/**
 * The fused causal attention on the qkv projection's own layout: qkv [B, T, 3D] (q, k, v side by side, each [H, hd]
 * per position) → o [B, T, D], the layout the output projection reads. A GPT block's head split (transpose to
 * [3, B, H, T, hd], split) and merge (transpose back) and their gradients (transposes and a concat) never run, and
 * the backward writes dq, dk and dv straight into one dqkv [B, T, 3D]. Whole sequences only (query offset 0).
 *
 * - `KstarFlashAttentionPacked`: qkv → o [B, T, D] and lse [B, T, H].
 * - `KstarFlashAttentionPackedGrad`: qkv, o, lse, do → dqkv [B, T, 3D] (D = rowsum(do∘o), dq, then dk and dv in one
 *   pass written in place into dq's buffer).
 * - The fallback unpacks to [B, H, T, hd] and runs `flashAttention`'s tfjs-ops reference.
 */
export interface PackedAttentionArgs {
  qkv: tf.Tensor; // [B, T, 3D]
  heads: number;
  scale: number;
}
export interface PackedAttentionResult {
  o: tf.Tensor; // [B, T, D]
  lse: tf.Tensor; // [B, T, H]
}
export interface PackedAttentionGradArgs extends PackedAttentionArgs {
  o: tf.Tensor; // [B, T, D]
  lse: tf.Tensor; // [B, T, H]
  dO: tf.Tensor; // [B, T, D]
}

function packedShape(qkv: tf.TensorInfo, heads: number): FlashShape {
  const [B, T, D3] = qkv.shape as number[];
  const hd = D3! / 3 / heads;
  return {
    bh: B! * heads,
    tq: T!,
    tk: T!,
    hd,
    unroll: flashUnroll(),
    layout: 'packed',
    heads,
    rows: flashRows(),
  };
}

/** qkv [B, T, 3D] → q, k, v [B, H, T, hd] (fallback only). */
function unpack(qkv: tf.Tensor, H: number): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const [B, T, D3] = qkv.shape as number[];
  const hd = D3! / 3 / H;
  const t = tf.transpose(tf.reshape(qkv, [B!, T!, 3, H, hd]), [2, 0, 3, 1, 4]); // [3, B, H, T, hd]
  return tf.split(t, 3, 0).map((x) => tf.reshape(x, [B!, H, T!, hd])) as [tf.Tensor, tf.Tensor, tf.Tensor];
}

/** [B, H, T, hd] → [B, T, H·hd], and back. */
const merge = (x: tf.Tensor) => {
  const [B, H, T, hd] = x.shape as number[];
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B!, T!, H! * hd!]);
};
const split = (x: tf.Tensor, H: number) => {
  const [B, T, D] = x.shape as number[];
  return tf.transpose(tf.reshape(x, [B!, T!, H, D! / H]), [0, 2, 1, 3]);
};

function packedOps({ qkv, heads, scale }: PackedAttentionArgs): PackedAttentionResult {
  return tf.tidy(() => {
    const [q, k, v] = unpack(qkv, heads);
    const { o, lse } = flashOps({ q, k, v, scale, queryOffset: 0 });
    return { o: merge(o), lse: tf.transpose(lse, [0, 2, 1]) };
  }) as PackedAttentionResult;
}

function packedGradOps({ qkv, heads, scale, o, lse, dO }: PackedAttentionGradArgs): tf.Tensor {
  return tf.tidy(() => {
    const [q, k, v] = unpack(qkv, heads);
    const g = flashGradOps({
      q,
      k,
      v,
      o: split(o, heads),
      lse: tf.transpose(lse, [0, 2, 1]),
      dO: split(dO, heads),
      scale,
      queryOffset: 0,
    });
    const [B, T, D3] = qkv.shape as number[];
    // [3, B, H, T, hd] → [B, T, 3, H, hd]
    return tf.reshape(tf.transpose(tf.stack([g.dq, g.dk, g.dv]), [1, 3, 0, 2, 4]), [B!, T!, D3!]);
  });
}

function nativeOk({ qkv, heads }: PackedAttentionArgs): boolean {
  const s = packedShape(qkv, heads);
  return qkv.dtype === 'float32' && flashHeadDimOk(s.hd) && s.bh <= 65_535 && s.tq <= 65_535 * 64;
}

/** The attributes both packed kernels take. */
type PackedAttrs = { heads: number; scale: number };

export const packedAttentionKernel = defineKernel<
  PackedAttentionArgs,
  PackedAttentionResult,
  { qkv: tf.TensorInfo },
  PackedAttrs
>({
  name: 'KstarFlashAttentionPacked',
  backends: {
    webgpu: ({ inputs: { qkv }, backend, attrs: { heads, scale } }) => {
      const s = packedShape(qkv, heads);
      return backend.runWebGPUProgram(
        flashForwardProgram(s),
        [flat(qkv)],
        'float32',
        flashUniforms(s, 0, Math.ceil(s.tk / keyTile(s.hd)), scale),
      ); // [B·T·D + B·T·H]: o, then lse
    },
  },
  invoke: ({ qkv, heads, scale }) => ({ inputs: { qkv }, attrs: { heads, scale } }),
  finish: ([packed], { qkv, heads }) => {
    const [B, T, D3] = qkv.shape as number[];
    const n = (B! * T! * D3!) / 3;
    const o = tf.tidy(() => tf.reshape(tf.slice(packed!, [0], [n]), [B!, T!, D3! / 3])); // the slice copies
    const lse = tf.tidy(() => tf.reshape(tf.slice(packed!, [n], [B! * T! * heads]), [B!, T!, heads]));
    packed!.dispose();
    return { o, lse };
  },
  fallback: packedOps,
  canRunNative: (args) => nativeOk(args),
});

export const packedAttentionGradKernel = defineKernel<
  PackedAttentionGradArgs,
  tf.Tensor,
  Record<'qkv' | 'o' | 'lse' | 'dO', tf.TensorInfo>,
  PackedAttrs
>({
  name: 'KstarFlashAttentionPackedGrad',
  backends: {
    webgpu: ({ inputs: { qkv, o, lse, dO }, backend: b, attrs: { heads, scale } }) => {
      const s = packedShape(qkv, heads);
      const d = b.runWebGPUProgram(flashRowDotProgram(s), [flat(o!), flat(dO!)], 'float32'); // [B·T·H]
      const [fqkv, fdo, fl] = [qkv!, dO!, lse!].map(flat) as tf.TensorInfo[];
      const dqkv = b.runWebGPUProgram(
        flashDqProgram(s),
        [fqkv!, fdo!, fl!, d],
        'float32',
        flashUniforms(s, 0, Math.ceil(s.tk / keyTile(s.hd)), scale),
      ); // dq written, dk and dv next, in place
      b.runWebGPUProgram(
        flashDkvProgram(s, 'dkv'),
        [fqkv!, fdo!, fl!, d],
        'float32',
        flashUniforms(s, 0, Math.ceil(s.tq / queryTile(s.hd)), scale),
        dqkv,
      );
      b.disposeData(d.dataId);
      return shaped(dqkv, qkv!.shape);
    },
  },
  invoke: ({ qkv, o, lse, dO, heads, scale }) => ({ inputs: { qkv, o, lse, dO }, attrs: { heads, scale } }),
  finish: ([dqkv]) => dqkv!,
  fallback: packedGradOps,
  canRunNative: (args) => nativeOk(args),
});

/**
 * Causal attention on a packed qkv [B, T, 3D] (`heads` heads) → o [B, T, D], differentiable in qkv. On WebGPU the
 * fused kernels with no head split or merge; elsewhere the tfjs-ops fallback. `impl: 'fallback'` forces the latter.
 */
export function flashAttentionPacked(
  qkv: tf.Tensor,
  options: { heads: number; scale: number; impl?: 'auto' | 'fallback' },
): tf.Tensor {
  const { heads, scale } = options;
  const D3 = qkv.shape[2] ?? 0;
  if (qkv.rank !== 3 || !Number.isInteger(heads) || heads < 1 || D3 % (3 * heads) !== 0) {
    throw new ShapeError(
      `flashAttentionPacked needs qkv [B, T, 3·heads·hd] and a whole number of heads; got qkv [${qkv.shape}] with heads ${heads}`,
    );
  }
  const run = { impl: options.impl ?? 'auto' } as const;
  const op = customOp(([x], save) => {
    const { o, lse } = packedAttentionKernel.run({ qkv: x!, heads, scale }, run);
    save([x!, o, lse]);
    return {
      value: o,
      gradFunc: (dO, [xs, os, ls]) => [
        packedAttentionGradKernel.run({ qkv: xs!, o: os!, lse: ls!, dO, heads, scale }, run),
      ],
    };
  });
  return op(qkv);
}
