import { InputError } from '@kstar/core';
import { type AttentionImpl, attentionSetting } from './attention.ts';
import type { GPTConfig } from './config.ts';

/**
 * tfjs backends. What matters here is whether the `Identity` kernel (the clone of every tensor the tape saves) shares
 * its input's buffer: cpu, webgpu (both checked in tfjs-backend-cpu / -webgpu 4.22's Identity kernels) and tensorflow
 * (assumed, not verified: tfjs-node is not installed here) share; wasm copies.
 */
export type ActivationBackend = 'cpu' | 'webgpu' | 'wasm' | 'tensorflow';

const BACKENDS: readonly string[] = ['cpu', 'webgpu', 'wasm', 'tensorflow'];

export interface ActivationBytesOptions {
  readonly batch: number;
  readonly seq: number;
  readonly mode: 'full' | 'segmented';
  /** Stage indices per segment (segmented mode); default one segment per stage: [[0], [1], …, [L+1]]. */
  readonly segments?: readonly (readonly number[])[];
  /**
   * The tfjs backend the step runs on; default 'cpu'. 'webgpu' and 'tensorflow' are predicted like 'cpu' (their saved
   * tensors share buffers; measured on cpu only); 'wasm' counts every saved tensor as a separate copy.
   */
  readonly backend?: ActivationBackend;
  /**
   * Bytes one saved segment input occupies between forward and recompute (a `SavedTensorCodec`'s `savedBytes` of
   * [B, T, D]); default 4·B·T·D (float32). The engine stores inputs of segments 1 … S−2 this way and decodes each
   * to float32 for its recompute; the last segment's input stays float32. A list gives each segment's own (by
   * segment index; a planner's per-segment codecs), entries 0 and S−1 unused.
   */
  readonly savedInputBytes?: number | readonly number[];
  /**
   * Selective recompute of the attention core (`@kstar/act-checkpoint`): the tape keeps q, k, v instead of the
   * [B, H, T, T] probabilities, and the backward pass recomputes them.
   */
  readonly selectiveAttention?: boolean;
  /**
   * Mini-Sequence Transformer ops (`@kstar/act-mst`) with these chunkings: the block's MLP, attention and the head's
   * loss save only their inputs and recompute chunk by chunk (see `mstStageFloats`): within 0.1% of the ledger on
   * cpu and wasm from one MLP chunk to one row per chunk in apps/trainer/test/activation-predict*.test.ts and
   * `bench/packages/planner/mst-bytes-probe.ts`; `pnpm bench plan-prediction` reports predicted against measured.
   */
  readonly mst?: { readonly mlpChunks: number; readonly attentionChunk: number; readonly lossChunks: number };
  /**
   * The blocks' attention (see `attention.ts`); default what the model runs: `KSTAR_ATTENTION`, else `fused` on
   * webgpu and `ops` elsewhere. `fused` is predicted by `fusedBlockFloats` (not with wasm's copies, selective
   * recompute or MsT, which replace the attention).
   */
  readonly attention?: AttentionImpl;
}

