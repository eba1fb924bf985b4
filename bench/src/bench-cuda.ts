import {
  CUDA_KERNEL_NAMES,
  type MatmulSpeedRow,
  matmulPrecisionErrors,
  matmulSpeed,
  parityCases,
  runParity,
  startCudaBackend,
} from '@kstar/backend-cuda';
import { InputError } from '@kstar/core';
import { adafactorKernel } from '@kstar/optim-adafactor';
import { adam8bitKernel } from '@kstar/optim-adam8bit';
import { cameFactoredKernel, cameVectorKernel } from '@kstar/optim-came';
import { lazyAdagradKernel } from '@kstar/optim-lazy-adagrad';
import { adalomoKernel, lomoKernel } from '@kstar/optim-lomo';
import { machineInfo } from '@kstar/trainer/internal';
import * as tf from '@tensorflow/tfjs';
import { benchFlags } from './bench-flags.ts';
import { gpuName } from './bench-gpu.ts';
import { writeBenchResults } from './bench-results.ts';

/**
 * `pnpm bench cuda-kernels --json FILE`: every kernel of the `cuda` backend against the cpu backend on random
 * inputs with odd and broadcast shapes (float32 tolerance), one row per case, plus which registered kernels no
 * case covers, and tf32/bf16 matmul errors against strict float32.
 */
export async function benchCudaKernels(
  argv: string[],
  log: (line: string) => void,
): Promise<{ file: string; failed: number }> {
  const values = benchFlags(argv, ['json', 'only'], 'cuda-kernels', ['speed']);
  const backend = await startCudaBackend();
  // The optimizer plugins' cpu kernels are the references of their cuda parity cases (plugins register lazily).
  for (const k of [
    adam8bitKernel,
    lazyAdagradKernel,
    adafactorKernel,
    adalomoKernel,
    lomoKernel,
    cameFactoredKernel,
    cameVectorKernel,
  ])
    k.register();
  // --only A,B: just the cases whose name contains A or B (no coverage list or precision table; the GEMM speed table
  // only with --speed).
  const only = typeof values.only === 'string' ? values.only : undefined;
  const parts = only?.split(',') ?? [];
  const cases =
    only === undefined ? undefined : parityCases().filter((c) => parts.some((t) => c.name.includes(t)));
  if (cases?.length === 0) throw new InputError(`--only '${only}' matches no cuda parity case`, 'E_FLAG');
  const rows = await runParity(cases, log);
  const tested = new Set(rows.map((r) => r.kernel));
  const untested = only === undefined ? CUDA_KERNEL_NAMES.filter((k) => !tested.has(k)) : [];
  const failed = rows.filter((r) => !r.pass).length;
  const summary = {
    kernels: CUDA_KERNEL_NAMES.length,
    kernelsTested: only === undefined ? CUDA_KERNEL_NAMES.length - untested.length : tested.size,
    untested,
    cases: rows.length,
    passed: rows.length - failed,
    failed,
    compiledKernels: backend.device.compiledKernels,
  };
  log(
    `cuda kernels: ${summary.passed}/${summary.cases} cases pass, ${summary.kernelsTested}/${summary.kernels} kernels tested`,
  );
  const machine = { gpu: gpuName(), device: backend.device.name, ...machineInfo() };
  if (only !== undefined) {
    await tf.setBackend('cuda');
    const speed = values.speed === true ? matmulSpeed(backend) : [];
    for (const s of speed) log(speedLine(s));
    writeBenchResults(values.json, 'cuda-kernels', { machine, only, summary, rows, speed });
    return { file: values.json, failed };
  }
  await tf.setBackend('cuda');
  // tf32 and bf16 matmuls against strict float32 (the precision flags' error).
  const precision = await matmulPrecisionErrors();
  for (const p of precision)
    log(
      `matmul ${p.precision} [${p.shape}]: max |error| ${p.maxAbsError.toExponential(2)} (${p.maxErrorOverMaxValue.toExponential(2)} of the largest value)`,
    );
  // Each GEMM shape of a gpt2-124m step, timed in each precision (where the matmul time goes).
  const speed = matmulSpeed(backend);
  for (const s of speed) log(speedLine(s));
  writeBenchResults(values.json, 'cuda-kernels', { machine, summary, rows, precision, speed });
  return { file: values.json, failed };
}

const speedLine = (s: MatmulSpeedRow): string =>
  `matmul ${s.name.padEnd(16)} ${s.precision.padEnd(6)} ${s.ms.toFixed(2).padStart(7)} ms ${s.tflops.toFixed(1).padStart(6)} TFLOP/s`;
