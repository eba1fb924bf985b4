import { BackendUnavailableError, InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { backendMemory, selectBackend } from '../src/index.ts';

const isTfjsNode = (pkg: string) => pkg.startsWith('@tensorflow/tfjs-node');

describe('selectBackend', () => {
  // Runs first: wasm is not loaded yet, so "not resolvable" really means not loadable.
  it('auto: everything but cpu unavailable → cpu, after trying the others in order', async () => {
    const lines: string[] = [];
    const { backend, tried } = await selectBackend('auto', {
      resolve: () => false,
      log: (l) => lines.push(l),
    });
    expect(backend).toBe('cpu');
    expect(tried.map((t) => [t.backend, t.ok])).toEqual([
      ['tensorflow', false],
      ['webgpu', false],
      ['wasm', false],
      ['cpu', true],
    ]);
    expect(tried[0].reason).toBe(
      '@tensorflow/tfjs-node-gpu is not installed; @tensorflow/tfjs-node is not installed',
    );
    expect(tried[1].reason).toBe("the 'webgpu' package is not installed");
    expect(tried[2].reason).toBe('@tensorflow/tfjs-backend-wasm is not installed');
    expect(lines.at(-1)).toBe('backend cpu: selected');
    expect(tf.getBackend()).toBe('cpu');
    expect(tf.getKernel('KstarAdamW', 'cpu')).toBeDefined();
    expect(backendMemory()).toEqual({ backend: 'cpu' });
  });

  it('auto: tensorflow and webgpu unavailable → wasm; a tfjs-node load failure is recorded and skipped', async () => {
    const { backend, tried } = await selectBackend('auto', {
      resolve: (pkg) => pkg !== 'webgpu' && pkg !== '@tensorflow/tfjs-node-gpu',
      load: async (pkg) => {
        if (isTfjsNode(pkg)) throw new Error('libtensorflow.so.2: cannot open shared object file');
        return import(pkg);
      },
    });
    expect(backend).toBe('wasm');
    expect(tried.map((t) => [t.backend, t.ok])).toEqual([
      ['tensorflow', false],
      ['webgpu', false],
      ['wasm', true],
    ]);
    expect(tried[0].reason).toContain('@tensorflow/tfjs-node failed to load: libtensorflow.so.2');
    expect(tf.getBackend()).toBe('wasm');
    // K* kernels are registered for the selected backend, including the missing wasm training kernel.
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
    expect(tf.getKernel('KstarAdamW', 'wasm')).toBeDefined();
    expect(backendMemory().wasmHeapBytes).toBeGreaterThan(0);
  });

  it('explicit webgpu without the webgpu package → BackendUnavailableError naming what to install', async () => {
    const err = await selectBackend('webgpu', { resolve: (pkg) => pkg !== 'webgpu' }).catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.backend).toBe('webgpu');
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(
      /^backend 'webgpu' requested but the 'webgpu' package did not provide an adapter \(the 'webgpu' package is not installed\): install it with 'pnpm add webgpu' and a Vulkan driver \(Linux: mesa-vulkan-drivers/,
    );
    expect(err.message).toContain('or use --backend wasm');
  });

  it('explicit tensorflow here (tfjs-node deliberately absent) → error naming @tensorflow/tfjs-node', async () => {
    const err = await selectBackend('tensorflow').catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.message).toContain(
      "backend 'tensorflow' requested but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node could be loaded",
    );
    expect(err.message).toContain("install it with 'pnpm add @tensorflow/tfjs-node'");
    expect(err.message).toContain('downloads libtensorflow');
  });

  it('explicit wasm that cannot resolve → error naming @tensorflow/tfjs-backend-wasm', async () => {
    const err = await selectBackend('wasm', { resolve: () => false }).catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(err.message).toContain("install it with 'pnpm add @tensorflow/tfjs-backend-wasm'");
  });

  it('an unknown request is an InputError listing the valid names', async () => {
    const err = await selectBackend('gpu' as 'cpu').catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      `unknown backend "gpu": use one of 'auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'`,
    );
  });
});
