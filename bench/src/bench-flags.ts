import { InputError } from '@kstar/core';
import { parseFlags } from '@kstar/trainer/internal';

/**
 * The flags of `pnpm bench NAME`: `parseFlags` over `strings` (and `booleans`), its errors ending with `hint`, and
 * the `--json FILE` every benchmark writes its results to, required.
 */
export function benchFlags(
  argv: string[],
  strings: readonly string[],
  name: string,
  booleans: readonly string[] = [],
  hint = "see 'pnpm bench --help'",
): Record<string, string | boolean | undefined> & { json: string } {
  const values = parseFlags(argv, strings, hint, booleans);
  if (typeof values.json !== 'string') throw new InputError(`pnpm bench ${name} needs --json FILE`, 'E_FLAG');
  return { ...values, json: values.json };
}
