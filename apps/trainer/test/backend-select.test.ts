import { matmulPrecision, setMatmulPrecision } from '@kstar/backend-cuda';
import { BackendUnavailableError } from '@kstar/core';
import { setWebGPUMatMulPrecision, webgpuMatMulPrecision } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { selectTrainerBackend } from '../src/backend-select.ts';
import { applyPrecision, preparePrecision } from '../src/precision.ts';

// libcuda is pointed at a path that does not exist, so these run the same with or without a GPU.
describe('trainer backend selection with cuda', () => {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.KSTAR_LIBCUDA;
    process.env.KSTAR_LIBCUDA = '/nonexistent/libcuda.so.1';
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.KSTAR_LIBCUDA;
    else process.env.KSTAR_LIBCUDA = saved;
  });

  it('--backend cuda where it cannot start: BackendUnavailableError naming the library', async () => {
    if (tf.findBackendFactory('cuda')) return; // a GPU machine that already started cuda
    await expect(selectTrainerBackend('cuda')).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(selectTrainerBackend('cuda')).rejects.toThrow(/libcuda\.so\.1 could not be loaded/);
  });

  it('an explicit other backend never touches cuda', async () => {
    const lines: string[] = [];
    const r = await selectTrainerBackend('cpu', { log: (l) => lines.push(l) });
    expect(r.backend).toBe('cpu');
    expect(lines.some((l) => l.includes('cuda'))).toBe(false);
  });
});

describe('--matmul-precision and --precision', () => {
  it('tf32 and bf16-mixed off cuda: an InputError naming the backend; the defaults pass anywhere', async () => {
    await expect(applyPrecision('cpu', { matmulPrecision: 'tf32', precision: 'float32' })).rejects.toThrow(
      /tf32 runs on the cuda backend only, not on 'cpu'/,
    );
    await expect(
      applyPrecision('webgpu', { matmulPrecision: 'strict', precision: 'bf16-mixed' }),
    ).rejects.toThrow(/bf16-mixed runs on the cuda backend only, not on 'webgpu'/);
    await expect(
      applyPrecision('cuda', { matmulPrecision: 'tf32', precision: 'bf16-mixed' }),
    ).rejects.toThrow(/pick one/);
    await expect(
      applyPrecision('cuda', { matmulPrecision: 'f16-mixed', precision: 'float32' }),
    ).rejects.toThrow(/f16-mixed runs on the webgpu backend only, not on 'cuda'/);
    await expect(
      applyPrecision('cpu', { matmulPrecision: 'strict', precision: 'float32' }),
    ).resolves.toBeUndefined();
  });

  it('on cuda they set the backend-cuda matmul precision', async () => {
    await applyPrecision('cuda', { matmulPrecision: 'strict', precision: 'bf16-mixed' });
    expect(matmulPrecision()).toBe('bf16');
    await applyPrecision('cuda', { matmulPrecision: 'tf32', precision: 'float32' });
    expect(matmulPrecision()).toBe('tf32');
    setMatmulPrecision(null);
  });

  it('f16-mixed is set for WebGPU before the device starts (its features are requested at creation)', () => {
    preparePrecision({ matmulPrecision: 'strict', precision: 'float32' });
    expect(webgpuMatMulPrecision()).toBe('strict');
    preparePrecision({ matmulPrecision: 'f16-mixed', precision: 'float32' });
    expect(webgpuMatMulPrecision()).toBe('f16-mixed');
    setWebGPUMatMulPrecision(null);
  });
});
