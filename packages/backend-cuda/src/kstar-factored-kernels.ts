import type { CudaBackend } from './backend.ts';
import { doubles, type Impl, type Info, p } from './kernel-context.ts';
import {
  cameMomentSource,
  cameResColPartialSource,
  cameResRowsSource,
  cameUpdateSource,
  FACTORED_CHUNK,
  FACTORED_CONSTS,
  factoredColPartialSource,
  factoredColsSource,
  factoredRowMeanSource,
  factoredRowsSource,
  factoredScalarsSource,
  factoredSumsSource,
  factoredUpdateSource,
  factoredVectorSource,
  lomoSource,
  SUM_BLOCKS,
} from './kstar-factored-sources.ts';
import { launchFixed, launchRows, release, view } from './launch.ts';
import { i64, type Param } from './params.ts';
import { sizeOf } from './shape.ts';

/**
 * The `cuda` implementations of the factored-second-moment optimizers, under the plugins' kernel names and
 * contracts: KstarAdafactor (@kstar/optim-adafactor), KstarAdaLomo and KstarLomo (@kstar/optim-lomo),
 * KstarCameFactored and KstarCameVector (@kstar/optim-came), all in place
 * (outputs alias p and the state, in the cpu kernels' order). Scratch: float64 partial column sums ([⌈m/64⌉, B·n]),
 * row means [B], SUM_BLOCKS partial sums and the two scalars; no parameter-sized temporary.
 */

/** A scratch buffer of `count` float64 values (a float32 tensor of twice the elements: the device sees bytes). */
const float64Scratch = (b: CudaBackend, count: number) => b.makeOutput([2 * Math.max(1, count)], 'float32');

/** [B, m, n] of a shape factored over its last two axes (leading axes folded into B). */
function factoredDims(shape: readonly number[]): [number, number, number] {
  const n = shape[shape.length - 1]!;
  const m = shape[shape.length - 2]!;
  return [sizeOf(shape.slice(0, -2)), m, n];
}

interface FactoredInputs {
  param: Info;
  grad: Info;
  row?: Info;
  col?: Info;
  v?: Info;
  m?: Info;
}

function requireFloat(kernel: string, ins: FactoredInputs): void {
  for (const [name, t] of Object.entries(ins))
    if (t != null && (t as Info).dtype !== 'float32')
      throw new Error(`backend 'cuda': ${kernel} input ${name} is ${(t as Info).dtype}; it takes float32`);
}

type Consts = Record<(typeof FACTORED_CONSTS)[number], number>;
const constsParam = (k: Consts) => doubles(FACTORED_CONSTS.map((c) => k[c]));

/** [B, m, n] of a parameter's factoring (vectors: [1, 1, N]). */
type Dims = [number, number, number];

/** Column means of a per-element value into `col` [B·n]: float64 partials over row chunks, then their EMA. */
function columnMeans(
  b: CudaBackend,
  col: Info,
  partialKernel: [string, (name: string) => string, Param[]],
  [B, m, n]: Dims,
  K: Param,
): void {
  const chunks = Math.ceil(m / FACTORED_CHUNK);
  const partial = float64Scratch(b, chunks * B * n); // [chunks, B·n] float64
  const [name, source, params] = partialKernel;
  launchFixed(b, name, source(name), chunks * B * n, [p(b, partial), ...params, i64(B), i64(m), i64(n), K]);
  const cols = 'kstar_factored_cols';
  launchFixed(b, cols, factoredColsSource(cols), B * n, [
    p(b, col),
    p(b, partial),
    i64(chunks),
    i64(B * n),
    i64(m),
    K,
  ]);
  release(b, partial);
}

/** mean of `row` [B·m] per batch, float64 [B] (the caller releases it). */
function rowMeans(b: CudaBackend, row: Info, [B, m]: Dims): Info {
  const rmean = float64Scratch(b, B);
  const rm = 'kstar_factored_row_mean';
  launchRows(b, rm, factoredRowMeanSource(rm), B, [p(b, rmean), p(b, row), i64(m)]);
  return rmean;
}

/**
 * The second moment (R and C, or V), the row means of R and the scalars [alpha, k] from the sums of U² and p².
 * Returns the float64 scratch: rmean (factored only) and scalars, for the caller's later launches and release.
 */
