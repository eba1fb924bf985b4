import * as tf from '@tensorflow/tfjs-core';
import { type CudaMatmulPrecision, matmulPrecision, setMatmulPrecision } from './matmul.ts';

/** One matmul's error in a precision against the same product in strict float32, on the active (`cuda`) backend. */
export interface PrecisionErrorRow {
  precision: CudaMatmulPrecision;
  /** [M, K]·[K, N]. */
  shape: [number, number, number];
  maxAbsError: number;
  meanAbsError: number;
  /** max |error| / max |strict result|. */
  maxErrorOverMaxValue: number;
}

/**
 * Measures tf32 and bf16 matmuls against strict float32 on GPT-2-like shapes with seeded uniform inputs in [−1, 1]
 * (the result's scale grows as √K). Restores the precision that was set.
 */
export async function matmulPrecisionErrors(
  shapes: [number, number, number][] = [
    [1024, 768, 3072],
    [1024, 3072, 768],
    // The LM head's odd N (vocabulary 50,257): rows padded to 16 bytes for the tensor cores (gemm-align.ts).
    [256, 768, 50257],
  ],
): Promise<PrecisionErrorRow[]> {
  const before = matmulPrecision();
  const rows: PrecisionErrorRow[] = [];
  try {
    for (const [M, K, N] of shapes) {
      const a = tf.randomUniform([M, K], -1, 1, 'float32', 1);
      const b = tf.randomUniform([K, N], -1, 1, 'float32', 2);
      const product = async (p: CudaMatmulPrecision) => {
        setMatmulPrecision(p);
        const c = tf.matMul(a, b);
        const v = (await c.data()) as Float32Array;
        c.dispose();
        return v;
      };
      const strict = await product('strict');
      let maxRef = 0;
      for (const x of strict) maxRef = Math.max(maxRef, Math.abs(x));
      for (const p of ['tf32', 'bf16'] as const) {
        const got = await product(p);
        let max = 0;
        let sum = 0;
        for (let i = 0; i < got.length; i++) {
          const e = Math.abs(got[i]! - strict[i]!);
          max = Math.max(max, e);
          sum += e;
        }
        rows.push({
          precision: p,
          shape: [M, K, N],
          maxAbsError: max,
          meanAbsError: sum / got.length,
          maxErrorOverMaxValue: max / maxRef,
        });
      }
      tf.dispose([a, b]);
    }
  } finally {
    setMatmulPrecision(before);
  }
  return rows;
}
