import { bfloat16Bits, float32OfBfloat16 } from './bfloat16.ts';
import { InputError } from './errors.ts';

/**
 * A small reader/writer of the safetensors format (https://huggingface.co/docs/safetensors, "Format"):
 * 8 bytes little-endian u64 N, then an N-byte UTF-8 JSON header `{name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__"?: {string: string}}` (padded with spaces so the data starts 8-byte aligned), then the byte buffer.
 * Offsets are relative to the buffer's start; tensors cover it exactly, without holes or overlaps; values are
 * little-endian, row-major.
 */

/** Element sizes of the dtypes the format defines. */
export const SAFETENSORS_DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
} as const;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BYTES;

/** One tensor: its dtype, shape and little-endian bytes (row-major). */
export interface SafeTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

export interface SafetensorsFile {
  /** Tensors in the order of their offsets. */
  readonly tensors: Map<string, SafeTensor>;
  readonly metadata: Record<string, string>;
}

/** The format's limit on the header (100 MB), which keeps a corrupt length from allocating gigabytes. */
const MAX_HEADER_BYTES = 100_000_000;

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Serialize tensors (in the given order) and string metadata into one safetensors file. */
export function encodeSafetensors(
  tensors: Iterable<[string, SafeTensor]>,
  metadata: Record<string, string> = {},
): Uint8Array {
  return concatBytes(safetensorsParts(tensors, metadata));
}

/** `parts` one after the other in one new array (the only part itself when there is one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * `encodeSafetensors`' file as its parts, in order: the 8-byte header length and header, then each tensor's data (the
 * given arrays themselves, not copies). Writing them one after the other gives the same bytes without building one
 * file-sized buffer.
 */
export function safetensorsParts(
  tensors: Iterable<[string, SafeTensor]>,
  metadata: Record<string, string> = {},
): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const list = [...tensors];
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new InputError(`safetensors: '__metadata__' cannot name a tensor`);
    const want = numel(t.shape) * SAFETENSORS_DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== want) {
      throw new InputError(
        `safetensors: tensor '${name}' ${t.dtype} [${t.shape}] needs ${want} bytes, got ${t.data.byteLength}`,
      );
    }
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + want] };
    offset += want;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts on an 8-byte boundary (8-byte length + header).
  const jsonBytes = new TextEncoder().encode(json);
  const pad = (8 - (jsonBytes.byteLength % 8)) % 8;
  json += ' '.repeat(pad);
  const head = new TextEncoder().encode(json);
  const first = new Uint8Array(8 + head.byteLength);
  new DataView(first.buffer).setBigUint64(0, BigInt(head.byteLength), true);
  first.set(head, 8);
  return [first, ...list.map(([, t]) => t.data)];
}

/**
 * Parse a safetensors file; every violation of the format is an InputError naming `origin` (e.g. the file path).
 * The returned tensors' `data` are views into `bytes`.
 */
export function decodeSafetensors(bytes: Uint8Array, origin = 'safetensors'): SafetensorsFile {
  const fail = (what: string): never => {
    throw new InputError(`${origin}: ${what}`, 'E_SAFETENSORS');
  };
  if (bytes.byteLength < 8) fail(`${bytes.byteLength} bytes is too short for the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES) || n > BigInt(bytes.byteLength - 8)) {
    fail(
      `header length ${n} is larger than the file (${bytes.byteLength} bytes) or the format's 100 MB limit: the file is truncated or not safetensors`,
    );
  }
  const headerEnd = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, headerEnd)));
  } catch (e) {
    fail(`header is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    fail('header is not a JSON object');
  const buffer = bytes.subarray(headerEnd);
  const entries: Array<[string, SafeTensor, number, number]> = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      const ok =
        typeof raw === 'object' && raw !== null && Object.values(raw).every((v) => typeof v === 'string');
      if (!ok) fail(`__metadata__ must map strings to strings`);
      metadata = raw as Record<string, string>;
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = info?.dtype;
    if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_BYTES)) {
      fail(
        `tensor '${name}' has dtype ${JSON.stringify(dtype)}: use one of ${Object.keys(SAFETENSORS_DTYPE_BYTES).join(', ')}`,
      );
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${name}' has shape ${JSON.stringify(shape)}: expected a list of integers ≥ 0`);
    }
    const offsets = info.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      fail(
        `tensor '${name}' has data_offsets ${JSON.stringify(offsets)}: expected [begin, end] with begin ≤ end`,
      );
    }
    const [begin, end] = offsets as [number, number];
    const want = numel(shape as number[]) * SAFETENSORS_DTYPE_BYTES[dtype as SafetensorsDtype];
    if (end - begin !== want) {
      fail(
        `tensor '${name}' ${dtype} [${shape}] needs ${want} bytes but its data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    if (end > buffer.byteLength) {
      fail(
        `tensor '${name}' ends at byte ${end} of the data, which holds ${buffer.byteLength}: the file is truncated`,
      );
    }
    entries.push([
      name,
      { dtype: dtype as SafetensorsDtype, shape: shape as number[], data: buffer.subarray(begin, end) },
      begin,
      end,
    ]);
  }
  // The tensors must tile the buffer exactly: sorted by offset, each begins where the previous ended.
  entries.sort((a, b) => a[2] - b[2] || a[3] - b[3]);
  let at = 0;
  for (const [name, , begin, end] of entries) {
    if (begin !== at) {
      fail(
        begin < at
          ? `tensor '${name}' at [${begin}, ${end}] overlaps the previous tensor (which ends at ${at})`
          : `a hole of ${begin - at} bytes precedes tensor '${name}' at [${begin}, ${end}]`,
      );
    }
    at = end;
  }
  if (at !== buffer.byteLength) {
    fail(
      `the data holds ${buffer.byteLength} bytes but the tensors cover ${at}: the file has trailing bytes`,
    );
  }
  return { tensors: new Map(entries.map(([name, t]) => [name, t])), metadata };
}

/** Little-endian bytes of a typed array (a copy, so the result owns its memory). */
export function bytesOf(values: Float32Array | Int32Array | Uint8Array): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

/** float32 values of an F32 or BF16 tensor (a copy). */
export function float32Of(t: SafeTensor, origin: string): Float32Array {
  if (t.dtype === 'F32') return new Float32Array(t.data.slice().buffer);
  if (t.dtype === 'BF16') {
    return float32OfBfloat16(new Uint16Array(t.data.slice().buffer));
  }
  throw new InputError(`${origin}: dtype ${t.dtype} is not a float weight: use F32 or BF16`, 'E_SAFETENSORS');
}

/** bfloat16 bytes of float32 values, rounded to nearest even (NaN stays NaN). */
export function bfloat16Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(bfloat16Bits(values).buffer);
}