/** The terms of the prediction, in bytes (float32). */
export interface ActivationBytesBreakdown {
  /** Segment inputs kept between forward and backward (segmented mode; 0 in full mode). */
  readonly savedInputs: number;
  /** Upstream gradient held while a segment is recomputed (segmented mode). */
  readonly upstreamGrad: number;
  /**
   * Tape residue + intermediate gradients of the graph that is differentiated at the peak. The residue is what the
   * tape saved (on wasm: its copies) plus, on wasm, the graph's output (the value `tf.valueAndGrads` returns).
   */
  readonly graph: number;
  /** Gradients of the parameters of that graph, alive before the engine receives them. */
  readonly paramGrads: number;
  /** Peak moment minus `graph` and `paramGrads`: temporaries alive then, less what is not yet computed (may be < 0). */
  readonly transient: number;
  /** Sum of the above: the prediction. */
  readonly total: number;
  /** Index of the segment at which the peak occurs (0 in full mode). */
  readonly peakSegment: number;
  /**
   * Each segment's own peak (its saved inputs, upstream gradient and graph), in bytes; `total` is the largest. For
   * bytes alive during some segments only, e.g. a tied parameter's partial gradient waiting for its last reader.
   */
  readonly segmentTotals: readonly number[];
  /** Whether the peak moment is in the recorded forward of that graph or in its backward walk. */
  readonly peakPhase: 'forward' | 'backward';
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
 *     LN1 backward (23·N·D done + 3·N·D of its own temporaries, the last of which is its dx; its dγ, dβ, 2·D, are
 *     made before that dx, so every parameter gradient of the block is alive then: measured, small B1 T32 wasm).
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
 * Forward moments. Every stage's tidy frees its intermediates when the stage ends, so the recorded forward's largest
 * moments are inside a block's GELU (h and three GELU temporaries of 4·N·D alive besides the block's earlier
 * intermediates: 31·N·D + 2·A), at a block's end (25·N·D + 2·A: ln1 out, qkv 3·N·D, its transpose 3·N·D, q/k/v
 * 3·N·D, scores, probs, att, merged, attn out, x1, ln2 out, fc out 4·N·D, GELU out 4·N·D, proj out, block out), at
 * the end of the head's logits (lnf out N·D + logits N·V) and inside the cross-entropy's logSumExp (logits, z − max,
 * exp: 3·N·V; max, Σ, log, result: 4·N). A forward moment of stage j = the residue of the earlier stages of its graph
 * (+ their outputs where those are not in the residue) + stage j's part. The forward never wins on cpu (measured
 * forward peak 3,969,028 B against 9,588,232 B, tiny B=2 T=64; predicted 3,969,024): every backward moment holds
 * the whole residue plus gradients.
 *
 * wasm (tfjs-backend-wasm 4.22). Its `Identity` kernel copies (`makeOutput` + `set`), so every tensor a kernel's
 * GradConfig names (`inputsToSave`/`outputsToSave`) and every tensor a custom gradient `save`s is a SEPARATE buffer
 * that lives until the backward walk ends, while the original is freed by its stage's tidy. A tensor saved twice is
 * two copies; parameters named by a GradConfig are copied too. `Reshape` shares its buffer on wasm as on cpu, but its
 * GradConfig saves its input (`inputsToSave: ['x']`), and fused matMul reshapes both operands to 3-D under the tape
 * before its custom gradient saves [a3D, b3D, y, bias]. Copies per stage (op by op through `src/stages.ts`):
 *   block 45·N·D + 2·A + 24·D² + 11·D + 4·N: reshape x→x0 (x) N·D · LN1 (x0, γ, μ, rstd) N·D + D + 2·N ·
 *     qkv fused matMul (reshape a, reshape W, a3D, W3D, y, bias) 2·N·D + 6·D² + 3·N·D + 3·D · reshape qkv 3·N·D ·
 *     3 reshapes of the Split outputs 3·N·D · q·kᵀ (q, k) 2·N·D · causal softmax (p) A · probs·v (probs, v) A + N·D ·
 *     reshape merged N·D · wo fused matMul 3·N·D + 2·D² + D · residual Add (x0, attn out) 2·N·D · LN2 N·D + D + 2·N ·
 *     fc fused matMul 6·N·D + 8·D² + 4·D · GELU (h) 4·N·D · proj fused matMul 9·N·D + 8·D² + D · residual Add 2·N·D ·
 *     reshape out N·D. (Before GELU: 29·N·D + 2·A + 16·D² + 10·D + 4·N.)
 *   embed V·D + blockSize·D + 2·N·D + T·D + 2·N: reshape tokens (int32) N · Gather (wte, indices) V·D + N ·
 *     Slice (wpe) blockSize·D · reshape tok N·D · Add (tok, pos) N·D + T·D.
 *   head 3·N·D + V·D + N·V + D + 5·N: reshape x N·D · LNf N·D + D + 2·N · matMul (lnf out, wte) N·D + V·D ·
 *     reshape targets N · cross-entropy (z, lse, targets) N·V + 2·N.
 * These copies replace cpu's `saved` as the residue. The stage's output, not being a copy, stays alive until the
 * graph's forward tidy ends (N·D for embed and blocks) and, for the last stage of a graph, through the backward walk
 * as the value `tf.valueAndGrads` returns (N·D in segmented mode; the loss scalar in full mode). The backward walk
 * allocates exactly what it does on cpu (gradients and temporaries are computed with the tape off: no copies), so
 * the backward moments are the cpu ones on top of the larger residue. The forward moments are those above with the
 * copies made so far: they do not win on wasm either (tiny, B=2, T=64: the forward peaks at 11,976,704 B, predicted
 * exactly, against a 16,614,408 B backward peak). The copies shift every backward moment up: measured wasm/cpu
 * peaks are 1.73× (B=2) and 1.62× (B=4) for tiny at T=64, full mode; predicted, the D² terms make the factor larger
 * at short T (tiny, B=8, T=16: 1.76×) and the attention and logits terms, in both backends' residue, smaller at long
 * T (gpt2-124m, B=8, T=1024: 1.40×).
 * Not counted on wasm: the transposed operand the K* matMul wrapper (`@kstar/kernels` wasm-matmul.ts) allocates
 * inside the kernel through the backend, not the engine, and frees before returning (at most the largest operand of
 * a transposed matMul: max(4·N·D, A, V·D)), and the wasm heap itself (it only grows; it is not the live bytes).
 *
 * Measured (unique data buffers during the step, test/activation-bytes.test.ts), tiny, B=2, T=64, predicted /
 * measured: cpu full 9,588,224 / 9,588,232 (1.0000), segmented per stage 4,464,128 / 4,466,176 (0.9995); wasm full
 * 16,614,400 / 16,614,408 (1.0000), segmented per stage 7,812,096 / 7,814,144 (0.9997). Also checked (both
 * backends, all within 0.15%): B=4 and B=1·T=128 for tiny with segments [[0],[1,2],[3]] and [[0,1],[2,3]], a 3-layer
 * D=32 V=50 config, a V=1000 D=16 one. Not counted: the caller's batch tensors (2·N int32), scalars, the parameters.
 * webgpu and tensorflow: predicted like cpu, an assumption: webgpu's Identity and Reshape share buffers and its
 * Slice/Split make new ones in its 4.22 source, as on cpu; tensorflow (tfjs-node) is not installed here, unverified.
 * Neither was measured.
 */

