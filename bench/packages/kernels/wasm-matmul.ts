// Times wasm matMuls with a transposed operand (every matMul gradient has one), with tfjs's own kernels and with
// K*'s transpose-then-multiply wrappers. Run: node --conditions=@kstar/source --import tsx bench/packages/kernels/wasm-matmul.ts

import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { registerWasmMatMulFix, selectBackend, unregisterWasmMatMulFix } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';

await selectBackend('wasm');
const cases: Array<[string, number[], number[], boolean, boolean]> = [
  ['dW = xᵀ·dy [2048,128]ᵀ[2048,384]', [2048, 128], [2048, 384], true, false],
  ['dx = dy·Wᵀ [2048,384][128,384]ᵀ', [2048, 384], [128, 384], false, true],
  ['scores q·kᵀ [64,128,32][64,128,32]ᵀ', [64, 128, 32], [64, 128, 32], false, true],
  ['plain x·W [2048,128][128,384]', [2048, 128], [128, 384], false, false],
];
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
async function time(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): Promise<number> {
  const run = () => {
    const y = tf.matMul(a, b, ta, tb);
    y.dataSync();
    y.dispose();
  };
  run();
  const ms: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    run();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}
const rows = [];
for (const [name, sa, sb, ta, tb] of cases) {
  const a = tf.randomNormal(sa);
  const b = tf.randomNormal(sb);
  unregisterWasmMatMulFix();
  const tfjsMs = await time(a, b, ta, tb);
  registerWasmMatMulFix();
  const kstarMs = await time(a, b, ta, tb);
  rows.push({ case: name, tfjsMs, kstarMs, speedup: tfjsMs / kstarMs });
  tf.dispose([a, b]);
}
const out = new URL('./results/wasm-matmul.json', import.meta.url);
const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version };
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine, rows }, null, 2)}\n`);
for (const r of rows)
  console.log(
    `${r.case.padEnd(40)} tfjs ${r.tfjsMs.toFixed(1)} ms  K* ${r.kstarMs.toFixed(1)} ms  ×${r.speedup.toFixed(1)}`,
  );
