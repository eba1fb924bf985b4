/**
 * Working set and time of each MsT op against the model's own, one forward + backward (`tf.grads` with a random
 * upstream gradient), measured with @kstar/core's MemoryLedger (unique buffers), next to `src/predict.ts`.
 * Usage (repo root): node --conditions=@kstar/source --import tsx bench/packages/act-mst/op-memory.ts --json FILE
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { mst, predictAttentionBytes, predictLossBytes, predictMlpBytes } from '@kstar/act-mst';
import { MemoryLedger } from '@kstar/core';
import { attentionCore, gelu, linearCrossEntropyCore, mlpCore } from '@kstar/gpt';
import * as tf from '@tensorflow/tfjs';

interface Row {
  op: string;
  variant: string;
  shape: Record<string, number>;
  measuredBytes: number;
  predictedBytes: number;
  ms: number;
}

const ledger = new MemoryLedger();

function run(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], dy?: tf.Tensor) {
  const t0 = performance.now();
  const { result, peakNewBytes } = ledger.measure(() =>
    tf.grads((...xs: tf.Tensor[]) => f(...xs))(inputs, dy),
  );
  tf.dispose(result);
  return { bytes: peakNewBytes, ms: performance.now() - t0 };
}

async function main() {
  const out = process.argv[process.argv.indexOf('--json') + 1];
  if (!process.argv.includes('--json') || !out) throw new Error('usage: op-memory.ts --json FILE');
  await tf.setBackend('cpu');
  const rows: Row[] = [];
  const rn = (shape: number[], seed: number, std = 1) => tf.randomNormal(shape, 0, std, 'float32', seed);

  // MLP, `tiny` widths (D 128, F 512), B 4 × T 128 rows.
  for (const M of [undefined, 4, 16]) {
    const [N, D] = [512, 128];
    const F = 4 * D;
    const inputs = [
      rn([N, D], 1),
      rn([D, F], 2, 0.02),
      rn([F], 3, 0.02),
      rn([F, D], 4, 0.02),
      rn([D], 5, 0.02),
    ];
    const dy = rn([N, D], 6);
    const op = M === undefined ? null : mst({ mlpChunks: M }).ops.mlp;
    const r = run((x, a, b, c, d) => (op ?? mlpCore)(x!, a!, b!, c!, d!, gelu), inputs, dy);
    rows.push({
      op: 'mlp',
      variant: M === undefined ? 'model' : `mst mlpChunks=${M}`,
      shape: { rows: N, nEmbd: D, hidden: F },
      measuredBytes: r.bytes,
      predictedBytes: predictMlpBytes(N, D, F, M),
      ms: r.ms,
    });
    tf.dispose([...inputs, dy]);
  }
  // Attention, `tiny` heads (H 4, hd 32), B 2, T 256 and 512.
  for (const T of [256, 512]) {
    for (const c of [undefined, 32, 8]) {
      const [B, H, hd] = [2, 4, 32];
      const inputs = [rn([B, H, T, hd], 1), rn([B, H, T, hd], 2), rn([B, H, T, hd], 3)];
      const dy = rn([B, H, T, hd], 4);
      const op = c === undefined ? null : mst({ attentionChunk: c }).ops.attention;
      const r = run((q, k, v) => (op ?? attentionCore)(q!, k!, v!, 0.125), inputs, dy);
      rows.push({
        op: 'attention',
        variant: c === undefined ? 'model' : `mst attentionChunk=${c}`,
        shape: { batch: B, nHead: H, seq: T, headDim: hd },
        measuredBytes: r.bytes,
        predictedBytes: predictAttentionBytes(B, H, T, hd, c),
        ms: r.ms,
      });
      tf.dispose([...inputs, dy]);
    }
  }
  // LM head + loss: D 128, N = 4 × 128 rows; the byte vocabulary (256) and a 4096-token one.
  for (const V of [256, 4096]) {
    for (const M of [undefined, Math.ceil(V / 128), 16]) {
      const [N, D] = [512, 128];
      const h = rn([N, D], 1);
      const w = rn([V, D], 2, 0.02);
      const t = tf.tensor1d(
        Int32Array.from({ length: N }, (_, i) => (i * 7919) % V),
        'int32',
      );
      const op = M === undefined ? null : mst({ lossChunks: M }).ops.linearCrossEntropy;
      const r = run((a, b) => (op ?? linearCrossEntropyCore)(a!, b!, t), [h, w]);
      rows.push({
        op: 'linearCrossEntropy',
        variant: M === undefined ? 'model' : `mst lossChunks=${M}`,
        shape: { rows: N, nEmbd: D, vocab: V },
        measuredBytes: r.bytes,
        predictedBytes: predictLossBytes(N, D, V, M),
        ms: r.ms,
      });
      tf.dispose([h, w, t]);
    }
  }
  const machine = `${os.cpus().length}-core ${os.arch()} (${os.cpus()[0]?.model ?? 'unknown'}), tfjs cpu backend, node ${process.version}`;
  writeFileSync(
    out,
    `${JSON.stringify({ command: `node --conditions=@kstar/source --import tsx bench/packages/act-mst/op-memory.ts --json ${out}`, date: new Date().toISOString(), machine, rows }, null, 2)}\n`,
  );
  for (const r of rows) {
    console.log(
      `${r.op.padEnd(18)} ${r.variant.padEnd(24)} ${JSON.stringify(r.shape).padEnd(44)} measured ${r.measuredBytes} predicted ${r.predictedBytes} ${r.ms.toFixed(0)} ms`,
    );
  }
  ledger.detach();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