/** One stage's floats: saved for backward, its final gradients, its parameters, and its peak moments. */
interface StageFloats {
  /** Residue the tape keeps for this stage until the backward walk ends (cpu: shared buffers; wasm: copies). */
  saved: number;
  grads: number;
  params: number;
  /** The stage's output when it is not in `saved` (wasm): alive in the forward, and as the value of a graph it ends. */
  out: number;
  /** Inside this stage's backward: floats beyond `saved` (grads + temporaries) and parameter gradients done. */
  moments: { extra: number; paramsDone: number }[];
  /** Forward moments of this stage: its floats alive then (copies so far + intermediates incl. its output). */
  forward: number[];
}

function stageFloats(
  config: GPTConfig,
  stage: number,
  B: number,
  T: number,
  copies: boolean,
  selective = false,
  mst?: ActivationBytesOptions['mst'],
  fused = false,
): StageFloats {
  if (mst && stage >= 1) return mstStageFloats(config, stage, B, T, copies, mst);
  if (fused && !copies && !selective && stage >= 1 && stage <= config.nLayer)
    return fusedBlockFloats(config, B, T);
  const { nLayer: L, nEmbd: D, nHead: H, vocabSize: V, blockSize } = config;
  const N = B * T;
  const ND = N * D;
  const A = B * H * T * T;
  const NV = N * V;
  if (stage === 0) {
    const params = V * D + blockSize * D;
    const moments = [{ extra: T * D + ND + V * D, paramsDone: params }];
    if (!copies) {
      return { saved: 2 * ND + T * D, grads: T * D, params, out: 0, moments, forward: [2 * ND + T * D] };
    }
    const saved = V * D + blockSize * D + 2 * ND + T * D + 2 * N;
    return { saved, grads: T * D, params, out: ND, moments, forward: [saved + 2 * ND + T * D] };
  }
  if (stage <= L && selective) return selectiveBlockFloats(config, B, T, copies);
  if (stage <= L) {
    const params = 12 * D * D + 13 * D;
    const moments = [
      { extra: 14 * ND + 4 * A, paramsDone: 9 * D * D + 8 * D },
      { extra: 26 * ND + 2 * A, paramsDone: params },
    ];
    const grads = 25 * ND + 2 * A;
    // Forward: inside GELU (31·N·D + 2·A alive) and at the block's end (25·N·D + 2·A), plus the residue so far.
    const inGelu = 31 * ND + 2 * A;
    const atEnd = 25 * ND + 2 * A;
    if (!copies) {
      const saved = 21 * ND + A + 4 * N;
      return { saved, grads, params, out: 0, moments, forward: [inGelu + 4 * N, atEnd + 4 * N] };
    }
    const saved = 45 * ND + 2 * A + 24 * D * D + 11 * D + 4 * N;
    const beforeGelu = 29 * ND + 2 * A + 16 * D * D + 10 * D + 4 * N;
    return { saved, grads, params, out: ND, moments, forward: [beforeGelu + inGelu, saved + atEnd] };
  }
  const params = V * D + 2 * D;
  const moments = [
    { extra: 3 * NV, paramsDone: 0 },
    { extra: NV + 4 * ND, paramsDone: V * D },
  ];
  const grads = 2 * ND + NV;
  // Forward: at the end of the logits (lnf out + logits) and inside the cross-entropy's logSumExp (logits, z − max,
  // exp: 3·N·V; max, Σ, log, result: 4·N), plus the residue so far.
  const inLse = 3 * NV + 4 * N;
  if (!copies) {
    // lnf out and the LayerNorm's mean, rstd are saved (shared); the reshaped targets share the caller's batch.
    const kept = ND + 2 * N;
    return { saved: ND + NV + 3 * N, grads, params, out: 0, moments, forward: [kept + NV, kept + inLse] };
  }
  const beforeLogits = 3 * ND + V * D + D + 2 * N; // copies of reshape x, LNf, matMul
  return {
    saved: 3 * ND + V * D + NV + D + 5 * N,
    grads,
    params,
    out: 0,
    moments,
    forward: [beforeLogits + ND + NV, beforeLogits + N + inLse], // + N: the reshaped targets' copy
  };
}

