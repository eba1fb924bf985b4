import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { selectBackend } from '../src/index.ts';

const skip = process.env.KSTAR_SKIP_WEBGPU === '1';

// With the real `webgpu` package: `auto` takes a hardware adapter, but passes a software fallback adapter (Mesa
// lavapipe, as in CI) by, because wasm trains faster on the CPU. `auto` decides through a child-process probe, so
// when it passes the adapter by, this process never creates a Dawn instance (webgpu.test.ts covers an explicit
// `selectBackend('webgpu')`, which does take the fallback adapter).
it.skipIf(skip)('auto passes a software fallback adapter by, deciding out of process', async () => {
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
    expect((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu).toBeUndefined();
  }
  expect(tf.getBackend()).toBe(backend);
});
