import * as tf from '@tensorflow/tfjs';
import { afterAll, expect, it } from 'vitest';
import { selectBackend, shutdownWebGPU } from '../src/index.ts';

afterAll(() => shutdownWebGPU());

const skip = process.env.KSTAR_SKIP_WEBGPU === '1';

// With the real `webgpu` package: `auto` takes a hardware adapter, but passes a software fallback adapter (Mesa
// lavapipe, as in CI) by, because wasm trains faster on the CPU. `--backend webgpu` still takes the fallback.
it.skipIf(skip)(
  'auto passes a software fallback adapter by; an explicit webgpu request takes it',
  async () => {
    const { create } = (await import('webgpu')) as {
      create: (o: string[]) => {
        requestAdapter(): Promise<{ info: { isFallbackAdapter?: boolean } } | null>;
      };
    };
    const adapter = await create([]).requestAdapter();
    expect(
      adapter,
      'no WebGPU adapter at all: install a Vulkan driver (scripts/setup-webgpu.sh)',
    ).not.toBeNull();
    const software = adapter!.info.isFallbackAdapter === true;
    const { backend, tried } = await selectBackend('auto', {
      resolve: (pkg) => !pkg.startsWith('@tensorflow/tfjs-node') && pkg !== 'never',
    });
    if (software) {
      expect(backend).toBe('wasm');
      const webgpu = tried.find((t) => t.backend === 'webgpu')!;
      expect(webgpu.ok).toBe(false);
      expect(webgpu.reason).toMatch(/software fallback .*pass --backend webgpu/);
      const explicit = await selectBackend('webgpu');
      expect(explicit.backend).toBe('webgpu');
    } else {
      expect(backend).toBe('webgpu');
    }
    expect(tf.getBackend()).toBe('webgpu');
  },
);
