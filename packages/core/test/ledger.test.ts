import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryLedger, uniqueBufferBytes } from '../src/index.ts';

// Five reshapes of a 1,000-float tensor plus one add: tfjs's meters count every Tensor object.
function reshapesPlusAdd(): tf.Tensor {
  const x = tf.ones([1000]); // 4,000 bytes
  const r1 = x.reshape([10, 100]);
  const r2 = r1.reshape([100, 10]);
  const r3 = r2.reshape([20, 50]);
  const r4 = r3.reshape([50, 20]);
  const r5 = r4.reshape([1000]);
  const y = tf.add(r5, r5); // a second 4,000-byte buffer
  tf.dispose([x, r1, r2, r3, r4, r5]);
  return y;
}

describe.each(['cpu', 'wasm'])('memory ledger on %s', (backend) => {
  it('counts unique data buffers: 8,000 bytes where tf.profile reports 28,000', async () => {
    await tf.setBackend(backend);
    const ledger = new MemoryLedger();
    const profile = await tf.profile(() => {
      const y = reshapesPlusAdd();
      y.dispose();
    });
    const { peakNewBytes } = ledger.measure(() => reshapesPlusAdd().dispose());
    expect(peakNewBytes).toBe(8000);
    // tfjs counts the six tensor objects sharing the first buffer (x and five reshapes) plus the sum.
    expect(profile.peakBytes - profile.newBytes).toBeGreaterThanOrEqual(28000);
    ledger.detach();
  });

  it('tracks buffers alive, releases them on dispose, and counts a shared buffer once', async () => {
    await tf.setBackend(backend);
    const ledger = new MemoryLedger();
    const before = ledger.bytesAlive;
    const a = tf.zeros([256]); // 1,024 bytes
    const b = a.reshape([16, 16]); // same buffer
    expect(ledger.bytesAlive - before).toBe(1024);
    expect(uniqueBufferBytes([a, b])).toBe(1024);
    a.dispose();
    expect(ledger.bytesAlive - before).toBe(1024); // b still holds it
    b.dispose();
    expect(ledger.bytesAlive - before).toBe(0);
    ledger.detach();
  });

  it('separates gradient bytes and activation bytes inside a window', async () => {
    await tf.setBackend(backend);
    const ledger = new MemoryLedger();
    const resident = tf.zeros([100]); // 400 bytes, declared resident
    ledger.begin(ledger.bytesAlive);
    // A gradient is allocated before it can be tagged: until then it counts as a temporary.
    const g = tf.ones([25]); // 100 bytes, tagged as gradient
    ledger.tagGrad(g);
    const act = tf.ones([50]); // 200 bytes of "activations"
    act.dispose();
    g.dispose();
    const stats = ledger.end();
    expect(stats.gradPeakBytes).toBe(100);
    expect(stats.activationPeakBytes).toBe(200);
    expect(stats.peakBytes - stats.startBytes).toBe(300);
    resident.dispose();
    ledger.detach();
  });
});

afterAll(async () => {
  await tf.setBackend('cpu');
});
