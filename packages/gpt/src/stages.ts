import type { Batch, ModelOps, Stage } from '@kstar/core';
import { ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { attentionCore, attentionImpl, fusedAttentionPacked } from './attention.ts';
import type { GPTConfig } from './config.ts';
import { crossEntropy } from './cross-entropy.ts';
import { gelu } from './gelu.ts';
import { layerNorm } from './layer-norm.ts';
import { blockParamNames } from './params.ts';

type Params = Readonly<Record<string, tf.Tensor>>;

function param(params: Params, name: string): tf.Tensor {
  const p = params[name];
  if (!p)
    throw new ShapeError(
      `GPT stage needs parameter '${name}' but params has no such entry: pass every name in stage.params`,
    );
  return p;
}

/** Check token ids: int32 [B, T] with 1 ≤ T ≤ blockSize. */
export function checkTokens(x: tf.Tensor, config: GPTConfig, what = 'inputs'): void {
  if (x.rank !== 2 || x.dtype !== 'int32') {
    throw new ShapeError(`GPT ${what} must be int32 [B, T], got ${x.dtype} [${x.shape.join(', ')}]`);
  }
  const T = x.shape[1]!;
  if (T > config.blockSize) {
    throw new ShapeError(
      `GPT ${what} have T = ${T} tokens but the context is blockSize = ${config.blockSize}: use windows of at most ${config.blockSize} tokens`,
    );
  }
}

/** tokens int32 [B, T] → x [B, T, D] = wte[tokens] + wpe[0..T). */
export function embed(config: GPTConfig, tokens: tf.Tensor, params: Params): tf.Tensor {
  checkTokens(tokens, config);
  const [B, T] = tokens.shape as [number, number];
  const D = config.nEmbd;
  return tf.tidy(() => {
    const tok = tf.gather(param(params, 'wte'), tf.reshape(tokens, [B * T])); // [B·T, D]
    const pos = tf.slice(param(params, 'wpe'), [0, 0], [T, D]); // [T, D]
    return tf.add(tf.reshape(tok, [B, T, D]), pos); // [B, T, D]
  });
}

/**
 * One pre-LayerNorm block: `x += attn(ln1(x))`, `x += mlp(ln2(x))`. x [B, T, D] → [B, T, D].
 * All projections are 2-D fused matMuls with bias on [B·T, ·] (no tiling of parameters).
 */
/** The model's own MLP: x [N, D] → act(x·wfc + bfc)·wproj + bproj [N, D]. */
export function mlpCore(
  x: tf.Tensor,
  wfc: tf.Tensor,
  bfc: tf.Tensor,
  wproj: tf.Tensor,
  bproj: tf.Tensor,
  act: (h: tf.Tensor) => tf.Tensor,
): tf.Tensor {
  return tf.tidy(() => {
    const h = tf.fused.matMul({ a: x, b: wfc, bias: bfc }); // [N, 4D]
    return tf.fused.matMul({ a: act(h), b: wproj, bias: bproj }); // [N, D]
  });
}

/** The model's own LM head + loss: mean cross-entropy of h·wᵀ (h [N, D], w [V, D]) against targets [N]. */
export function linearCrossEntropyCore(h: tf.Tensor, w: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => crossEntropy(tf.matMul(h, w, false, true), targets) as tf.Scalar); // logits [N, V]
}

export function block(
  config: GPTConfig,
  i: number,
  x: tf.Tensor,
  params: Params,
  ops: ModelOps = {},
): tf.Tensor {
  const [B, T, D] = x.shape as [number, number, number];
  const H = config.nHead;
  const hd = D / H;
  const N = B * T;
  const p = (n: string) => param(params, `h${i}.${n}`);
  return tf.tidy(() => {
    const x0 = tf.reshape(x, [N, D]); // [N, D]
    // Attention.
    const a = layerNorm(x0, p('ln1.gamma'), p('ln1.beta')); // [N, D]
    const qkv = tf.fused.matMul({ a, b: p('attn.wqkv'), bias: p('attn.bqkv') }); // [N, 3D]
    const merged = // [N, D]
      ops.attention || attentionImpl() !== 'fused'
        ? splitHeadsAttention(qkv, B, T, H, ops.attention ?? attentionCore)
        : tf.reshape(fusedAttentionPacked(tf.reshape(qkv, [B, T, 3 * D]), H, 1 / Math.sqrt(hd)), [N, D]);
    const attnOut = tf.fused.matMul({ a: merged, b: p('attn.wo'), bias: p('attn.bo') }); // [N, D]
    const x1 = tf.add(x0, attnOut); // [N, D]
    // MLP.
    const m = layerNorm(x1, p('ln2.gamma'), p('ln2.beta')); // [N, D]
    const mlpOut = (ops.mlp ?? mlpCore)(m, p('mlp.wfc'), p('mlp.bfc'), p('mlp.wproj'), p('mlp.bproj'), gelu); // [N, D]
    return tf.reshape(tf.add(x1, mlpOut), [B, T, D]); // [B, T, D]
  });
}

