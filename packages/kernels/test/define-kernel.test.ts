import { InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it, vi } from 'vitest';
import { cpuFloats, defineKernel, registerKstarKernels, selectBackend } from '../src/index.ts';

/** A toy kernel: y = 3x, with a cpu implementation only; the fallback adds a marker so paths are told apart. */
const calls = { cpu: 0, fallback: 0 };
const triple = defineKernel<{ x: tf.Tensor }, tf.Tensor, { x: tf.TensorInfo }>({
  name: 'KstarTestTriple',
  backends: {
    cpu: ({ inputs: { x }, backend }) => {
      calls.cpu++;
      return backend.makeTensorInfo(
        x.shape,
        'float32',
        cpuFloats(backend, x).map((v) => 3 * v),
      );
    },
  },
  invoke: ({ x }) => ({ inputs: { x } }),
  finish: ([y]) => y,
  fallback: ({ x }) => {
    calls.fallback++;
    return tf.mul(x, 3);
  },
});

describe('defineKernel', () => {
  it('dispatches to the active backend’s kernel, else the fallback; impl fallback forces it', async () => {
    await selectBackend('cpu');
    const x = tf.tensor([1, 2, 3]);
    expect(triple.which({ x })).toBe('native');
    const y = triple.run({ x });
    expect(Array.from(await y.data())).toEqual([3, 6, 9]);
    expect(calls).toEqual({ cpu: 1, fallback: 0 });
    const z = triple.run({ x }, { impl: 'fallback' });
    expect(Array.from(await z.data())).toEqual([3, 6, 9]);
    expect(calls).toEqual({ cpu: 1, fallback: 1 });
    // It runs through the engine: profiles and kernel timings see it by name.
    const profile = await tf.profile(() => triple.run({ x }));
    expect(profile.kernelNames).toContain('KstarTestTriple');
    tf.dispose([x, y, z, profile.result as tf.Tensor]);

    await selectBackend('wasm');
    const xw = tf.tensor([1, 2]);
    expect(triple.which({ x: xw })).toBe('fallback'); // no wasm implementation
    const yw = triple.run({ x: xw });
    expect(Array.from(await yw.data())).toEqual([3, 6]);
    tf.dispose([xw, yw]);
  });

  it('registration is idempotent (no tfjs "already registered" warning)', () => {
    const warn = vi.spyOn(console, 'warn');
    triple.register();
    triple.register();
    registerKstarKernels();
    registerKstarKernels();
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
    expect(tf.getKernel('KstarTestTriple', 'cpu')).toBeDefined();
    expect(tf.getKernel('KstarTestTriple', 'wasm')).toBeUndefined();
  });

  it('rejects names that are not Kstar + PascalCase', () => {
    const spec = { backends: {}, invoke: () => ({ inputs: {} }), finish: () => 0, fallback: () => 0 };
    expect(() => defineKernel({ ...spec, name: 'Triple' })).toThrow(InputError);
    expect(() => defineKernel({ ...spec, name: 'Kstar_Triple' })).toThrow(
      /"Kstar_Triple" is not 'Kstar' \+ PascalCase/,
    );
  });
});
