import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePayload, type Manifest, sealManifest, sha256 } from '@kstar/checkpoint';
import { decodeSafetensors, encodeSafetensors } from '@kstar/gpt';
import { describe, expect, it } from 'vitest';
import { saveEvery } from './quick-run.ts';
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
  it('adam8bit + split24: compressed files, and a version-1 checkpoint of the same state resumes identically', async () => {
    const saveDir = join(dir, 'save');
    const whole = await train([...COMMON, '--steps', '4', ...saveEvery(saveDir, 2, 5)]);
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
