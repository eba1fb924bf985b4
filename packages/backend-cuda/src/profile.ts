import { writeFileSync } from 'node:fs';
import type { CudaBackend } from './backend.ts';

/**
 * Kernel-time profile: with KSTAR_CUDA_PROFILE=FILE every kernel call synchronises the stream before and after and
 * adds the wall time to its kernel name's row; at exit FILE gets the rows (JSON, slowest first). The GPU waits for
 * JavaScript in between, so the rows are GPU time + launch cost per kernel, not the overlapped step time.
 */
export interface ProfileRow {
  kernel: string;
  calls: number;
  ms: number;
}

const rows = new Map<string, ProfileRow>();
let installed = false;

/** The file KSTAR_CUDA_PROFILE names, or null (profiling off). */
export function profileFile(): string | null {
  const f = process.env.KSTAR_CUDA_PROFILE?.trim();
  return f ? f : null;
}

/** The rows so far, slowest first. */
export function profileRows(): ProfileRow[] {
  return [...rows.values()].sort((a, b) => b.ms - a.ms);
}

/** Wraps a kernel so that its calls are timed into the profile (written to `file` when the process exits). */
export function timed<C extends { backend: CudaBackend }, R>(
  kernel: string,
  impl: (ctx: C) => R,
  file: string,
): (ctx: C) => R {
  if (!installed) {
    installed = true;
    process.on('exit', () => {
      const total = profileRows().reduce((s, r) => s + r.ms, 0);
      writeFileSync(
        file,
        `${JSON.stringify({ kind: 'cuda-kernel-profile', totalMs: total, rows: profileRows() }, null, 2)}\n`,
      );
    });
  }
  return (ctx) => {
    ctx.backend.device.sync();
    const t0 = performance.now();
    const out = impl(ctx);
    ctx.backend.device.sync();
    const row = rows.get(kernel) ?? { kernel, calls: 0, ms: 0 };
    row.calls++;
    row.ms += performance.now() - t0;
    rows.set(kernel, row);
    return out;
  };
}