/**
 * A block with selective attention recompute. The custom op saves q, k, v (shared buffers on cpu, as the batched
 * matMuls did; on wasm three copies, 3·N·D, replacing the matMuls' and the softmax's 3·N·D + 2·A), so the residue
 * loses the probabilities: cpu 21·N·D + 4·N, wasm 45·N·D + 24·D² + 11·D + 4·N. Gradients lose d(probs) and
 * d(scores): 25·N·D. The attention backward recomputes P and holds at most P, dP⊙P, P·Σ (3·A) + the row sums
 * (B·H·T) besides d(v) and the 13·N·D of gradients done: 14·N·D + 3·A + B·H·T. The forward moments lose the scores
 * and probabilities kept to the block's end, but the attention op holds 2·A (scores, probabilities) + the mask
 * T² inside its forward on top of the block's 10·N·D so far.
 */
function selectiveBlockFloats(config: GPTConfig, B: number, T: number, copies: boolean): StageFloats {
  const { nEmbd: D, nHead: H } = config;
  const N = B * T;
  const ND = N * D;
  const A = B * H * T * T;
  const params = 12 * D * D + 13 * D;
  const moments = [
    { extra: 14 * ND + 3 * A + B * H * T, paramsDone: 9 * D * D + 8 * D },
    { extra: 26 * ND, paramsDone: params },
  ];
  const grads = 25 * ND;
  const inAttn = 10 * ND + 2 * A + T * T;
  if (!copies) {
    const saved = 21 * ND + 4 * N;
    return {
      saved,
      grads,
      params,
      out: 0,
      moments,
      forward: [inAttn + 2 * N, 31 * ND + 4 * N, 25 * ND + 4 * N],
    };
  }
  const saved = 45 * ND + 24 * D * D + 11 * D + 4 * N;
  const beforeAttn = 10 * ND + 6 * D * D + 3 * D + 2 * N; // copies of reshape x, LN1, qkv matMul, reshapes
  const beforeGelu = 29 * ND + 16 * D * D + 10 * D + 4 * N;
  return {
    saved,
    grads,
    params,
    out: ND,
    moments,
    forward: [beforeAttn + inAttn, beforeGelu + 31 * ND, saved + 25 * ND],
  };
}

