import { promisify } from 'node:util';
import { constants, deflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib';
import {
  concatBytes,
  decodeSafetensors,
  SAFETENSORS_DTYPE_BYTES,
  type SafeTensor,
  type SafetensorsFile,
  safetensorsParts,
} from '@kstar/core';
import { CheckpointError } from './format.ts';

/**
 * How a checkpoint's tensor files store their bytes (format version 2; see `format.ts`): a plain safetensors file in
 * which every `I32` tensor (split24's packed bf16 halves and correction bytes, 8-bit optimizer codes packed four per
 * word) is stored losslessly compressed when that makes it smaller, float32 tensors as they are.
 *
 * Codec `bytes4-deflate`: the words' bytes regrouped by position (all byte 0s, then all byte 1s …: a bf16 half's
 * sign-and-exponent byte, which takes few values for trained weights, then lands next to its peers), then raw deflate
 * with Huffman coding only (no match search: the bytes are noise-like, so matches hardly pay and cost time). The
 * compressed tensor is stored as `U8 [compressed bytes]` under its own name, and the metadata key `kstar_encoding`
 * maps it to `{codec, dtype, shape}`. A file without that key (format version 1) is read as is.
 */
export const PAYLOAD_CODEC = 'bytes4-deflate';
const ENCODING_KEY = 'kstar_encoding';
const WORD = 4;

interface Encoded {
  codec: typeof PAYLOAD_CODEC;
  dtype: 'I32';
  shape: number[];
}

/** Byte `p` of every word first, for p = 0..3 (`unshuffle` inverts it). */
function shuffle(bytes: Uint8Array): Uint8Array {
  const words = bytes.length / WORD;
  const out = new Uint8Array(bytes.length);
  for (let p = 0; p < WORD; p++) {
    const base = p * words;
    for (let i = 0; i < words; i++) out[base + i] = bytes[i * WORD + p]!;
  }
  return out;
}

function unshuffle(planes: Uint8Array): Uint8Array {
  const words = planes.length / WORD;
  const out = new Uint8Array(planes.length);
  for (let p = 0; p < WORD; p++) {
    const base = p * words;
    for (let i = 0; i < words; i++) out[i * WORD + p] = planes[base + i]!;
  }
  return out;
}

const DEFLATE = { strategy: constants.Z_HUFFMAN_ONLY };
const compressible = (t: SafeTensor) => t.dtype === 'I32' && t.data.byteLength > 0;

/** Encodes `entries` as a safetensors file with the I32 tensors compressed (see the file's comment). */
export function encodePayload(
  entries: ReadonlyArray<[string, SafeTensor]>,
  metadata: Record<string, string>,
): Uint8Array {
  const packed = entries.map(([, t]) =>
    compressible(t) ? deflateRawSync(shuffle(t.data), DEFLATE) : undefined,
  );
  return concatBytes(storedPayload(entries, metadata, packed));
}

const deflateRawAsync = promisify(deflateRaw);

/**
 * `encodePayload`, the same bytes, with the deflate running in libuv's thread pool (every tensor at once) instead
 * of on the main thread.
 */
export async function encodePayloadInBackground(
  entries: ReadonlyArray<[string, SafeTensor]>,
  metadata: Record<string, string>,
): Promise<Uint8Array> {
  return concatBytes(await encodePayloadPartsInBackground(entries, metadata));
}

/**
 * `encodePayloadInBackground`'s file as its parts, in order (the header, then each tensor's bytes: the entries' own
 * arrays where stored as they are, so they must stay unchanged until the parts are written): what a checkpoint
 * written in the background writes, without building one file-sized buffer.
 */
export async function encodePayloadPartsInBackground(
  entries: ReadonlyArray<[string, SafeTensor]>,
  metadata: Record<string, string>,
): Promise<Uint8Array[]> {
  const packed = await Promise.all(
    entries.map(([, t]) => (compressible(t) ? deflateRawAsync(shuffle(t.data), DEFLATE) : undefined)),
  );
  return storedPayload(entries, metadata, packed);
}

/** The safetensors file of `entries` as its parts, each I32 tensor stored as `packed[k]` (its deflated planes) when smaller. */
function storedPayload(
  entries: ReadonlyArray<[string, SafeTensor]>,
  metadata: Record<string, string>,
  packed: ReadonlyArray<Uint8Array | undefined>,
): Uint8Array[] {
  const encoding: Record<string, Encoded> = {};
  const stored = entries.map(([name, t], k): [string, SafeTensor] => {
    const p = packed[k];
    if (p === undefined || p.byteLength >= t.data.byteLength) return [name, t];
    encoding[name] = { codec: PAYLOAD_CODEC, dtype: 'I32', shape: [...t.shape] };
    return [
      name,
      { dtype: 'U8', shape: [p.byteLength], data: new Uint8Array(p.buffer, p.byteOffset, p.byteLength) },
    ];
  });
  return safetensorsParts(
    stored,
    Object.keys(encoding).length > 0 ? { ...metadata, [ENCODING_KEY]: JSON.stringify(encoding) } : metadata,
  );
}

/** Decodes a file written by `encodePayload` (or a version-1 file, uncompressed): tensors as they were given. */
export function decodePayload(bytes: Uint8Array, origin: string): SafetensorsFile {
  const file = decodeSafetensors(bytes, origin);
  const raw = file.metadata[ENCODING_KEY];
  if (raw === undefined) return file;
  let encoding: Record<string, Encoded>;
  try {
    encoding = JSON.parse(raw) as Record<string, Encoded>;
  } catch {
    throw new CheckpointError(`${origin}: its '${ENCODING_KEY}' metadata is not JSON: the file is damaged`);
  }
  for (const [name, e] of Object.entries(encoding)) {
    const t = file.tensors.get(name);
    if (t?.dtype !== 'U8' || e.codec !== PAYLOAD_CODEC || e.dtype !== 'I32') {
      throw new CheckpointError(
        `${origin}: tensor '${name}' is listed as ${JSON.stringify(e)} but stored as ${t ? t.dtype : 'nothing'}: the file is damaged or from another K* (codec ${PAYLOAD_CODEC} is read)`,
      );
    }
    const want = e.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES.I32;
    let planes: Uint8Array;
    try {
      planes = new Uint8Array(inflateRawSync(t.data));
    } catch (err) {
      throw new CheckpointError(
        `${origin}: tensor '${name}' does not decompress (${(err as Error).message}): the file is damaged`,
      );
    }
    if (planes.byteLength !== want) {
      throw new CheckpointError(
        `${origin}: tensor '${name}' decompresses to ${planes.byteLength} bytes, its shape [${e.shape}] needs ${want}: the file is damaged`,
      );
    }
    file.tensors.set(name, { dtype: 'I32', shape: e.shape, data: unshuffle(planes) });
  }
  return file;
}
