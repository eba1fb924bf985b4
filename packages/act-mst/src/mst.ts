import {
  type ActivationStrategy,
  type ModelOps,
  type SegmentInfo,
  ShapeError,
  SPECIFICATION_VERSION,
} from '@kstar/core';
import type * as tf from '@tensorflow/tfjs-core';
import { mstAttention } from './attention.ts';
import { chunkedLinearCrossEntropy } from './loss.ts';
import { tiledMlp } from './mlp.ts';
import { type MstOptions, validateOptions } from './options.ts';
import {
  attentionRanges,
  chooseAttentionChunk,
  chooseLossChunks,
  chooseMlpChunks,
  defaultChunks,
  type ModelDims,
  predictAttentionBytes,
  predictLossBytes,
  predictMlpBytes,
} from './predict.ts';

export interface MstStrategyOptions extends MstOptions {
  /** Model sizes; only needed for `predictBytes` (the ops read their sizes from the tensors). */
  readonly dims?: ModelDims;
}

export interface MstStrategy extends ActivationStrategy {
  readonly name: 'mst';
  readonly ops: Required<ModelOps>;
  /** The validated options. */
  readonly options: MstOptions;
}

function shapeCheck(ok: boolean, message: string): void {
  if (!ok) throw new ShapeError(message);
}

/** The chunk counts the ops use for a call of these sizes (own option > chunks > targetBytes > default). */
function resolve(o: MstOptions) {
  return {
    mlp(N: number, D: number, F: number): number {
      if (o.mlpChunks ?? o.chunks) return (o.mlpChunks ?? o.chunks)!;
      if (o.targetBytes) return chooseMlpChunks(N, D, F, o.targetBytes);
      return defaultChunks({ rows: N, nEmbd: D }).mlpChunks;
    },
    attention(B: number, H: number, T: number, hd: number) {
      if (o.attentionChunk) return attentionRanges(T, { chunk: o.attentionChunk });
      if (o.chunks) return attentionRanges(T, { chunks: o.chunks });
      const chunk = o.targetBytes
        ? chooseAttentionChunk(B, H, T, hd, o.targetBytes)
        : defaultChunks({ nEmbd: H * hd, nHead: H }).attentionChunk;
      return attentionRanges(T, { chunk });
    },
    loss(N: number, D: number, V: number): number {
      if (o.lossChunks ?? o.chunks) return (o.lossChunks ?? o.chunks)!;
      if (o.targetBytes) return chooseLossChunks(N, D, V, o.targetBytes);
      return defaultChunks({ nEmbd: D, vocab: V }).lossChunks;
    },
  };
}

/**
 * Mini-Sequence Transformer (Luo et al., arXiv 2407.15892) as an activation strategy: model-op replacements that
 * run the MLP, causal attention and the LM head + cross-entropy over sequence chunks, recomputing each chunk in the
 * backward pass, so the [N, 4D] MLP intermediates, the [T, T] attention scores and the [N, V] logits never exist
 * whole. Same function, same gradients (float32 rounding). Works in full and segmented mode; combine with a
 * checkpointing strategy to also drop the per-block saved activations.
 */
export function mst(options: MstStrategyOptions = {}): MstStrategy {
  const { dims, ...rest } = options;
  const o = validateOptions(rest);
  const r = resolve(o);
  const ops: Required<ModelOps> = {
    mlp(x, wfc, bfc, wproj, bproj, act) {
      shapeCheck(
        x.rank === 2 && wfc.rank === 2 && wfc.shape[0] === x.shape[1] && wproj.shape[0] === wfc.shape[1],
        `mst mlp needs x [N, D], wfc [D, F], wproj [F, D]; got x [${x.shape}], wfc [${wfc.shape}], wproj [${wproj.shape}]`,
      );
      const [N, D] = x.shape as [number, number];
      return tiledMlp(x, wfc, bfc, wproj, bproj, act, r.mlp(N, D, wfc.shape[1]!));
    },
    attention(q, k, v, scale) {
      shapeCheck(
        q.rank === 4 &&
          k.rank === 4 &&
          v.rank === 4 &&
          q.shape.every((d, i) => d === k.shape[i] && d === v.shape[i]),
        `mst attention needs q, k, v of one shape [B, H, T, hd]; got [${q.shape}], [${k.shape}], [${v.shape}]`,
      );
      const [B, H, T, hd] = q.shape as [number, number, number, number];
      return mstAttention(q, k, v, scale, r.attention(B, H, T, hd));
    },
    linearCrossEntropy(h: tf.Tensor, w: tf.Tensor, targets: tf.Tensor): tf.Scalar {
      shapeCheck(
        h.rank === 2 &&
          w.rank === 2 &&
          w.shape[1] === h.shape[1] &&
          targets.rank === 1 &&
          targets.shape[0] === h.shape[0],
        `mst linearCrossEntropy needs h [N, D], w [V, D], targets [N]; got h [${h.shape}], w [${w.shape}], targets [${targets.shape}]`,
      );
      shapeCheck(
        targets.dtype === 'int32',
        `mst linearCrossEntropy needs int32 targets, got ${targets.dtype}`,
      );
      const [N, D] = h.shape as [number, number];
      return chunkedLinearCrossEntropy(h, w, targets, r.loss(N, D, w.shape[0]!));
    },
  };
  const strategy: MstStrategy = {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'activation',
    name: 'mst',
    ops,
    options: o,
    describe: () => ({ ...o, ...(dims ? { dims } : {}) }),
    ...(dims
      ? {
          /**
           * Peak working-set bytes of the chunked ops that the segment's stages run (the largest of them: ops run
           * one after another), at this segment's batch and seq. Not counted: what the model keeps around them.
           */
          predictBytes(info: SegmentInfo): number {
            const N = info.batch * info.seq;
            const D = dims.nEmbd;
            const H = dims.nHead;
            const F = dims.mlpHidden ?? 4 * D;
            let peak = 0;
            for (const name of info.stageNames) {
              if (/^block\d+$/.test(name)) {
                const chunk = r.attention(info.batch, H, info.seq, D / H)[0]!.size;
                peak = Math.max(
                  peak,
                  predictMlpBytes(N, D, F, r.mlp(N, D, F)),
                  predictAttentionBytes(info.batch, H, info.seq, D / H, chunk),
                );
              } else if (name === 'head') {
                peak = Math.max(peak, predictLossBytes(N, D, dims.vocab, r.loss(N, D, dims.vocab)));
              }
            }
            return peak;
          },
        }
      : {}),
  };
  return strategy;
}
