import { writeFileSync } from 'node:fs';
import type { CudaBackend } from './backend.ts';
import type { CudaDevice } from './device.ts';

/**
 * Kernel-time profile: with KSTAR_CUDA_PROFILE=FILE every kernel call is bracketed by two CUDA events on the stream
 * (no synchronisation, so JavaScript still runs ahead of the GPU as in a normal run). At each step boundary (the
 * trainer reads `memory()` once a step) the events are read back: per kernel its GPU time and the GPU idle time just
 * before it (the GPU had finished the previous kernel and waited for JavaScript to queue this one); per step the wall
 * time, the GPU's busy time and its idle time between the step's first and last kernel. The first step (compilation,
 * pool growth, cuBLAS heuristics) is left out of the rows. At exit FILE gets the JSON, slowest kernel first.
 */
export interface ProfileRow {
  kernel: string;
  calls: number;
  /** GPU time between the call's two events. */
  ms: number;
  /** GPU idle time between the previous call's end and this call's start (waiting for the host). */
  gapBeforeMs: number;
}

export interface ProfileStep {
  /** Host time since the previous step boundary. */
  wallMs: number;
  /** GPU time inside kernel calls. */
  gpuBusyMs: number;
  /** From the step's first kernel start to its last kernel end. */
  gpuSpanMs: number;
  /** gpuSpanMs − gpuBusyMs: the GPU waiting for JavaScript inside the step. */
  gpuIdleMs: number;
  calls: number;
  /** The step's longest GPU idle gaps: between call `index` − 1 (`after`) and call `index` (`before`). */
  longestGaps: { index: number; after: string; before: string; ms: number }[];
}

/** Steps left out of the rows (the first runs compilation and pool growth). */
export const PROFILE_WARMUP_STEPS = 1;

interface PendingCall {
  kernel: string;
  start: unknown;
  end: unknown;
}

const rows = new Map<string, ProfileRow>();
const steps: ProfileStep[] = [];
const events: unknown[] = [];
let pending: PendingCall[] = [];
let usedEvents = 0;
let depth = 0;
let device: CudaDevice | null = null;
let lastMark = performance.now();
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

function nextEvent(d: CudaDevice): unknown {
  if (usedEvents === events.length) {
    const out: unknown[] = [null];
    d.check(d.libs.driver.cuEventCreate(out, 0), 'cuEventCreate');
    events.push(out[0]);
  }
  const ev = events[usedEvents++];
  d.check(d.libs.driver.cuEventRecord(ev, d.stream), 'cuEventRecord');
  return ev;
}

function elapsed(d: CudaDevice, a: unknown, b: unknown): number {
  const ms = [0];
  d.check(d.libs.driver.cuEventElapsedTime(ms, a, b), 'cuEventElapsedTime');
  return ms[0]!;
}

/**
 * A step boundary: waits for the GPU, reads the step's events into the rows and the step list, recycles the events.
 * Called by the backend's `memory()`; a boundary without kernel calls since the last one is ignored.
 */
export function markProfileStep(): void {
  const d = device;
  if (!d || pending.length === 0) return;
  d.sync();
  const now = performance.now();
  const measured = steps.length >= PROFILE_WARMUP_STEPS;
  let busy = 0;
  const gaps: ProfileStep['longestGaps'] = [];
  pending.forEach((c, i) => {
    const ms = elapsed(d, c.start, c.end);
    const gap = i > 0 ? Math.max(0, elapsed(d, pending[i - 1]!.end, c.start)) : 0;
    busy += ms;
    if (gap > 0.02) gaps.push({ index: i, after: pending[i - 1]!.kernel, before: c.kernel, ms: gap });
    if (!measured) return;
    const row = rows.get(c.kernel) ?? { kernel: c.kernel, calls: 0, ms: 0, gapBeforeMs: 0 };
    row.calls++;
    row.ms += ms;
    row.gapBeforeMs += gap;
    rows.set(c.kernel, row);
  });
  const span = elapsed(d, pending[0]!.start, pending.at(-1)!.end);
  steps.push({
    wallMs: now - lastMark,
    gpuBusyMs: busy,
    gpuSpanMs: span,
    gpuIdleMs: span - busy,
    calls: pending.length,
    longestGaps: gaps.sort((x, y) => y.ms - x.ms).slice(0, 8),
  });
  pending = [];
  usedEvents = 0;
  lastMark = performance.now();
}

function write(file: string): void {
  try {
    markProfileStep();
  } catch {
    // the device may be gone at exit: write what was read
  }
  const measured = steps.slice(PROFILE_WARMUP_STEPS);
  const sum = (f: (s: ProfileStep) => number) => measured.reduce((s, x) => s + f(x), 0);
  const total = profileRows().reduce((s, r) => s + r.ms, 0);
  const profile = {
    kind: 'cuda-kernel-profile',
    method: 'cuda-events',
    warmupSteps: PROFILE_WARMUP_STEPS,
    measuredSteps: measured.length,
    totalMs: total,
    perStep: measured.length
      ? {
          wallMs: sum((s) => s.wallMs) / measured.length,
          gpuBusyMs: sum((s) => s.gpuBusyMs) / measured.length,
          gpuIdleMs: sum((s) => s.gpuIdleMs) / measured.length,
          calls: sum((s) => s.calls) / measured.length,
        }
      : null,
    steps,
    rows: profileRows(),
  };
  writeFileSync(file, `${JSON.stringify(profile, null, 2)}\n`);
}

/** Wraps a kernel so that its calls are timed into the profile (written to `file` when the process exits). */
export function timed<C extends { backend: CudaBackend }, R>(
  kernel: string,
  impl: (ctx: C) => R,
  file: string,
): (ctx: C) => R {
  if (!installed) {
    installed = true;
    process.on('exit', () => write(file));
  }
  return (ctx) => {
    // A kernel called from inside another is part of the outer call's time.
    if (depth > 0) return impl(ctx);
    const d = ctx.backend.device;
    device = d;
    const start = nextEvent(d);
    depth++;
    let out: R;
    try {
      out = impl(ctx);
    } finally {
      depth--;
    }
    pending.push({ kernel, start, end: nextEvent(d) });
    return out;
  };
}
