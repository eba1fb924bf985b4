import { describe, expect, it } from 'vitest';
import { parseTrainFlags } from '../src/flags.ts';
import { parseTrainConfig, prepareRun } from '../src/index.ts';

const prepare = (args: string[]) => prepareRun(parseTrainConfig(parseTrainFlags(args).overrides));

describe('model shape flags', () => {
  it('--layers --d-model --heads --context --vocab override the preset', () => {
    const run = prepare([
      '--layers',
      '3',
      '--d-model',
      '96',
      '--heads',
      '3',
      '--context',
      '64',
      '--vocab',
      '300',
    ]);
    expect(run.modelConfig).toEqual({ vocabSize: 300, nLayer: 3, nHead: 3, nEmbd: 96, blockSize: 64 });
    expect(prepare(['--preset', 'gpt2-medium', '--tokenizer', 'gpt2']).modelConfig).toMatchObject({
      nLayer: 24,
      nEmbd: 1024,
    });
  });

  it("a width not divisible by the heads, a vocabulary below the tokenizer's, a zero are clear errors", () => {
    expect(() => prepare(['--d-model', '130', '--heads', '4'])).toThrow(
      /--d-model 130 is not divisible by --heads 4: choose heads dividing the width \(e\.g\. --heads 2\)/,
    );
    expect(() => prepare(['--heads', '5'])).toThrow(/--d-model 128 is not divisible by --heads 5/);
    expect(() => prepare(['--vocab', '100'])).toThrow(
      /--vocab 100 is smaller than the byte tokenizer's 256 tokens: pass --vocab 256 or more/,
    );
    expect(() => prepare(['--layers', '0'])).toThrow(/field 'layers'/);
  });
});