function momentAndScalars(
  b: CudaBackend,
  ins: FactoredInputs,
  dims: Dims,
  K: Param,
): { rmean?: Info; scalars: Info; state: Param[] } {
  const [B, m, n] = dims;
  const N = sizeOf(ins.param.shape);
  let rmean: Info | undefined;
  if (ins.row != null && ins.col != null) {
    const rows = 'kstar_factored_rows';
    launchRows(b, rows, factoredRowsSource(rows), B * m, [p(b, ins.row), p(b, ins.grad), i64(n), K]);
    columnMeans(
      b,
      ins.col,
      ['kstar_factored_col_partial', factoredColPartialSource, [p(b, ins.grad)]],
      dims,
      K,
    );
    rmean = rowMeans(b, ins.row, dims);
  } else {
    const vec = 'kstar_factored_vector';
    launchFixed(b, vec, factoredVectorSource(vec), N, [p(b, ins.v), p(b, ins.grad), i64(N), K]);
  }
  const blocks = Math.min(SUM_BLOCKS, Math.max(1, Math.ceil(N / 256)));
  const sums = float64Scratch(b, 2 * blocks);
  const scalars = float64Scratch(b, 2);
  const state = [p(b, ins.row), p(b, ins.col), p(b, rmean), p(b, ins.v)];
  const su = 'kstar_factored_sums';
  launchRows(b, su, factoredSumsSource(su), blocks, [
    p(b, sums),
    p(b, ins.param),
    p(b, ins.grad),
    ...state,
    i64(N),
    i64(m),
    i64(n),
    K,
  ]);
  const sc = 'kstar_factored_scalars';
  launchRows(b, sc, factoredScalarsSource(sc), 1, [p(b, scalars), p(b, sums), i64(blocks), i64(N), K]);
  release(b, sums);
  return { ...(rmean ? { rmean } : {}), scalars, state };
}

/** Adafactor / AdaLomo: the moment and scalars, then p (and Adafactor's first moment) in place. */
function factoredStep(b: CudaBackend, ins: FactoredInputs, k: Consts): void {
  const N = sizeOf(ins.param.shape);
  const dims: Dims = ins.row != null ? factoredDims(ins.param.shape) : [1, 1, N];
  const K = constsParam(k);
  const { rmean, scalars, state } = momentAndScalars(b, ins, dims, K);
  const up = 'kstar_factored_update';
  launchFixed(b, up, factoredUpdateSource(up), N, [
    p(b, ins.param),
    p(b, ins.m),
    p(b, ins.grad),
    ...state,
    p(b, scalars),
    i64(N),
    i64(dims[1]),
    i64(dims[2]),
    K,
  ]);
  release(b, scalars);
  if (rmean) release(b, rmean);
}

/** In-place outputs: p, then the state inputs present, in `keys` order (the cpu kernels' `outputs`). */
function aliases(b: CudaBackend, ins: FactoredInputs, keys: readonly (keyof FactoredInputs)[]): Info[] {
  return keys.flatMap((key) => {
    const t = ins[key];
    return t == null ? [] : [view(b, t, t.shape.slice())];
  });
}

/** Attributes as @kstar/optim-adafactor's kernel.ts `attrsOf` sets them (beta1 −1: no first moment). */
const adafactor: Impl = ({ inputs, backend: b, attrs: c }) => {
  const ins = inputs as unknown as FactoredInputs;
  requireFloat('KstarAdafactor', ins);
  const beta2t = c.beta2t as number;
  factoredStep(b, ins, {
    beta2t,
    omb2t: 1 - beta2t,
    eps1: c.eps1 as number,
    gclip: Number.MAX_VALUE,
    gscale: 1,
    base: c.rho as number,
    scaleByRms: c.scale as number,
    eps2: c.eps2 as number,
    clip: c.clip as number,
    weightDecay: c.weightDecay as number,
    beta1: c.beta1 as number,
    hasMomentum: ins.m != null ? 1 : 0,
    lomoForm: 0,
  });
  return aliases(b, ins, ['param', 'row', 'col', 'v', 'm']);
};

/** Attributes as @kstar/optim-lomo's adalomo-kernel.ts `attrsOf` sets them. */
const adalomo: Impl = ({ inputs, backend: b, attrs: c }) => {
  const ins = inputs as unknown as FactoredInputs;
  requireFloat('KstarAdaLomo', ins);
  const beta2t = c.beta2t as number;
  factoredStep(b, ins, {
    beta2t,
    omb2t: 1 - beta2t,
    eps1: c.eps1 as number,
    gclip: c.gclip as number,
    gscale: c.gscale as number,
    base: c.lr as number,
    scaleByRms: 1,
    eps2: c.eps2 as number,
    clip: c.clip as number,
    weightDecay: c.weightDecay as number,
    beta1: 0,
    hasMomentum: 0,
    lomoForm: 1,
  });
  return aliases(b, ins, ['param', 'row', 'col', 'v']);
};

