import { InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { countParamsFormula, createGPT, GPT_PRESETS, resolveConfig } from '../src/index.ts';

describe('GPT config', () => {
  it('resolves presets with overrides', () => {
    expect(resolveConfig('tiny')).toEqual({
      vocabSize: 256,
      nLayer: 2,
      nHead: 4,
      nEmbd: 128,
      blockSize: 128,
    });
    expect(resolveConfig('small', { vocabSize: 300 }).vocabSize).toBe(300);
    expect(resolveConfig('gpt2-124m').vocabSize).toBe(50257);
    expect(resolveConfig({ ...GPT_PRESETS.tiny, nLayer: 1 }).nLayer).toBe(1);
  });

  it('rejects bad configs with InputError naming the value', () => {
    expect(() => resolveConfig('tiny', { nHead: 5 })).toThrow(/nEmbd = 128 is not divisible by nHead = 5/);
    expect(() => resolveConfig('tiny', { nHead: 5 })).toThrow(InputError);
    expect(() => resolveConfig('tiny', { nLayer: 0 })).toThrow(InputError);
    expect(() => resolveConfig('tiny', { blockSize: 1.5 })).toThrow(/blockSize = 1.5/);
    expect(() => resolveConfig('huge' as 'tiny')).toThrow(/unknown GPT preset 'huge'/);
    expect(() => createGPT({ vocabSize: 1, nLayer: 1, nHead: 1, nEmbd: 4, blockSize: 4 })).toThrow(
      InputError,
    );
  });

  it('counts parameters in closed form: 124,439,808 for gpt2-124m, exact for tiny', async () => {
    await tf.setBackend('cpu');
    expect(countParamsFormula(GPT_PRESETS['gpt2-124m'])).toBe(124_439_808);
    const model = createGPT(GPT_PRESETS.tiny, { seed: 0 });
    expect(model.paramCount).toBe(countParamsFormula(GPT_PRESETS.tiny));
    let n = 0;
    for (const v of model.variables.values()) n += v.size;
    expect(n).toBe(model.paramCount);
    console.log(
      `params: tiny ${countParamsFormula(GPT_PRESETS.tiny)}, small ${countParamsFormula(GPT_PRESETS.small)}, gpt2-124m ${countParamsFormula(GPT_PRESETS['gpt2-124m'])}`,
    );
    model.dispose();
  });
});

describe('GPT-2 family presets', () => {
  it.each([
    // Parameter counts of Hugging Face's gpt2-medium, gpt2-large and gpt2-xl (tied head counted once).
    ['gpt2-medium', 354_823_168],
    ['gpt2-large', 774_030_080],
    ['gpt2-xl', 1_557_611_200],
  ] as const)('%s has %i parameters', (name, count) => {
    expect(countParamsFormula(GPT_PRESETS[name])).toBe(count);
    expect(() => resolveConfig(name)).not.toThrow();
  });
});
