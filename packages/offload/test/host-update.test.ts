import { type OptimizerPlugin, SPECIFICATION_VERSION, stateVariable, TrainingEngine } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { hostAdamW, offloadState } from '../src/index.ts';
import { batchOf, residualModel } from './residual-model.ts';

const H = { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };

/** AdamW on the device in tfjs ops (the reference: an independent implementation of the same rule). */
function deviceAdamW(): OptimizerPlugin {
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'optimizer',
    name: 'adamw-ops',
    describe: () => ({ ...H }),
    init: (p) => ({ m: stateVariable(`${p.name}/m`, p.shape), v: stateVariable(`${p.name}/v`, p.shape) }),
    stateBytes: (shape) => 8 * shape.reduce((a, b) => a * b, 1),
    update(param, grad, state, step) {
      const m = state.m as tf.Variable;
      const v = state.v as tf.Variable;
      tf.tidy(() => {
        m.assign(tf.add(tf.mul(m, H.beta1), tf.mul(grad, 1 - H.beta1)));
        v.assign(tf.add(tf.mul(v, H.beta2), tf.mul(tf.square(grad), 1 - H.beta2)));
        const mHat = tf.div(m, 1 - H.beta1 ** step);
        const vHat = tf.div(v, 1 - H.beta2 ** step);
        const decayed = tf.mul(param, 1 - H.lr * H.weightDecay);
        param.assign(tf.sub(decayed, tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), H.eps)), H.lr)));
      });
    },
  };
}

async function run(host: boolean, mode: 'full' | 'segmented') {
  const model = residualModel(40, 32, 3, 5);
  const base = deviceAdamW();
  const optimizer = host ? offloadState(base, { offload: () => true, update: hostAdamW(() => H) }) : base;
  const engine = new TrainingEngine(model, { optimizer, mode });
  const losses: number[] = [];
  let stateBytes = 0;
  for (let s = 0; s < 4; s++) {
    const batch = batchOf(40, 2, 8, 20 + s);
    const r = await engine.trainStep(batch);
    losses.push(r.loss);
    stateBytes = r.optimizerStateBytes;
    tf.dispose([batch.inputs, batch.targets]);
  }
  const params = [...model.variables.values()].map((v) => v.dataSync().slice());
  engine.dispose();
  tf.dispose([...model.variables.values()]);
  return { losses, params, stateBytes };
}

describe('host-side update (ZeRO-Offload CPU Adam)', () => {
  it.each(['full', 'segmented'] as const)(
    '%s: same losses and weights as the device AdamW, no device state',
    async (mode) => {
      await tf.setBackend('cpu');
      const device = await run(false, mode);
      const host = await run(true, mode);
      expect(device.losses[3]).not.toBeCloseTo(device.losses[0], 2); // the updates move the loss
      for (let i = 0; i < 4; i++) expect(Math.abs(host.losses[i]! - device.losses[i]!)).toBeLessThan(1e-5);
      for (let k = 0; k < device.params.length; k++) {
        let worst = 0;
        for (let i = 0; i < device.params[k]!.length; i++)
          worst = Math.max(worst, Math.abs(host.params[k]![i]! - device.params[k]![i]!));
        expect(worst).toBeLessThan(1e-5);
      }
      expect(device.stateBytes).toBeGreaterThan(0);
      expect(host.stateBytes).toBe(0);
    },
  );
});