/**
 * A block with the fused attention (`flashAttentionPacked`; cpu-like sharing: webgpu). The op reads qkv where the
 * projection wrote it and writes o where the output projection reads it, so no head split or merge exists: it saves
 * qkv (a reshape of the projection's output, which that matMul keeps anyway), o (its reshape is the output
 * projection's saved input) and the row lse [B, T, H]. Against the ops block the residue trades q, k, v copies, the
 * merged copy and the probabilities A for lse B·H·T: 18·N·D + B·H·T + 4·N. Gradients: no d(probs), d(scores), head
 * merge, split or transpose copies: 18·N·D. The attention backward holds the 12·N·D of gradients done, D = rowsum(do∘o)
 * B·H·T and dqkv 3·N·D: 15·N·D + B·H·T; the block's end 19·N·D. Forward: no transposed qkv, q, k, v or merged copy
 * kept to the tidy's end: 24·N·D + B·H·T inside GELU, 18·N·D + B·H·T at the end (the op's own o + lse output buffer,
 * N·D + B·H·T, is freed after slicing, well below GELU's moment).
 */
function fusedBlockFloats(config: GPTConfig, B: number, T: number): StageFloats {
  const { nEmbd: D, nHead: H } = config;
  const N = B * T;
  const ND = N * D;
  const G = B * H * T;
  const params = 12 * D * D + 13 * D;
  return {
    saved: 18 * ND + G + 4 * N,
    grads: 18 * ND,
    params,
    out: 0,
    moments: [
      { extra: 15 * ND + G, paramsDone: 9 * D * D + 8 * D },
      { extra: 19 * ND, paramsDone: params },
    ],
    forward: [24 * ND + G + 4 * N, 18 * ND + G + 4 * N],
  };
}

/**
 * Floats MsT's tiled MLP backward (`tiledMlp` of @kstar/act-mst) holds beyond the block's residue, N rows in
 * `chunks` balanced row chunks (sizes differ by one, larger first). It is the first thing a block's backward runs,
 * and its upstream gradient is the block's (a reshape: shared), so nothing else of the block is alive yet. Chunk i
 * (rows [s, s + c)) recomputes its MLP under a nested tape, with the dx parts of the chunks before it (s·D) and the
 * weight-gradient sums (P = 2·D·F + F + D, from the second chunk on) alive. Its two largest moments (counted with
 * the ledger, op by op, on cpu and wasm):
 *   - inside GELU's backward: the chunk's graph 7·c·F (h, act(h), their gradients and GELU's temporaries) + 3·c·D
 *     (the x and dy slices, d act(h)·wprojᵀ's input) + d wproj D·F + d bproj D;
 *   - at the end of the chunk's gradient call: its weight-gradient parts P + 4·c·F + 4·c·D.
 * The end of the op: the dx parts, their concat and the sums, 2·N·D + P.
 * On wasm the nested tape copies what its kernels save, alive for the whole chunk: the fused matMuls' 3-D operands
 * and outputs beyond the ones cpu shares (3·c·D + 2·c·F), the weights' reshaped copies 4·D·F and the biases F + D.
 * (The op's own saved inputs, x and the weights, are in the block's residue.) The earlier formula, one chunk's
 * 7·c·F + 3·c·D plus 3·N·D + P always and 19·c·D of copies, over-predicted coarse chunks (mst×1) by 8·c·D + 2·N·D
 * and under-predicted fine ones on wasm, where the dx parts and sums it put at 3·N·D are smaller than the copies.
 */
