import { InputError } from '@kstar/core';
import type { GPTConfig } from './config.ts';

export interface ActivationBytesOptions {
  readonly batch: number;
  readonly seq: number;
  readonly mode: 'full' | 'segmented';
  /** Stage indices per segment (segmented mode); default one segment per stage: [[0], [1], …, [L+1]]. */
  readonly segments?: readonly (readonly number[])[];
}

/** The terms of the prediction, in bytes (float32). */
export interface ActivationBytesBreakdown {
  /** Segment inputs kept between forward and backward (segmented mode; 0 in full mode). */
  readonly savedInputs: number;
  /** Upstream gradient held while a segment is recomputed (segmented mode). */
  readonly upstreamGrad: number;
  /** Tape residue + intermediate gradients of the graph that is differentiated at the peak. */
  readonly graph: number;
  /** Gradients of the parameters of that graph, alive before the engine receives them. */
  readonly paramGrads: number;
  /** Peak moment minus `graph` and `paramGrads`: temporaries alive then, less what is not yet computed (may be < 0). */
  readonly transient: number;
  /** Sum of the above: the prediction. */
  readonly total: number;
  /** Index of the segment at which the peak occurs (0 in full mode). */
  readonly peakSegment: number;
}

/*
 * Derivation. tfjs's `engine.gradients` (tfjs-core 4.22 engine.ts:863) runs the forward in a tidy that keeps only
 * the tensors kernels saved for backprop (`saveTensorsForBackwardMode`: a clone, i.e. the same buffer on cpu/webgpu),
 * then walks the tape backward inside ONE tidy: the gradient of every intermediate tensor stays alive until the
 * walk ends (tape.ts backpropagateGradients only frees a partial gradient when it is summed into another). So the
 * bytes only grow during the backward walk, apart from the temporaries of the kernel being differentiated. The peak
 * is the largest "moment": (everything saved) + (gradients computed so far) + (parameter gradients so far) +
 * (temporaries of the current gradient). Reshapes, `Add`'s gradient (a reshape of dy) and clones share buffers and
 * count zero. N = B·T, D = nEmbd, H = nHead, V = vocab, A = B·H·T² (attention scores), float32 (×4 bytes).
 *
 * Block (LayerNorm, GELU and the causal softmax are custom-gradient ops that save only what their backward needs;
 * their temporaries are freed as they go):
 *   saved 21·N·D + A + 4·N: ln1 out N·D (kept by the qkv matMul) · qkv 3·N·D (fused matMul output) · q, k, v 3·N·D
 *     (Split outputs, kept by the batched matMuls) · probs A · merged heads N·D · attn out N·D · x1 N·D ·
 *     ln2 out N·D · fc out 4·N·D (kept by the fused matMul and GELU) · GELU out 4·N·D · proj out N·D ·
 *     block out N·D · the two LayerNorms' mean and rstd 4·N.
 *   grads 25·N·D + 2·A: d(GELU out) 4·N·D · d(fc out) 4·N·D · d(ln2 out) N·D · d(x1) 2·N·D (LN2's dx + the sum with
 *     the residual's) · d(merged) N·D · d(att) N·D · d(probs) A · d(v) N·D · d(scores) A · d(q), d(k) 2·N·D ·
 *     Split's concat 3·N·D · transpose back 3·N·D · d(ln1 out) N·D · d(x) 2·N·D.
 *   moments: causal-softmax backward (14·N·D of grads done, d(probs), and 3·A of its own: dy·p, p·Σ, the result);
 *     LN1 backward (23·N·D done + 3·N·D of its own temporaries, the last of which is its dx).
 * Embedding: saved token rows N·D (kept by the broadcast Add) + position rows T·D + output N·D; grads d(pos) T·D;
 *   moment: the gather gradient (run last): a transposed copy of dy N·D + the segment sum V·D + its transpose back
 *   V·D (which becomes wte's gradient).
 * Head: saved lnf out N·D, logits N·V, logsumexp + mean + rstd 3·N; grads d(logits) N·V, d(lnf out) N·D, d(x) N·D;
 *   moments: cross-entropy backward (3·N·V: probs, one-hot, result), LNf backward (3·N·D).
 * Parameter gradients: each parameter's gradient once computed (P floats for the whole model). The tied wte gets
 *   two partial gradients (head, then embedding) when both are in one graph.
 *
 * Full mode: one graph of all stages. Segmented mode (the engine keeps each segment's input, then recomputes segment
 * s under `tf.valueAndGrads` with the upstream gradient): at segment s add the inputs of segments 1..s (N·D each;
 * segment 0's input is the caller's token batch) and the upstream gradient dy (N·D, unless s is the last segment);
 * the segment's graph carries only its own parameters' gradients. The prediction is the maximum over segments.
 *
 * Measured on cpu (unique data buffers during the step, test/activation-bytes.test.ts): full mode within 1% for
 * tiny-shaped configs. Not counted: the caller's batch tensors (2·N int32), scalars, the parameters. On wasm a saved
 * tensor is a copy (its Identity kernel copies), so wasm holds more than this prediction.
 */

