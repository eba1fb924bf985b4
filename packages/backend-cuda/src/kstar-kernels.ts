import { AdamwQueue } from './adamw-queue.ts';
import { type Impl, type Info, p } from './kernel-context.ts';
import {
  ADAMW_CONSTS,
  adamwSource,
  adamwVec4Source,
  addInPlaceSource,
  causalSoftmaxGradSource,
  causalSoftmaxSource,
  columnSumSource,
  crossEntropyGradSource,
  crossEntropyRowsSource,
  join24Source,
  LN_ROWS,
  layerNormGradDxSource,
  layerNormGradPartialSource,
  layerNormSource,
  lionSource,
  meanSource,
  ROW_BLOCK,
  split24Source,
} from './kstar-sources.ts';
import { launchFixed, launchRows, release, view } from './launch.ts';
import { f32, i32, i64, ptr } from './params.ts';
import { sizeOf } from './shape.ts';

/**
 * The `cuda` implementations of K*'s own kernels, under their @kstar/kernels names and with their contracts (inputs,
 * attributes, outputs): with these registered, `defineKernel`'s `run` dispatches to them instead of the tfjs-ops
 * fallbacks. In-place kernels (AdamW, Lion, add, slice write) write their buffers and return aliases (`view`: one
 * more reference, which the caller's disposal drops), as the cpu kernels do.
 */

/** [N, D] of a tensor normalised over its last axis. */
function rowsOf(x: Info): [number, number] {
  const D = x.shape[x.shape.length - 1] ?? 1;
  return [D === 0 ? 0 : sizeOf(x.shape) / D, D];
}

function requireFloat(kernel: string, ts: Record<string, Info>): void {
  for (const [name, t] of Object.entries(ts))
    if (t.dtype !== 'float32')
      throw new Error(
        `backend 'cuda': ${kernel} input ${name} is ${t.dtype}; it takes float32 (cast it first)`,
      );
}

const layerNorm: Impl = ({ inputs, backend: b, attrs }) => {
  const { x, gamma, beta } = inputs as Record<string, Info>;
  requireFloat('KstarLayerNorm', { x: x!, gamma: gamma!, beta: beta! });
  const [N, D] = rowsOf(x!);
  const y = b.makeOutput(x!.shape.slice(), 'float32'); // [N, D]
  const mean = b.makeOutput([N, 1], 'float32');
  const rstd = b.makeOutput([N, 1], 'float32');
  const name = 'kstar_layer_norm';
  launchRows(
    b,
    name,
    layerNormSource(name),
    N,
    [p(b, y), p(b, mean), p(b, rstd), p(b, x!), p(b, gamma!), p(b, beta!), i64(D), f32(attrs.eps as number)],
    ROW_BLOCK,
  );
  return [y, mean, rstd];
};

const layerNormGrad: Impl = ({ inputs, backend: b }) => {
  const { x, gamma, mean, rstd, dy } = inputs as Record<string, Info>;
  requireFloat('KstarLayerNormGrad', { x: x!, gamma: gamma!, mean: mean!, rstd: rstd!, dy: dy! });
  const [N, D] = rowsOf(x!);
  const dx = b.makeOutput(x!.shape.slice(), 'float32'); // [N, D]
  const dx_ = 'kstar_layer_norm_grad_dx';
  launchRows(
    b,
    dx_,
    layerNormGradDxSource(dx_),
    N,
    [p(b, dx), p(b, x!), p(b, dy!), p(b, gamma!), p(b, mean!), p(b, rstd!), i64(D)],
    ROW_BLOCK,
  );
  // dγ, dβ: partial column sums over chunks of LN_ROWS rows [C, 2D], then their sum over C → [2D].
  const C = Math.ceil(N / LN_ROWS);
  const partial = b.makeOutput([C, 2 * D], 'float32');
  const part = 'kstar_layer_norm_grad_partial';
  launchFixed(b, part, layerNormGradPartialSource(part), C * 2 * D, [
    p(b, partial),
    p(b, x!),
    p(b, dy!),
    p(b, mean!),
    p(b, rstd!),
    i64(N),
    i64(D),
  ]);
  const sums = b.makeOutput([2 * D], 'float32');
  const col = 'kstar_column_sum';
  if (C === 0) b.device.fill32(b.pointer(sums.dataId), 0, 2 * D);
  else launchFixed(b, col, columnSumSource(col), 2 * D, [p(b, sums), p(b, partial), i64(C), i64(2 * D)]);
  release(b, partial);
  const dgamma = b.makeOutput([D], 'float32');
  const dbeta = b.makeOutput([D], 'float32');
  b.device.copy(b.pointer(dgamma.dataId), b.pointer(sums.dataId), 4 * D);
  b.device.copy(b.pointer(dbeta.dataId), b.pointer(sums.dataId) + 4 * D, 4 * D);
  release(b, sums);
  return [dx, dgamma, dbeta];
};