function tiledMlpBackwardFloats(N: number, D: number, F: number, chunks: number, copies: boolean): number {
  const P = 2 * D * F + F + D;
  const m = Math.max(1, Math.min(chunks, N));
  const base = Math.floor(N / m);
  let peak = 2 * N * D + P;
  let start = 0;
  for (let i = 0; i < m; i++) {
    const c = base + (i < N % m ? 1 : 0);
    const before = start * D + (i > 0 ? P : 0) + (copies ? 3 * c * D + 2 * c * F + 4 * D * F + F + D : 0);
    peak = Math.max(peak, before + 7 * c * F + 3 * c * D + D * F + D, before + P + 4 * c * F + 4 * c * D);
    start += c;
  }
  return peak;
}

/**
 * Floats MsT's chunked attention backward (`chunkedAttention` of @kstar/act-mst) holds beyond the block's residue
 * and the gradients the block has already made (the caller adds those), G = B·H heads, query chunks of `chunk`
 * tokens walked last to first; chunk i covers queries [s, e) against keys [0, e). Its moments, as the op allocates
 * (no nested tape: the same on wasm as on cpu):
 *   - inside chunk i: dq of later chunks (T − e)·G·hd + the dk, dv sums 2·N·D (after the first chunk) + slices q,
 *     dy (2·G·c·hd), k, v (2·G·e·hd) + the dv part G·e·hd + three [G, c, e] score-sized buffers + the row sums G·c;
 *   - chunk i's dq, dk parts: the same first two terms + 3·G·c·hd + 4·G·e·hd + ds G·c·e + G·c;
 *   - adding chunk i's parts into the sums: 4·N·D + 2·G·e·hd + the dq parts (T − s)·G·hd;
 *   - the end: dq parts, their concat, dk and dv: 4·N·D.
 * (act-mst's `predictAttentionBytes` adds the op's output N·D, which in a block is not alive in the backward.)
 */
function chunkedAttentionBackwardFloats(B: number, H: number, T: number, hd: number, chunk: number): number {
  const G = B * H;
  const ND = G * T * hd;
  const size = Math.max(1, Math.min(chunk, T));
  let peak = 4 * ND;
  for (let s = 0; s < T; s += size) {
    const c = Math.min(size, T - s);
    const e = s + c;
    const sums = s + c === T ? 0 : 2 * ND; // the last chunk is walked first
    const later = (T - e) * G * hd + sums;
    peak = Math.max(
      peak,
      later + 2 * G * c * hd + 3 * G * e * hd + 3 * G * c * e + G * c,
      later + 3 * G * c * hd + 4 * G * e * hd + G * c * e + G * c,
      sums === 0 ? 0 : 4 * ND + 2 * G * e * hd + (T - s) * G * hd,
    );
  }
  return peak;
}

/**
 * Floats MsT's chunked LM head + loss backward (`chunkedLinearCrossEntropy`) holds beyond the head's residue (which
 * keeps the per-row logsumexp), N rows in `chunks` balanced chunks (larger first). It runs first in the backward.
 * Chunk i (rows [s, s + c)): the dh parts so far (s + c)·D + the dW sum V·D (after the first chunk) + three [c, V]
 * buffers (probabilities, one-hot, their difference) + 2·c, or, while its dW part is made, the h slice c·D + the
 * part V·D + dz c·V + 2·c. Adding a part into the sum (in place): 2·V·D + N·D; the dh concat: 2·N·D + V·D.
 * (act-mst's `predictLossBytes` adds the logsumexp N, here in the residue.)
 */
function chunkedLossBackwardFloats(N: number, D: number, V: number, chunks: number): number {
  const m = Math.max(1, Math.min(chunks, N));
  const base = Math.floor(N / m);
  let peak = Math.max(2 * V * D + N * D, 2 * N * D + V * D);
  let start = 0;
  for (let i = 0; i < m; i++) {
    const c = base + (i < N % m ? 1 : 0);
    const before = (start + c) * D + (i > 0 ? V * D : 0);
    peak = Math.max(peak, before + 3 * c * V + 2 * c, before + c * D + V * D + c * V + 2 * c);
    start += c;
  }
  return peak;
}

