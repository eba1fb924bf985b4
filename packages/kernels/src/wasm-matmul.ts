import * as tf from '@tensorflow/tfjs-core';
import { kernelOverride } from './kernel-override.ts';

/**
 * tfjs-backend-wasm 4.22 multiplies through XNNPACK only when neither operand is transposed; with `transposeA` or
 * `transposeB` it takes a naive loop about 10× slower (measured on 2 cores: [2048,128]ᵀ·[2048,384] 124 ms against
 * 12 ms for an explicit transpose followed by a plain multiply). Every matMul gradient has a transposed operand
 * (dX = dY·Wᵀ, dW = Xᵀ·dY), so training spent most of its time there. These wrappers transpose the flagged operand
 * with the wasm `Transpose` kernel (one temporary the size of that operand, freed before returning) and call the
 * original kernel without flags. Results are identical up to float32 summation order.
 */
type Info = tf.TensorInfo;
interface WasmLike {
  disposeData(dataId: tf.DataId): boolean;
}

function swapLastTwo(t: Info): number[] {
  const perm = t.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
  return perm;
}

/** Transposes the flagged operands with the wasm `Transpose` kernel, then calls `original` without flags. */
function untransposed(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    const transpose = tf.getKernel('Transpose', 'wasm');
    if ((!attrs.transposeA && !attrs.transposeB) || !transpose) return original(args);
    const backend = args.backend as WasmLike;
    const inputs = { ...(args.inputs as Record<string, Info>) };
    const temps: Info[] = [];
    for (const [name, flag] of [
      ['a', attrs.transposeA],
      ['b', attrs.transposeB],
    ] as const) {
      if (!flag) continue;
      const x = inputs[name]!;
      const t = transpose.kernelFunc({
        inputs: { x },
        backend: args.backend,
        attrs: { perm: swapLastTwo(x) },
      }) as Info;
      temps.push(t);
      inputs[name] = t;
    }
    try {
      return original({ ...args, inputs, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}

const override = kernelOverride('wasmMatMulWrapped', 'wasm', ['BatchMatMul', '_FusedMatMul'], untransposed);

/** Installs the wrappers once the wasm backend's kernels are registered (idempotent; a no-op before that). */
export function registerWasmMatMulFix(): void {
  override.install();
}

/** Puts tfjs's own wasm matMul kernels back (for benchmarks that compare; `registerWasmMatMulFix` reinstalls). */
export function unregisterWasmMatMulFix(): void {
  override.restore();
}
