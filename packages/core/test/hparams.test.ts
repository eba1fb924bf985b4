import { describe, expect, it } from 'vitest';
import { defineHparams, InputError, isBoolean, numberWhere, orNull } from '../src/index.ts';

interface Toy {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly clip: number | null;
  readonly nesterov: boolean;
}

const TOY = defineHparams<Toy, 'lr'>({
  name: 'toy',
  example: 'such as {lr: 0.1}',
  fields: {
    lr: {
      required: '(toy has no default): pass e.g. {lr: 0.1}',
      ok: numberWhere((x) => x > 0),
      rule: '> 0',
      ref: 'lr',
    },
    beta1: { default: 0.9, ok: numberWhere((x) => x >= 0 && x < 1), rule: 'in [0, 1)', ref: 'b1' },
    beta2: { default: 0.99, ok: numberWhere((x) => x >= 0 && x < 1), rule: 'in [0, 1)', ref: 'b2' },
    clip: {
      default: null,
      ok: (x) => x === 0 || orNull(numberWhere((x) => x > 0))(x),
      rule: '> 0, or 0 or null (off)',
      ref: 'clip_value',
      normalize: (x) => (x === 0 ? null : x),
    },
    nesterov: { default: false, ok: isBoolean, rule: 'true or false' },
  },
  extraOptions: ['impl'],
  crossCheck(hp, where) {
    if (hp.beta1 > hp.beta2) throw new InputError(`${where}: beta1 must not exceed beta2`);
  },
  reference: {
    name: 'toyFromReference',
    example: '{lr: 0.1}',
    pairs: [{ key: 'betas', fields: ['beta1', 'beta2'], shape: '[b1, b2]' }],
    ignored: { fused: { ok: isBoolean, rule: 'true or false' } },
  },
});

describe('defineHparams', () => {
  it('fills the defaults, keeps given values and freezes the result; required fields have no default', () => {
    expect(TOY.defaults).toEqual({ beta1: 0.9, beta2: 0.99, clip: null, nesterov: false });
    const hp = TOY.resolve({ lr: 0.5, beta2: 0.95, impl: 'x' });
    expect(hp).toEqual({ lr: 0.5, beta1: 0.9, beta2: 0.95, clip: null, nesterov: false });
    expect(Object.isFrozen(hp)).toBe(true);
    expect(() => TOY.resolve({})).toThrow('toy: lr is required (toy has no default): pass e.g. {lr: 0.1}');
  });

  it('a bad value gives the rule with the offending value, shown as numbers and JSON show it', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ lr: -2 }, 'toy: lr = -2 is invalid: it must be > 0'],
      [{ lr: Number.NaN }, 'toy: lr = NaN is invalid: it must be > 0'],
      [{ lr: '1e-3' }, 'toy: lr = "1e-3" is invalid: it must be > 0'],
      [{ lr: 1, beta1: 1 }, 'toy: beta1 = 1 is invalid: it must be in [0, 1)'],
      [{ lr: 1, nesterov: 'yes' }, 'toy: nesterov = "yes" is invalid: it must be true or false'],
      [{ lr: 1, clip: [1] }, 'toy: clip = [1] is invalid: it must be > 0, or 0 or null (off)'],
    ];
    for (const [options, message] of cases) {
      expect(() => TOY.resolve(options)).toThrow(InputError);
      expect(() => TOY.resolve(options)).toThrow(message);
    }
    expect(() => TOY.resolve({ lr: 1 }, 'Toy')).not.toThrow();
    expect(() => TOY.resolve({ lr: 0 }, 'Toy.fromConfig')).toThrow(/^Toy.fromConfig: lr = 0 is invalid/);
    expect(TOY.check('lr', 3)).toBe(3);
    expect(() => TOY.check('lr', 0)).toThrow('toy: lr = 0 is invalid: it must be > 0');
  });

  it('normalizes after the check and runs the cross-field check on the resolved values', () => {
    expect(TOY.resolve({ lr: 1, clip: 2 }).clip).toBe(2);
    expect(TOY.resolve({ lr: 1, clip: 0 }).clip).toBeNull();
    expect(() => TOY.resolve({ lr: 1, beta1: 0.99, beta2: 0.9 })).toThrow('toy: beta1 must not exceed beta2');
  });

  it('looks names up as own properties only: constructor, toString, __proto__ are unknown options', () => {
    for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      const options = Object.fromEntries([
        ['lr', 1],
        [name, 1],
      ]);
      expect(() => TOY.resolve(options), name).toThrow(
        `toy: unknown option '${name}': the options are lr, beta1, beta2, clip, nesterov, impl`,
      );
      expect(() => TOY.fromReference(options), name).toThrow(`unknown hyper-parameter '${name}'`);
    }
    expect(() => TOY.resolve(null)).toThrow('toy: options must be an object such as {lr: 0.1}, got null');
  });

  it('converts reference names and pairs; refuses a pair given twice, a bad pair and a bad ignored key', () => {
    expect(TOY.referenceNames).toEqual(['lr', 'b1', 'b2', 'betas', 'clip_value', 'fused']);
    expect(TOY.fromReference({ lr: 1, betas: [0.5, 0.6], clip_value: 3, fused: true })).toEqual({
      lr: 1,
      beta1: 0.5,
      beta2: 0.6,
      clip: 3,
    });
    expect(TOY.fromReference({ b1: 0.1 })).toEqual({ beta1: 0.1 });
    expect(() => TOY.fromReference({ betas: [0.5, 0.6], b1: 0.5 })).toThrow(
      'toyFromReference: give either betas or b1/b2, not both',
    );
    expect(() => TOY.fromReference({ betas: [0.5] })).toThrow(
      'toyFromReference: betas = [0.5] is invalid: it must be [b1, b2]',
    );
    expect(() => TOY.fromReference({ fused: 1 })).toThrow(
      'toyFromReference: fused = 1 is invalid: it must be true or false',
    );
    expect(() => TOY.fromReference({ nesterov: true })).toThrow(
      "toyFromReference: unknown hyper-parameter 'nesterov': accepted are lr, b1, b2, betas, clip_value, fused",
    );
    expect(() => TOY.fromReference(3)).toThrow(
      'toyFromReference: expected an object such as {lr: 0.1}, got 3',
    );
  });
});
