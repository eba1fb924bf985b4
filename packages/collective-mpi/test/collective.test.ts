import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BackendUnavailableError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { launchInfo, loadLibMpi, localCollective, openCollective } from '../src/index.ts';

const ranksScript = fileURLToPath(new URL('./collective-ranks.ts', import.meta.url));
const hasMpirun = spawnSync('mpirun', ['--version']).status === 0;

describe('single process (no MPI needed)', () => {
  it('without a launcher, openCollective is the local one: one rank, copies, nothing sent', async () => {
    expect(launchInfo({})).toBeNull();
    const saved = { ...process.env };
    for (const k of ['OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'PMIX_RANK', 'PMI_RANK', 'PMI_SIZE'])
      delete process.env[k];
    try {
      const c = await openCollective();
      expect([c.name, c.rank, c.size]).toEqual(['local', 0, 1]);
      const x = tf.tensor([1, 2, 3, 4], [2, 2]);
      const before = tf.memory().numTensors;
      const outs = [
        await c.allReduce(x, 'mean'),
        await c.reduceScatter(x),
        await c.allGather(x),
        await c.broadcast(x, 0),
        (await c.reduce(x, 0, 'mean'))!,
      ];
      for (const o of outs) expect(Array.from(await o.data())).toEqual([1, 2, 3, 4]);
      expect(outs[1]!.shape).toEqual([4]);
      tf.dispose(outs);
      // Buckets: copies, reduce-scatter and all-gather slots zero-padded.
      const [a, b] = await c.reduceScatterBucket([x, x], [4, 6]);
      const [g] = await c.allGatherBucket([x], [5]);
      expect([await a!.array(), await b!.array(), await g!.array()]).toEqual([
        [1, 2, 3, 4],
        [1, 2, 3, 4, 0, 0],
        [1, 2, 3, 4, 0],
      ]);
      tf.dispose([a!, b!, g!]);
      expect(tf.memory().numTensors).toBe(before);
      expect(c.bytesSent()).toBe(0);
      await expect(openCollective({ require: true })).rejects.toThrow(/mpirun -np N/);
      x.dispose();
    } finally {
      Object.assign(process.env, saved);
    }
  });

  it('launcher variables give rank and size; inconsistent ones are ignored', () => {
    expect(launchInfo({ OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_SIZE: '4' })).toMatchObject({
      rank: 2,
      size: 4,
    });
    expect(launchInfo({ OMPI_COMM_WORLD_RANK: '4', OMPI_COMM_WORLD_SIZE: '4' })).toBeNull();
    expect(localCollective().size).toBe(1);
  });

  it('a machine without libmpi gets one error naming the Debian packages to install', async () => {
    const err = await loadLibMpi(['/nonexistent/libmpi.so.40']).catch((e) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(String(err.message)).toMatch(/apt-get install -y libopenmpi-dev openmpi-bin/);
  });
});

// Needs Open MPI's mpirun (scripts/test.sh installs it).
describe.skipIf(!hasMpirun)('over Open MPI, 3 ranks', () => {
  it('every collective equals the float64 reference of all ranks’ inputs, split into 96-byte messages', () => {
    const run = spawnSync(
      'mpirun',
      [
        '--allow-run-as-root',
        '--oversubscribe',
        '-np',
        '3',
        process.execPath,
        '--conditions=@kstar/source',
        '--import',
        'tsx',
        ranksScript,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout
      .split('\n')
      .filter((l) => l.startsWith('RESULT '))
      .map((l) => JSON.parse(l.slice(7)));
    expect(lines.map((l) => l.rank).sort()).toEqual([0, 1, 2]);
    for (const l of lines) {
      for (const [name, err] of Object.entries(l.results as Record<string, number>)) {
        expect(err, `${name} on rank ${l.rank}`).toBeLessThan(name.endsWith('int32') ? 1e-12 : 1e-6);
      }
      expect(Object.keys(l.results)).toHaveLength(16);
      expect(l.tensorsLeft).toBe(0);
      expect(l.threaded).toBe(true);
      // 30 float32 per rank chunk, 24 per message: every operation took 2 calls or more (24 calls + 1 barrier); the
      // buckets 5 + 5 + 5 (102 elements), 2 (36 per rank) and 1 (13 per rank).
      expect(l.calls).toBeGreaterThanOrEqual(25 + 18);
      // Ring volumes, float32 + int32: all-reduce 2·(2/3)·90·4 (twice for float: sum and mean), reduce-scatter
      // (2/3)·90·4, all-gather (2/3)·90·4, reduce (2/3)·90·4, broadcast (2/3)·90·4.
      const ring = (2 / 3) * 90 * 4;
      expect(l.bytesSent - l.bucketBytes).toBe(Math.round(2 * (2 * ring + 2 * ring + 4 * ring) - 2 * ring));
      // Buckets count what their tensors would one by one: all-reduce, reduce and broadcast of 7 + 90 + 5 elements,
      // reduce-scatter of the padded 9 + 90 + 9, all-gather of 3 · (8 + 5).
      const ringOf = (n: number) => Math.round((2 / 3) * n * 4);
      expect(l.bucketBytes).toBe(2 * ringOf(102) + 2 * ringOf(102) + ringOf(108) + ringOf(39));
    }
  });
});