/**
 * qkv [N, 3D] → heads q, k, v [B, H, T, hd] → `core` → merged [N, D]: the path of plugin attentions and `ops`. (The
 * fused attention reads qkv in place instead: `fusedAttentionPacked`.)
 */
function splitHeadsAttention(
  qkv: tf.Tensor,
  B: number,
  T: number,
  H: number,
  core: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, scale: number) => tf.Tensor,
): tf.Tensor {
  const D = qkv.shape[1]! / 3;
  const hd = D / H;
  // One transpose for q, k and v; the transposed buffer is not kept by the tape (Transpose and Split save nothing).
  const qkvT = tf.transpose(tf.reshape(qkv, [B, T, 3, H, hd]), [2, 0, 3, 1, 4]); // [3, B, H, T, hd]
  const [q, k, v] = tf.split(qkvT, 3, 0).map((t) => tf.reshape(t, [B, H, T, hd])) as [
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
  ]; // [B, H, T, hd] each
  const att = core(q, k, v, 1 / Math.sqrt(hd)); // [B, H, T, hd]
  return tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * T, D]); // [N, D]
}

/** x [B, T, D] → lnf(x) [B·T, D], the LM head's input. */
function finalNorm(x: tf.Tensor, params: Params): tf.Tensor {
  const [B, T, D] = x.shape as [number, number, number];
  return layerNorm(tf.reshape(x, [B * T, D]), param(params, 'lnf.gamma'), param(params, 'lnf.beta')); // [N, D]
}

/** x [B, T, D] → logits [B·T, V] = lnf(x) · wteᵀ (tied head). */
export function headLogits(x: tf.Tensor, params: Params): tf.Tensor {
  return tf.tidy(() => tf.matMul(finalNorm(x, params), param(params, 'wte'), false, true)); // [N, V]
}

/** x [B, T, D] → scalar mean cross-entropy against `batch.targets` int32 [B, T]. */
export function head(
  config: GPTConfig,
  x: tf.Tensor,
  params: Params,
  batch: Batch,
  ops: ModelOps = {},
): tf.Tensor {
  checkTokens(batch.targets, config, 'targets');
  const [B, T] = x.shape as [number, number];
  if (batch.targets.shape[0] !== B || batch.targets.shape[1] !== T) {
    throw new ShapeError(
      `GPT targets [${batch.targets.shape.join(', ')}] do not match the hidden state's [${B}, ${T}]: targets must be [B, T] like inputs`,
    );
  }
  return tf.tidy(() => {
    const lce = ops.linearCrossEntropy ?? linearCrossEntropyCore;
    return lce(finalNorm(x, params), param(params, 'wte'), tf.reshape(batch.targets, [B * T])); // []
  });
}

/** The model's stages: `embed`, `block0` … `block{L-1}`, `head`. */
export function makeStages(config: GPTConfig): Stage[] {
  const stages: Stage[] = [
    { name: 'embed', params: ['wte', 'wpe'], forward: (x, params) => embed(config, x, params) },
  ];
  for (let i = 0; i < config.nLayer; i++) {
    stages.push({
      name: `block${i}`,
      params: blockParamNames(i),
      forward: (x, params, _batch, ops) => block(config, i, x, params, ops),
    });
  }
  stages.push({
    name: 'head',
    params: ['lnf.gamma', 'lnf.beta', 'wte'],
    forward: (x, params, batch, ops) => head(config, x, params, batch, ops),
  });
  return stages;
}
