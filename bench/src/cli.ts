import { InputError, KstarError } from '@kstar/core';
import { shutdownWebGPU } from '@kstar/kernels';
import { checkOutputPath } from '@kstar/trainer';
import { KSTAR_VERSION } from '@kstar/trainer/internal';
import { BENCHMARKS, type BenchIO } from './registry.ts';

export const BENCH_USAGE = `pnpm bench NAME --json FILE [options]   (offline bundle: node bench.mjs NAME …)

${Object.values(BENCHMARKS)
  .map((b) => b.help.split('\n')[0])
  .join('\n')}

'pnpm bench NAME --help' describes one benchmark; 'pnpm bench --version' prints the version.
`;

/** `--json FILE` or `--json=FILE` of a bench command line (the last one given), if any. */
export function benchJsonPath(argv: readonly string[]): string | undefined {
  let path: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json' && i + 1 < argv.length) path = argv[++i];
    else if (a.startsWith('--json=')) path = a.slice('--json='.length);
  }
  return path;
}

/** Runs `pnpm bench NAME …`. Returns the exit code; bad input is one line on stderr and exit code 2. */
export async function runBench(
  argv: string[],
  io: BenchIO = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const [name, ...rest] = argv;
  if (argv.includes('--version')) {
    io.stdout.write(`kstar bench ${KSTAR_VERSION}\n`);
    return 0;
  }
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      io.stdout.write(BENCH_USAGE);
      return 0;
    }
    const bench = Object.hasOwn(BENCHMARKS, name) ? BENCHMARKS[name] : undefined;
    if (bench === undefined) {
      throw new InputError(
        `unknown benchmark '${name}': use ${Object.keys(BENCHMARKS).join(', ')} (see 'pnpm bench --help')`,
        'E_FLAG',
      );
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout.write(bench.help);
      return 0;
    }
    // Before any benchmark runs (minutes to hours): a results file that could not be written is refused now.
    const json = benchJsonPath(rest);
    if (json !== undefined) checkOutputPath(json, 'file', '--json');
    try {
      return await bench.run(rest, io);
    } finally {
      shutdownWebGPU();
    }
  } catch (e) {
    if (e instanceof KstarError) {
      io.stderr.write(`kstar bench: ${e.message.replace(/\s*\n\s*/g, ' ')}\n`);
      return e.exitCode;
    }
    throw e;
  }
}
