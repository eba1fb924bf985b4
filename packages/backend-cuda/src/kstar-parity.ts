import {
  adamwKernel,
  addInPlaceKernel,
  causalSoftmaxGradKernel,
  causalSoftmaxKernel,
  crossEntropyGradKernel,
  crossEntropyKernel,
  join24Kernel,
  type KstarKernel,
  layerNormGradKernel,
  layerNormKernel,
  split24Kernel,
  writeSliceKernel,
} from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { kstarFlashParityCases } from './kstar-flash-parity.ts';
import { kstarOptimParityCases } from './kstar-optim-parity.ts';
import { caseAdder, type ParityCase } from './parity.ts';

/**
 * Parity cases for K*'s own kernels on `cuda`: on cuda each runs through @kstar/kernels' `run` and must dispatch to
 * the native kernel (a case fails if it would fall back); on cpu the same call runs the cpu kernel where
 * @kstar/kernels has one (AdamW, add, slice write) and the tfjs-ops fallback otherwise. Odd sizes throughout.
 * KstarLion has no kernel object here (plugins do not depend on each other): its reference is the formula in tfjs ops.
 */

const onCuda = () => tf.getBackend() === 'cuda';

function call<A, R>(kernel: KstarKernel<A, R>, args: A): R {
  if (onCuda() && kernel.which(args) !== 'native')
    throw new Error(`${kernel.name} would run its tfjs-ops fallback on cuda, not the native kernel`);
  return kernel.run(args);
}

/** A variable with its own buffer (refCount 1), so in-place kernels may write it. */
function ownVariable(x: tf.Tensor): tf.Variable {
  const copy = tf.add(x, 0);
  const v = tf.variable(copy);
  copy.dispose();
  return v;
}

const f = (...shape: number[]) => ({ shape });

