import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { selectBackend } from '../src/index.ts';

const skip = process.env.KSTAR_SKIP_WEBGPU === '1';

// With the real `webgpu` package: `auto` takes a hardware adapter, but passes a software fallback adapter (Mesa
// lavapipe, as in CI) by, because wasm trains faster on the CPU; `--backend webgpu` still takes the fallback.
// (One Dawn instance only: a second one beside selectBackend's could hang the worker on lavapipe.)
it.skipIf(skip)(
  'auto passes a software fallback adapter by; an explicit webgpu request takes it',
  async () => {
    const { backend, tried } = await selectBackend('auto', {
      resolve: (pkg) => !pkg.startsWith('@tensorflow/tfjs-node'),
    });
    const webgpu = tried.find((t) => t.backend === 'webgpu');
    expect(webgpu, 'auto did not try webgpu').toBeDefined();
    if (backend === 'webgpu') {
      expect(webgpu!.ok).toBe(true); // a hardware adapter
    } else {
      // The only other acceptable outcome: the adapter was a software fallback (any other reason fails here).
      expect(backend).toBe('wasm');
      expect(webgpu!.reason).toMatch(/software fallback .*pass --backend webgpu/);
      const explicit = await selectBackend('webgpu');
      expect(explicit.backend).toBe('webgpu');
    }
    expect(tf.getBackend()).toBe('webgpu');
  },
);
