import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localCollective } from '@kstar/collective-mpi';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { trainRuns, type WebGpuRankRun } from './shard-webgpu-ranks.ts';

const ranks = fileURLToPath(new URL('./shard-webgpu-ranks.ts', import.meta.url));
const hasMpirun = spawnSync('mpirun', ['--version']).status === 0;
const skipWebGpu = process.env.KSTAR_SKIP_WEBGPU === '1';
if (skipWebGpu) console.warn('KSTAR_SKIP_WEBGPU=1: ZeRO over WebGPU ranks was NOT tested');

describe.skipIf(!hasMpirun || skipWebGpu)(
  'ZeRO over 2 WebGPU ranks (lavapipe), bucketed host staging',
  () => {
    it('stages 0, 2, 3 give the single cpu process’s losses and parameters, one MPI call per bucket', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kstar-shard-webgpu-'));
      const run = spawnSync(
        'mpirun',
        [
          ...['--allow-run-as-root', '--oversubscribe', '-np', '2'],
          ...[process.execPath, '--conditions=@kstar/source', '--import', 'tsx', ranks, 'webgpu', dir],
        ],
        { encoding: 'utf8', timeout: 240_000 },
      );
      expect(run.status, run.stderr.slice(-2000)).toBe(0);
      const got = JSON.parse(readFileSync(join(dir, 'runs.json'), 'utf8')) as WebGpuRankRun[];
      expect(await tf.setBackend('cpu')).toBe(true);
      const [ref] = await trainRuns(localCollective(), [null]);
      // One bucket per segment and per kind (2 segments; +1: the loss's mean): stage 0 all-reduces each segment's
      // gradients; stage 2 reduce-scatters them and all-gathers the updated rows; stage 3 reduce-scatters them and
      // all-gathers each segment's parameters before its forward (segment 0) and its recompute (both). One call per
      // tensor would be 5, 9 and 11.
      const calls: Record<string, number> = { 'zero0-2': 3, 'zero2-2': 5, 'zero3-2': 6 };
      expect(got.map((r) => r.id)).toEqual(Object.keys(calls));
      const rms = Math.sqrt(ref!.params.reduce((a, v) => a + v * v, 0) / ref!.params.length);
      for (const r of got) {
        expect(r.backend, r.id).toBe('webgpu');
        expect(r.callsPerStep, r.id).toBe(calls[r.id]);
        r.losses.forEach((loss, s) => {
          expect(Math.abs(loss - ref!.losses[s]!) / ref!.losses[s]!, `${r.id} step ${s + 1}`).toBeLessThan(
            1e-5,
          );
        });
        const worst = Math.max(...r.params.map((p, i) => Math.abs(p - ref!.params[i]!)));
        expect(worst / rms, r.id).toBeLessThan(1e-5);
      }
    }, 300_000);
  },
);
