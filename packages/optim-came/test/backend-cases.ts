import * as tf from '@tensorflow/tfjs';
import { expect, it } from 'vitest';
import { cameParity, checkParity, formatParity, goldenOnBackend, PARITY_SHAPES } from './parity.ts';
import { expectDropInMatchesGolden } from './replay.ts';

const TOL = 1e-5;

/** How a native backend runs the updates of the shared cases. */
export interface BackendCaseOptions {
  /** Wraps each golden-replay update (webgpu: a validation error scope). */
  goldenAround?: (update: () => void) => Promise<void>;
  /** Wraps each parity update (webgpu: no validation error, no GPU memory growth after step 1). */
  parityAround?: (update: () => void, step: number) => Promise<void>;
  /** The parity runs' first seed (each shape adds its index). */
  seed: number;
}

/**
 * The cases CAME runs on each native backend: golden replay of the plugin (native kernels and fallback) and of
 * the drop-in class within 1e-5 of came_pytorch; native kernel vs fallback vs float64 on every parity shape, in
 * place with no new buffer.
 */
export function itMatchesReferences(backend: 'wasm' | 'webgpu', options: BackendCaseOptions): void {
  it('golden replay: plugin (native kernels, in place) and fallback match came_pytorch within 1e-5', async () => {
    expect(tf.getBackend()).toBe(backend);
    const { native, fallback } = await goldenOnBackend(backend, options.goldenAround);
    expect(native).toBeLessThanOrEqual(TOL);
    expect(fallback).toBeLessThanOrEqual(TOL);
  });

  it('golden replay: the drop-in CAME class matches as well', async () => {
    await expectDropInMatchesGolden(backend, TOL);
  });

  it('native kernel vs fallback vs float64 reference (5 steps, ranks 0–3), in place with no new buffer', async () => {
    const rows = [];
    for (const [i, shape] of PARITY_SHAPES.entries())
      rows.push(await cameParity(shape, options.seed + i, options.parityAround));
    console.log(formatParity(backend, rows));
    rows.forEach(checkParity);
  });
}