const causalSoftmax: Impl = ({ inputs, backend: b, attrs }) => {
  const s = inputs.s!;
  requireFloat('KstarCausalSoftmax', { s });
  const [rows, T] = rowsOf(s);
  const out = b.makeOutput(s.shape.slice(), 'float32'); // [B, H, T, T]
  const name = 'kstar_causal_softmax';
  launchRows(
    b,
    name,
    causalSoftmaxSource(name),
    rows,
    [p(b, out), p(b, s), i64(T), f32(attrs.scale as number)],
    ROW_BLOCK,
  );
  return out;
};

const causalSoftmaxGrad: Impl = ({ inputs, backend: b, attrs }) => {
  const { p: probs, dp } = inputs as Record<string, Info>;
  requireFloat('KstarCausalSoftmaxGrad', { p: probs!, dp: dp! });
  const [rows, T] = rowsOf(probs!);
  const out = b.makeOutput(probs!.shape.slice(), 'float32'); // [B, H, T, T]
  const name = 'kstar_causal_softmax_grad';
  launchRows(
    b,
    name,
    causalSoftmaxGradSource(name),
    rows,
    [p(b, out), p(b, probs!), p(b, dp!), i64(T), f32(attrs.scale as number)],
    ROW_BLOCK,
  );
  return out;
};

const crossEntropy: Impl = ({ inputs, backend: b }) => {
  const { logits, targets } = inputs as Record<string, Info>;
  requireFloat('KstarCrossEntropy', { logits: logits! });
  const [N, V] = logits!.shape as [number, number];
  const rowLoss = b.makeOutput([N], 'float32');
  const lse = b.makeOutput([N, 1], 'float32');
  const rows = 'kstar_cross_entropy_rows';
  launchRows(
    b,
    rows,
    crossEntropyRowsSource(rows),
    N,
    [p(b, rowLoss), p(b, lse), p(b, logits!), p(b, targets!), i64(V)],
    ROW_BLOCK,
  );
  const loss = b.makeOutput([], 'float32');
  const mean = 'kstar_mean';
  launchRows(b, mean, meanSource(mean), 1, [p(b, loss), p(b, rowLoss), i64(N)], 1024);
  release(b, rowLoss);
  return [loss, lse];
};

const crossEntropyGrad: Impl = ({ inputs, backend: b }) => {
  const { logits, lse, targets, dy } = inputs as Record<string, Info>;
  requireFloat('KstarCrossEntropyGrad', { logits: logits!, lse: lse!, dy: dy! });
  const [N, V] = logits!.shape as [number, number];
  const dz = b.makeOutput([N, V], 'float32');
  const name = 'kstar_cross_entropy_grad';
  launchFixed(b, name, crossEntropyGradSource(name), N * V, [
    p(b, dz),
    p(b, logits!),
    p(b, lse!),
    p(b, targets!),
    p(b, dy!),
    i64(V),
    i64(N * V),
    f32(1 / N),
  ]);
  return dz;
};

/**
 * Attributes as computed by @kstar/kernels' adamw.ts `constants` (float64 there, float32 here). Queued with the step's
 * other updates (adamw-queue.ts), which go out in launches of up to 32 tensors; KSTAR_CUDA_ADAMW_BATCH=0 launches
 * each at once through the one-tensor kernels.
 */
const adamw: Impl = ({ inputs, backend: b, attrs: c }) => {
  const { param, grad, m, v } = inputs as Record<string, Info>;
  requireFloat('KstarAdamW', { param: param!, grad: grad!, m: m!, v: v! });
  const n = sizeOf(param!.shape);
  const [pp, pg, pm, pv] = [param!, grad!, m!, v!].map((t) => b.pointer(t.dataId)) as [
    number,
    number,
    number,
    number,
  ];
  // 4 elements a thread where the length and every buffer allow 128-bit accesses (a GPT's parameters all do).
  const vec4 = n % 4 === 0 && [pp, pg, pm, pv].every((x) => x % 16 === 0);
  const k = ADAMW_CONSTS.map((key) => c[key] as number);
  if (n > 0 && AdamwQueue.enabled())
    b.adamw.push(b, { p: pp, g: pg, m: pm, v: pv, n: vec4 ? n / 4 : n, vec4, k });
  else {
    const name = vec4 ? 'kstar_adamw_vec4' : 'kstar_adamw';
    launchFixed(b, name, (vec4 ? adamwVec4Source : adamwSource)(name), vec4 ? n / 4 : n, [
      ...[pp, pg, pm, pv].map(ptr),
      i64(vec4 ? n / 4 : n),
      ...k.map(f32),
    ]);
  }
  return [param!, m!, v!].map((t) => view(b, t, t.shape.slice()));
};

