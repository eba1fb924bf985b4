import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSafetensors, encodeSafetensors } from '@kstar/gpt';
import { describe, expect, it } from 'vitest';
import { CheckpointError, type Manifest } from '../src/checkpoint/format.ts';
import { decodePayload, encodePayload } from '../src/checkpoint/payload.ts';
import { sealManifest, sha256 } from '../src/checkpoint/write.ts';
import { TINY_MODEL, trainReport } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-format-'));
const TINY = [...TINY_MODEL, '--batch', '2'];
const COMMON = [
  ...TINY,
  '--eval-every',
  '0',
  '--sample-tokens',
  '0',
  '--optimizer',
  'adam8bit',
  '--master-weights',
  'split24',
];

const train = trainReport;

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

  it('adam8bit + split24: compressed files, and a version-1 checkpoint of the same state resumes identically', async () => {
    const saveDir = join(dir, 'save');
    const whole = await train([
      ...COMMON,
      '--steps',
      '4',
      '--save-dir',
      saveDir,
      '--save-every',
      '2',
      '--keep',
      '5',
    ]);
    const ckpt = join(saveDir, 'step-00000002');
    const manifest = JSON.parse(readFileSync(join(ckpt, 'manifest.json'), 'utf8')) as Manifest;
    expect(manifest.formatVersion).toBe(2);
    // Rewrite it as format version 1 wrote it: every tensor uncompressed, the manifest's sizes and checksums redone.
    for (const f of manifest.files) {
      if (!f.path.endsWith('.safetensors')) continue;
      const path = join(ckpt, f.path);
      const stored = new Uint8Array(readFileSync(path));
      expect(decodeSafetensors(stored).metadata.kstar_encoding, f.path).toBeDefined();
      const file = decodePayload(stored, path);
      const { kstar_encoding: _, ...metadata } = file.metadata;
      const v1 = encodeSafetensors([...file.tensors], metadata);
      expect(v1.byteLength).toBeGreaterThan(stored.byteLength);
      writeFileSync(path, v1);
      Object.assign(f, { bytes: v1.byteLength, sha256: sha256(v1) });
    }
    const { manifestSha256: _, ...rest } = manifest;
    writeFileSync(join(ckpt, 'manifest.json'), JSON.stringify(sealManifest({ ...rest, formatVersion: 1 })));
    const resumed = await train(['--resume', ckpt]);
    expect(resumed.losses).toEqual(whole.losses.slice(2));
  });
});
