import { InputError } from '@kstar/core';
import { type Range, splitBalanced, splitBySize } from './split.ts';

/** Model sizes the predictions need. */
export interface ModelDims {
  readonly nEmbd: number;
  readonly nHead: number;
  readonly vocab: number;
  /** MLP hidden width F (default 4·nEmbd). */
  readonly mlpHidden?: number;
}

/** Sizes of one training step's ops: N = batch·seq rows. */
export interface MstShape extends ModelDims {
  readonly batch: number;
  readonly seq: number;
}

/** Chunking of the three ops. */
export interface MstChunks {
  /** MLP row chunks M (balanced split of N = B·T rows). */
  readonly mlpChunks: number;
  /** Query tokens per attention chunk (the last chunk is the tail). */
  readonly attentionChunk: number;
  /** LM head + loss row chunks M (balanced split of N rows). */
  readonly lossChunks: number;
}

/** Predicted peak working set of one op, chunked (MsT) and unchunked (the model's own op), in bytes. */
export interface OpBytes {
  readonly chunked: number;
  readonly unchunked: number;
}

export interface MstBytes {
  readonly chunks: MstChunks;
  readonly mlp: OpBytes;
  readonly attention: OpBytes;
  readonly loss: OpBytes;
  /** The largest op of each kind (ops run one after another, so the step holds one op's working set at a time). */
  readonly peak: OpBytes;
}

/*
 * Working set of an op = the peak of the unique buffers it creates while its forward and backward run (`tf.grads` of
 * the op with a given upstream gradient dy), as @kstar/core's MemoryLedger counts them (engine-tracked buffers; the
 * tape's saved tensors share their buffers, as on cpu and webgpu): the op's output, the gradients it returns (dx, dW)
 * and every temporary; not its inputs, the weights or dy. float32 (4 bytes a float). Derived by walking the code
 * (src/*.ts, and @kstar/gpt's stages.ts for the unchunked ops) and held to the ledger in test/memory.test.ts.
 * N rows, D width, F MLP hidden width (act = GPT's GELU), P = 2·D·F + F + D (the MLP's parameters), V vocab,
 * G = B·H, T tokens, hd head width (N·D = G·T·hd); chunk i covers rows [s_i, s_i + c_i), "before_i" = s_i.
 *
 * MLP, unchunked (mlpCore under the tape): h and act(h) saved, d act(h), GELU's backward temporaries: 7·N·F, plus the
 *   output N·D and d wproj D·F + D: 7·N·F + N·D + D·F + D.
 * MLP, chunked (tiledMlp), the largest of
 *   - chunk i's recompute under tf.grads: output N·D + dx of earlier chunks s_i·D + weight-gradient sum P (i > 0) +
 *     the chunk's graph 7·c_i·F (as above) + 3·c_i·D (x, dy slices, dx) + d wproj D·F + D;
 *   - the end of chunk i's tf.grads: the same first three terms + the chunk's weight gradients P + 4·c_i·F (h,
 *     act(h) and their gradients) + 4·c_i·D;
 *   - the end: output, dx parts and their concat 3·N·D + P.
 * Attention, unchunked (attentionCore: scores, causal softmax, ·v under the tape): 5·G·T² + 2·N·D + G·T.
 * Attention, chunked (chunkedAttention; chunks walked last to first; chunk i reads keys [0, e_i), e_i = s_i + c_i),
 *   the largest of
 *   - inside chunk i: output N·D + dq of later chunks (T − e_i)·G·hd + the dk, dv sums 2·N·D (after the first) +
 *     slices q, dy (2·G·c_i·hd), k, v (2·G·e_i·hd) + dv part G·e_i·hd + three [G, c_i, e_i] score-sized buffers
 *     (p, dp·p, p·Σ) + the row sums G·c_i;
 *   - chunk i's dq, dk parts: the same first three terms + slices, dv and dk parts (3·G·c_i·hd + 4·G·e_i·hd) +
 *     ds G·c_i·e_i + G·c_i;
 *   - adding chunk i's dk into the sum: 4·N·D (sums, the padded part, the new sum) + dk, dv parts 2·G·e_i·hd +
 *     output N·D + dq parts (T − s_i)·G·hd;
 *   - the end: output, dq parts and their concat, dk, dv: 5·N·D.
 * Loss, unchunked (linearCrossEntropyCore): logits N·V saved + the cross-entropy backward's 3·N·V + N: 4·N·V + N.
 * Loss, chunked (chunkedLinearCrossEntropy), the largest of
 *   - chunk i's backward: lse N + dh of chunks so far (s_i + c_i)·D + dW sum V·D (i > 0) + three [c_i, V] buffers
 *     (probabilities, one-hot, their difference) + 2·c_i, or, while its dW part is made, the h slice c_i·D + the
 *     part V·D + dz c_i·V + 2·c_i;
 *   - adding a part into the dW sum (in place: 2·V·D) + N·D + N; the dh concat: 2·N·D + V·D + N.
 * Not counted: temporaries a backend kernel makes and frees inside one kernel (e.g. softmax's), scalars.
 * On wasm every tensor the tape saves is a copy: add the saved inputs and weights (and, unchunked, the saved
 * intermediates, which chunking removes: the gap grows).
 */

