import { FactoredMoment64, goldenRunsOf, numel } from '@kstar/testkit';

export { measuredUniqueBytes, randn32 as randn, relErr, rng } from '@kstar/testkit';
export { numel };

/** The Adafactor runs of the golden file with their indices (3: relative step + scale; 4: lr, β1, wd). */
export function goldenAdafactorRuns() {
  return goldenRunsOf<Record<string, number | boolean | null>>('adafactor', 2);
}

/** HF-named hyper-parameters of the float64 reference. */
export interface RefHp {
  lr: number | null;
  relative_step: boolean;
  warmup_init: boolean;
  scale_parameter: boolean;
  beta1: number | null;
  clip_threshold: number;
  decay_rate: number;
  eps1: number;
  eps2: number;
  weight_decay: number;
}

export const HF_DEFAULTS: RefHp = {
  lr: null,
  relative_step: true,
  warmup_init: false,
  scale_parameter: true,
  beta1: null,
  clip_threshold: 1,
  decay_rate: -0.8,
  eps1: 1e-30,
  eps2: 1e-3,
  weight_decay: 0,
};

/**
 * An independent float64 Adafactor written line by line from transformers' `Adafactor.step` (not from src/):
 * per-parameter step counter; RMS(p) before the update; factored over the last two dims for rank ≥ 2.
 */
export class Adafactor64 {
  step = 0;
  readonly moment: FactoredMoment64;
  readonly m?: Float64Array;
  constructor(
    readonly shape: number[],
    readonly hp: RefHp,
  ) {
    this.moment = new FactoredMoment64(shape);
    if (hp.beta1 != null) this.m = new Float64Array(shape.reduce((a, b) => a * b, 1));
  }

  /** The factored row averages (rank ≥ 2), as HF's `exp_avg_sq_row`. */
  get row(): Float64Array | undefined {
    return this.moment.row;
  }

  update(p: Float64Array, g: ArrayLike<number>): void {
    const hp = this.hp;
    const N = p.length;
    this.step += 1;
    const t = this.step;
    let rms = 0;
    for (let i = 0; i < N; i++) rms += p[i]! * p[i]!;
    rms = Math.sqrt(rms) / Math.sqrt(N); // tensor.norm(2) / numel ** 0.5
    let rel = hp.lr as number;
    if (hp.relative_step) rel = Math.min(hp.warmup_init ? 1e-6 * t : 1e-2, 1 / Math.sqrt(t));
    const lr = (hp.scale_parameter ? Math.max(hp.eps2, rms) : 1) * rel;
    const update = this.moment.scaledGradient(g, 1 - t ** hp.decay_rate, hp.eps1);
    let su = 0;
    for (let i = 0; i < N; i++) su += update[i]! ** 2;
    const clip = Math.max(Math.sqrt(su) / Math.sqrt(N) / hp.clip_threshold, 1);
    for (let i = 0; i < N; i++) update[i] = (update[i]! / clip) * lr;
    if (this.m) {
      for (let i = 0; i < N; i++) {
        this.m[i] = this.m[i]! * hp.beta1! + update[i]! * (1 - hp.beta1!);
        update[i] = this.m[i]!;
      }
    }
    if (hp.weight_decay !== 0) for (let i = 0; i < N; i++) p[i] = p[i]! + p[i]! * (-hp.weight_decay * lr);
    for (let i = 0; i < N; i++) p[i] = p[i]! - update[i]!;
  }
}
