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
 * Working set of an op = peak bytes of the buffers it creates while its forward and backward run (tf.grads of the
 * op with a given upstream gradient), float32, cpu/webgpu (the tape's saved tensors share their buffers): it includes
 * the op's output, its outputs' gradients (dx, dW) and every temporary; not its inputs, the weights or dy. Derived by
 * walking the code (src/*.ts and @kstar/gpt's stages), checked against the ledger in test/predict.test.ts.
 * N rows, D width, F = MLP hidden width, P = 2·D·F + F + D (MLP parameters), G = B·H, V vocab, c = chunk rows.
 *
 * MLP, chunked: the output N·D and the per-chunk dx (up to N·D) stay alive through the backward; the weight gradient
 *   sums P plus one chunk's new part P; one chunk's recomputed graph under tf.grads: h, act(h), d act(h), and GELU's
 *   backward temporaries (4·c·F), the x, dy slices and the output 3·c·D; at the end the concat of dx (N·D).
 *   max(2·N·D + 2·P + 7·c·F + 3·c·D, 3·N·D + P).
 * MLP, unchunked (the model's mlpCore under the tape): saved h and act(h) 2·N·F, output N·D; backward d act(h) N·F,
 *   GELU backward 4·N·F, dx N·D, dW P: 7·N·F + 2·N·D + P.
 * Attention, chunked, query chunk c against keys [0, e ≤ T): one chunk's probabilities and softmax-gradient
 *   temporaries 6·G·c·T (bounded with e = T), plus the output, dq parts, dk and dv sums and one padded part
 *   (about 6·N·D, N·D = G·T·hd).
 * Attention, unchunked (attentionCore: scores, causal softmax, ·v under the tape): scores and probs 2·G·T², d probs,
 *   and the softmax backward's 3 temporaries: 6·G·T², plus about 4·N·D.
 * Loss, chunked: one chunk's logits and their temporaries 5·c·V; dh N·D; dW sum + part + new sum 3·V·D; lse N.
 * Loss, unchunked (linearCrossEntropyCore): logits N·V saved, and the cross-entropy backward's 3·N·V, plus
 *   dh N·D and dW V·D: 4·N·V + N·D + V·D.
 */

function mlpFloats(N: number, D: number, F: number, chunks?: number): number {
  const P = 2 * D * F + F + D;
  if (chunks === undefined) return 7 * N * F + 2 * N * D + P;
  const c = Math.ceil(N / Math.max(1, Math.min(chunks, N)));
  return Math.max(2 * N * D + 2 * P + 7 * c * F + 3 * c * D, 3 * N * D + P);
}

function attentionFloats(B: number, H: number, T: number, hd: number, chunk?: number): number {
  const G = B * H;
  const ND = G * T * hd;
  if (chunk === undefined) return 6 * G * T * T + 4 * ND;
  const c = Math.max(1, Math.min(chunk, T));
  return 6 * G * c * T + 6 * ND;
}

function lossFloats(N: number, D: number, V: number, chunks?: number): number {
  if (chunks === undefined) return 4 * N * V + N * D + V * D;
  const c = Math.ceil(N / Math.max(1, Math.min(chunks, N)));
  return 5 * c * V + N * D + 3 * V * D + N;
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

/** Attention query ranges over T tokens: fixed `chunk` tokens (tail last) or `chunks` balanced chunks. */
export function attentionRanges(seq: number, by: { chunk: number } | { chunks: number }): Range[] {
  return 'chunk' in by ? splitBySize(seq, by.chunk) : splitBalanced(seq, by.chunks);
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
    `mst targetBytes = ${target} cannot be met by the ${op}: even ${what} needs a predicted ${best} bytes; raise the target (or the memory budget) or shorten the sequence`,
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
