// Tokens/s of `generate` (as `kstar sample` runs it) with and without @kstar/gpt's KV cache (issue 13).
// Usage (repo root):
//   node --conditions=@kstar/source --import tsx scripts/bench-kv-cache.ts --json bench/results/2026-12-03-kv-cache.json
//     [--presets tiny,small] [--backends cpu,wasm] [--prompt 16] [--tokens 64] [--machine TEXT]
// Per preset and backend: greedy generation of --tokens after a --prompt-token prompt (prompt + tokens within the
// context, where the cache serves), GPT-2 initialisation (seed 0), once without the cache and once with it, each
// after a 4-token warm-up; also whether both produced the same tokens.
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../apps/trainer/src/atomic-write.ts';
import { machineInfo } from '../apps/trainer/src/machine.ts';
import { createGPT, type GPTPresetName, generate, resolveConfig } from '../packages/gpt/src/index.ts';
import { selectBackend } from '../packages/kernels/src/index.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'string' },
    presets: { type: 'string', default: 'tiny,small' },
    backends: { type: 'string', default: 'cpu,wasm' },
    prompt: { type: 'string', default: '16' },
    tokens: { type: 'string', default: '64' },
    machine: { type: 'string', default: '2-core x86-64, Debian 12, Node 20 (shared with parallel jobs)' },
  },
});
if (values.json == null) {
  console.error('bench-kv-cache: --json FILE is required (e.g. bench/results/2026-12-03-kv-cache.json)');
  process.exit(2);
}
tf.env().set('PROD', true); // no tfjs-node banner
const promptLength = Number(values.prompt);
const tokens = Number(values.tokens);

async function tokensPerSecond(
  model: ReturnType<typeof createGPT>,
  prompt: number[],
  kvCache: boolean,
): Promise<{ tokensPerSecond: number; seconds: number; ids: number[] }> {
  const options = { tokens, temperature: 0, random: () => 0, kvCache };
  await generate(model, prompt, { ...options, tokens: 4 }, () => {}); // warm-up: kernels, wasm compile
  const t0 = performance.now();
  const ids = await generate(model, prompt, options, () => {});
  const seconds = (performance.now() - t0) / 1000;
  return { tokensPerSecond: tokens / seconds, seconds, ids };
}

const rows = [];
for (const backend of values.backends.split(',')) {
  await selectBackend(backend as 'cpu');
  for (const preset of values.presets.split(',')) {
    const config = resolveConfig(preset as GPTPresetName);
    if (promptLength + tokens > config.blockSize) {
      console.error(`bench-kv-cache: --prompt + --tokens exceed ${preset}'s context ${config.blockSize}`);
      process.exit(2);
    }
    const model = createGPT(config, { seed: 0 });
    const prompt = Array.from({ length: promptLength }, (_, i) => (i * 37 + 11) % config.vocabSize);
    const without = await tokensPerSecond(model, prompt, false);
    const withCache = await tokensPerSecond(model, prompt, true);
    model.dispose();
    const row = {
      preset,
      backend,
      promptTokens: promptLength,
      generatedTokens: tokens,
      withoutCache: { tokensPerSecond: without.tokensPerSecond, seconds: without.seconds },
      withCache: { tokensPerSecond: withCache.tokensPerSecond, seconds: withCache.seconds },
      speedup: withCache.tokensPerSecond / without.tokensPerSecond,
      sameTokens: without.ids.every((id, i) => id === withCache.ids[i]),
    };
    console.log(
      `${preset} on ${backend}: ${row.withoutCache.tokensPerSecond.toFixed(1)} → ${row.withCache.tokensPerSecond.toFixed(1)} tokens/s (${row.speedup.toFixed(2)}×), same tokens: ${row.sameTokens}`,
    );
    rows.push(row);
  }
}
writeFileAtomic(
  values.json,
  `${JSON.stringify(
    {
      benchmark: 'generate-kv-cache',
      command: `node --conditions=@kstar/source --import tsx scripts/bench-kv-cache.ts ${process.argv.slice(2).join(' ')}`,
      machine: { ...machineInfo(), note: values.machine },
      tfjs: tf.version.tfjs,
      rows,
    },
    null,
    2,
  )}\n`,
);
