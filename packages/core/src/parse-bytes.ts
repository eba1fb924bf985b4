import { InputError } from './errors.ts';

/**
 * A size as a person writes it: bytes (`536870912`), or a number with a suffix (KB, MB, GB, TB: powers of 1000;
 * KiB, MiB, GiB, TiB: of 1024; case-insensitive, the `B` optional). A number passes as it is. `what` names the value
 * in the InputError a malformed size gets (e.g. `memory budget`).
 */
export function parseBytes(value: string | number, what = 'size'): number {
  if (typeof value === 'number') return value;
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgt]i?b?|b)?\s*$/i.exec(value);
  if (!m) {
    throw new InputError(
      `${what} '${value}' is not a size: write bytes (e.g. 536870912) or a number with a suffix (512MiB, 2GB)`,
      'E_CONFIG',
    );
  }
  const n = Number(m[1]);
  const unit = (m[2] ?? 'b').toLowerCase().replace(/b$/, '');
  const pow = { '': 0, k: 1, m: 2, g: 3, t: 4 }[unit.replace('i', '')] ?? 0;
  const base = unit.endsWith('i') ? 1024 : 1000;
  return Math.round(n * base ** pow);
}
