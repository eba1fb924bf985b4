import {
  adamStepConstants,
  dequantizeKernel,
  type KstarKernel,
  packKernel,
  quantizeKernel,
  unpackKernel,
} from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';
import { caseAdder, type ParityCase } from './parity.ts';

/**
 * Parity cases for K*'s 8-bit and sparse optimizer kernels on `cuda` against the cpu kernels, odd sizes and block
 * sizes that do not divide the word size. Quantize/pack run through @kstar/kernels' `run` (a case fails if cuda
 * would fall back). Adam8bit, LazyAdagrad, Adafactor, AdaLomo and LOMO belong to plugins this package may not import: their cases call
 * `runKernel` by name on both backends, so the reference is the plugin's cpu kernel (registered by whoever runs the
 * parity: `kstar bench cuda-kernels` loads every plugin). Codes compare exactly (integers); floats within tolerance,
 * although the kernels are meant to be bit-exact with cpu.
 */

function call<A, R>(kernel: KstarKernel<A, R>, args: A): R {
  if (tf.getBackend() === 'cuda' && kernel.which(args) !== 'native')
    throw new Error(`${kernel.name} would run its tfjs-ops fallback on cuda, not the native kernel`);
  return kernel.run(args);
}

/** Runs a plugin's kernel by name on the current backend, in place on own copies of `written`; returns them. */
function runInPlace(
  name: string,
  written: Record<string, tf.Tensor>,
  read: Record<string, tf.Tensor>,
  attrs: Record<string, unknown>,
): tf.Tensor[] {
  if (tf.getKernel(name, tf.getBackend()) == null)
    throw new Error(
      `${name} is not registered on '${tf.getBackend()}': import its optimizer plugin before running the parity`,
    );
  const own = Object.fromEntries(Object.entries(written).map(([k, t]) => [k, tf.add(t, tf.zerosLike(t))]));
  const outs = tf.engine().runKernel(name, { ...own, ...read }, attrs as tf.NamedAttrMap);
  tf.dispose(outs as tf.Tensor[]);
  return Object.values(own);
}

/** @kstar/optim-adam8bit's `constants(hp)` (kernel attributes). */
function adam8bitAttrs(blockSize: number) {
  const hp = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 5 };
  return { ...adamStepConstants(hp), blockSize };
}

const f = (...shape: number[]) => ({ shape });