/**
 * Blocks and head with MsT's ops. Block: as the selective block (the chunked attention saves q, k, v) without the
 * MLP's saved intermediates (fc out, GELU out: cpu −8·N·D; wasm the fused matMuls' and GELU's copies
 * 19·N·D + 16·D² + 5·D are replaced by x and the four weights, N·D + 8·D² + 5·D) and their gradients (−8·N·D). The
 * ops' backward chunk by chunk: `tiledMlpBackwardFloats`, `chunkedAttentionBackwardFloats` (after the 5·N·D of
 * gradients the block has made by then) and, in the head, `chunkedLossBackwardFloats`: the [N, V] logits are neither
 * saved nor differentiated whole. Forward: one attention chunk's two score-sized buffers 2·B·H·c·T, one MLP chunk's
 * 2·c·F, one loss chunk's three [c, V] (logits, z − max, exp inside logSumExp; then logits, one-hot, their product).
 */
function mstStageFloats(
  config: GPTConfig,
  stage: number,
  B: number,
  T: number,
  copies: boolean,
  mst: NonNullable<ActivationBytesOptions['mst']>,
): StageFloats {
  const { nLayer: L, nEmbd: D, nHead: H, vocabSize: V } = config;
  const N = B * T;
  const ND = N * D;
  if (stage <= L) {
    const F = 4 * D;
    const cm = Math.ceil(N / Math.max(1, Math.min(mst.mlpChunks, N)));
    const ca = Math.max(1, Math.min(mst.attentionChunk, T));
    const attn = 6 * B * H * ca * T;
    const params = 12 * D * D + 13 * D;
    const moments = [
      { extra: tiledMlpBackwardFloats(N, D, F, mst.mlpChunks, copies), paramsDone: 0 },
      { extra: 5 * ND + chunkedAttentionBackwardFloats(B, H, T, D / H, ca), paramsDone: 9 * D * D + 8 * D },
      { extra: 18 * ND, paramsDone: params },
    ];
    const grads = 17 * ND;
    if (!copies) {
      const saved = 13 * ND + 4 * N;
      return {
        saved,
        grads,
        params,
        out: 0,
        moments,
        forward: [10 * ND + attn / 3 + 2 * N, 17 * ND + 2 * cm * F + 4 * N],
      };
    }
    const saved = 27 * ND + 16 * D * D + 11 * D + 4 * N;
    const beforeAttn = 10 * ND + 6 * D * D + 3 * D + 2 * N;
    return {
      saved,
      grads,
      params,
      out: ND,
      moments,
      forward: [beforeAttn + 10 * ND + attn / 3, saved + 17 * ND + 2 * cm * F],
    };
  }
  const cl = Math.ceil(N / Math.max(1, Math.min(mst.lossChunks, N)));
  const params = V * D + 2 * D;
  const moments = [
    { extra: chunkedLossBackwardFloats(N, D, V, mst.lossChunks), paramsDone: 0 },
    { extra: 4 * ND, paramsDone: V * D },
  ];
  const grads = 2 * ND;
  const saved = copies ? 3 * ND + V * D + D + 4 * N : ND + 4 * N;
  return { saved, grads, params, out: 0, moments, forward: [saved + 3 * cl * V + 2 * N] };
}