/** One stage's floats: saved for backward, its final gradients, its parameters, and its peak moments. */
interface StageFloats {
  saved: number;
  grads: number;
  params: number;
  /** Inside this stage's backward: floats beyond `saved` (grads + temporaries) and parameter gradients done. */
  moments: { extra: number; paramsDone: number }[];
}

function stageFloats(config: GPTConfig, stage: number, B: number, T: number): StageFloats {
  const { nLayer: L, nEmbd: D, nHead: H, vocabSize: V, blockSize } = config;
  const N = B * T;
  const ND = N * D;
  const A = B * H * T * T;
  if (stage === 0) {
    const params = V * D + blockSize * D;
    return {
      saved: 2 * ND + T * D,
      grads: T * D,
      params,
      moments: [{ extra: T * D + ND + V * D, paramsDone: params }],
    };
  }
  if (stage <= L) {
    const params = 12 * D * D + 13 * D;
    return {
      saved: 21 * ND + A + 4 * N,
      grads: 25 * ND + 2 * A,
      params,
      moments: [
        { extra: 14 * ND + 4 * A, paramsDone: 9 * D * D + 8 * D },
        { extra: 26 * ND + 2 * A, paramsDone: params - 2 * D },
      ],
    };
  }
  return {
    saved: ND + N * V + 3 * N,
    grads: 2 * ND + N * V,
    params: V * D + 2 * D,
    moments: [
      { extra: 3 * N * V, paramsDone: 0 },
      { extra: N * V + 4 * ND, paramsDone: V * D },
    ],
  };
}

/** Peak floats of differentiating the stages `seg` (in order) together, and that graph's parameter gradients. */
function graphPeak(stages: StageFloats[]): { peak: number; graph: number; params: number } {
  let peak = 0;
  // Backward order: the last stage first. `after` = finished stages (saved + grads + params).
  let after = 0;
  for (let i = stages.length - 1; i >= 0; i--) {
    let before = 0;
    for (let j = 0; j < i; j++) before += stages[j]!.saved;
    const st = stages[i]!;
    const end = st.saved + st.grads + st.params;
    for (const m of [...st.moments, { extra: st.grads, paramsDone: st.params }]) {
      peak = Math.max(peak, before + after + st.saved + m.extra + m.paramsDone);
    }
    after += end;
  }
  const graph = stages.reduce((a, s) => a + s.saved + s.grads, 0);
  const params = stages.reduce((a, s) => a + s.params, 0);
  return { peak, graph, params };
}

/** Predicted peak activation and temporary bytes of one training step, with its terms (see the derivation above). */
export function predictActivationBreakdown(
  config: GPTConfig,
  opts: ActivationBytesOptions,
): ActivationBytesBreakdown {
  const { batch: B, seq: T, mode } = opts;
  if (!Number.isInteger(B) || B < 1 || !Number.isInteger(T) || T < 1 || T > config.blockSize) {
    throw new InputError(
      `predictActivationBytes needs integer batch ≥ 1 and 1 ≤ seq ≤ blockSize ${config.blockSize}, got batch ${B}, seq ${T}`,
    );
  }
  if (mode !== 'full' && mode !== 'segmented') {
    throw new InputError(
      `predictActivationBytes mode '${String(mode)}' is unknown: use 'full' or 'segmented'`,
    );
  }
  const nStages = config.nLayer + 2;
  const ND = B * T * config.nEmbd;
  const all = Array.from({ length: nStages }, (_, i) => stageFloats(config, i, B, T));
  const segments = mode === 'full' ? [all.map((_, i) => i)] : (opts.segments ?? all.map((_, i) => [i]));
  const flat = segments.flat();
  if (flat.length !== nStages || flat.some((v, i) => v !== i) || segments.some((s) => s.length === 0)) {
    throw new InputError(
      `segments ${JSON.stringify(segments)} do not cover the ${nStages} stages once each, in order: group consecutive indices 0..${nStages - 1}`,
    );
  }
  let best: ActivationBytesBreakdown | undefined;
  segments.forEach((seg, s) => {
    const g = graphPeak(seg.map((i) => all[i]!));
    const savedInputs = s * ND;
    const upstreamGrad = s < segments.length - 1 ? ND : 0;
    const transient = g.peak - g.graph - g.params;
    const total = savedInputs + upstreamGrad + g.peak;
    if (!best || total * 4 > best.total) {
      best = {
        savedInputs: savedInputs * 4,
        upstreamGrad: upstreamGrad * 4,
        graph: g.graph * 4,
        paramGrads: g.params * 4,
        transient: transient * 4,
        total: total * 4,
        peakSegment: s,
      };
    }
  });
  return best!;
}

/**
 * Predicted peak bytes of activations and temporaries one training step holds beyond the parameters, the optimizer
 * state and the gradients already handed to the engine: what `@kstar/core`'s ledger reports as `activationPeakBytes`.
 * It includes the gradients of the parameters still inside the differentiated call (the ledger only tags gradients
 * once returned): `predictActivationBreakdown(...).paramGrads`.
 */
export function predictActivationBytes(config: GPTConfig, opts: ActivationBytesOptions): number {
  return predictActivationBreakdown(config, opts).total;
}
