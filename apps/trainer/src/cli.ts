import { launchInfo } from '@kstar/collective-mpi';
import { InputError, KstarError } from '@kstar/core';
import { shutdownWebGPU } from '@kstar/kernels';
import { writeFileAtomic } from './atomic-write.ts';
import { BENCH_HELP, benchOptimizers, benchTable, benchTrain, optimizerTable } from './bench.ts';
import { BENCH_ACTIVATIONS_HELP, benchActivations } from './bench-activations.ts';
import { BENCH_CHECKPOINT_HELP, benchCheckpoint } from './bench-checkpoint.ts';
import { benchCompressError } from './bench-compress-error.ts';
import { benchCudaKernels } from './bench-cuda.ts';
import { benchGpu, gpuTable } from './bench-gpu.ts';
import { benchKernels, benchProfile } from './bench-kernels.ts';
import { benchLazyWindow } from './bench-lazy-window.ts';
import { benchMatMul } from './bench-matmul.ts';
import { benchMemory, memoryTable } from './bench-memory.ts';
import { benchPartition } from './bench-partition.ts';
import { BENCH_PLANNER_HELP, benchPlanner } from './bench-planner.ts';
import { BENCH_SHARDING_HELP, benchSharding } from './bench-sharding.ts';
import { type LoadedCheckpoint, readCheckpoint, readLatestCheckpoint } from './checkpoint/read.ts';
import { resumeConfig } from './checkpoint/resume.ts';
import { BACKEND_NAMES, loadConfigFile, parseTrainConfig } from './config.ts';
import { EXPORT_HELP, exportCommand } from './export.ts';
import { parseFlags, parseTrainFlags, TRAIN_HELP } from './flags.ts';
import { readGolden } from './golden.ts';
import { checkOutputPath } from './output-paths.ts';
import { planRun, planTable } from './plan-command.ts';
import { ProgressBar } from './progress.ts';
import { openRanks } from './ranks.ts';
import { compareReplay, replayGolden } from './replay.ts';
import { ledgerTable, writeReport } from './report.ts';
import { reportCommand } from './report-command.ts';
import { reportHtml } from './report-html.ts';
import { SAMPLE_HELP, sampleCommand } from './sample-command.ts';
import { StopRequest, stopOnSignals } from './stop-request.ts';
import { prepareRun, train } from './train.ts';
import { KSTAR_VERSION } from './version.ts';

