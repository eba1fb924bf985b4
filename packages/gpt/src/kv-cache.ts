import { ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import type { GPTConfig } from './config.ts';
import { gelu } from './gelu.ts';
import { layerNorm } from './layer-norm.ts';
import { mlpCore } from './stages.ts';

type Params = Readonly<Record<string, tf.Tensor>>;

/**
 * Keys and values of every layer for the tokens a sequence has seen (positions 0 … length − 1), so that the next
 * tokens run their own rows only: attention reads the cached keys and values instead of recomputing the prefix.
 * One sequence (batch 1). Holds 2 · layers · length · D float32; `dispose` frees it.
 */
export class KVCache {
  /** Per layer: keys and values [1, H, length, hd]. */
  private readonly layers: Array<{ k: tf.Tensor; v: tf.Tensor } | undefined>;
  private size = 0;

  constructor(private readonly config: GPTConfig) {
    this.layers = Array.from({ length: config.nLayer }, () => undefined);
  }

  /** Tokens cached (the position of the next token). */
  get length(): number {
    return this.size;
  }

  /** Free positions before the model's context (`blockSize`) is full. */
  get room(): number {
    return this.config.blockSize - this.size;
  }

  /**
   * Logits [1, Tn, V] of `tokens` int32 [1, Tn] at positions length … length + Tn − 1, each attending to every
   * earlier position; their keys and values join the cache. The caller disposes the result.
   */
  forward(tokens: tf.Tensor, params: Params): tf.Tensor {
    const { config } = this;
    if (tokens.rank !== 2 || tokens.shape[0] !== 1 || tokens.dtype !== 'int32') {
      throw new ShapeError(
        `KVCache.forward takes int32 tokens [1, T], got ${tokens.dtype} [${tokens.shape.join(', ')}]: one sequence at a time`,
      );
    }
    const Tn = tokens.shape[1]!;
    if (Tn > this.room) {
      throw new ShapeError(
        `KVCache.forward: ${Tn} more tokens after ${this.size} exceed the context blockSize = ${config.blockSize}: start a new cache for the last ${config.blockSize} tokens`,
      );
    }
    const D = config.nEmbd;
    const start = this.size;
    const logits = tf.tidy(() => {
      const tok = tf.gather(params.wte!, tf.reshape(tokens, [Tn])); // [Tn, D]
      let x = tf.add(tok, tf.slice(params.wpe!, [start, 0], [Tn, D])); // [Tn, D]
      const mask = causalMask(start, Tn); // [Tn, start + Tn]
      for (let i = 0; i < config.nLayer; i++) x = this.block(i, x, mask, params);
      const h = layerNorm(x, params['lnf.gamma']!, params['lnf.beta']!); // [Tn, D]
      return tf.reshape(tf.matMul(h, params.wte!, false, true), [1, Tn, config.vocabSize]); // [1, Tn, V]
    });
    this.size += Tn;
    return logits;
  }

  /** Frees the cached keys and values. */
  dispose(): void {
    for (const kv of this.layers) if (kv) tf.dispose([kv.k, kv.v]);
    this.layers.fill(undefined);
    this.size = 0;
  }

  /** `stages.ts`'s block on the new rows x [Tn, D], attending to the cached keys and values; appends this layer's. */
  private block(i: number, x: tf.Tensor, mask: tf.Tensor, params: Params): tf.Tensor {
    const { nHead: H, nEmbd: D } = this.config;
    const hd = D / H;
    const Tn = x.shape[0]!;
    const p = (n: string) => params[`h${i}.${n}`]!;
    const a = layerNorm(x, p('ln1.gamma'), p('ln1.beta')); // [Tn, D]
    const qkv = tf.fused.matMul({ a, b: p('attn.wqkv'), bias: p('attn.bqkv') }); // [Tn, 3D]
    const qkvT = tf.transpose(tf.reshape(qkv, [1, Tn, 3, H, hd]), [2, 0, 3, 1, 4]); // [3, 1, H, Tn, hd]
    const [q, kNew, vNew] = tf.split(qkvT, 3, 0).map((t) => tf.reshape(t, [1, H, Tn, hd])) as [
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
    ]; // [1, H, Tn, hd] each
    const old = this.layers[i];
    // Kept past the caller's tidy: the cache owns them until the next append or `dispose`.
    const k = tf.keep(old ? tf.concat([old.k, kNew], 2) : kNew); // [1, H, t, hd], t = start + Tn
    const v = tf.keep(old ? tf.concat([old.v, vNew], 2) : vNew); // [1, H, t, hd]
    if (old) tf.dispose([old.k, old.v]);
    this.layers[i] = { k, v };
    // softmax(q·kᵀ/√hd + mask)·v, as the causal softmax of the full forward.
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)), mask); // [1, H, Tn, t]
    const att = tf.matMul(tf.softmax(scores), v); // [1, H, Tn, hd]
    const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [Tn, D]); // [Tn, D]
    const x1 = tf.add(x, tf.fused.matMul({ a: merged, b: p('attn.wo'), bias: p('attn.bo') })); // [Tn, D]
    const m = layerNorm(x1, p('ln2.gamma'), p('ln2.beta')); // [Tn, D]
    return tf.add(x1, mlpCore(m, p('mlp.wfc'), p('mlp.bfc'), p('mlp.wproj'), p('mlp.bproj'), gelu)); // [Tn, D]
  }
}

/** Additive mask [Tn, start + Tn]: 0 where the query at position start + r may see key position c (c ≤ start + r), −1e9 elsewhere. */
function causalMask(start: number, Tn: number): tf.Tensor {
  const t = start + Tn;
  const values = new Float32Array(Tn * t);
  for (let r = 0; r < Tn; r++) for (let c = start + r + 1; c < t; c++) values[r * t + c] = -1e9;
  return tf.tensor2d(values, [Tn, t]);
}
