import * as tf from '@tensorflow/tfjs-core';
import type { CudaBackend } from './backend.ts';
import { batchMatMul, type CudaMatmulPrecision, matmulPrecision, setMatmulPrecision } from './matmul.ts';
import { clearOperandCache } from './operand-cache.ts';

/** One GEMM shape of gpt2-124m's step (T = 1024, batch 8: N = 8192 rows) and its TFLOP/s in each precision. */
export interface MatmulSpeedRow {
  name: string;
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
  precision: CudaMatmulPrecision;
  ms: number;
  tflops: number;
}

/** The GEMMs of a gpt2-124m step (forward, the two backward products, attention, LM head). */
export const GPT2_GEMMS: {
  name: string;
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
}[] = [
  { name: 'x·W_qkv', a: [8192, 768], b: [768, 2304], transposeA: false, transposeB: false },
  { name: 'x·W_fc', a: [8192, 768], b: [768, 3072], transposeA: false, transposeB: false },
  { name: 'h·W_proj', a: [8192, 3072], b: [3072, 768], transposeA: false, transposeB: false },
  { name: 'dW_fc = xᵀ·dy', a: [8192, 768], b: [8192, 3072], transposeA: true, transposeB: false },
  { name: 'dx = dy·W_fcᵀ', a: [8192, 3072], b: [768, 3072], transposeA: false, transposeB: true },
  { name: 'LM head h·Wteᵀ', a: [8192, 768], b: [50257, 768], transposeA: false, transposeB: true },
  { name: 'dWte = dzᵀ·h', a: [8192, 50257], b: [8192, 768], transposeA: true, transposeB: false },
  { name: 'scores q·kᵀ', a: [96, 1024, 64], b: [96, 1024, 64], transposeA: false, transposeB: true },
  { name: 'probs·v', a: [96, 1024, 1024], b: [96, 1024, 64], transposeA: false, transposeB: false },
  // What-ifs: the weight gradient with xᵀ stored (no transposed operand), the LM head with the vocabulary padded to 50,304.
  { name: 'dW_fc, xᵀ stored', a: [768, 8192], b: [8192, 3072], transposeA: false, transposeB: false },
  { name: 'LM head, V = 50304', a: [8192, 768], b: [50304, 768], transposeA: false, transposeB: true },
  // The LM head's transposed product alone (what the transposed-output path runs before its transpose).
  { name: 'LM head Cᵀ = Wte·hᵀ', a: [50257, 768], b: [8192, 768], transposeA: false, transposeB: true },
  // Transposed-A products of other widths (TF32 copies Aᵀ first where N ≥ 512: transposedFirstOperandPays), and the
  // weight gradients with the other operand stored transposed instead (Aᵀ·Bᵀ).
  { name: 'dW_proj = hᵀ·dy', a: [8192, 3072], b: [8192, 768], transposeA: true, transposeB: false },
  { name: 'dv = probsᵀ·do', a: [96, 1024, 1024], b: [96, 1024, 64], transposeA: true, transposeB: false },
  { name: 'dW_fc, dyᵀ stored', a: [8192, 768], b: [3072, 8192], transposeA: true, transposeB: true },
  { name: 'dWte, hᵀ stored', a: [8192, 50257], b: [768, 8192], transposeA: true, transposeB: true },
];

/**
 * Times each GEMM on the `cuda` backend (median of `reps` synchronised runs after one warm-up) in each precision:
 * where a step's matmul time goes, and how far each shape is from the GPU's peak.
 */
export function matmulSpeed(
  backend: CudaBackend,
  precisions: CudaMatmulPrecision[] = ['strict', 'tf32', 'bf16'],
  reps = 5,
  gemms = GPT2_GEMMS,
): MatmulSpeedRow[] {
  const before = matmulPrecision();
  const rows: MatmulSpeedRow[] = [];
  try {
    for (const g of gemms) {
      // Filled on the device (random values would be made in JavaScript: seconds for the LM head); speed does not depend on them.
      const a = tf.fill(g.a, 0.5);
      const b = tf.fill(g.b, -0.25);
      const M = g.transposeA ? g.a.at(-1)! : g.a.at(-2)!;
      const K = g.transposeA ? g.a.at(-2)! : g.a.at(-1)!;
      const N = g.transposeB ? g.b.at(-2)! : g.b.at(-1)!;
      const batch = g.a.length > 2 ? g.a[0]! : 1;
      for (const p of precisions) {
        setMatmulPrecision(p);
        const times: number[] = [];
        for (let r = 0; r <= reps; r++) {
          clearOperandCache(); // each rep pays its bf16 conversions, as a product in a step does
          backend.device.sync();
          const t0 = performance.now();
          const out = batchMatMul(backend, a, b, g.transposeA, g.transposeB);
          backend.device.sync();
          if (r > 0) times.push(performance.now() - t0);
          backend.disposeData(out.dataId);
        }
        const ms = times.sort((x, y) => x - y)[Math.floor(times.length / 2)]!;
        rows.push({ ...g, precision: p, ms, tflops: (2 * batch * M * N * K) / (ms * 1e9) });
      }
      tf.dispose([a, b]);
    }
  } finally {
    setMatmulPrecision(before);
  }
  return rows;
}
