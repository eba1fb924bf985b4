export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** √(mean of squares). */
export function rms(x: ArrayLike<number>): number {
  let sq = 0;
  for (let i = 0; i < x.length; i++) sq += x[i]! * x[i]!;
  return Math.sqrt(sq / x.length);
}

/** max|p − ref| / RMS(ref): the error relative to the parameter's scale (max|p − ref| where ref is all zero). */
export function relErr(p: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (p.length !== ref.length) throw new Error(`length ${p.length} vs ${ref.length}`);
  let maxAbs = 0;
  for (let i = 0; i < ref.length; i++) maxAbs = Math.max(maxAbs, Math.abs(p[i]! - ref[i]!));
  const scale = rms(ref);
  return scale === 0 ? maxAbs : maxAbs / scale;
}

/** ‖a − b‖ / ‖b‖ over all elements (L2; 0/0 counts as 0). */
export function relL2Error(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/** Bytes of the unique buffers behind `tensors` (numel × 4 per distinct dataId): measured, not predicted. */
export function measuredUniqueBytes(
  tensors: Iterable<{ dataId: object; shape: number[]; isDisposed: boolean } | undefined>,
): number {
  const seen = new Set<object>();
  let bytes = 0;
  for (const t of tensors) {
    if (t == null || t.isDisposed || seen.has(t.dataId)) continue;
    seen.add(t.dataId);
    bytes += numel(t.shape) * 4;
  }
  return bytes;
}
