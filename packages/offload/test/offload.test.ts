import { MemoryLedger, TrainingEngine } from '@kstar/core';
import { backendMemory, selectBackend, shutdownWebGPU } from '@kstar/kernels';
import { sgd } from '@kstar/testkit';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { HostCopy, offload, offloadCodec, offloadEffective } from '../src/index.ts';
import { batchOf, residualModel } from './residual-model.ts';

const skipWebGPU = process.env.KSTAR_SKIP_WEBGPU === '1';
if (skipWebGPU) console.warn('KSTAR_SKIP_WEBGPU=1: offload was NOT tested on WebGPU');
afterAll(() => {
  shutdownWebGPU();
});

/** Losses of `steps` steps of a fresh model (same seed), every segment input stored per `codec`. */
async function losses(withOffload: boolean, steps: number) {
  const model = residualModel(17, 8, 4, 3);
  const ledger = new MemoryLedger();
  const engine = new TrainingEngine(model, {
    optimizer: sgd(0.1),
    mode: 'segmented',
    ledger,
    ...(withOffload ? { activations: [offload()] } : {}),
  });
  const out: number[] = [];
  let hostPeak = 0;
  for (let s = 0; s < steps; s++) {
    const batch = batchOf(17, 2, 6, 10 + s);
    const r = await engine.trainStep(batch);
    out.push(r.loss);
    hostPeak = Math.max(hostPeak, r.hostPeakBytes);
    tf.dispose([batch.inputs, batch.targets]);
  }
  engine.dispose();
  tf.dispose([...model.variables.values()]);
  ledger.detach();
  return { losses: out, hostPeak };
}

describe.each(['cpu', 'wasm', ...(skipWebGPU ? [] : (['webgpu'] as const))] as const)(
  'offload on %s',
  (backend) => {
    it('gives the same losses as resident segment inputs, and leaks no tensor', async () => {
      await selectBackend(backend);
      await losses(true, 1); // the first step may build constants tfjs keeps
      const before = tf.memory().numTensors;
      const resident = await losses(false, 3);
      const offloaded = await losses(true, 3);
      expect(offloaded.losses).toEqual(resident.losses);
      expect(tf.memory().numTensors).toBe(before);
      // The inputs of segments 1-4 of 6 are stored (segment 0's are the tokens, the last one's is read back at
      // once): B·T·D floats each, on the host where offload is effective.
      expect(offloaded.hostPeak).toBe(offloadEffective() ? 4 * (2 * 6 * 8 * 4) : 0);
    });

    it('says what it does on this backend', async () => {
      await selectBackend(backend);
      const d = offload().describe();
      if (backend === 'webgpu') expect(d).toEqual({ target: 'host', backend });
      else expect(d.note).toBe(`backend ${backend} keeps tensors in host memory: offload is a no-op`);
      expect(offloadCodec.savedBytes([4, 8])).toBe(backend === 'webgpu' ? 0 : 128);
    });

    it('HostCopy: device bytes fall by the offloaded bytes once the copy lands; decode gives the values back', async () => {
      await selectBackend(backend);
      // An op's output, so that on WebGPU it lives in a GPU buffer (uploaded values stay on the host until used).
      // An op's output, so that on WebGPU it lives in a GPU buffer (uploaded values stay on the host until used, and
      // tfjs-webgpu hands ops on fewer than 1,000 elements to the cpu).
      const values = Float32Array.from({ length: 16 * 16 * 16 }, (_, i) => Math.sin(i) * 10);
      const x = tf.tidy(() => tf.mul(tf.tensor(values, [16, 16, 16]), 1));
      const want = await x.data();
      const ledger = new MemoryLedger();
      const start = tf.memory().numBytes;
      const gpuStart = backendMemory().gpuBytesInUse;
      const host0 = ledger.hostBytesAlive;
      const saved = new HostCopy(x);
      x.dispose();
      expect(tf.memory().numBytes - start).toBe(0); // the clone shares x's buffer, x's handle is gone
      await saved.settled();
      expect(start - tf.memory().numBytes).toBe(4 * 4096);
      // WebGPU: the GPU buffer bytes in use (the backend's own count) fall by the offloaded bytes too, once the
      // backend's next submission releases buffers a queued command still held (the engine's next segment does it).
      if (backend === 'webgpu') {
        const flush = tf.tidy(() => tf.add(tf.scalar(1), 1));
        await flush.data();
        flush.dispose();
        expect(gpuStart! - backendMemory().gpuBytesInUse!).toBe(4 * 4096);
      }
      expect(saved.bytes).toBe(0);
      expect(ledger.hostBytesAlive - host0).toBe(4 * 4096);
      saved.prefetch();
      expect(saved.bytes).toBe(4 * 4096);
      const y = saved.decode();
      expect(y.shape).toEqual([16, 16, 16]);
      expect(await y.data()).toEqual(want);
      y.dispose();
      saved.dispose();
      expect(ledger.hostBytesAlive).toBe(host0);
      expect(tf.memory().numBytes).toBe(start - 4 * 4096);
      ledger.detach();
    });
  },
);
