import { writeFileSync } from 'node:fs';
import { InputError, KstarError } from '@kstar/core';
import { shutdownWebGPU } from '@kstar/kernels';
import { BENCH_HELP, benchOptimizers, benchTable, benchTrain, optimizerTable } from './bench.ts';
import { BENCH_ACTIVATIONS_HELP, benchActivations } from './bench-activations.ts';
import { benchCompressError } from './bench-compress-error.ts';
import { benchGpu, gpuTable } from './bench-gpu.ts';
import { benchKernels, benchProfile } from './bench-kernels.ts';
import { benchLazyWindow } from './bench-lazy-window.ts';
import { benchMemory, memoryTable } from './bench-memory.ts';
import { benchPartition } from './bench-partition.ts';
import { BENCH_SHARDING_HELP, benchSharding } from './bench-sharding.ts';
import { loadConfigFile, parseTrainConfig } from './config.ts';
import { parseFlags, parseTrainFlags, TRAIN_HELP } from './flags.ts';
import { ProgressBar } from './progress.ts';
import { openRanks } from './ranks.ts';
import { compareReplay, readGolden, replayGolden } from './replay.ts';
import { ledgerTable, writeReport } from './report.ts';
import { prepareRun, train } from './train.ts';

export const USAGE = `kstar — memory-efficient transformer training for TypeScript

Usage:
  kstar train [options]                     train a GPT (see 'kstar train --help')
  kstar replay --golden FILE --out FILE     replay a golden optimizer file with K*'s optimizers
  kstar bench train --json FILE [options]   benchmark training per backend and mode (see 'kstar bench --help')
  kstar bench activations --json FILE …     activation strategies: memory, speed, longest T under a budget
  kstar --help
`;

export interface CliIO {
  stdout: { write(s: string): boolean };
  stderr: NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean };
}

async function trainCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseTrainFlags(argv);
  if (flags.help) {
    io.stdout.write(TRAIN_HELP);
    return 0;
  }
  const fromFile = flags.config ? await loadConfigFile(flags.config) : {};
  const config = parseTrainConfig(
    { ...fromFile, ...flags.overrides },
    flags.config ? `config '${flags.config}'` : 'config',
  );
  // Every input is checked before anything is printed or written.
  const run = prepareRun(config);
  // Data parallel (`mpirun -np N kstar train --sharding zeroK`): the ranks agree on the config before step 1.
  const ranks = await openRanks(config);
  if (ranks.rank !== 0) io = { stdout: { write: () => true }, stderr: { write: () => true } };
  const stop = { requested: false };
  const onSigint = () => {
    if (stop.requested) process.exit(130);
    stop.requested = true;
  };
  process.on('SIGINT', onSigint);
  try {
    const report = await train(run, {
      log: new ProgressBar(io.stderr),
      stop,
      ...(ranks.collective ? { collective: ranks.collective } : {}),
    });
    // Rank 0 alone writes the report.
    if (config.report && ranks.rank === 0) writeReport(config.report, report);
    await ranks.close();
    io.stdout.write(`${ledgerTable(report.memory, report.model.params, report.gpu)}\n`);
    const first = report.losses[0];
    const last = report.losses.at(-1);
    io.stdout.write(
      `trained ${report.steps} steps in ${report.wallSeconds.toFixed(1)} s: loss ${first?.toFixed(4)} → ${last?.toFixed(4)}` +
        `${report.valLosses.length ? `, val ${report.valLosses.at(-1)!.loss.toFixed(4)}` : ''}, ` +
        `${Math.round(report.tokensPerSecond).toLocaleString('en-US')} tokens/s on ${report.backend}` +
        `${config.report ? `; report: ${config.report}` : ''}\n`,
    );
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    await shutdownWebGPU();
  }
}

async function replayCommand(argv: string[], io: CliIO): Promise<number> {
  const values = parseFlags(
    argv,
    ['golden', 'out', 'backend'],
    'usage: kstar replay --golden FILE --out FILE',
    ['help'],
  );
  if (values.help) {
    io.stdout.write('kstar replay --golden FILE --out FILE [--backend cpu|wasm|webgpu|auto]\n');
    return 0;
  }
  if (typeof values.golden !== 'string' || typeof values.out !== 'string') {
    throw new InputError('kstar replay needs --golden FILE and --out FILE', 'E_FLAG');
  }
  const golden = readGolden(values.golden);
  const { selectBackend } = await import('@kstar/kernels');
  const backendName = typeof values.backend === 'string' ? values.backend : 'cpu';
  try {
    await selectBackend(backendName as 'cpu', { log: (l) => io.stderr.write(`${l}\n`) });
    const output = replayGolden(golden, (l) => io.stderr.write(`${l}\n`));
    writeFileSync(values.out, `${JSON.stringify(output)}\n`);
    for (const row of compareReplay(golden, output)) {
      io.stdout.write(
        `run ${row.index} ${golden.runs[row.index]!.optimizer} ${row.param}: max relative error ${row.relError.toExponential(2)} of RMS\n`,
      );
    }
    io.stdout.write(
      `replayed ${output.runs.length} runs, skipped ${output.skipped.length}; wrote ${values.out}\n`,
    );
    return 0;
  } finally {
    await shutdownWebGPU();
  }
}