/** Attributes as @kstar/optim-lomo's lomo-kernel.ts `attrsOf` sets them. */
const lomo: Impl = ({ inputs, backend: b, attrs: c }) => {
  const { param, grad } = inputs as Record<string, Info>;
  requireFloat('KstarLomo', { param: param!, grad: grad! });
  const n = sizeOf(param!.shape);
  const name = 'kstar_lomo';
  launchFixed(b, name, lomoSource(name), n, [
    p(b, param),
    p(b, grad),
    i64(n),
    ...(['lr', 'decay', 'gscale', 'gclip'] as const).map((key) => doubles([c[key] as number])),
  ]);
  return view(b, param!, param!.shape.slice());
};

/**
 * Attributes as @kstar/optim-came's `constants` (CameConsts). Factored: R/C of g² + ε1 (β2), [1, 1/d] from RMS(U),
 * M, then resRow/resCol of (U/d − M)² + ε2 (β3), then p. Vector: V, [1, 1/d], M, p.
 */
function came(factored: boolean): Impl {
  return ({ inputs, backend: b, attrs: c }) => {
    const x = inputs as Record<string, Info>;
    const kernel = factored ? 'KstarCameFactored' : 'KstarCameVector';
    requireFloat(kernel, x as unknown as FactoredInputs);
    const N = sizeOf(x.param!.shape);
    const dims: Dims = factored ? [c.batch as number, c.rows as number, c.cols as number] : [1, 1, N];
    const common = { gclip: Number.MAX_VALUE, gscale: 1, hasMomentum: 1, lomoForm: 0 };
    const k: Consts = {
      ...common,
      beta2t: c.beta2 as number,
      omb2t: c.oneMinusBeta2 as number,
      eps1: c.eps1 as number,
      base: 1,
      scaleByRms: 0,
      eps2: 0,
      clip: c.clipThreshold as number,
      weightDecay: 0,
      beta1: c.beta1 as number,
    };
    const K = constsParam(k);
    const ins: FactoredInputs = factored
      ? { param: x.param!, grad: x.grad!, row: x.vRow, col: x.vCol }
      : { param: x.param!, grad: x.grad!, v: x.v };
    const { rmean, scalars, state } = momentAndScalars(b, ins, dims, K);
    const [B, m, n] = dims;
    const mo = 'kstar_came_moment';
    launchFixed(b, mo, cameMomentSource(mo), N, [
      p(b, x.m),
      p(b, x.grad),
      ...state,
      p(b, scalars),
      i64(N),
      i64(m),
      i64(n),
      K,
    ]);
    // The instability's EMAs: K3 carries β3 (as beta2t) and ε2 (as the additive eps1); the step's lr and wd·lr.
    const K3 = constsParam({
      ...k,
      beta2t: c.beta3 as number,
      omb2t: c.oneMinusBeta3 as number,
      eps1: c.eps2 as number,
      base: c.lr as number,
      weightDecay: c.wdLr as number,
    });
    let resMean: Info | undefined;
    if (factored) {
      const uParams = [p(b, x.grad), p(b, x.m), p(b, x.vRow), p(b, x.vCol), p(b, rmean), p(b, scalars)];
      const rr = 'kstar_came_res_rows';
      launchRows(b, rr, cameResRowsSource(rr), B * m, [p(b, x.resRow), ...uParams, i64(m), i64(n), K3]);
      columnMeans(b, x.resCol!, ['kstar_came_res_col_partial', cameResColPartialSource, uParams], dims, K3);
      resMean = rowMeans(b, x.resRow!, dims);
    }
    const up = 'kstar_came_update';
    launchFixed(b, up, cameUpdateSource(up), N, [
      p(b, x.param),
      p(b, x.m),
      p(b, factored ? x.resRow : undefined),
      p(b, factored ? x.resCol : undefined),
      p(b, resMean),
      i64(N),
      i64(m),
      i64(n),
      K3,
    ]);
    for (const t of [scalars, rmean, resMean]) if (t) release(b, t);
    return view(b, x.param!, x.param!.shape.slice());
  };
}

/** The factored optimizers the `cuda` backend implements natively, by their plugins' kernel names. */
export const KSTAR_FACTORED_KERNELS: Record<string, Impl> = {
  KstarAdafactor: adafactor,
  KstarAdaLomo: adalomo,
  KstarLomo: lomo,
  KstarCameFactored: came(true),
  KstarCameVector: came(false),
};