function mlpFloats(N: number, D: number, F: number, chunks?: number): number {
  if (chunks === undefined) return 7 * N * F + N * D + D * F + D;
  const P = 2 * D * F + F + D;
  let peak = 3 * N * D + P;
  splitBalanced(N, chunks).forEach((r, i) => {
    const before = N * D + r.start * D + (i > 0 ? P : 0);
    const graph = before + 7 * r.size * F + 3 * r.size * D + D * F + D;
    const grads = before + P + 4 * r.size * F + 4 * r.size * D;
    peak = Math.max(peak, graph, grads);
  });
  return peak;
}

function attentionFloats(B: number, H: number, T: number, hd: number, chunk?: number): number {
  const G = B * H;
  const ND = G * T * hd;
  if (chunk === undefined) return 5 * G * T * T + 2 * ND + G * T;
  const ranges = splitBySize(T, chunk);
  let peak = 5 * ND;
  ranges.forEach((r, i) => {
    const e = r.start + r.size;
    const c = r.size;
    const first = i === ranges.length - 1; // walked last to first
    const inside =
      ND + (T - e) * G * hd + (first ? 0 : 2 * ND) + 2 * G * c * hd + 3 * G * e * hd + 3 * G * c * e + G * c;
    const afterDs =
      ND + (T - e) * G * hd + (first ? 0 : 2 * ND) + 3 * G * c * hd + 4 * G * e * hd + G * c * e + G * c;
    const adding = first ? 0 : 4 * ND + 2 * G * e * hd + ND + (T - r.start) * G * hd;
    peak = Math.max(peak, inside, afterDs, adding);
  });
  return peak;
}

function lossFloats(N: number, D: number, V: number, chunks?: number): number {
  if (chunks === undefined) return 4 * N * V + N;
  let peak = Math.max(2 * V * D + N * D + N, 2 * N * D + V * D + N);
  splitBalanced(N, chunks).forEach((r, i) => {
    const before = N + (r.start + r.size) * D + (i > 0 ? V * D : 0);
    const probs = before + 3 * r.size * V + 2 * r.size;
    const dwPart = before + r.size * D + V * D + r.size * V + 2 * r.size;
    peak = Math.max(peak, probs, dwPart);
  });
  return peak;
}

/** Predicted MLP working set (bytes) for N rows: `chunks` given → MsT's tiled MLP, absent → the model's own. */
export function predictMlpBytes(rows: number, nEmbd: number, hidden: number, chunks?: number): number {
  return 4 * mlpFloats(rows, nEmbd, hidden, chunks);
}

/** Predicted attention working set (bytes): `chunk` query tokens given → MsT's, absent → the model's own. */
export function predictAttentionBytes(
  batch: number,
  nHead: number,
  seq: number,
  headDim: number,
  chunk?: number,
): number {
  return 4 * attentionFloats(batch, nHead, seq, headDim, chunk);
}

/** Predicted LM head + loss working set (bytes): `chunks` given → MsT's, absent → the model's own. */
export function predictLossBytes(rows: number, nEmbd: number, vocab: number, chunks?: number): number {
  return 4 * lossFloats(rows, nEmbd, vocab, chunks);
}

/** Attention query ranges over T tokens: `chunk` tokens each, or ⌈T/chunks⌉ tokens each; the tail last. */
export function attentionRanges(seq: number, by: { chunk: number } | { chunks: number }): Range[] {
  return splitBySize(seq, 'chunk' in by ? by.chunk : Math.ceil(seq / by.chunks));
}

/**
 * MsT's default rules: MLP chunk ≈ D tokens (M = ⌈N/D⌉: one chunk's [c, F] intermediate ≈ one MLP weight); loss
 * M = ⌈V/D⌉ (one chunk's logits ≈ the [N, D] hidden state); attention chunk = ⌊D/H⌋ query tokens (one chunk's
 * scores [B, H, c, T] ≈ the hidden state).
 */
export function defaultChunks(shape: {
  rows?: number;
  nEmbd: number;
  nHead?: number;
  vocab?: number;
}): MstChunks {
  const D = shape.nEmbd;
  return {
    mlpChunks: Math.max(1, Math.ceil((shape.rows ?? D) / D)),
    attentionChunk: Math.max(1, Math.floor(D / (shape.nHead ?? 1))),
    lossChunks: Math.max(1, Math.ceil((shape.vocab ?? D) / D)),
  };
}

function unreachable(op: string, target: number, best: number, what: string): never {
  throw new InputError(
    `mst targetBytes = ${target} cannot be met by the ${op}: even with ${what} it needs a predicted ${best} bytes; raise the target (or the memory budget) or shorten the sequence`,
  );
}

