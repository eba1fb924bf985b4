import { goldenRunsOf, numel } from '@kstar/testkit';

export { measuredUniqueBytes, randn, relErr, rng } from '@kstar/testkit';
export { numel };

/** Every CAME run of the golden file (today one: index 5). */
export function goldenCameRuns() {
  const { golden, runs } = goldenRunsOf('came');
  return { golden, runs: runs.map((r) => r.run) };
}

export interface Hp64 {
  lr: number;
  beta1: number;
  beta2: number;
  beta3: number;
  eps1: number;
  eps2: number;
  clipThreshold: number;
  weightDecay: number;
}

/** came_pytorch's per-parameter state, in float64. */
export interface Came64State {
  shape: number[];
  expAvg: Float64Array;
  expAvgSq?: Float64Array;
  expAvgSqRow?: Float64Array;
  expAvgSqCol?: Float64Array;
  expAvgResRow?: Float64Array;
  expAvgResCol?: Float64Array;
}

/** [B, M, N] view of a shape of rank ≥ 2. */
function bmn(shape: number[]): [number, number, number] {
  const n = shape[shape.length - 1]!;
  const m = shape[shape.length - 2]!;
  return [numel(shape) / (m * n), m, n];
}

export function came64Init(shape: number[]): Came64State {
  const s: Came64State = { shape, expAvg: new Float64Array(numel(shape)) };
  if (shape.length >= 2) {
    const [B, M, N] = bmn(shape);
    s.expAvgSqRow = new Float64Array(B * M);
    s.expAvgSqCol = new Float64Array(B * N);
    s.expAvgResRow = new Float64Array(B * M);
    s.expAvgResCol = new Float64Array(B * N);
  } else {
    s.expAvgSq = new Float64Array(numel(shape));
  }
  return s;
}

/** x.mean(dim=-1) of a [B, M, N] array → [B, M]. */
function meanLast(x: Float64Array, B: number, M: number, N: number): Float64Array {
  const out = new Float64Array(B * M);
  for (let r = 0; r < B * M; r++) {
    let s = 0;
    for (let j = 0; j < N; j++) s += x[r * N + j]!;
    out[r] = s / N;
  }
  return out;
}

/** x.mean(dim=-2) of a [B, M, N] array → [B, N]. */
function meanSecondLast(x: Float64Array, B: number, M: number, N: number): Float64Array {
  const out = new Float64Array(B * N);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let i = 0; i < M; i++) s += x[(b * M + i) * N + j]!;
      out[b * N + j] = s / M;
    }
  }
  return out;
}

/** came_pytorch `_approx_sq_grad`: rsqrt(row / row.mean(-1)).unsqueeze(-1) · rsqrt(col).unsqueeze(-2) → [B, M, N]. */
function approxSqGrad(row: Float64Array, col: Float64Array, B: number, M: number, N: number): Float64Array {
  const out = new Float64Array(B * M * N);
  for (let b = 0; b < B; b++) {
    let mean = 0;
    for (let i = 0; i < M; i++) mean += row[b * M + i]!;
    mean /= M;
    for (let i = 0; i < M; i++) {
      const rf = 1 / Math.sqrt(row[b * M + i]! / mean);
      for (let j = 0; j < N; j++) out[(b * M + i) * N + j] = rf * (1 / Math.sqrt(col[b * N + j]!));
    }
  }
  return out;
}

const ema = (acc: Float64Array, x: Float64Array, beta: number) => {
  for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! * beta + x[i]! * (1 - beta);
};

/**
 * An independent float64 transcription of `came_pytorch.CAME.step` for one parameter (written from the reference's
 * source, op by op: `update = grad**2 + eps[0]`, row/col EMAs, `_approx_sq_grad`, RMS clipping, `exp_avg`, `res`,
 * instability EMAs, decoupled weight decay, `p -= lr·update`). Updates `p` and `s` in place.
 */
export function came64Step(p: Float64Array, grad: ArrayLike<number>, s: Came64State, hp: Hp64): void {
  const n = p.length;
  const g = Float64Array.from(grad);
  let update = g.map((x) => x * x + hp.eps1);
  const factored = s.shape.length >= 2;
  const [B, M, N] = factored ? bmn(s.shape) : [1, 1, n];
  if (factored) {
    ema(s.expAvgSqRow!, meanLast(update, B, M, N), hp.beta2);
    ema(s.expAvgSqCol!, meanSecondLast(update, B, M, N), hp.beta2);
    update = approxSqGrad(s.expAvgSqRow!, s.expAvgSqCol!, B, M, N).map((x, i) => x * g[i]!);
  } else {
    ema(s.expAvgSq!, update, hp.beta2);
    update = s.expAvgSq!.map((v, i) => (1 / Math.sqrt(v)) * g[i]!);
  }
  let sq = 0;
  for (const u of update) sq += u * u;
  const divisor = Math.max(Math.sqrt(sq) / Math.sqrt(n) / hp.clipThreshold, 1);
  update = update.map((u) => u / divisor);
  ema(s.expAvg, update, hp.beta1);
  const res = update.map((u, i) => (u - s.expAvg[i]!) ** 2 + hp.eps2);
  let step: Float64Array;
  if (factored) {
    ema(s.expAvgResRow!, meanLast(res, B, M, N), hp.beta3);
    ema(s.expAvgResCol!, meanSecondLast(res, B, M, N), hp.beta3);
    step = approxSqGrad(s.expAvgResRow!, s.expAvgResCol!, B, M, N).map((x, i) => x * s.expAvg[i]!);
  } else {
    step = Float64Array.from(s.expAvg);
  }
  if (hp.weightDecay !== 0) for (let i = 0; i < n; i++) p[i] = p[i]! + p[i]! * (-hp.weightDecay * hp.lr);
  for (let i = 0; i < n; i++) p[i] = p[i]! - step[i]! * hp.lr;
}

/** The golden file's hparams (came_pytorch names) as Hp64. */
export function hp64FromReference(h: Record<string, number>): Hp64 {
  return {
    lr: h.lr!,
    beta1: h.beta1!,
    beta2: h.beta2!,
    beta3: h.beta3!,
    eps1: h.eps1!,
    eps2: h.eps2!,
    clipThreshold: h.clip_threshold!,
    weightDecay: h.weight_decay!,
  };
}
