// Run by collective.test.ts under `mpirun -np N`: every rank makes the same seeded inputs for every rank, so each
// rank computes the expected result of each collective on its own (in float64) and compares it with MPI's.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import type { Collective } from '@kstar/core';
import { openCollective } from '../src/index.ts';

/** Rank r's input: a seeded, rank-dependent sequence (same on every rank). */
function inputOf(r: number, n: number, int: boolean): number[] {
  const out: number[] = [];
  let s = 12345 + 7919 * r;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out.push(int ? (s % 2001) - 1000 : s / 2147483648 - 0.5);
  }
  return out;
}

function maxRelError(got: ArrayLike<number>, want: number[]): number {
  if (got.length !== want.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let i = 0; i < want.length; i++)
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.max(1e-6, Math.abs(want[i]!)));
  return worst;
}

const padTo = (v: number[], n: number) => [...v, ...new Array(n - v.length).fill(0)];
const sumOver = (all: number[][]) => all[0]!.map((_, i) => all.reduce((a, v) => a + v[i]!, 0));

/**
 * The bucketed operations on three float32 tensors of uneven sizes ([7], [N, 30], [5, 1]: slots padded for
 * reduce-scatter and all-gather), each result compared with the float64 reference of all ranks' inputs.
 */
async function bucketChecks(c: Collective, results: Record<string, number>) {
  const N = c.size;
  const shapes = [[7], [N, 30], [5, 1]];
  const inputs = (r: number) => shapes.map((s, i) => inputOf(r + 10 * i, s[0]! * (s[1] ?? 1), false));
  const all = Array.from({ length: N }, (_, r) => inputs(r));
  const sums = shapes.map((_, i) => sumOver(all.map((a) => a[i]!)));
  const mine = inputs(c.rank).map((v, i) => tf.tensor(v, shapes[i]!));
  const worst = async (got: tf.Tensor[], want: number[][]) => {
    let e = got.length === want.length ? 0 : Number.POSITIVE_INFINITY;
    for (let i = 0; i < got.length; i++) e = Math.max(e, maxRelError(await got[i]!.data(), want[i]!));
    tf.dispose(got);
    return e;
  };
  const ar = await c.allReduceBucket(mine, 'mean');
  const shapesKept = ar.every((t, i) => t.shape.join() === shapes[i]!.join());
  results['allReduceBucket-mean'] = shapesKept
    ? await worst(
        ar,
        sums.map((s) => s.map((v) => v / N)),
      )
    : Number.POSITIVE_INFINITY;
  const rd = await c.reduceBucket(mine, N - 1, 'sum');
  results.reduceBucket = await worst(rd, c.rank === N - 1 ? sums : []);
  results.broadcastBucket = await worst(await c.broadcastBucket(mine, 0), all[0]!);
  // Slots: 7 → next multiple of N, [N, 30] as is, 5 → one multiple of N more than needed.
  const padded = [Math.ceil(7 / N) * N, 30 * N, (Math.ceil(5 / N) + 1) * N];
  const chunkOf = (v: number[], slot: number) =>
    padTo(v, slot).slice((c.rank * slot) / N, ((c.rank + 1) * slot) / N);
  results.reduceScatterBucket = await worst(
    await c.reduceScatterBucket(mine, padded),
    sums.map((s, i) => chunkOf(s, padded[i]!)),
  );
  // All-gather of the first and last tensors, pieces of 8 and 5 elements.
  const pieces = [8, 5];
  results.allGatherBucket = await worst(
    await c.allGatherBucket([mine[0]!, mine[2]!], pieces),
    [0, 2].map((i, k) => all.flatMap((a) => padTo(a[i]!, pieces[k]!))),
  );
  tf.dispose(mine);
}

async function main() {
  await tf.setBackend('cpu');
  // 96-byte messages: every operation below is split into several MPI calls.
  const c = await openCollective({
    require: true,
    maxMessageBytes: Number(process.env.MAX_MESSAGE_BYTES ?? 96),
  });
  const N = c.size;
  const results: Record<string, number> = {};
  for (const dtype of ['float32', 'int32'] as const) {
    const int = dtype === 'int32';
    const n = 30 * N; // divisible by N for reduce-scatter; 30 per rank > 24 per message: split too
    const mine = tf.tensor(inputOf(c.rank, n, int), [N, 30], dtype);
    const all = Array.from({ length: N }, (_, r) => inputOf(r, n, int));
    const sum = all[0]!.map((_, i) => all.reduce((a, v) => a + v[i]!, 0));

    const ar = await c.allReduce(mine, 'sum');
    results[`allReduce-sum-${dtype}`] = maxRelError(await ar.data(), sum);
    if (!int) {
      const am = await c.allReduce(mine, 'mean');
      results[`allReduce-mean-${dtype}`] = maxRelError(
        await am.data(),
        sum.map((v) => v / N),
      );
      am.dispose();
    }
    const rs = await c.reduceScatter(mine, 'sum');
    results[`reduceScatter-${dtype}`] = maxRelError(
      await rs.data(),
      sum.slice(c.rank * 30, (c.rank + 1) * 30),
    );
    const ag = await c.allGather(rs);
    results[`allGather-${dtype}`] = maxRelError(await ag.data(), sum);
    // Reduce to the last rank (mean for float32): only that rank gets a tensor.
    const root = N - 1;
    const rd = await c.reduce(mine, root, int ? 'sum' : 'mean');
    if (c.rank === root) {
      results[`reduce-${dtype}`] = maxRelError(await rd!.data(), int ? sum : sum.map((v) => v / N));
    } else {
      results[`reduce-${dtype}`] = rd === null ? 0 : Number.POSITIVE_INFINITY;
    }
    rd?.dispose();
    const bc = await c.broadcast(mine, N - 1);
    results[`broadcast-${dtype}`] = maxRelError(await bc.data(), all[N - 1]!);
    tf.dispose([mine, ar, rs, ag, bc]);
  }
  const before = c.bytesSent();
  await bucketChecks(c, results);
  const bucketBytes = c.bytesSent() - before;
  await c.barrier();
  const tensorsLeft = tf.memory().numTensors;
  const line = {
    rank: c.rank,
    size: N,
    results,
    bytesSent: c.bytesSent(),
    bucketBytes,
    tensorsLeft,
    threaded: 'threaded' in c ? c.threaded : null,
    calls: 'calls' in c ? (c as { calls(): number }).calls() : null,
  };
  console.log(`RESULT ${JSON.stringify(line)}`);
  await c.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
