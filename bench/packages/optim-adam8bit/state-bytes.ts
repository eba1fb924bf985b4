/**
 * 8-bit Adam optimizer-state bytes on the gpt2-124m parameter shapes, predicted by `stateBytes()` and MEASURED by
 * creating the state of every parameter (cpu backend, one parameter at a time) and summing the bytes of its unique
 * buffers (int32 code words + float32 absmax, or float32 m and v). AdamW: 8 B per element. Two settings: the
 * bitsandbytes default (every tensor ≥ 4096 elements 8-bit, the tied embedding included) and `float32Embeddings`
 * (HF Trainer's rule: the embedding keeps float32 state).
 *
 *   node --conditions=@kstar/source --import tsx bench/packages/optim-adam8bit/state-bytes.ts
 *
 * Writes bench/packages/optim-adam8bit/results/state-bytes-gpt2-124m.json and prints a Markdown table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { uniqueBufferBytes } from '@kstar/core';
import { adam8bit } from '@kstar/optim-adam8bit';
import * as tf from '@tensorflow/tfjs';

const D = 768;
const VOCAB = 50257;
const CTX = 1024;
const LAYERS = 12;

function gpt2Shapes(): [string, number[], 'embedding' | 'matrix' | 'vector'][] {
  const out: [string, number[], 'embedding' | 'matrix' | 'vector'][] = [
    ['wte', [VOCAB, D], 'embedding'],
    ['wpe', [CTX, D], 'embedding'],
  ];
  for (let l = 0; l < LAYERS; l++) {
    const h = `h${l}`;
    out.push(
      [`${h}.ln1.gamma`, [D], 'vector'],
      [`${h}.ln1.beta`, [D], 'vector'],
      [`${h}.attn.wqkv`, [D, 3 * D], 'matrix'],
      [`${h}.attn.bqkv`, [3 * D], 'vector'],
      [`${h}.attn.wo`, [D, D], 'matrix'],
      [`${h}.attn.bo`, [D], 'vector'],
      [`${h}.ln2.gamma`, [D], 'vector'],
      [`${h}.ln2.beta`, [D], 'vector'],
      [`${h}.mlp.wfc`, [D, 4 * D], 'matrix'],
      [`${h}.mlp.bfc`, [4 * D], 'vector'],
      [`${h}.mlp.wproj`, [4 * D, D], 'matrix'],
      [`${h}.mlp.bproj`, [D], 'vector'],
    );
  }
  out.push(['lnf.gamma', [D], 'vector'], ['lnf.beta', [D], 'vector']);
  return out;
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const shapes = gpt2Shapes();
  const params = shapes.reduce((a, [, s]) => a + numel(s), 0);
  const adamw = 8 * params;
  const settings: Record<string, unknown>[] = [];
  for (const [label, options] of [
    ['bitsandbytes default (8-bit for every tensor ≥ 4096 elements)', {}],
    ['float32Embeddings: true (wte, wpe keep float32 state)', { float32Embeddings: true }],
  ] as const) {
    const plugin = adam8bit(options);
    let predicted = 0;
    let measured = 0;
    for (const [name, shape, role] of shapes) {
      predicted += plugin.stateBytes(shape, role);
      const s = plugin.init({ name: `bench/${name}`, shape, role });
      measured += uniqueBufferBytes(Object.values(s));
      tf.dispose(Object.values(s));
    }
    settings.push({
      label,
      options,
      predictedBytes: predicted,
      measuredBytes: measured,
      bytesPerParam: measured / params,
      fractionOfAdamW: measured / adamw,
    });
  }
  const result = {
    model: 'gpt2-124m',
    params,
    adamwStateBytes: adamw,
    blockSize: 256,
    minQuantizedSize: 4096,
    settings,
    largeTensorBytesPerParam: 2 + 8 / 256,
  };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/state-bytes-gpt2-124m.json', import.meta.url),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  console.log(`| setting | state bytes (measured = predicted) | B/param | vs AdamW ${adamw} |`);
  console.log('| --- | --- | --- | --- |');
  for (const s of settings as {
    label: string;
    measuredBytes: number;
    predictedBytes: number;
    bytesPerParam: number;
    fractionOfAdamW: number;
  }[]) {
    console.log(
      `| ${s.label} | ${s.measuredBytes}${s.measuredBytes === s.predictedBytes ? '' : ` (predicted ${s.predictedBytes})`} | ${s.bytesPerParam.toFixed(3)} | ${(100 * s.fractionOfAdamW).toFixed(1)}% |`,
    );
  }
}

await main();
