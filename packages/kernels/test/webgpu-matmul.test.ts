import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  absMaxOnDevice,
  flushWebGPU,
  forceWebGPUMatMulTile,
  formatMatMulParity,
  MATMUL_PARITY_CASES,
  MATMUL_TILES,
  type MatMulTileName,
  matMulParity,
  selectBackend,
  setWebGPUMatMulPrecision,
  shutdownWebGPU,
  subgroupMatrixSupport,
  webgpuDevice,
  webgpuMatMulCounts,
} from '../src/index.ts';

// K*'s WGSL matmul against a float64 reference and tfjs-backend-webgpu's own kernel, on lavapipe in CI. Lavapipe
// compiles each tile variant with LLVM on the CPU: on a shared 2-core machine that takes minutes, hence the timeouts.
const LONG = 900_000;
const skip = process.env.KSTAR_SKIP_WEBGPU === '1';
if (skip) console.warn('KSTAR_SKIP_WEBGPU=1: the WebGPU matmul was NOT parity-tested');

describe.skipIf(skip)('K* WebGPU matmul', () => {
  beforeAll(async () => {
    await selectBackend('webgpu');
  });
  afterAll(() => {
    forceWebGPUMatMulTile(null);
    shutdownWebGPU();
  });

  it(
    'every transpose combination, batch, broadcast, bias and activation matches float64 and tfjs',
    async () => {
      const device = webgpuDevice()!;
      const tensors = tf.memory().numTensors;
      device.pushErrorScope('validation');
      const rows = await matMulParity(MATMUL_PARITY_CASES);
      flushWebGPU();
      expect((await device.popErrorScope())?.message ?? null).toBeNull();
      console.log(formatMatMulParity(rows));
      for (const r of rows) {
        expect(r.kernel, r.name).toBe('kstar');
        expect(r.pass, `${r.name}: ${JSON.stringify(r)}`).toBe(true);
      }
      expect(tf.memory().numTensors).toBe(tensors);
    },
    LONG,
  );

  it.each(Object.keys(MATMUL_TILES) as MatMulTileName[])(
    'tile %s: odd and multi-tile shapes',
    async (tile) => {
      forceWebGPUMatMulTile(tile);
      try {
        const cases = MATMUL_PARITY_CASES.filter((c) => /^(2d TT|multi-tile NT|bias\+relu TN)/.test(c.name));
        const rows = await matMulParity(cases);
        for (const r of rows) expect(r.pass, `${tile} ${r.name}: ${JSON.stringify(r)}`).toBe(true);
      } finally {
        forceWebGPUMatMulTile(null);
      }
    },
    LONG,
  );

  it(
    'f16-mixed falls back to float32, with one log line, where the adapter has no subgroup matrices',
    async () => {
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      setWebGPUMatMulPrecision('f16-mixed');
      try {
        const before = webgpuMatMulCounts();
        // Shapes the first test compiled already (lavapipe compiles slowly).
        const cases = MATMUL_PARITY_CASES.filter((c) => /^2d /.test(c.name));
        const rows = await matMulParity(cases);
        for (const r of rows) {
          expect(r.kernel, r.name).toBe('kstar');
          expect(r.precision, r.name).toBe('strict');
          expect(r.pass, `${r.name}: ${JSON.stringify(r)}`).toBe(true);
        }
        expect(webgpuMatMulCounts().f16).toBe(before.f16);
        const lines = warn.mock.calls
          .map((c) => String(c[0]))
          .filter((l) => l.startsWith('f16-mixed matmul'));
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/unavailable: .*; matmuls stay float32/);
        const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator!.gpu!;
        const adapter = (await gpu.requestAdapter())!;
        const support = subgroupMatrixSupport(adapter);
        expect(support.ok).toBe(false);
        expect(support.reason).toContain('chromium-experimental-subgroup-matrix');
      } finally {
        setWebGPUMatMulPrecision(null);
        warn.mockRestore();
      }
    },
    LONG,
  );

  it('max |x| on the GPU (the f16 matmul scale) equals the JS maximum, across every workgroup', async () => {
    // 70,001 entries: more than 256 workgroups × 256 threads take in one pass (the grid stride is used).
    const values = Float32Array.from({ length: 70_001 }, (_, i) => Math.sin(i * 0.7) * (1 + (i % 13)));
    values[66_000] = -123.5;
    const x = tf.tensor1d(values);
    const out = absMaxOnDevice(tf.backend() as never, {
      dataId: x.dataId,
      shape: [values.length],
      dtype: 'float32',
    });
    const m = tf.engine().makeTensorFromTensorInfo(out);
    expect((await m.data())[0]).toBe(123.5);
    tf.dispose([x, m]);
  });

  it(
    'gradients of a fused matMul (transposed products) match the cpu backend',
    async () => {
      const f = (a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor) =>
        tf.sum(tf.square(tf.fused.matMul({ a, b, bias, transposeB: true, activation: 'relu' })));
      const av = Float32Array.from({ length: 23 * 41 }, (_, i) => Math.sin(i * 0.37));
      const bv = Float32Array.from({ length: 31 * 41 }, (_, i) => Math.cos(i * 0.11));
      const cv = Float32Array.from({ length: 31 }, (_, i) => (i % 5) * 0.1 - 0.2);
      const grads = async () => {
        const [a, b, bias] = [tf.tensor2d(av, [23, 41]), tf.tensor2d(bv, [31, 41]), tf.tensor1d(cv)];
        const gs = tf.grads(f)([a, b, bias]);
        const out = await Promise.all(gs.map((g) => g.data()));
        tf.dispose([a, b, bias, ...gs]);
        return out as Float32Array[];
      };
      const before = webgpuMatMulCounts().kstar;
      const gpu = await grads();
      expect(webgpuMatMulCounts().kstar - before).toBeGreaterThanOrEqual(3); // forward, dA, dB
      await tf.setBackend('cpu');
      const cpu = await grads();
      await tf.setBackend('webgpu');
      for (let g = 0; g < 3; g++) {
        const scale = Math.max(...cpu[g]!.map(Math.abs));
        const diff = Math.max(...gpu[g]!.map((v, i) => Math.abs(v - cpu[g]![i]!)));
        expect(diff / scale, `gradient ${g}`).toBeLessThan(1e-5);
      }
    },
    LONG,
  );
});