export function kstarParityCases(): ParityCase[] {
  const cases: ParityCase[] = [];
  // Cross-entropy's logits [37, 1001] and int32 targets [37].
  const logitsAndTargets = (): ParityCase['inputs'] => [
    { shape: [37, 1001], lo: -8, hi: 8 },
    { shape: [37], dtype: 'int32', lo: 0, hi: 1001 },
  ];
  const add = caseAdder(cases);
  for (const [N, D] of [
    [37, 67],
    [9, 768],
  ] as const) {
    cases.push({
      kernel: 'KstarLayerNorm',
      name: `KstarLayerNorm [${N},${D}]`,
      inputs: [{ shape: [N, D], lo: -3, hi: 5 }, f(D), f(D)],
      run: ([x, gamma, beta]) => {
        const r = call(layerNormKernel, { x: x!, gamma: gamma!, beta: beta!, eps: 1e-5 });
        return [r.y, r.mean, r.rstd];
      },
      scale: 10,
    });
  }
  cases.push({
    kernel: 'KstarLayerNormGrad',
    name: 'KstarLayerNormGrad [131,67] (3 row chunks)',
    inputs: [f(131, 67), f(67), f(131, 67)],
    run: ([x, gamma, dy]) => {
      const fwd = layerNormKernel.run({ x: x!, gamma: gamma!, beta: tf.zerosLike(gamma!), eps: 1e-5 });
      const r = call(layerNormGradKernel, { x: x!, gamma: gamma!, mean: fwd.mean, rstd: fwd.rstd, dy: dy! });
      return [r.dx, r.dgamma, r.dbeta];
    },
    scale: 30,
  });
  for (const T of [1, 19, 300]) {
    add(
      'KstarCausalSoftmax',
      `KstarCausalSoftmax [2,3,${T},${T}]`,
      [{ shape: [2, 3, T, T], lo: -4, hi: 4 }],
      ([s]) => call(causalSoftmaxKernel, { s: s!, scale: 0.37 }),
    );
  }
  cases.push({
    kernel: 'KstarCausalSoftmaxGrad',
    name: 'KstarCausalSoftmaxGrad [2,3,37,37]',
    inputs: [{ shape: [2, 3, 37, 37], lo: -4, hi: 4 }, f(2, 3, 37, 37)],
    run: ([s, dp]) => {
      const p = causalSoftmaxKernel.run({ s: s!, scale: 0.37 });
      return call(causalSoftmaxGradKernel, { p, dp: dp!, scale: 0.37 });
    },
  });
  cases.push({
    kernel: 'KstarCrossEntropy',
    name: 'KstarCrossEntropy [37,1001]',
    inputs: logitsAndTargets(),
    run: ([logits, targets]) => {
      const r = call(crossEntropyKernel, { logits: logits!, targets: targets! });
      return [r.loss, r.lse];
    },
    scale: 10,
  });
  cases.push({
    kernel: 'KstarCrossEntropyGrad',
    name: 'KstarCrossEntropyGrad [37,1001]',
    inputs: [...logitsAndTargets(), { shape: [], lo: 0.5, hi: 2 }],
    run: ([logits, targets, dy]) => {
      const { loss, lse } = crossEntropyKernel.run({ logits: logits!, targets: targets! });
      loss.dispose();
      return call(crossEntropyGradKernel, { logits: logits!, lse, targets: targets!, dy: dy! });
    },
  });
  // An odd length (one element a thread) and a multiple of 4 (the 128-bit kernel).
  for (const [r, c] of [
    [33, 17],
    [12, 100],
  ] as const)
    cases.push({
      kernel: 'KstarAdamW',
      name: `KstarAdamW [${r},${c}] step 3`,
      inputs: [f(r, c), f(r, c), f(r, c), { shape: [r, c], lo: 0, hi: 0.5 }],
      run: ([p0, g, m0, v0]) => {
        const [param, m, v] = [p0!, m0!, v0!].map(ownVariable) as [tf.Variable, tf.Variable, tf.Variable];
        const hp = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 3 };
        call(adamwKernel, { param, grad: g!, m, v, hp });
        return [param, m, v];
      },
    });
  // Updates queued for one batched launch (adamw-queue.ts): an odd tensor, a multiple of 4, then the odd one again
  // (queued twice, it must flush in between: both updates in one launch would race).
  cases.push({
    kernel: 'KstarAdamW',
    name: 'KstarAdamW batched [33,17] + [12,100] + [33,17] again',
    inputs: [
      [33, 17],
      [12, 100],
    ].flatMap(([r, c]) => [f(r!, c!), f(r!, c!), f(r!, c!), { shape: [r!, c!], lo: 0, hi: 0.5 }]),
    run: (xs) => {
      const vars = xs.map((x, i) => (i % 4 === 1 ? x! : ownVariable(x!)));
      const hp = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 3 };
      const update = (o: number) =>
        call(adamwKernel, { param: vars[o]!, grad: vars[o + 1]!, m: vars[o + 2]!, v: vars[o + 3]!, hp });
      update(0);
      update(4);
      update(0);
      return [0, 2, 3, 4, 6, 7].map((i) => vars[i]!);
    },
  });
  cases.push({
    kernel: 'KstarAddInPlace',
    name: 'KstarAddInPlace [7,1031]',
    inputs: [f(7, 1031), f(7, 1031)],
    run: ([acc, g]) => {
      const a = ownVariable(acc!);
      call(addInPlaceKernel, { acc: a, g: g! });
      return a;
    },
  });
  cases.push({
    kernel: 'KstarWriteSlice',
    name: 'KstarWriteSlice 91 elements at 13 of [11,17]',
    inputs: [f(11, 17), f(7, 13)],
    run: ([target, source]) => {
      const t = ownVariable(target!);
      call(writeSliceKernel, { target: t, source: source!, offset: 13 });
      return t;
    },
  });
  // Split24 is bit-exact with the cpu kernel (integer outputs compare exactly); odd n leaves partial words.
  for (const [lo, hi] of [
    [-3, 3],
    [-1e-30, 1e30],
  ] as const) {
    cases.push({
      kernel: 'KstarSplit24',
      name: `KstarSplit24 [1031] in [${lo}, ${hi}]`,
      inputs: [{ shape: [1031], lo, hi }],
      run: ([w]) => {
        const s = call(split24Kernel, { w: w! });
        return [s.hi, s.lo];
      },
    });
  }
  for (const withLo of [true, false]) {
    cases.push({
      kernel: 'KstarJoin24',
      name: `KstarJoin24 [1029] ${withLo ? 'reconstruct' : 'expand'}`,
      inputs: [{ shape: [7, 147], lo: -5, hi: 5 }],
      run: ([w]) => {
        const s = split24Kernel.run({ w: w! });
        return call(join24Kernel, { hi: s.hi, lo: withLo ? s.lo : undefined, n: 1029 });
      },
    });
  }
  cases.push({
    kernel: 'KstarLion',
    name: 'KstarLion [33,17]',
    inputs: [f(33, 17), f(33, 17), f(33, 17)],
    run: ([param, grad, m]) => {
      const k = { lr: 0.01, beta1: 0.9, oneMinusBeta1: 0.1, beta2: 0.99, oneMinusBeta2: 0.01, decay: 0.999 };
      if (onCuda()) {
        const own = [param!, m!].map((t) => tf.add(t, 0));
        const outs = tf.engine().runKernel('KstarLion', { param: own[0]!, grad: grad!, m: own[1]! }, k);
        tf.dispose(outs as tf.Tensor[]);
        return own;
      }
      const c = tf.add(tf.mul(m!, k.beta1), tf.mul(grad!, k.oneMinusBeta1));
      return [
        tf.sub(tf.mul(param!, k.decay), tf.mul(tf.sign(c), k.lr)),
        tf.add(tf.mul(m!, k.beta2), tf.mul(grad!, k.oneMinusBeta2)),
      ];
    },
  });
  cases.push(...kstarOptimParityCases());
  cases.push(...kstarFlashParityCases());
  return cases;
}
