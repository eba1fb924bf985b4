/** Bytes of Lion state for a parameter of `shape`: one float32 momentum, 4 bytes per element. */
export function lionStateBytes(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return 4 * n;
}
