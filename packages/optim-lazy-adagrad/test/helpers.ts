import { goldenRunsOf, numel } from '@kstar/testkit';

export { measuredUniqueBytes, randn32 as randn, relErr, rms, rng } from '@kstar/testkit';
export { numel };

/** The golden run whose optimizer is `adagrad` (today index 2: lr 0.1, eps 1e-10, initial_accumulator_value 0). */
export function goldenAdagradRun() {
  const { golden, runs } = goldenRunsOf('adagrad');
  return { golden, ...runs[0]! };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export interface AdagradHp {
  lr: number;
  eps: number;
  init: number;
  epsInsideSqrt?: boolean;
}

/** Independent float64 Adagrad (torch `_single_tensor_adagrad`, lr_decay 0, wd 0): in place on Float64Arrays. */
export function adagradStep64(p: Float64Array, g: ArrayLike<number>, acc: Float64Array, hp: AdagradHp): void {
  for (let i = 0; i < p.length; i++) {
    acc[i] = acc[i]! + g[i]! * g[i]!;
    const denom = hp.epsInsideSqrt ? Math.sqrt(acc[i]! + hp.eps) : Math.sqrt(acc[i]!) + hp.eps;
    p[i] = p[i]! - (hp.lr * g[i]!) / denom;
  }
}

/** Rows of a row-major [V, d] array with at least one nonzero entry. */
export function nonzeroRows(g: ArrayLike<number>, V: number, d: number): Set<number> {
  const out = new Set<number>();
  for (let r = 0; r < V; r++) {
    for (let j = 0; j < d; j++) {
      if (g[r * d + j] !== 0) {
        out.add(r);
        break;
      }
    }
  }
  return out;
}