export const USAGE = `kstar — memory-efficient transformer training for TypeScript

Usage:
  kstar train [options]                     train a GPT (see 'kstar train --help')
  kstar plan [train options]                the memory plan a run would start with (--memory-budget, default auto)
  kstar report REPORT.json --html FILE      render a --report JSON as a self-contained HTML page
  kstar export --checkpoint DIR --out DIR   weights in the Hugging Face GPT-2 safetensors layout
  kstar sample --checkpoint DIR --prompt T  generate text from a checkpoint (see 'kstar sample --help')
  kstar --version
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
  const origin = flags.config ? `config '${flags.config}'` : 'config';
  const given = { ...fromFile, ...flags.overrides };
  // Every input is checked before anything is printed or written: the checkpoint to resume, every output path, the run.
  const resumed = typeof given.resume === 'string' ? loadResume(given, io) : undefined;
  const config = parseTrainConfig(resumed ? resumed.raw : given, origin);
  if (config.report) checkOutputPath(config.report, 'file', '--report');
  if (config.reportHtml) checkOutputPath(config.reportHtml, 'file', '--report-html');
  if (config.log) checkOutputPath(config.log, 'file', '--log');
  if (config.saveDir) checkOutputPath(config.saveDir, 'directory', '--save-dir');
  const run = {
    ...prepareRun(config),
    ...(resumed ? { resume: { checkpoint: resumed.checkpoint, changes: resumed.changes } } : {}),
  };
  // Data parallel (`mpirun -np N kstar train --sharding zeroK`): the ranks agree on the config before step 1.
  const ranks = await openRanks(config);
  if (ranks.rank !== 0) io = { stdout: { write: () => true }, stderr: { write: () => true } };
  // Ctrl-C, SIGTERM, SIGHUP and a parent that exits all stop after the current step; the report (and a checkpoint
  // with --save-dir) is still written.
  const stop = new StopRequest();
  const unwatch = stopOnSignals(stop);
  try {
    const report = await train(run, {
      log: new ProgressBar(io.stderr),
      stop,
      ...(ranks.collective ? { collective: ranks.collective } : {}),
    });
    // Rank 0 alone writes the report.
    if (ranks.rank === 0) {
      if (config.report) writeReport(config.report, report);
      if (config.reportHtml) writeFileAtomic(config.reportHtml, reportHtml(report));
    }
    await ranks.close();
    if (report.failed) {
      io.stderr.write(
        `kstar: ${report.failed.reason}${config.report ? `; the report has the ${report.steps} steps before it: ${config.report}` : ''}\n`,
      );
      return 1;
    }
    io.stdout.write(`${ledgerTable(report.memory, report.model.params, report.gpu)}\n`);
    const first = report.losses[0];
    const last = report.losses.at(-1);
    io.stdout.write(
      `trained ${report.steps} steps in ${report.wallSeconds.toFixed(1)} s: loss ${first?.toFixed(4)} → ${last?.toFixed(4)}` +
        `${report.valLosses.length ? `, val ${report.valLosses.at(-1)!.loss.toFixed(4)}` : ''}, ` +
        `${Math.round(report.tokensPerSecond).toLocaleString('en-US')} tokens/s on ${report.backend}` +
        `${config.report ? `; report: ${config.report}` : ''}\n`,
    );
    if (report.sample)
      io.stdout.write(`sample: ${JSON.stringify(report.sample.prompt + report.sample.text)}\n`);
    // 128 + the signal's number after a stop (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP or a lost parent), as shells expect.
    return stop.exitCode;
  } finally {
    unwatch();
    await shutdownWebGPU();
  }
}

/** `kstar plan`: the train options, planned and printed (and written to --report FILE as `{plans}`), no training. */
async function planCommand(argv: string[], io: CliIO): Promise<number> {
  const flags = parseTrainFlags(argv);
  if (flags.help) {
    io.stdout.write(
      `kstar plan [train options]: prints the plan 'kstar train' would start with\n${TRAIN_HELP}`,
    );
    return 0;
  }
  const fromFile = flags.config ? await loadConfigFile(flags.config) : {};
  const config = parseTrainConfig(
    { ...fromFile, ...flags.overrides },
    flags.config ? `config '${flags.config}'` : 'config',
  );
  if (config.report) checkOutputPath(config.report, 'file', '--report');
  const run = prepareRun(config);
  try {
    const plans = await planRun(run, (line) => io.stderr.write(`${line}\n`));
    io.stdout.write(`${planTable(plans)}\n`);
    if (config.report) writeFileAtomic(config.report, `${JSON.stringify({ plans }, null, 2)}\n`);
    return 0;
  } finally {
    await shutdownWebGPU();
  }
}

/** `--resume DIR|latest`: the verified checkpoint and the raw config it resumes with (contradictions are errors). */
function loadResume(given: Record<string, unknown>, io: CliIO) {
  const where = given.resume as string;
  // Under mpirun each rank reads the shared files and its own shards (MPI starts later, after every input is checked).
  const launch = launchInfo();
  const world = launch ? { rank: launch.rank, size: launch.size } : { rank: 0, size: 1 };
  let checkpoint: LoadedCheckpoint;
  if (where === 'latest') {
    if (typeof given.saveDir !== 'string') {
      throw new InputError(
        '--resume latest needs --save-dir DIR (the directory the run saved into)',
        'E_FLAG',
      );
    }
    checkpoint = readLatestCheckpoint(given.saveDir, (line) => io.stderr.write(`${line}\n`), world);
  } else {
    checkpoint = readCheckpoint(where, world);
  }
  const { raw, changes } = resumeConfig(checkpoint.trainer.config, given, checkpoint.dir);
  return { checkpoint, raw, changes };
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
  const backendName = typeof values.backend === 'string' ? values.backend : 'cpu';
  if (!(BACKEND_NAMES as readonly string[]).includes(backendName)) {
    throw new InputError(
      `unknown backend '${backendName}' for kstar replay: use ${BACKEND_NAMES.join(', ')}`,
      'E_FLAG',
    );
  }
  const golden = readGolden(values.golden);
  checkOutputPath(values.out, 'file', '--out');
  const { selectBackend } = await import('@kstar/kernels');
  try {
    await selectBackend(backendName as 'cpu', { log: (l) => io.stderr.write(`${l}\n`) });
    const output = replayGolden(golden, (l) => io.stderr.write(`${l}\n`));
    writeFileAtomic(values.out, `${JSON.stringify(output)}\n`);
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

async function benchCommand(argv: string[], io: CliIO): Promise<number> {
  const [kind, ...rest] = argv;
  if (kind === undefined || kind === '--help' || kind === '-h') {
    io.stdout.write(BENCH_HELP);
    return 0;
  }
  // Before any benchmark runs (minutes to hours): a results file that could not be written is refused now.
  const json = rest.includes('--help') ? undefined : benchJsonPath(rest);
  if (json !== undefined) checkOutputPath(json, 'file', '--json');
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
  if (kind === 'planner') {
    if (rest.includes('--help')) {
      io.stdout.write(BENCH_PLANNER_HELP);
      return 0;
    }
    try {
      const { file, result } = await benchPlanner(rest, io.stderr);
      io.stdout.write(
        `planner / best fixed plan tokens/s: ${result.plannerOverBestFixedTokensPerSecond.toFixed(3)}\nwrote ${file}\n`,
      );
      return 0;
    } finally {
      await shutdownWebGPU();
    }
  }
  if (kind === 'checkpoint') {
    if (rest.includes('--help')) {
      io.stdout.write(BENCH_CHECKPOINT_HELP);
      return 0;
    }
    const { file, summary } = await benchCheckpoint(rest, (l) => io.stderr.write(`${l}\n`));
    io.stdout.write(`${summary}\nwrote ${file}\n`);
    return 0;
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
  if (kind === 'cuda-kernels') {
    const { file, failed } = await benchCudaKernels(rest, (l) => io.stdout.write(`${l}\n`));
    io.stdout.write(`wrote ${file}\n`);
    return failed === 0 ? 0 : 1;
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
  if (kind === 'kernels' || kind === 'profile' || kind === 'matmul') {
    const bench = { kernels: benchKernels, profile: benchProfile, matmul: benchMatMul }[kind];
    try {
      const { file } = await bench(rest, (l) => io.stdout.write(`${l}\n`));
      io.stdout.write(`wrote ${file}\n`);
      return 0;
    } finally {
      await shutdownWebGPU();
    }
  }
  if (kind !== 'train' && kind !== 'optimizers' && kind !== 'memory') {
    throw new InputError(
      `unknown benchmark '${kind}': use 'kstar bench train', 'optimizers', 'gpu', 'cuda-kernels', 'kernels', 'profile', 'matmul', 'activations', 'compress-error' or 'memory' (see 'kstar bench --help')`,
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
      case 'plan':
        return await planCommand(rest, io);
      case 'replay':
        return await replayCommand(rest, io);
      case 'export': {
        const log = (l: string) => io.stderr.write(`${l}\n`);
        const files = await exportCommand(rest, log);
        io.stdout.write(files === 'help' ? EXPORT_HELP : `wrote ${files.join(', ')}\n`);
        return 0;
      }
      case 'sample': {
        const log = (l: string) => io.stderr.write(`${l}\n`);
        const ids = await sampleCommand(rest, (s) => io.stdout.write(s), log);
        if (ids === 'help') io.stdout.write(SAMPLE_HELP);
        return 0;
      }
      case '--version':
      case 'version':
        io.stdout.write(`kstar ${KSTAR_VERSION}\n`);
        return 0;
      case 'bench':
        return await benchCommand(rest, io);
      case 'report':
        io.stdout.write(`wrote ${reportCommand(rest)}\n`);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(USAGE);
        return 0;
      default:
        throw new InputError(
          `unknown command '${command}': use 'kstar train', 'plan', 'export', 'sample', 'report', 'replay' or 'bench' (see 'kstar --help')`,
          'E_FLAG',
        );
    }
  } catch (e) {
    if (e instanceof KstarError) {
      // One line whatever the message holds (a config module's multi-line syntax error, say).
      io.stderr.write(`kstar: ${e.message.replace(/\s*\n\s*/g, ' ')}\n`);
      return e.exitCode;
    }
    throw e;
  }
}
