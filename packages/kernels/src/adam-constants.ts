/** What Adam's per-step constants are made of: the step's hyper-parameters (1-based `step`). */
export interface AdamStepHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based: bias correction uses β^step. */
  step: number;
}

/** Adam's per-step constants (AdamW and 8-bit Adam alike), computed once in float64. */
export interface AdamStepConstants {
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  /** 1 − lr·λ (decoupled weight decay). */
  decay: number;
  /** lr / (1 − β1^step). */
  stepSize: number;
  /** √(1 − β2^step). */
  sqrtBc2: number;
  eps: number;
}

export function adamStepConstants(hp: AdamStepHyper): AdamStepConstants {
  return {
    beta1: hp.beta1,
    oneMinusBeta1: 1 - hp.beta1,
    beta2: hp.beta2,
    oneMinusBeta2: 1 - hp.beta2,
    decay: 1 - hp.lr * hp.weightDecay,
    stepSize: hp.lr / (1 - hp.beta1 ** hp.step),
    sqrtBc2: Math.sqrt(1 - hp.beta2 ** hp.step),
    eps: hp.eps,
  };
}
