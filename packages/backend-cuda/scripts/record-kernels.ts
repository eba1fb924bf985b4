// Records which tfjs kernels the tiny GPT's training dispatches, on the cpu backend with K*'s native cpu kernels
// removed (so their tfjs-ops fallbacks run, as they do on `cuda`). Usage, from the repo root:
//   node --conditions=@kstar/source --import tsx packages/backend-cuda/scripts/record-kernels.ts OUT.json
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { runCli } from '../../../apps/trainer/src/cli.ts';
import { QUICK_RUN } from '../../../apps/trainer/test/quick-run.ts';
import { CUDA_KERNEL_NAMES } from '../src/kernels.ts';

// tfjs keeps its kernel registry in a global Map keyed `${backend}_${kernel}`: K*'s cpu kernels are kept out of it.
const registry = (globalThis as { _tfGlobals?: Map<string, Map<string, unknown>> })._tfGlobals?.get(
  'kernelRegistry',
);
if (!registry) throw new Error("tfjs's kernel registry was not found (globalThis._tfGlobals.kernelRegistry)");
const set = registry.set.bind(registry);
registry.set = (key: string, value: unknown) => (key.startsWith('cpu_Kstar') ? registry : set(key, value));
for (const key of [...registry.keys()]) if (key.startsWith('cpu_Kstar')) registry.delete(key);

const counts = new Map<string, number>();
const engine = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
const original = engine.runKernel.bind(engine);
engine.runKernel = (name: string, ...rest: unknown[]) => {
  counts.set(name, (counts.get(name) ?? 0) + 1);
  return original(name, ...rest);
};

const RUNS: string[][] = [
  ['--optimizer', 'adamw', '--mode', 'full'],
  ['--optimizer', 'adamw', '--mode', 'segmented', '--grad-clip', '1'],
  ['--optimizer', 'adam8bit', '--master-weights', 'split24', '--mode', 'segmented'],
  [
    '--optimizer',
    'adam8bit',
    '--master-weights',
    'split24',
    '--activations',
    'checkpoint:every,mst,compress:bf16',
  ],
  ['--optimizer', 'lion'],
  ['--optimizer', 'adafactor'],
  ['--optimizer', 'came'],
  ['--optimizer', 'lomo', '--mode', 'segmented'],
  ['--optimizer', 'adalomo', '--mode', 'segmented'],
  ['--optimizer', 'lazy-adagrad'],
];
const perRun: Record<string, string[]> = {};
for (const flags of RUNS) {
  const before = new Set(counts.keys());
  const code = await runCli(['train', '--preset', 'tiny', ...QUICK_RUN, '--steps', '2', ...flags], {
    stdout: { write: () => true },
    stderr: process.stderr,
  }).catch((e: Error) => {
    console.error(`${flags.join(' ')}: ${e.message}`);
    return 1;
  });
  perRun[flags.join(' ')] = [...counts.keys()].filter((k) => !before.has(k));
  console.error(`${flags.join(' ')}: exit ${code}, ${counts.size} kernels so far`);
}
const kernels = [...counts.keys()].filter((k) => !k.startsWith('Kstar')).sort();
const missing = kernels.filter((k) => !CUDA_KERNEL_NAMES.includes(k));
writeFileSync(
  process.argv[2] ?? 'kernels.json',
  `${JSON.stringify({ kernels, missing, calls: Object.fromEntries(counts), newPerRun: perRun }, null, 2)}\n`,
);
console.log(`${kernels.length} kernels dispatched; missing on cuda: ${missing.join(', ') || 'none'}`);
