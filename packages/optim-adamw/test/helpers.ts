import { goldenRunsOf, numel } from '@kstar/testkit';
import { ADAMW_HPARAMS, AdamW } from '../src/index.ts';

export { measuredUniqueBytes, randn, relErr, rng } from '@kstar/testkit';
export { numel };

export function goldenAdamW() {
  const { golden, runs } = goldenRunsOf('adamw');
  return { golden, run: runs[0]!.run };
}

/** The drop-in AdamW with the golden run's hyper-parameters (read under torch's names, as `kstar replay` reads them). */
export function goldenAdamWDropIn(): AdamW {
  return new AdamW(ADAMW_HPARAMS.fromReference(goldenAdamW().run.hparams));
}

export interface Hp {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** An independent float64 AdamW step (torch.optim.AdamW's formula, written out), in place on Float64Arrays. */
export function adamwStep64(
  p: Float64Array,
  g: ArrayLike<number>,
  m: Float64Array,
  v: Float64Array,
  hp: Hp,
  t: number,
): void {
  const bc1 = 1 - hp.beta1 ** t;
  const bc2 = 1 - hp.beta2 ** t;
  for (let i = 0; i < p.length; i++) {
    p[i] = p[i]! * (1 - hp.lr * hp.weightDecay);
    m[i] = hp.beta1 * m[i]! + (1 - hp.beta1) * g[i]!;
    v[i] = hp.beta2 * v[i]! + (1 - hp.beta2) * g[i]! * g[i]!;
    const mHat = m[i]! / bc1;
    const vHat = v[i]! / bc2;
    p[i] = p[i]! - (hp.lr * mHat) / (Math.sqrt(vHat) + hp.eps);
  }
}
