import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTokenizer } from '@kstar/data';
import { createGPT, decodeHfGpt2, decodeSafetensors, hfGpt2Table } from '@kstar/gpt';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../src/checkpoint/read.ts';
import { float32Weights, modelFromCheckpoint } from '../src/checkpoint/weights.ts';
import type { TrainReport } from '../src/index.ts';
import { cli, QUICK_RUN } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-export-'));

const fp32 = join(dir, 'fp32');
const s24 = join(dir, 's24');
const ckpt = (d: string) => join(d, 'step-00000002');

beforeAll(async () => {
  for (const [d, extra] of [
    [fp32, []],
    [s24, ['--master-weights', 'split24', '--optimizer', 'adam8bit']],
  ] as const) {
    const r = await cli(['train', ...QUICK_RUN, '--steps', '2', '--save-dir', d, ...extra]);
    expect(r.code, r.stderr).toBe(0);
  }
}, 300_000);

describe('kstar export → --init-from', () => {
  it.each([
    ['float32 weights', fp32],
    ['split24 weights (exported at 24 bits)', s24],
  ])(
    '%s: the exported file holds the checkpoint weights exactly, and --init-from loads them',
    async (_, d) => {
      const out = join(d, 'hf');
      const r = await cli(['export', '--checkpoint', ckpt(d), '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
      expect(config).toMatchObject({
        model_type: 'gpt2',
        n_layer: 2,
        n_embd: 128,
        n_head: 4,
        vocab_size: 256,
      });
      const bytes = new Uint8Array(readFileSync(join(out, 'model.safetensors')));
      const names = [...decodeSafetensors(bytes).tensors.keys()];
      expect(names).toContain('transformer.h.1.attn.c_attn.weight');
      const model = await modelFromCheckpoint(readCheckpoint(ckpt(d)));
      const want = await float32Weights(model);
      const got = decodeHfGpt2(bytes, model.config, 'exported');
      for (const [name, w] of want)
        expect(Buffer.from(got.get(name)!.buffer).equals(Buffer.from(w.buffer)), name).toBe(true);
      // Logits after export → import equal the checkpoint model's.
      const imported = createGPT(model.config, { seed: 99 });
      for (const [name, v] of imported.variables) v.assign(tf.tensor(got.get(name)!, v.shape));
      const tokens = tf.tensor2d([[1, 72, 101, 108, 108, 111, 32, 119]], [1, 8], 'int32');
      const a = model.forwardLogits(tokens);
      const b = imported.forwardLogits(tokens);
      expect(Buffer.from((await a.data()).buffer).equals(Buffer.from((await b.data()).buffer))).toBe(true);
      tf.dispose([a, b, tokens]);
      // --init-from starts a run at those weights: its first loss equals the checkpoint model's loss on that batch,
      // which differs from a fresh model's.
      const report = join(d, 'init.json');
      const init = await cli(['train', ...QUICK_RUN, '--steps', '1', '--init-from', out, '--report', report]);
      expect(init.code, init.stderr).toBe(0);
      const fresh = join(d, 'fresh.json');
      await cli(['train', ...QUICK_RUN, '--steps', '1', '--report', fresh]);
      const l0 = (JSON.parse(readFileSync(report, 'utf8')) as TrainReport).losses[0]!;
      const lf = (JSON.parse(readFileSync(fresh, 'utf8')) as TrainReport).losses[0]!;
      expect(l0).toBeLessThan(lf - 0.2);
      model.dispose();
      imported.dispose();
    },
  );

  it('bfloat16 export holds the weights rounded to bfloat16', async () => {
    const out = join(fp32, 'hf-bf16');
    expect(
      (await cli(['export', '--checkpoint', ckpt(fp32), '--out', out, '--dtype', 'bfloat16'])).code,
    ).toBe(0);
    const file = decodeSafetensors(new Uint8Array(readFileSync(join(out, 'model.safetensors'))));
    expect(file.tensors.get('transformer.wte.weight')!.dtype).toBe('BF16');
    const model = await modelFromCheckpoint(readCheckpoint(ckpt(fp32)));
    const got = decodeHfGpt2(
      new Uint8Array(readFileSync(join(out, 'model.safetensors'))),
      model.config,
      'bf16',
    );
    const w = (await float32Weights(model)).get('h0.mlp.wfc')!;
    const g = got.get('h0.mlp.wfc')!;
    for (let i = 0; i < w.length; i += 97)
      expect(Math.abs(g[i]! - w[i]!)).toBeLessThanOrEqual(Math.abs(w[i]!) * 2 ** -8);
    model.dispose();
  });

  it('--init-from errors name the file and what to change', async () => {
    const out = join(fp32, 'hf');
    const ctx = await cli(['train', ...QUICK_RUN, '--steps', '1', '--init-from', out, '--context', '64']);
    expect(ctx.code).toBe(2);
    expect(ctx.stderr).toMatch(
      /model\.safetensors: context 128 .* differs from the run's 64: pass --context 128/,
    );
    const vocab = await cli([
      'train',
      ...QUICK_RUN,
      '--steps',
      '1',
      '--init-from',
      out,
      '--tokenizer',
      'gpt2',
    ]);
    expect(vocab.code).toBe(2);
    expect(vocab.stderr).toMatch(/vocabulary 256 .* differs from the run's 50257/);
    const missing = await cli(['train', ...QUICK_RUN, '--init-from', join(dir, 'nope.safetensors')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--init-from '.*nope\.safetensors' does not exist/);
  });
});

describe('kstar sample', () => {
  it("temperature 0 equals the argmax of the model's own logits, step by step", async () => {
    const r = await cli([
      'sample',
      '--checkpoint',
      ckpt(fp32),
      '--prompt',
      'The ',
      '--tokens',
      '12',
      '--temperature',
      '0',
    ]);
    expect(r.code, r.stderr).toBe(0);
    // Reference: the model's full logits over the growing sequence, argmax of the last row, in this test.
    const model = await modelFromCheckpoint(readCheckpoint(ckpt(fp32)));
    const tok = createTokenizer('byte');
    const ids = Array.from(tok.encode('The '));
    const generated: number[] = [];
    for (let n = 0; n < 12; n++) {
      const x = tf.tensor2d([ids], [1, ids.length], 'int32');
      const logits = model.forwardLogits(x);
      const all = (await logits.array()) as number[][][];
      const row = all[0]![ids.length - 1]!;
      const best = row.indexOf(Math.max(...row));
      ids.push(best);
      generated.push(best);
      tf.dispose([x, logits]);
    }
    model.dispose();
    expect(r.stdout).toBe(`${tok.decode(generated)}\n`);
  });

  it('with a seed it repeats; another seed gives another text', async () => {
    const args = [
      'sample',
      '--checkpoint',
      ckpt(s24),
      '--prompt',
      'A',
      '--tokens',
      '24',
      '--temperature',
      '1',
      '--top-k',
      '0',
    ];
    const a = await cli([...args, '--seed', '7']);
    const b = await cli([...args, '--seed', '7']);
    const c = await cli([...args, '--seed', '8']);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(c.stdout).not.toBe(a.stdout);
  });

  it('bad flags are one-line errors', async () => {
    const r = await cli(['sample', '--checkpoint', ckpt(fp32), '--prompt', 'x', '--top-k', '2.5']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--top-k '2.5' is invalid: it must be an integer ≥ 0/);
  });
});

it('the hand-written GPT-2 table matches the exported names', () => {
  const file = decodeSafetensors(new Uint8Array(readFileSync(join(fp32, 'hf', 'model.safetensors'))));
  expect([...file.tensors.keys()].sort()).toEqual(
    hfGpt2Table({ vocabSize: 256, nLayer: 2, nHead: 4, nEmbd: 128, blockSize: 128 })
      .map((t) => t.hf)
      .sort(),
  );
});
