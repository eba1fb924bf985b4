import { InputError } from '@kstar/core';
import type { TrainerBackend } from './backend-select.ts';

/**
 * `--matmul-precision` and `--precision` on the selected backend: tf32 and bf16-mixed run on `cuda` only (an
 * InputError naming the backend elsewhere); on cuda they set @kstar/backend-cuda's matmul precision. Left at their
 * defaults, KSTAR_CUDA_MATMUL still applies.
 */
export async function applyPrecision(
  backend: TrainerBackend,
  config: { matmulPrecision: 'strict' | 'tf32'; precision: 'float32' | 'bf16-mixed' },
): Promise<void> {
  const { matmulPrecision, precision } = config;
  if (matmulPrecision === 'tf32' && backend !== 'cuda')
    throw new InputError(
      `--matmul-precision tf32 runs on the cuda backend only, not on '${backend}': use --backend cuda or --matmul-precision strict`,
      'E_FLAG',
    );
  if (precision === 'bf16-mixed' && backend !== 'cuda')
    throw new InputError(
      `--precision bf16-mixed runs on the cuda backend only, not on '${backend}': use --backend cuda or --precision float32`,
      'E_FLAG',
    );
  if (matmulPrecision === 'tf32' && precision === 'bf16-mixed')
    throw new InputError(
      '--matmul-precision tf32 and --precision bf16-mixed both set the matmul inputs: pick one',
      'E_FLAG',
    );
  if (backend !== 'cuda') return;
  const { setMatmulPrecision } = await import('@kstar/backend-cuda');
  setMatmulPrecision(precision === 'bf16-mixed' ? 'bf16' : matmulPrecision === 'tf32' ? 'tf32' : null);
}
