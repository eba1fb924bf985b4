import { checkpoint } from '@kstar/act-checkpoint';
import { compress } from '@kstar/act-compress';
import { TrainingEngine } from '@kstar/core';
import { createGPT, resolveConfig } from '@kstar/gpt';
import { selectBackend } from '@kstar/kernels';
import { adamw } from '@kstar/optim-adamw';
import * as tf from '@tensorflow/tfjs';
import { relL2Error } from '../../testkit/src/compare.ts';
import { benchFlags } from './bench-flags.ts';
import { writeBenchResults } from './bench-results.ts';

/** ‖a − b‖ / ‖b‖ over all elements. */
const relError = (a: tf.Tensor, b: tf.Tensor): number => relL2Error(a.dataSync(), b.dataSync());

/**
 * `pnpm bench compress-error --json FILE [--preset tiny] [--batch 4] [--seq 64] [--backend wasm]`: gradients of one
 * batch with saved segment inputs stored exactly, as bf16 and as int8 (plan `every`), and the relative error of
 * each parameter's gradient against the exact one.
 */
export async function benchCompressError(argv: string[]): Promise<{ file: string; table: string }> {
  const v = benchFlags(argv, ['json', 'preset', 'batch', 'seq', 'backend', 'seed'], 'compress-error');
  const preset = String(v.preset ?? 'tiny') as 'tiny';
  const B = Number(v.batch ?? 4);
  const T = Number(v.seq ?? 64);
  const { backend } = await selectBackend(String(v.backend ?? 'wasm') as 'wasm');
  const config = resolveConfig(preset, { vocabSize: 256 });
  const model = createGPT(config, { seed: Number(v.seed ?? 1) });
  const batch = tf.tidy(() => ({
    inputs: tf.randomUniform([B, T], 0, 256, 'int32', 3),
    targets: tf.randomUniform([B, T], 0, 256, 'int32', 4),
  }));
  const engine = (fmt?: 'bf16' | 'int8') =>
    new TrainingEngine(model, {
      optimizer: adamw(),
      mode: 'segmented',
      activations: [checkpoint({ plan: 'every' }), ...(fmt ? [compress({ format: fmt })] : [])],
    });
  const exactEngine = engine();
  const exact = await exactEngine.computeGradients(batch);
  const rows: Array<Record<string, unknown>> = [];
  const lines: string[] = [];
  for (const fmt of ['bf16', 'int8'] as const) {
    const e = engine(fmt);
    const r = await e.computeGradients(batch);
    const perParam: Record<string, number> = {};
    let worst = 0;
    let num = 0;
    let den = 0;
    for (const [name, g] of exact.grads) {
      const err = relError(r.grads.get(name)!, g);
      perParam[name] = err;
      worst = Math.max(worst, err);
      const d = tf.tidy(() => tf.sum(tf.square(tf.sub(r.grads.get(name)!, g))).dataSync()[0]!);
      num += d;
      den += tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]!);
    }
    rows.push({
      format: fmt,
      loss: r.loss,
      exactLoss: exact.loss,
      worstParamRelError: worst,
      globalRelError: Math.sqrt(num / den),
      perParam,
    });
    lines.push(
      `${fmt}: worst per-parameter relative gradient error ${worst.toExponential(2)}, global ${Math.sqrt(num / den).toExponential(2)}`,
    );
    tf.dispose([...r.grads.values()]);
    e.dispose();
  }
  tf.dispose([...exact.grads.values(), batch.inputs, batch.targets]);
  exactEngine.dispose();
  model.dispose();
  writeBenchResults(v.json, 'compress-error', { backend, preset, batch: B, seq: T, plan: 'every', rows });
  return { file: v.json, table: lines.join('\n') };
}
