/** float32 → bfloat16 bits (round to nearest, ties to even; NaN stays a quiet NaN). */
export function bfloat16Bits(values: Float32Array): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const w = words[i]!;
    if ((w & 0x7f800000) === 0x7f800000 && (w & 0x7fffff) !== 0) {
      out[i] = (w >>> 16) | 0x40; // quiet NaN
    } else {
      out[i] = (w + 0x7fff + ((w >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

/** bfloat16 bits → float32 (exact), into `out` when given. */
export function float32OfBfloat16(
  bits: Uint16Array,
  out: Float32Array = new Float32Array(bits.length),
): Float32Array {
  const words = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) words[i] = bits[i]! << 16;
  return out;
}