async function benchCommand(argv: string[], io: CliIO): Promise<number> {
  const [kind, ...rest] = argv;
  if (kind === undefined || kind === '--help' || kind === '-h') {
    io.stdout.write(BENCH_HELP);
    return 0;
  }
  if (kind === 'activations') {
    if (rest.includes('--help')) {
      io.stdout.write(BENCH_ACTIVATIONS_HELP);
      return 0;
    }
    try {
      const { file, table } = await benchActivations(rest, io.stderr);
      io.stdout.write(`${table}\nwrote ${file}\n`);
      return 0;
    } finally {
      await shutdownWebGPU();
    }
  }
  if (kind === 'compress-error') {
    const { file, table } = await benchCompressError(rest);
    io.stdout.write(`${table}\nwrote ${file}\n`);
    return 0;
  }
  if (kind === 'gpu') {
    const { rows, file } = await benchGpu(rest, (l) => io.stderr.write(`${l}\n`));
    io.stdout.write(`${gpuTable(rows)}\nwrote ${file}\n`);
    return 0;
  }
  if (kind === 'lazy-window') {
    const { file } = await benchLazyWindow(rest, (l) => io.stderr.write(`${l}\n`));
    io.stdout.write(`wrote ${file}\n`);
    return 0;
  }
  if (kind === 'sharding') {
    if (rest.includes('--help')) {
      io.stdout.write(BENCH_SHARDING_HELP);
      return 0;
    }
    const { file, table } = await benchSharding(rest, (l) => io.stderr.write(`${l}\n`));
    io.stdout.write(`${table}\nwrote ${file}\n`);
    return 0;
  }
  if (kind === 'partition') {
    const { file } = await benchPartition(rest, (l) => io.stderr.write(`${l}\n`));
    io.stdout.write(`wrote ${file}\n`);
    return 0;
  }
  if (kind === 'kernels' || kind === 'profile') {
    try {
      const { file } = await (kind === 'kernels' ? benchKernels : benchProfile)(rest, (l) =>
        io.stdout.write(`${l}\n`),
      );
      io.stdout.write(`wrote ${file}\n`);
      return 0;
    } finally {
      await shutdownWebGPU();
    }
  }
  if (kind !== 'train' && kind !== 'optimizers' && kind !== 'memory') {
    throw new InputError(
      `unknown benchmark '${kind}': use 'kstar bench train', 'optimizers', 'gpu', 'kernels', 'profile', 'activations', 'compress-error' or 'memory' (see 'kstar bench --help')`,
      'E_FLAG',
    );
  }
  try {
    if (kind === 'memory') {
      const { rows, file } = await benchMemory(rest, io.stderr);
      io.stdout.write(`${memoryTable(rows)}\nwrote ${file}\n`);
    } else if (kind === 'optimizers') {
      const { rows, file } = await benchOptimizers(rest, io.stderr);
      io.stdout.write(`${optimizerTable(rows)}\nwrote ${file}\n`);
    } else {
      const { rows, file } = await benchTrain(rest, io.stderr);
      io.stdout.write(`${benchTable(rows)}\nwrote ${file}\n`);
    }
    return 0;
  } finally {
    await shutdownWebGPU();
  }
}

/** Run the CLI. Returns the exit code; bad input is one line on stderr and exit code 2. */
export async function runCli(
  argv: string[],
  io: CliIO = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'train':
        return await trainCommand(rest, io);
      case 'replay':
        return await replayCommand(rest, io);
      case 'bench':
        return await benchCommand(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(USAGE);
        return 0;
      default:
        throw new InputError(
          `unknown command '${command}': use 'kstar train' or 'kstar replay' (see 'kstar --help')`,
          'E_FLAG',
        );
    }
  } catch (e) {
    if (e instanceof KstarError) {
      io.stderr.write(`kstar: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
}