/** Peak floats of differentiating the stages (in order) together, that graph's residue + gradients, and its params. */
function graphPeak(stages: StageFloats[]): {
  peak: number;
  phase: 'forward' | 'backward';
  graph: number;
  params: number;
} {
  let peak = 0;
  let phase: 'forward' | 'backward' = 'forward';
  // Forward: the earlier stages' residue and outputs, plus this stage's moment.
  let done = 0;
  for (const st of stages) {
    for (const f of st.forward) peak = Math.max(peak, done + f);
    done += st.saved + st.out;
  }
  // The graph's value (the last stage's output) is alive through the backward walk.
  const value = stages[stages.length - 1]!.out;
  // Backward order: the last stage first. `after` = finished stages (saved + grads + params).
  let after = 0;
  for (let i = stages.length - 1; i >= 0; i--) {
    let before = 0;
    for (let j = 0; j < i; j++) before += stages[j]!.saved;
    const st = stages[i]!;
    const end = st.saved + st.grads + st.params;
    for (const m of [...st.moments, { extra: st.grads, paramsDone: st.params }]) {
      const moment = value + before + after + st.saved + m.extra + m.paramsDone;
      if (moment > peak) {
        peak = moment;
        phase = 'backward';
      }
    }
    after += end;
  }
  const graph = value + stages.reduce((a, s) => a + s.saved + s.grads, 0);
  const params = stages.reduce((a, s) => a + s.params, 0);
  return { peak, phase, graph, params };
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
  const backend = opts.backend ?? 'cpu';
  if (!BACKENDS.includes(backend)) {
    throw new InputError(
      `predictActivationBytes backend '${String(backend)}' is unknown: use ${BACKENDS.map((b) => `'${b}'`).join(', ')}`,
    );
  }
  const nStages = config.nLayer + 2;
  const ND = B * T * config.nEmbd;
  const copies = backend === 'wasm';
  const selective = opts.selectiveAttention === true;
  const attention = opts.attention ?? attentionSetting() ?? (backend === 'webgpu' ? 'fused' : 'ops');
  if (attention !== 'fused' && attention !== 'ops') {
    throw new InputError(
      `predictActivationBytes attention '${String(attention)}' is unknown: use 'fused' or 'ops'`,
    );
  }
  const all = Array.from({ length: nStages }, (_, i) =>
    stageFloats(config, i, B, T, copies, selective, opts.mst, attention === 'fused'),
  );
  const segments = mode === 'full' ? [all.map((_, i) => i)] : (opts.segments ?? all.map((_, i) => [i]));
  // Floats each segment's saved input holds between forward and recompute (a per-segment list: a planner's mix).
  const savedFloats = segments.map((_, s) => {
    const b = opts.savedInputBytes;
    const v = b === undefined ? ND : typeof b === 'number' ? b / 4 : (b[s] ?? 4 * ND) / 4;
    if (!(v >= 0 && Number.isFinite(v))) {
      throw new InputError(
        `predictActivationBytes savedInputBytes ${JSON.stringify(b)} is invalid: pass byte counts ≥ 0 (one number, or one per segment)`,
      );
    }
    return v;
  });
  const flat = segments.flat();
  if (flat.length !== nStages || flat.some((v, i) => v !== i) || segments.some((s) => s.length === 0)) {
    throw new InputError(
      `segments ${JSON.stringify(segments)} do not cover the ${nStages} stages once each, in order: group consecutive indices 0..${nStages - 1}`,
    );
  }
  let best: Omit<ActivationBytesBreakdown, 'segmentTotals'> | undefined;
  const segmentTotals: number[] = [];
  segments.forEach((seg, s) => {
    const g = graphPeak(seg.map((i) => all[i]!));
    // Segment s > 0 recomputes from its (decoded) float32 input, N·D; the inputs of segments 1 … s−1 are still
    // stored (savedFloats each; the last segment's input is never encoded, but by then it has been freed).
    let savedInputs = s === 0 ? 0 : ND;
    for (let j = 1; j < s; j++) savedInputs += savedFloats[j]!;
    const upstreamGrad = s < segments.length - 1 ? ND : 0;
    const transient = g.peak - g.graph - g.params;
    const total = savedInputs + upstreamGrad + g.peak;
    segmentTotals.push(total * 4);
    if (!best || total * 4 > best.total) {
      best = {
        savedInputs: savedInputs * 4,
        upstreamGrad: upstreamGrad * 4,
        graph: g.graph * 4,
        paramGrads: g.params * 4,
        transient: transient * 4,
        total: total * 4,
        peakSegment: s,
        peakPhase: g.phase,
      };
    }
  });
  return { ...best!, segmentTotals };
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
