/**
 * Runs a command-line entry as this process's main (`kstar`, `pnpm bench`): a closed stdout/stderr (the parent went
 * away) must not kill it before it writes its report or results; its return value becomes the exit code; an
 * unexpected error is printed after `name` and exits 1.
 */
export function runAsMain(name: string, run: (argv: string[]) => Promise<number>): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  }
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(
        `${name}: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