/** Smallest M in [1, hi] with f(M) ≤ target (f non-increasing in M), or undefined. */
function smallestFitting(hi: number, f: (m: number) => number, target: number): number | undefined {
  if (f(hi) > target) return undefined;
  let lo = 1;
  let h = hi;
  while (lo < h) {
    const mid = Math.floor((lo + h) / 2);
    if (f(mid) <= target) h = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Fewest MLP chunks whose predicted working set fits `targetBytes`; InputError when none does. */
export function chooseMlpChunks(rows: number, nEmbd: number, hidden: number, targetBytes: number): number {
  const m = smallestFitting(rows, (k) => predictMlpBytes(rows, nEmbd, hidden, k), targetBytes);
  return m ?? unreachable('MLP', targetBytes, predictMlpBytes(rows, nEmbd, hidden, rows), `one-row chunks`);
}

/** Largest attention query chunk whose predicted working set fits `targetBytes`; InputError when none does. */
export function chooseAttentionChunk(
  batch: number,
  nHead: number,
  seq: number,
  headDim: number,
  targetBytes: number,
): number {
  // Chunks of ⌈T/k⌉ tokens, k smallest: the largest chunk that fits.
  const f = (k: number) => predictAttentionBytes(batch, nHead, seq, headDim, Math.ceil(seq / k));
  const k = smallestFitting(seq, f, targetBytes);
  if (k === undefined) unreachable('attention', targetBytes, f(seq), 'one-token query chunks');
  return Math.ceil(seq / k);
}

/** Fewest loss chunks whose predicted working set fits `targetBytes`; InputError when none does. */
export function chooseLossChunks(rows: number, nEmbd: number, vocab: number, targetBytes: number): number {
  const m = smallestFitting(rows, (k) => predictLossBytes(rows, nEmbd, vocab, k), targetBytes);
  return (
    m ??
    unreachable('LM head + loss', targetBytes, predictLossBytes(rows, nEmbd, vocab, rows), `one-row chunks`)
  );
}

function checkShape(shape: MstShape): void {
  for (const k of ['batch', 'seq', 'nEmbd', 'nHead', 'vocab'] as const) {
    const v = shape[k];
    if (!Number.isInteger(v) || v < 1) {
      throw new InputError(`mst sizes: ${k} = ${String(v)} is not a positive integer`);
    }
  }
  if (shape.nEmbd % shape.nHead !== 0) {
    throw new InputError(`mst sizes: nHead = ${shape.nHead} does not divide nEmbd = ${shape.nEmbd}`);
  }
}

/**
 * Chunking of every op whose predicted working set fits `targetBytes` (per op, the coarsest that fits: fewest
 * recomputes). Throws InputError, naming the op and its smallest possible working set, when one cannot fit.
 */
export function chooseChunks(shape: MstShape & { readonly targetBytes: number }): MstChunks {
  checkShape(shape);
  const t = shape.targetBytes;
  if (!Number.isFinite(t) || t <= 0)
    throw new InputError(`mst targetBytes = ${String(t)} is not a positive number`);
  const N = shape.batch * shape.seq;
  const D = shape.nEmbd;
  return {
    mlpChunks: chooseMlpChunks(N, D, shape.mlpHidden ?? 4 * D, t),
    attentionChunk: chooseAttentionChunk(shape.batch, shape.nHead, shape.seq, D / shape.nHead, t),
    lossChunks: chooseLossChunks(N, D, shape.vocab, t),
  };
}

/**
 * Predicted working sets of the three ops, chunked with the given chunking (`chunks` for all, per-op overrides,
 * MsT's defaults otherwise) and unchunked. For the trainer's `--memory-budget` planning.
 */
export function predictMstBytes(
  shape: MstShape & Partial<MstChunks> & { readonly chunks?: number },
): MstBytes {
  checkShape(shape);
  const { batch: B, seq: T, nEmbd: D, nHead: H, vocab: V } = shape;
  const N = B * T;
  const F = shape.mlpHidden ?? 4 * D;
  const def = defaultChunks({ rows: N, nEmbd: D, nHead: H, vocab: V });
  const chunks: MstChunks = {
    mlpChunks: shape.mlpChunks ?? shape.chunks ?? def.mlpChunks,
    attentionChunk: shape.attentionChunk ?? (shape.chunks ? Math.ceil(T / shape.chunks) : def.attentionChunk),
    lossChunks: shape.lossChunks ?? shape.chunks ?? def.lossChunks,
  };
  const mlp = {
    chunked: predictMlpBytes(N, D, F, chunks.mlpChunks),
    unchunked: predictMlpBytes(N, D, F),
  };
  const attention = {
    chunked: predictAttentionBytes(B, H, T, D / H, chunks.attentionChunk),
    unchunked: predictAttentionBytes(B, H, T, D / H),
  };
  const loss = {
    chunked: predictLossBytes(N, D, V, chunks.lossChunks),
    unchunked: predictLossBytes(N, D, V),
  };
  const peak = {
    chunked: Math.max(mlp.chunked, attention.chunked, loss.chunked),
    unchunked: Math.max(mlp.unchunked, attention.unchunked, loss.unchunked),
  };
  return { chunks, mlp, attention, loss, peak };
}
