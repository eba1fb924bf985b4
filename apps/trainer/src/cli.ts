import { launchInfo } from '@kstar/collective-mpi';
import { InputError, KstarError } from '@kstar/core';
import { shutdownWebGPU } from '@kstar/kernels';
import { ProgressBar, StopRequest, stopOnSignals } from '@kstar/train-loop';
import { writeFileAtomic } from './atomic-write.ts';
import {
  EVERY_RANK,
  type LoadedCheckpoint,
  readCheckpoint,
  readLatestCheckpoint,
} from './checkpoint/read.ts';
import { resumeConfig } from './checkpoint/resume.ts';
import { BACKEND_NAMES, loadConfigFile, parseTrainConfig } from './config.ts';
import { EXPORT_HELP, exportCommand } from './export.ts';
import { type FlagTable, flagsHelp, parseCommandFlags, parseTrainFlags, TRAIN_HELP } from './flags.ts';
import { readGolden } from './golden.ts';
import { checkOutputPath } from './output-paths.ts';
import { planRun, planTable } from './plan-command.ts';
import { openRanks } from './ranks.ts';
import { compareReplay, replayGolden } from './replay.ts';
import { ledgerTable, writeReport } from './report.ts';
import { reportCommand } from './report-command.ts';
import { reportHtml } from './report-html.ts';
import { SAMPLE_HELP, sampleCommand } from './sample-command.ts';
import { prepareRun, train } from './train.ts';
import { KSTAR_VERSION } from './version.ts';

export const USAGE = `kstar — memory-efficient transformer training for TypeScript

Usage:
  kstar train [options]                     train a GPT (see 'kstar train --help')
  kstar plan [train options]                the memory plan a run would start with (--memory-budget, default auto)
  kstar report REPORT.json --html FILE      render a --report JSON as a self-contained HTML page
  kstar export --checkpoint DIR --out DIR   weights in the Hugging Face GPT-2 safetensors layout
  kstar sample --checkpoint DIR --prompt T  generate text from a checkpoint (see 'kstar sample --help')
  kstar --version                           (also after any command: kstar train --version)
  kstar replay --golden FILE --out FILE     replay a golden optimizer file with K*'s optimizers
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
  // Another ZeRO stage at the same rank count: each rank re-partitions from every rank's files.
  if (
    launch &&
    raw.sharding !== checkpoint.trainer.config.sharding &&
    checkpoint.manifest.world.size === world.size
  )
    checkpoint = readCheckpoint(checkpoint.dir, EVERY_RANK);
  return { checkpoint, raw, changes };
}

// biome-ignore format: one line per flag
const REPLAY_FLAGS: FlagTable = {
  golden: { type: 'string', value: 'FILE', help: 'the golden optimizer file (e.g. fixtures/golden/optimizers.json)' },
  out: { type: 'string', value: 'FILE', help: "where to write K*'s trajectories (JSON)" },
  backend: { type: 'string', choices: BACKEND_NAMES, help: '(default cpu)' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
};

const REPLAY_HELP = `kstar replay --golden FILE --out FILE [--backend B]

Replays every run of a golden optimizer file with K*'s optimizers and prints each one's error against it.

${flagsHelp(REPLAY_FLAGS)}
`;

async function replayCommand(argv: string[], io: CliIO): Promise<number> {
  const values = parseCommandFlags(argv, REPLAY_FLAGS, 'kstar replay');
  if (values.help) {
    io.stdout.write(REPLAY_HELP);
    return 0;
  }
  if (typeof values.golden !== 'string' || typeof values.out !== 'string') {
    throw new InputError('kstar replay needs --golden FILE and --out FILE', 'E_FLAG');
  }
  const backendName = typeof values.backend === 'string' ? values.backend : 'cpu';
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

/** Run the CLI. Returns the exit code; bad input is one line on stderr and exit code 2. */
export async function runCli(
  argv: string[],
  io: CliIO = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const [command, ...rest] = argv;
  // `--version` after any command (`kstar train --version`) prints the version, as `kstar --version` does.
  if (command === '--version' || command === 'version' || rest.includes('--version')) {
    io.stdout.write(`kstar ${KSTAR_VERSION}\n`);
    return 0;
  }
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
      case 'bench':
        // The benchmarks live in the private @kstar/bench package (the arrow points from bench to the trainer).
        throw new InputError(
          `the benchmarks moved out of the kstar CLI: run 'pnpm bench ${rest[0] ?? '--help'} …' in the K* repository (offline bundle: 'node bench.mjs ${rest[0] ?? '--help'} …')`,
          'E_FLAG',
        );
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
          `unknown command '${command}': use 'kstar train', 'plan', 'export', 'sample', 'report' or 'replay' (see 'kstar --help')`,
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