/** Attributes as computed by @kstar/optim-lion's kernel.ts `constants`. */
const lion: Impl = ({ inputs, backend: b, attrs: c }) => {
  const { param, grad, m } = inputs as Record<string, Info>;
  requireFloat('KstarLion', { param: param!, grad: grad!, m: m! });
  const name = 'kstar_lion';
  const n = sizeOf(param!.shape);
  launchFixed(b, name, lionSource(name), n, [
    p(b, param!),
    p(b, grad!),
    p(b, m!),
    i64(n),
    ...(['lr', 'beta1', 'oneMinusBeta1', 'beta2', 'oneMinusBeta2', 'decay'] as const).map((k) =>
      f32(c[k] as number),
    ),
  ]);
  return [param!, m!].map((t) => view(b, t, t.shape.slice()));
};

const addInPlace: Impl = ({ inputs, backend: b }) => {
  const { acc, g } = inputs as Record<string, Info>;
  requireFloat('KstarAddInPlace', { acc: acc!, g: g! });
  const name = 'kstar_add_in_place';
  const n = sizeOf(acc!.shape);
  launchFixed(b, name, addInPlaceSource(name), n, [p(b, acc!), p(b, g!), i64(n)]);
  return view(b, acc!, acc!.shape.slice());
};

/** target.flat[offset, offset + source.size) ← source in place: one device copy; the output is empty (see slice-write.ts). */
const writeSlice: Impl = ({ inputs, backend: b, attrs }) => {
  const { target, source } = inputs as Record<string, Info>;
  const offset = attrs.offset as number;
  b.device.copy(b.pointer(target!.dataId) + 4 * offset, b.pointer(source!.dataId), 4 * sizeOf(source!.shape));
  return b.makeOutput([0], 'float32');
};

/** float32 w (any shape, n values) → hi int32 [⌈n/2⌉] (bf16 halves), lo int32 [⌈n/4⌉] (int8 corrections). */
const split24: Impl = ({ inputs, backend: b }) => {
  const w = inputs.w!;
  requireFloat('KstarSplit24', { w });
  const n = sizeOf(w.shape);
  const hi = b.makeOutput([Math.ceil(n / 2)], 'int32');
  const lo = b.makeOutput([Math.ceil(n / 4)], 'int32');
  const name = 'kstar_split24';
  launchFixed(b, name, split24Source(name), Math.ceil(n / 4), [p(b, hi), p(b, lo), p(b, w), i64(n)]);
  return [hi, lo];
};

/** hi (+ lo) → float32 [n]: reconstruct (with lo) or expand (hi alone). */
const join24: Impl = ({ inputs, backend: b, attrs }) => {
  const { hi, lo } = inputs as Record<string, Info | undefined>;
  const n = attrs.n as number;
  const out = b.makeOutput([n], 'float32');
  const name = 'kstar_join24';
  launchFixed(b, name, join24Source(name), n, [
    p(b, out),
    p(b, hi!),
    ptr(lo ? b.pointer(lo.dataId) : 0),
    i32(lo ? 1 : 0),
    i64(n),
  ]);
  return out;
};

/** K*'s kernels the `cuda` backend implements natively, by their @kstar/kernels (and optimizer plugins') names. */
export const KSTAR_KERNELS: Record<string, Impl> = {
  KstarLayerNorm: layerNorm,
  KstarLayerNormGrad: layerNormGrad,
  KstarCausalSoftmax: causalSoftmax,
  KstarCausalSoftmaxGrad: causalSoftmaxGrad,
  KstarCrossEntropy: crossEntropy,
  KstarCrossEntropyGrad: crossEntropyGrad,
  KstarAdamW: adamw,
  KstarLion: lion,
  KstarAddInPlace: addInPlace,
  KstarWriteSlice: writeSlice,
  KstarSplit24: split24,
  KstarJoin24: join24,
};
