import { InputError } from '@kstar/core';
import {
  type BackendName,
  caseFields,
  caseFlops,
  caseInputs,
  caseProduct,
  F16_TILES,
  type F16TileName,
  flushWebGPU,
  forceWebGPUMatMulTile,
  formatMatMulParity,
  GPT2_MATMUL_CASES,
  guardWebGPUStep,
  MATMUL_PARITY_CASES,
  MATMUL_TILES,
  type MatMulCase,
  type MatMulParityRow,
  type MatMulTileName,
  matMulParity,
  planWebGPUMatMul,
  registerWebGPUMatMul,
  selectBackend,
  setWebGPUMatMulPrecision,
  unregisterWebGPUMatMul,
  webgpuDevice,
  webgpuMatMulUsesF16,
} from '@kstar/kernels';
import { machineInfo, writeFileAtomic } from '@kstar/trainer/internal';
import * as tf from '@tensorflow/tfjs';
import { benchFlags } from './bench-flags.ts';
import { gpuName } from './bench-gpu.ts';

/**
 * `pnpm bench matmul --json FILE [--shapes gpt2|odd] [--reps 7] [--choices LIST] [--parity gpt2,odd|none] [--passes 1]`: gpt2-124m's
 * matrix products (T = 1024, batch 8; `odd`: small odd shapes, for a software adapter) through every kernel choice on WebGPU, in TFLOP/s, and the parity of K*'s kernel (float64 and
 * tfjs) at those shapes and at odd ones. Choices: `tfjs` (tfjs 4.22's own program choice), `tfjs-packed`
 * (`WEBGPU_MATMUL_PROGRAM_TYPE` = 3), `kstar` (K*'s per-shape tile), `kstar-<tile>` (one tile forced) and
 * `kstar-f16` (f16-mixed on subgroup matrices; with it in --choices the parity runs for both precisions) and
 * `kstar-f16-<tile>` (one f16 tile forced: the variants of webgpu-matmul-f16-program.ts's `F16_TILES`).
 */
export const MATMUL_CHOICES = [
  'tfjs',
  'tfjs-packed',
  'kstar',
  'kstar-f16',
  ...Object.keys(MATMUL_TILES).map((t) => `kstar-${t}`),
  ...Object.keys(F16_TILES).map((t) => `kstar-f16-${t}`),
];

/** Whether a choice runs the f16-mixed program. */
function isF16Choice(choice: string): boolean {
  return choice === 'kstar-f16' || choice.startsWith('kstar-f16-');
}

export interface MatMulTimingRow {
  name: string;
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
  choice: string;
  /** What K*'s per-shape choice (`kstar`) runs: a tile, `<tile>×<n> split-K`, or `tfjs` (routed to tfjs's kernel). */
  auto: string;
  /** Median of `reps` timings of `inner` back-to-back products each (GPU queue drained before and after). */
  ms: number;
  tflops: number;
  /** Which pass over the table (`--passes`) timed it. */
  pass?: number;
}

/** Runs `f` `inner` times and waits for the GPU queue: wall time per product in ms. */
async function timeProducts(f: () => tf.Tensor, inner: number): Promise<number> {
  const device = webgpuDevice()!;
  flushWebGPU();
  await device.queue.onSubmittedWorkDone();
  const t0 = performance.now();
  for (let i = 0; i < inner; i++) f().dispose();
  flushWebGPU();
  await device.queue.onSubmittedWorkDone();
  return (performance.now() - t0) / inner;
}

function useChoice(choice: string): void {
  tf.env().set('WEBGPU_MATMUL_PROGRAM_TYPE', choice === 'tfjs-packed' ? 3 : -1);
  setWebGPUMatMulPrecision(isF16Choice(choice) ? 'f16-mixed' : 'strict');
  if (choice.startsWith('tfjs')) {
    unregisterWebGPUMatMul();
    return;
  }
  registerWebGPUMatMul();
  const tile = choice === 'kstar' || choice === 'kstar-f16' ? null : choice.slice('kstar-'.length);
  if (tile !== null && !MATMUL_CHOICES.includes(choice))
    throw new InputError(`unknown matmul choice '${choice}': use ${MATMUL_CHOICES.join(', ')}`, 'E_FLAG');
  forceWebGPUMatMulTile(tile as MatMulTileName | `f16-${F16TileName}` | null);
}

/** The per-shape choice for a case, in words (see `MatMulTimingRow.auto`). */
function autoChoice(c: MatMulCase, inputs: ReturnType<typeof caseInputs>, f16: boolean): string {
  forceWebGPUMatMulTile(null);
  const plan = planWebGPUMatMul(inputs.a, inputs.b, inputs.bias, c, { f16 });
  if (!plan) return 'tfjs';
  if (plan.kind === 'f16') {
    const t = plan.spec.tile;
    return `f16 ${t.tm}×${t.tn}${plan.spec.splits > 1 ? `×${plan.spec.splits} split-K` : ''}`;
  }
  const name = Object.entries(MATMUL_TILES).find(([, t]) => t === plan.spec.tile)?.[0] ?? '?';
  return plan.spec.splits > 1 ? `${name}×${plan.spec.splits} split-K` : name;
}

async function timeCase(c: MatMulCase, choice: string, reps: number): Promise<MatMulTimingRow> {
  const inputs = caseInputs(c);
  const auto = autoChoice(c, inputs, isF16Choice(choice) && webgpuMatMulUsesF16(tf.backend()));
  useChoice(choice);
  const f = () => caseProduct(c, inputs);
  await timeProducts(f, 2); // compile and warm up
  const flops = caseFlops(c);
  // Enough products per timing that each lasts ≳ 20 ms (launch overhead and the queue round trip amortised).
  const once = await timeProducts(f, 1);
  const inner = Math.max(1, Math.min(50, Math.ceil(20 / Math.max(once, 0.01))));
  const times: number[] = [];
  for (let r = 0; r < reps; r++) times.push(await timeProducts(f, inner));
  tf.dispose([inputs.a, inputs.b, ...(inputs.bias ? [inputs.bias] : [])]);
  times.sort((x, y) => x - y);
  const ms = times[Math.floor(times.length / 2)]!;
  return {
    ...caseFields(c),
    choice,
    auto,
    ms,
    tflops: flops / (ms * 1e-3) / 1e12,
  };
}

