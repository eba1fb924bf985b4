import { describe, expect, it } from 'vitest';
import { TrainConfigSchema } from '../src/config.ts';
import { type FlagTable, parseCommandFlags, parseTrainFlags, TRAIN_FLAGS, TRAIN_HELP } from '../src/flags.ts';
import { OPTIMIZERS } from '../src/optimizers.ts';

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

describe('kstar train flags: one table gives parsing, choices and help', () => {
  it("every flag's choices are what the config schema accepts (or the optimizer registry), listed in the help", () => {
    const withChoices = Object.entries(TRAIN_FLAGS).filter(([, f]) => f.choices);
    expect(withChoices.length).toBeGreaterThanOrEqual(7);
    for (const [flag, f] of withChoices) {
      const field = TrainConfigSchema.shape[camel(flag) as keyof typeof TrainConfigSchema.shape];
      // z.enum fields (optional/default wrappers unwrapped) hold their options; `optimizer` is a name the registry checks.
      const inner = 'unwrap' in field ? field.unwrap() : field;
      const accepted =
        flag === 'optimizer' ? Object.keys(OPTIMIZERS) : 'options' in inner ? inner.options : [];
      expect([...f.choices!], flag).toEqual(accepted);
      expect(TRAIN_HELP, flag).toContain(`--${flag} ${f.choices!.join('|')}`);
    }
  });

  it('every flag but help and config is a config field, and reaches it typed', () => {
    for (const flag of Object.keys(TRAIN_FLAGS)) {
      if (flag === 'help' || flag === 'config') continue;
      const field = flag === 'optimizer-option' ? 'optimizerOptions' : camel(flag);
      expect(Object.hasOwn(TrainConfigSchema.shape, field), flag).toBe(true);
      expect(TRAIN_HELP).toContain(`--${flag}`);
    }
    const { overrides } = parseTrainFlags([
      '--steps',
      '3',
      '--lr',
      '1e-3',
      '--eval-only',
      '--mode=segmented',
    ]);
    expect(overrides).toEqual({ steps: 3, lr: 1e-3, evalOnly: true, mode: 'segmented' });
  });

  it("a subcommand's number flags are decimal, integers for int, and at least their min", () => {
    const table: FlagTable = {
      n: { type: 'int', min: 1, help: '' },
      t: { type: 'number', min: 0, help: '' },
      s: { type: 'int', help: '' },
    };
    const parse = (...argv: string[]) => parseCommandFlags(argv, table, 'kstar test');
    expect(parse('--n', '3', '--t', '.5', '--s', '-7')).toEqual({ n: 3, t: 0.5, s: -7 });
    for (const [flag, text, want] of [
      ['n', '0', 'an integer ≥ 1'],
      ['n', '1.5', 'an integer ≥ 1'],
      ['n', '0x2', 'an integer ≥ 1'],
      ['t', '-0.1', 'a number ≥ 0'],
      ['s', '1e400', 'an integer'],
    ]) {
      expect(() => parse(`--${flag}`, text!), text).toThrow(
        `--${flag} '${text}' is invalid: it must be ${want}`,
      );
    }
  });
});
