import { InputError } from '@kstar/core';
import { setWebGPUMatMulPrecision } from '@kstar/kernels';
import type { TrainerBackend } from './backend-select.ts';

type PrecisionConfig = {
  matmulPrecision: 'strict' | 'tf32' | 'f16-mixed';
  precision: 'float32' | 'bf16-mixed';
};

/**
 * Before the backend starts: f16-mixed WebGPU matmuls need Dawn's f16 toggles and device features, which are chosen
 * when the device is created.
 */
export function preparePrecision(config: PrecisionConfig): void {
  if (config.matmulPrecision === 'f16-mixed') setWebGPUMatMulPrecision('f16-mixed');
}

/**
 * `--matmul-precision` and `--precision` on the selected backend: tf32 and bf16-mixed run on `cuda` only, f16-mixed on
 * `webgpu` only (an InputError naming the backend elsewhere); on cuda they set @kstar/backend-cuda's matmul precision.
 * Left at their defaults, KSTAR_CUDA_MATMUL and KSTAR_WEBGPU_MATMUL_PRECISION still apply.
 */
export async function applyPrecision(backend: TrainerBackend, config: PrecisionConfig): Promise<void> {
  const { matmulPrecision, precision } = config;
  if (matmulPrecision === 'f16-mixed' && backend !== 'webgpu')
    throw new InputError(
      `--matmul-precision f16-mixed runs on the webgpu backend only, not on '${backend}': use --backend webgpu or --matmul-precision strict`,
      'E_FLAG',
    );
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