export function kstarOptimParityCases(): ParityCase[] {
  const cases: ParityCase[] = [];
  const add = caseAdder(cases);
  for (const [shape, B, signed, signFix] of [
    [[1031], 100, true, true],
    [[7, 149], 64, false, false],
  ] as const) {
    const lo = signed ? -3 : 0;
    cases.push({
      kernel: 'KstarQuantize8',
      name: `KstarQuantize8 [${shape}] B=${B} ${signed ? 'signed, sign fix' : 'unsigned'}`,
      inputs: [{ shape: [...shape], lo, hi: 3 }],
      run: ([x]) => {
        const q = call(quantizeKernel, { x: x!, signed, blockSize: B, signFix });
        return [q.codes, q.absmax];
      },
    });
    cases.push({
      kernel: 'KstarDequantize8',
      name: `KstarDequantize8 [${shape}] B=${B} ${signed ? 'signed' : 'unsigned'}`,
      inputs: [{ shape: [...shape], lo, hi: 3 }],
      run: ([x]) => {
        const q = quantizeKernel.run({ x: x!, signed, blockSize: B, signFix });
        return call(dequantizeKernel, { ...q, shape: [...shape], signed, blockSize: B });
      },
    });
  }
  for (const bits of [8, 16] as const) {
    add(
      'KstarPack',
      `KstarPack [1031] ${bits}-bit`,
      [{ shape: [1031], dtype: 'int32', lo: -70000, hi: 70000 }],
      ([v]) => call(packKernel, { values: v!, bits }),
    );
    add(
      'KstarUnpack',
      `KstarUnpack [1031] ${bits}-bit`,
      [{ shape: [1031], dtype: 'int32', lo: -70000, hi: 70000 }],
      ([v]) => call(unpackKernel, { packed: packKernel.run({ values: v!, bits }), n: 1031, bits }),
    );
  }
  for (const [shape, B] of [
    [[1031], 130],
    [[33, 65], 256],
  ] as const) {
    cases.push({
      kernel: 'KstarAdam8bit',
      name: `KstarAdam8bit [${shape}] B=${B} step 5`,
      inputs: [
        { shape: [...shape] },
        { shape: [...shape], lo: -0.1, hi: 0.1 },
        { shape: [...shape], lo: -0.05, hi: 0.05 },
        { shape: [...shape], lo: 0, hi: 1e-3 },
      ],
      run: ([param, grad, m, v]) => {
        const qm = quantizeKernel.run({ x: m!, signed: true, blockSize: B, signFix: true });
        const qv = quantizeKernel.run({ x: v!, signed: false, blockSize: B });
        const written = { param: param!, c1: qm.codes, a1: qm.absmax, c2: qv.codes, a2: qv.absmax };
        return runInPlace('KstarAdam8bit', written, { grad: grad! }, adam8bitAttrs(B));
      },
    });
  }
  const [V, d] = [13, 7];
  const rows = Int32Array.from([4, 0, 11, 7]);
  const slots = Int32Array.from([2, 0, 3, 1]);
  for (const lazy of [false, true]) {
    cases.push({
      kernel: 'KstarLazyAdagrad',
      name: `KstarLazyAdagrad [${V},${d}] ${lazy ? `rows ${rows.join(',')}, eps inside √` : 'dense'}`,
      inputs: [
        f(V, d),
        { shape: [V, d], lo: -2, hi: 2 },
        { shape: [lazy ? rows.length : V, d], lo: 0, hi: 0.5 },
      ],
      run: ([param, grad, acc]) =>
        runInPlace(
          'KstarLazyAdagrad',
          { param: param!, acc: acc! },
          { grad: grad! },
          {
            lr: 0.05,
            eps: 1e-10,
            epsInside: lazy ? 1 : 0,
            nRows: lazy ? rows.length : -1,
            d,
            rows: lazy ? rows : new Int32Array(0),
            slots: lazy ? slots : new Int32Array(0),
          },
        ),
    });
  }
  // The factored optimizers: batched [2, 37, 65] with Adafactor's first moment, a vector, AdaLomo with clipping.
  const adafactorAttrs = (beta1: number) => ({
    rho: 0.01,
    beta2t: 0.8,
    scale: 1,
    eps1: 1e-30,
    eps2: 1e-3,
    clip: 1,
    beta1,
    weightDecay: 0.01,
  });
  const pos = (...shape: number[]) => ({ shape, lo: 0.01, hi: 1 });
  cases.push({
    kernel: 'KstarAdafactor',
    name: 'KstarAdafactor [2,37,65] factored, first moment, RMS scaling',
    inputs: [f(2, 37, 65), { shape: [2, 37, 65], lo: -2, hi: 2 }, pos(2, 37), pos(2, 65), f(2, 37, 65)],
    run: ([param, grad, row, col, m]) =>
      runInPlace(
        'KstarAdafactor',
        { param: param!, row: row!, col: col!, m: m! },
        { grad: grad! },
        adafactorAttrs(0.9),
      ),
  });
  cases.push({
    kernel: 'KstarAdafactor',
    name: 'KstarAdafactor [1031] vector',
    inputs: [f(1031), { shape: [1031], lo: -2, hi: 2 }, pos(1031)],
    run: ([param, grad, v]) =>
      runInPlace('KstarAdafactor', { param: param!, v: v! }, { grad: grad! }, adafactorAttrs(-1)),
  });
  cases.push({
    kernel: 'KstarAdaLomo',
    name: 'KstarAdaLomo [131,67] factored, clip 1.5, scale 0.7',
    inputs: [f(131, 67), { shape: [131, 67], lo: -3, hi: 3 }, pos(131), pos(67)],
    run: ([param, grad, row, col]) =>
      runInPlace(
        'KstarAdaLomo',
        { param: param!, row: row!, col: col! },
        { grad: grad! },
        {
          lr: 0.01,
          beta2t: 0.8,
          eps1: 1e-30,
          eps2: 1e-3,
          clip: 1,
          weightDecay: 0.01,
          gscale: 0.7,
          gclip: 1.5,
        },
      ),
  });
  // @kstar/optim-came's `constants(hp, shape)`.
  const cameAttrs = (batch: number, rows: number, cols: number) => ({
    lr: 0.01,
    beta1: 0.9,
    oneMinusBeta1: 0.1,
    beta2: 0.999,
    oneMinusBeta2: 1 - 0.999,
    beta3: 0.9999,
    oneMinusBeta3: 1 - 0.9999,
    eps1: 1e-30,
    eps2: 1e-16,
    clipThreshold: 1,
    wdLr: 0.01 * 0.01,
    batch,
    rows,
    cols,
  });
  cases.push({
    kernel: 'KstarCameFactored',
    name: 'KstarCameFactored [2,37,65]',
    inputs: [
      f(2, 37, 65),
      { shape: [2, 37, 65], lo: -2, hi: 2 },
      f(2, 37, 65),
      pos(2, 37),
      pos(2, 65),
      pos(2, 37),
      pos(2, 65),
    ],
    run: ([param, grad, m, vRow, vCol, resRow, resCol]) =>
      runInPlace(
        'KstarCameFactored',
        { param: param!, m: m!, vRow: vRow!, vCol: vCol!, resRow: resRow!, resCol: resCol! },
        { grad: grad! },
        cameAttrs(2, 37, 65),
      ),
    scale: 10,
  });
  cases.push({
    kernel: 'KstarCameVector',
    name: 'KstarCameVector [1031]',
    inputs: [f(1031), { shape: [1031], lo: -2, hi: 2 }, f(1031), pos(1031)],
    run: ([param, grad, m, v]) =>
      runInPlace('KstarCameVector', { param: param!, m: m!, v: v! }, { grad: grad! }, cameAttrs(1, 1, 1031)),
  });
  cases.push({
    kernel: 'KstarLomo',
    name: 'KstarLomo [33,17] clip 0.5',
    inputs: [f(33, 17), { shape: [33, 17], lo: -1, hi: 1 }],
    run: ([param, grad]) =>
      runInPlace(
        'KstarLomo',
        { param: param! },
        { grad: grad! },
        { lr: 0.01, decay: 0.999, gscale: 0.8, gclip: 0.5 },
      ),
  });
  return cases;
}
