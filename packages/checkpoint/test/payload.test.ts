import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSafetensors, encodeSafetensors } from '@kstar/core';
import { describe, expect, it } from 'vitest';
import {
  CheckpointError,
  decodePayload,
  encodePayload,
  encodePayloadInBackground,
  encodePayloadPartsInBackground,
  sha256,
  writePendingFiles,
} from '../src/index.ts';

describe('checkpoint payload (format version 2)', () => {
  it('round-trips I32 tensors losslessly, leaves F32 as is, and names damage', () => {
    const words = new Int32Array(1000).map((_, i) => ((i * 2654435761) ^ (i << 20)) | 0);
    // bf16-like words: a few exponents in the high bytes, so compression pays.
    const bf16 = new Int32Array(1000).map((_, i) => (0x3c00 + (i % 7)) * 0x10000 + ((i * 37) & 0xffff));
    const f32 = new Float32Array([1.5, -2, 3.25]);
    const entries: Array<[string, { dtype: 'I32' | 'F32'; shape: number[]; data: Uint8Array }]> = [
      ['noise', { dtype: 'I32', shape: [10, 100], data: new Uint8Array(words.buffer) }],
      ['bf16', { dtype: 'I32', shape: [1000], data: new Uint8Array(bf16.buffer) }],
      ['f', { dtype: 'F32', shape: [3], data: new Uint8Array(f32.buffer) }],
    ];
    const bytes = encodePayload(entries, { optimizer: 'x' });
    const plain = encodeSafetensors(entries, { optimizer: 'x' });
    expect(bytes.byteLength).toBeLessThan(plain.byteLength);
    const stored = decodeSafetensors(bytes);
    expect(stored.tensors.get('bf16')!.dtype).toBe('U8'); // compressed
    expect(stored.tensors.get('f')!.dtype).toBe('F32');
    const back = decodePayload(bytes, 'x.safetensors');
    expect(back.metadata.optimizer).toBe('x');
    for (const [name, t] of entries) {
      const b = back.tensors.get(name)!;
      expect([b.dtype, ...b.shape]).toEqual([t.dtype, ...t.shape]);
      expect(Buffer.from(b.data).equals(Buffer.from(t.data))).toBe(true);
    }
    // A version-1 (uncompressed) file reads as is.
    expect(
      Buffer.from(decodePayload(plain, 'v1').tensors.get('bf16')!.data).equals(Buffer.from(bf16.buffer)),
    ).toBe(true);
    // Compressed bytes damaged past the SHA-256 check (e.g. written so by another program): a CheckpointError.
    const broken = encodeSafetensors(
      [['bf16', { dtype: 'U8', shape: [4], data: new Uint8Array([255, 255, 255, 255]) }]],
      { kstar_encoding: JSON.stringify({ bf16: { codec: 'bytes4-deflate', dtype: 'I32', shape: [1000] } }) },
    );
    expect(() => decodePayload(broken, 'b.safetensors')).toThrow(CheckpointError);
    expect(() => decodePayload(broken, 'b.safetensors')).toThrow(/b\.safetensors: tensor 'bf16' .*damaged/);
  });

  it('encodes the same bytes in the background (deflate in the thread pool) as on the main thread', async () => {
    const bf16 = new Int32Array(4096).map((_, i) => (0x3c00 + (i % 5)) * 0x10000 + ((i * 91) & 0xffff));
    const entries: Array<[string, { dtype: 'I32' | 'F32'; shape: number[]; data: Uint8Array }]> = [
      ['w/bf16', { dtype: 'I32', shape: [4096], data: new Uint8Array(bf16.buffer) }],
      ['b', { dtype: 'F32', shape: [2], data: new Uint8Array(new Float32Array([0.5, -1]).buffer) }],
      ['empty', { dtype: 'I32', shape: [0], data: new Uint8Array(0) }],
    ];
    const main = encodePayload(entries, { format: 'split24' });
    const background = await encodePayloadInBackground(entries, { format: 'split24' });
    expect(decodeSafetensors(main).tensors.get('w/bf16')!.dtype).toBe('U8'); // compressed, so the codec ran
    expect(Buffer.from(background).equals(Buffer.from(main))).toBe(true);
    // As parts (header, then each tensor's bytes; float32 ones are the given arrays themselves), written one after
    // the other and hashed as they are written: the same file and the SHA-256 of the whole (node:crypto, one pass).
    const parts = await encodePayloadPartsInBackground(entries, { format: 'split24' });
    expect(parts).toContain(entries[1]![1].data);
    const dir = mkdtempSync(join(tmpdir(), 'kstar-parts-'));
    const [listed] = await writePendingFiles(dir, [{ path: 'p.safetensors', encode: async () => parts }]);
    const written = readFileSync(join(dir, 'p.safetensors'));
    expect(written.equals(Buffer.from(main))).toBe(true);
    expect(listed).toMatchObject({ bytes: main.byteLength, sha256: sha256(main) });
  });
});
