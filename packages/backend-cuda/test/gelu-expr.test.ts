import { geluGradKernel, geluKernel } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, expect, it } from 'vitest';
import { GELU_EXPR, GELU_GRAD_EXPR } from '../src/kernels.ts';

// The CUDA expressions of the native KstarGelu/KstarGeluGrad, evaluated in JavaScript, against @kstar/kernels'
// tfjs-ops fallbacks (the reference every native GELU is held to).
beforeAll(async () => {
  await tf.setBackend('cpu');
});

const js = (expr: string) =>
  new Function('a', 'b', `return ${expr.replace(/(\d\.?)f\b/g, '$1').replace(/tanhf/g, 'Math.tanh')};`) as (
    a: number,
    b: number,
  ) => number;

it('GELU and its gradient match the fallback within float32 rounding', () => {
  const h = tf.linspace(-8, 8, 801);
  const dy = tf.randomUniform([801], -1, 1, 'float32', 3);
  const y = geluKernel.run(h, { impl: 'fallback' });
  const dh = geluGradKernel.run({ h, dy }, { impl: 'fallback' });
  const [hv, dv, yv, dhv] = [h, dy, y, dh].map((t) => t.dataSync());
  const gelu = js(GELU_EXPR);
  const grad = js(GELU_GRAD_EXPR);
  for (let i = 0; i < hv!.length; i++) {
    expect(Math.abs(gelu(hv![i]!, 0) - yv![i]!)).toBeLessThan(2e-6);
    expect(Math.abs(grad(hv![i]!, dv![i]!) - dhv![i]!)).toBeLessThan(2e-6);
  }
  tf.dispose([h, dy, y, dh]);
});
