import { goldenRunsOf, numel, rms } from '@kstar/testkit';

export { measuredUniqueBytes, randn32 as randn, relErr, rng } from '@kstar/testkit';
export { numel, rms };

/** Every Lion run of the golden file (today one: index 6, lr 1e-3, β 0.9/0.99, weight_decay 0.1). */
export function goldenLionRuns() {
  return goldenRunsOf('lion');
}

/**
 * A sign-aware comparison. Lion moves every element by ±lr or 0, so an element whose update direction differs
 * from the reference's (its c = β1·m + (1−β1)·g sits within float32 rounding of zero) ends up about k·lr away
 * (k = 1 or 2 per differing step) while every other element agrees to float32 rounding. Elements whose error
 * exceeds lr/2 are counted as `differing` (not hidden: their count and errors in units of lr are returned);
 * `relErr` is max|p − ref| / RMS(ref) over the others.
 */
export interface SignAwareErr {
  relErr: number;
  differing: number;
  /** |p − ref| / lr of the differing elements. */
  differingInLr: number[];
  n: number;
}

export function signAwareErr(p: ArrayLike<number>, ref: ArrayLike<number>, lr: number): SignAwareErr {
  if (p.length !== ref.length) throw new Error(`length ${p.length} vs ${ref.length}`);
  let maxAbs = 0;
  const differingInLr: number[] = [];
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(p[i]! - ref[i]!);
    if (d > lr / 2) differingInLr.push(d / lr);
    else maxAbs = Math.max(maxAbs, d);
  }
  return { relErr: maxAbs / rms(ref), differing: differingInLr.length, differingInLr, n: ref.length };
}

export interface LionHp {
  lr: number;
  beta1: number;
  beta2: number;
  weightDecay: number;
}

/**
 * An independent float64 Lion step written from lion_pytorch's `update_fn` (in place on Float64Arrays):
 *   p.mul_(1 − lr·wd); update = (m·β1 + (1−β1)·g).sign(); p.add_(update, alpha=−lr); m.mul_(β2).add_(g, 1−β2).
 * Returns the update directions sign(c), |c| and |β1·m| + |(1−β1)·g| (how close to zero c was, relative to its terms).
 */
export function lionStep64(
  p: Float64Array,
  g: ArrayLike<number>,
  m: Float64Array,
  hp: LionHp,
): { sign: Int8Array; absC: Float64Array; scale: Float64Array } {
  const sign = new Int8Array(p.length);
  const absC = new Float64Array(p.length);
  const scale = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    p[i] = p[i]! * (1 - hp.lr * hp.weightDecay);
    const c = m[i]! * hp.beta1 + (1 - hp.beta1) * g[i]!;
    const s = c > 0 ? 1 : c < 0 ? -1 : 0;
    sign[i] = s;
    absC[i] = Math.abs(c);
    scale[i] = Math.abs(m[i]! * hp.beta1) + Math.abs((1 - hp.beta1) * g[i]!);
    p[i] = p[i]! + -hp.lr * s;
    m[i] = m[i]! * hp.beta2 + (1 - hp.beta2) * g[i]!;
  }
  return { sign, absC, scale };
}

/** The update direction the implementation took: round(−(p_t − p_{t−1}·(1 − lr·λ)) / lr) ∈ {−1, 0, 1}. */
export function takenSigns(before: ArrayLike<number>, after: ArrayLike<number>, hp: LionHp): Int8Array {
  const out = new Int8Array(after.length);
  const decay = 1 - hp.lr * hp.weightDecay;
  for (let i = 0; i < after.length; i++) {
    out[i] = Math.round(-(after[i]! - before[i]! * decay) / hp.lr);
  }
  return out;
}
