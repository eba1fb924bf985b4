import {
  type ActivationStrategy,
  InputError,
  type SavedTensorCodec,
  SPECIFICATION_VERSION,
} from '@kstar/core';
import { DEFAULT_BLOCK_SIZE } from '@kstar/kernels';
import { bf16Codec } from './bf16.ts';
import { int8Codec } from './int8.ts';

export type CompressFormat = 'bf16' | 'int8';

export interface CompressOptions {
  /** `bf16`: packed bfloat16 (2 bytes a value); `int8`: block-quantized 8-bit codes (≈1 byte a value). Default bf16. */
  format?: CompressFormat;
  /** int8: elements per absmax block (default 256). */
  blockSize?: number;
}

export interface CompressStrategy extends ActivationStrategy {
  readonly codec: SavedTensorCodec;
  readonly format: CompressFormat;
}

/** Stores the segment inputs that segmented mode keeps between forward and backward compressed. */
export function compress(options: CompressOptions = {}): CompressStrategy {
  const format = options.format ?? 'bf16';
  if (format !== 'bf16' && format !== 'int8') {
    throw new InputError(
      `compress: format '${String(format)}' is unknown: use 'bf16' or 'int8'`,
      'E_COMPRESS',
    );
  }
  if (format === 'bf16' && options.blockSize !== undefined) {
    throw new InputError('compress: blockSize only applies to format int8', 'E_COMPRESS');
  }
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  const codec = format === 'bf16' ? bf16Codec : int8Codec(blockSize);
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'activation',
    name: 'compress',
    format,
    codec,
    describe: () => (format === 'int8' ? { format, blockSize } : { format }),
  };
}
