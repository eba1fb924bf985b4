import { TrainingEngine } from '@kstar/core';
import { onBackend } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { disposeModel, toyBatch, toyStagedModel } from '../bench/toy-model.ts';
import { defaultGroupOf, lazyAdagrad, quantizedBytes } from '../src/index.ts';
import { runWindowed } from './window.ts';

onBackend('cpu'); // the tensor count is the same after the file as before it

const STEPS = 12;
const LR = 0.01;

describe('windowed mode (K float32 groups, the rest 8-bit)', () => {
  it.each(['sqrt', 'linear'] as const)(
    '%s encoding: K ≥ groups is exactly Adagrad; K < groups: error reported, within the 8-bit bound',
    (encoding) => {
      const rows = [1, 2, 3, 4].map((K) => runWindowed(K, STEPS, LR, 7, encoding));
      for (const r of rows) {
        console.log(
          `[optim-lazy-adagrad] window K=${r.window} (${encoding}), ${STEPS} steps, 4 groups: max |acc−acc_exact| = ${r.accErrInBlockMax.toExponential(3)} × block max, ${r.accRelErr.toExponential(3)} relative; ` +
            `max |p−p_exact| = ${r.paramAbsErr.toExponential(3)} (${r.paramRelErr.toExponential(3)} of RMS(p_exact − p0)); state ${r.stateBytes} B`,
        );
        expect(r.stateBytes).toBe(r.predictedBytes);
      }
      // K = 4 holds every group: after the first update nothing is ever quantized again (the initial 8-bit zeros decode exactly).
      expect(rows[3]!.accErrInBlockMax).toBe(0);
      expect(rows[3]!.paramAbsErr).toBe(0);
      // With K < 4, each step evicts every group once (the backward order cycles), so an element is quantized at most
      // STEPS times, each time off by ≤ ½·absmax/255 = absmax/510 (acc only grows, so the block max at the end bounds
      // every earlier absmax, up to the error itself: the 1.1 slack). Errors add at worst linearly. The sqrt encoding
      // rounds s = √acc by ≤ S/510 (S = block max of √acc), so acc = s² moves by ≤ (S/510)·(2S + S/510) ≈ 2·A/510.
      const perQuantization = encoding === 'sqrt' ? 2 : 1;
      for (const r of rows.slice(0, 3)) {
        expect(r.accErrInBlockMax).toBeGreaterThan(0); // the mode is lossy: the test can see it
        expect(r.accErrInBlockMax).toBeLessThanOrEqual((1.1 * perQuantization * STEPS) / 510);
        // Each Adagrad step moves an element by lr·|g|/√acc ≤ lr (acc ≥ g² after adding g²), in both runs.
        expect(r.paramAbsErr).toBeLessThanOrEqual(2 * LR * STEPS);
      }
      // State bytes shrink with K: 4 groups × (7,680 + 160) B float32 vs 8-bit.
      const bytes = rows.map((r) => r.stateBytes);
      expect(bytes[0]! < bytes[1]! && bytes[1]! < bytes[2]! && bytes[2]! < bytes[3]!).toBe(true);
      const perGroup32 = 4 * (48 * 40 + 40);
      const perGroup8 = quantizedBytes(48 * 40) + quantizedBytes(40);
      rows.forEach((r, i) => {
        expect(r.stateBytes).toBe((i + 1) * perGroup32 + (3 - i) * perGroup8);
      });
    },
  );

  it("dynamic encoding (kernels' bitsandbytes unsigned map on √acc): far smaller relative error than linear codes", () => {
    const dynamic = runWindowed(1, STEPS, LR, 7, 'dynamic');
    const linear = runWindowed(1, STEPS, LR, 7, 'sqrt');
    console.log(
      `[optim-lazy-adagrad] window K=1, ${STEPS} steps, dynamic vs sqrt-linear: max |acc−acc_exact| ${dynamic.accErrInBlockMax.toExponential(3)} vs ${linear.accErrInBlockMax.toExponential(3)} × block max; max |p−p_exact| ${dynamic.paramAbsErr.toExponential(3)} vs ${linear.paramAbsErr.toExponential(3)}`,
    );
    expect(dynamic.stateBytes).toBe(dynamic.predictedBytes);
    expect(dynamic.stateBytes).toBe(linear.stateBytes); // same bytes: 8-bit codes + a float32 max per 256
    // The dynamic map keeps relative precision for elements far below their block's max (linear codes round them to
    // 0, and Adagrad then takes a full lr step there); near-zero elements may decode to its smallest code instead.
    expect(dynamic.paramAbsErr).toBeGreaterThan(0); // still lossy: the test can see it
    expect(dynamic.paramAbsErr).toBeLessThan(linear.paramAbsErr / 5);
  });

  it('window off is exactly Adagrad (no quantization)', () => {
    const r = runWindowed(null, 3, LR);
    expect(r.accErrInBlockMax).toBe(0);
    expect(r.paramAbsErr).toBe(0);
  });

  it('engine, segmented: the K groups just updated are float32; measured state bytes follow K', async () => {
    expect(defaultGroupOf('h3.attn.wqkv')).toBe('h3');
    expect(defaultGroupOf('wte')).toBe('wte');
    const out: string[] = [];
    for (const K of [1, 2, 4]) {
      const model = toyStagedModel({ vocab: 32, dim: 8, depth: 3, seed: 9 });
      const plugin = lazyAdagrad({ lr: 0.05, window: K, lazyRows: 'off' });
      const engine = new TrainingEngine(model, { optimizer: plugin, mode: 'segmented' });
      let bytes = 0;
      for (let t = 1; t <= 2; t++) {
        const batch = toyBatch(32, 2, 4, 40 + t);
        bytes = (await engine.trainStep(batch)).optimizerStateBytes;
        tf.dispose([batch.inputs, batch.targets]);
      }
      // Backward order: head, h2, h1, h0, wte: the last K of those hold float32 state.
      const order = ['head', 'h2', 'h1', 'h0', 'wte'];
      expect(plugin.windowGroups()).toEqual(order.slice(order.length - K));
      let predicted = 0;
      for (const [name, v] of model.variables) {
        const inWindow = plugin.windowGroups().includes(plugin.groupOf(name));
        predicted += inWindow ? 4 * v.size : quantizedBytes(v.size);
      }
      expect(bytes).toBe(predicted);
      out.push(`K=${K}: ${bytes} B`);
      engine.dispose();
      disposeModel(model);
    }
    console.log(`[optim-lazy-adagrad] engine toy (5 groups) optimizer state after a step: ${out.join(', ')}`);
  });
});
