import { InputError, type SavedTensor, type SavedTensorCodec } from '@kstar/core';
import { DEFAULT_BLOCK_SIZE, dequantizeBlockwise, quantizeBlockwise, quantizedBytes } from '@kstar/kernels';
import type * as tf from '@tensorflow/tfjs-core';

/**
 * Saved segment inputs as 8-bit block-quantized codes (`@kstar/kernels`' `quantizeBlockwise`, signed): per block of
 * `blockSize` elements, the absmax (float32) and one byte per value indexing bitsandbytes' signed DYNAMIC map (not a
 * linear absmax grid: the map has finer steps near 0). Bytes: 4·⌈n/4⌉ + 4·⌈n/blockSize⌉. Runs on the device (KstarQuantize8
 * on cpu, wasm, webgpu).
 */
export function int8Codec(blockSize = DEFAULT_BLOCK_SIZE): SavedTensorCodec {
  if (!Number.isInteger(blockSize) || blockSize < 1 || blockSize > 1 << 20) {
    throw new InputError(
      `compress: blockSize ${String(blockSize)} is invalid: use an integer in [1, 1048576] (default ${DEFAULT_BLOCK_SIZE})`,
      'E_COMPRESS',
    );
  }
  return {
    encode(x: tf.Tensor): SavedTensor {
      const shape = [...x.shape];
      let q: { codes: tf.Tensor; absmax: tf.Tensor } | undefined = quantizeBlockwise(x, { blockSize });
      return {
        bytes: quantizedBytes(x.size, blockSize),
        decode() {
          if (!q) throw new Error('int8 saved tensor used after dispose');
          return dequantizeBlockwise(q, shape, { blockSize });
        },
        dispose() {
          if (q) {
            q.codes.dispose();
            q.absmax.dispose();
          }
          q = undefined;
        },
      };
    },
    savedBytes: (shape) =>
      quantizedBytes(
        shape.reduce((a, b) => a * b, 1),
        blockSize,
      ),
  };
}
