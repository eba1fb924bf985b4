import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The command line that starts `kstar` (the trainer's CLI) from a benchmark: `kstar.mjs` beside `bench.mjs` in the
 * offline bundle (`pnpm bundle`), else the trainer's source through tsx (in the repository).
 */
export function kstarCommand(): string[] {
  const script = process.argv[1];
  const bundled = script === undefined ? undefined : join(dirname(script), 'kstar.mjs');
  if (bundled !== undefined && existsSync(bundled)) return [process.execPath, bundled];
  const source = fileURLToPath(new URL('../../apps/trainer/src/bin.ts', import.meta.url));
  return [process.execPath, '--conditions=@kstar/source', '--import', 'tsx', source];
}
