/** AdamW's hyper-parameters as the host update reads them before each update (`lr` may follow a schedule). */
export interface HostAdamWHparams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** An update rule computed on the host's float32 arrays (ZeRO-Offload's CPU Adam): state and step in place. */
export interface HostUpdateRule {
  readonly name: string;
  /** Host bytes of state per parameter element. */
  readonly stateBytesPerElement: number;
  /** Zero state for a parameter of `n` elements. */
  init(n: number): Float32Array[];
  /** One step at `step` (1-based): `param` and `state` updated in place from `grad`. */
  update(param: Float32Array, grad: Float32Array, state: Float32Array[], step: number): void;
}

/**
 * AdamW on the host, element for element the rule of `@kstar/kernels`' adamwUpdate (torch.optim.AdamW):
 * m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ← p·(1 − lr·λ) − lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε).
 */
export function hostAdamW(hparams: () => HostAdamWHparams): HostUpdateRule {
  return {
    name: 'adamw',
    stateBytesPerElement: 8,
    init: (n) => [new Float32Array(n), new Float32Array(n)],
    update(p, g, [m, v], step) {
      const h = hparams();
      const decay = 1 - h.lr * h.weightDecay;
      const stepSize = h.lr / (1 - h.beta1 ** step);
      const sqrtBc2 = Math.sqrt(1 - h.beta2 ** step);
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        const mi = h.beta1 * m![i]! + (1 - h.beta1) * gi;
        const vi = h.beta2 * v![i]! + (1 - h.beta2) * gi * gi;
        m![i] = mi;
        v![i] = vi;
        p[i] = p[i]! * decay - (mi / (Math.sqrt(vi) / sqrtBc2 + h.eps)) * stepSize;
      }
    },
  };
}