/** One line per product, one column per choice (TFLOP/s). */
export function matMulTable(rows: MatMulTimingRow[]): string {
  const choices = [...new Set(rows.map((r) => r.choice))];
  const names = [...new Set(rows.map((r) => r.name))];
  const head = `${'product'.padEnd(18)}${choices.map((c) => c.padStart(14)).join('')}  kstar runs`;
  const lines = names.map((name) => {
    const cells = choices.map((c) => {
      const r = rows.find((x) => x.name === name && x.choice === c);
      return (r ? r.tflops.toFixed(r.tflops < 1 ? 4 : 1) : '-').padStart(14);
    });
    return `${name.padEnd(18)}${cells.join('')}  ${rows.find((x) => x.name === name)!.auto}`;
  });
  return [`TFLOP/s (median of the reps)`, head, ...lines].join('\n');
}

export async function benchMatMul(
  argv: string[],
  log: (line: string) => void,
): Promise<{ rows: MatMulTimingRow[]; parity: MatMulParityRow[]; file: string }> {
  const values = benchFlags(
    argv,
    ['json', 'backend', 'reps', 'choices', 'parity', 'shapes', 'passes'],
    'matmul',
  );
  // Passes over the whole table: the first product timed after start-up has measured low (x·W_qkv at 13–17 TFLOP/s
  // where the same program ran 26 in another run); later passes show whether that was the product or the moment.
  const passes = Number(values.passes ?? 1);
  if (!Number.isInteger(passes) || passes < 1)
    throw new InputError(`--passes must be a positive integer (got '${values.passes}')`, 'E_FLAG');
  const reps = Number(values.reps ?? 7);
  if (!Number.isInteger(reps) || reps < 1)
    throw new InputError(`--reps must be a positive integer (got '${values.reps}')`, 'E_FLAG');
  const choices = String(values.choices ?? MATMUL_CHOICES.join(',')).split(',');
  for (const c of choices)
    if (!MATMUL_CHOICES.includes(c))
      throw new InputError(`unknown matmul choice '${c}': use ${MATMUL_CHOICES.join(', ')}`, 'E_FLAG');
  const shapes = String(values.shapes ?? 'gpt2');
  if (shapes !== 'gpt2' && shapes !== 'odd')
    throw new InputError(`--shapes must be gpt2 or odd (got '${shapes}')`, 'E_FLAG');
  const timed = shapes === 'gpt2' ? GPT2_MATMUL_CASES : MATMUL_PARITY_CASES.slice(0, 6);
  const paritySets = String(values.parity ?? (shapes === 'gpt2' ? 'gpt2,odd' : 'odd')).split(',');
  const backendName = String(values.backend ?? 'webgpu') as BackendName;
  // f16-mixed needs Dawn's toggles and features when the device is created.
  const withF16 = choices.some(isF16Choice);
  if (withF16) setWebGPUMatMulPrecision('f16-mixed');
  const { backend } = await selectBackend(backendName);
  if (backend !== 'webgpu')
    throw new InputError(`pnpm bench matmul needs --backend webgpu (got '${backend}')`, 'E_FLAG');
  const started = performance.now();
  const parity: MatMulParityRow[] = [];
  registerWebGPUMatMul();
  forceWebGPUMatMulTile(null);
  const precisions = withF16 && webgpuMatMulUsesF16(tf.backend()) ? ['strict', 'f16-mixed'] : ['strict'];
  for (const precision of precisions) {
    setWebGPUMatMulPrecision(precision as 'strict' | 'f16-mixed');
    if (paritySets.includes('gpt2'))
      parity.push(...(await guardWebGPUStep(0, () => matMulParity(GPT2_MATMUL_CASES))));
    if (paritySets.includes('odd'))
      parity.push(...(await guardWebGPUStep(0, () => matMulParity(MATMUL_PARITY_CASES))));
  }
  setWebGPUMatMulPrecision('strict');
  if (parity.length) log(formatMatMulParity(parity));
  // Warm-up (clocks up, first shaders compiled): the first product of the table was otherwise measured cold.
  const warmUntil = performance.now() + 3000;
  while (performance.now() < warmUntil) await guardWebGPUStep(0, () => timeCase(timed[0]!, 'kstar', 1));
  const rows: MatMulTimingRow[] = [];
  for (let pass = 1; pass <= passes; pass++)
    for (const c of timed)
      for (const choice of choices) {
        const row = await guardWebGPUStep(0, () => timeCase(c, choice, reps));
        log(`pass ${pass} ${c.name} ${choice}: ${row.ms.toFixed(2)} ms, ${row.tflops.toFixed(1)} TFLOP/s`);
        rows.push({ ...row, pass });
      }
  useChoice('kstar');
  log(matMulTable(rows.filter((r) => r.pass === passes)));
  writeFileAtomic(
    values.json,
    `${JSON.stringify(
      {
        kind: 'matmul',
        date: new Date().toISOString(),
        machine: { backend, gpu: gpuName(), ...machineInfo() },
        seconds: (performance.now() - started) / 1000,
        reps,
        allPass: parity.every((r) => r.pass),
        parity,
        rows,
      },
      null,
      2,
    )}\n`,
  );
  return { rows, parity, file: values.json };
}
