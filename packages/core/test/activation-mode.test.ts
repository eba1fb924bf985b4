import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type ActivationStrategy,
  activationMode,
  InputError,
  recomputesSegments,
  type SavedTensorCodec,
  SPECIFICATION_VERSION,
  TrainingEngine,
} from '../src/index.ts';
import { sgd, toyModel } from './toy.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// Never called: only whether a strategy has a plan or a codec decides the mode.
const codec: SavedTensorCodec = {
  encode: () => {
    throw new Error('not called');
  },
  savedBytes: () => 0,
};
const strategy = (
  name: string,
  parts: Pick<ActivationStrategy, 'planSegments' | 'codec' | 'ops' | 'predictBytes'>,
): ActivationStrategy => ({
  specificationVersion: SPECIFICATION_VERSION,
  kind: 'activation',
  name,
  describe: () => ({}),
  ...parts,
});
// Each with whether it recomputes segments, per the contract (contracts.ts: plans and codecs require segmented mode).
const cases: Array<[ActivationStrategy, boolean]> = [
  [strategy('plan', { planSegments: (stages) => [stages.map((_, i) => i)] }), true],
  [strategy('store', { codec }), true],
  [strategy('ops', { ops: { attention: (q) => q } }), false],
  [strategy('bytes', { predictBytes: () => 1 }), false],
];

describe('recomputing strategies need segmented mode (the one rule)', () => {
  it.each(cases.map(([s, r]) => [s.name, s, r] as const))(
    '%s recomputes segments: %s',
    (_, s, recomputes) => {
      expect(recomputesSegments(s)).toBe(recomputes);
    },
  );

  it('picks segmented when one strategy recomputes, the request or the fallback otherwise, and refuses full', () => {
    for (const [a, ra] of cases) {
      for (const [b, rb] of cases) {
        const recomputes = ra || rb;
        for (const fallback of ['full', 'segmented'] as const) {
          expect(activationMode([a, b], undefined, fallback)).toBe(recomputes ? 'segmented' : fallback);
          expect(activationMode([a, b], 'segmented', fallback)).toBe('segmented');
          if (recomputes) {
            expect(() => activationMode([a, b], 'full', fallback)).toThrow(InputError);
          } else expect(activationMode([a, b], 'full', fallback)).toBe('full');
        }
      }
    }
  });

  it('the refusal names the offending input and what to do, as the caller words them', () => {
    expect(() => activationMode([cases[1]![0]], 'full')).toThrow(
      "activation strategy 'store' recomputes segments, which full-graph mode does not do: use mode 'segmented'",
    );
    expect(() =>
      activationMode([cases[0]![0]], 'full', 'full', {
        what: '--activations plan',
        fullMode: '--mode full',
        fix: 'drop --mode full',
        code: 'E_CONFIG',
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'E_CONFIG',
        message: expect.stringMatching(/^--activations plan .* --mode full does not do: drop --mode full$/),
      }),
    );
  });

  it('the engine asks it: full-graph mode refuses a plan, a codec and segment codecs, and takes ops alone', () => {
    const model = toyModel({ vocab: 12, dim: 4, depth: 2, seed: 1 });
    const full = { optimizer: sgd(0.1), mode: 'full' as const };
    for (const [s, recomputes] of cases) {
      const make = () => new TrainingEngine(model, { ...full, activations: [s] });
      if (recomputes) expect(make).toThrow(`activation strategy '${s.name}' recomputes segments`);
      else make().dispose(); // accepted
    }
    expect(
      () => new TrainingEngine(model, { ...full, segmentCodecs: model.stages.map(() => codec) }),
    ).toThrow("activation strategy 'segmentCodecs' recomputes segments");
    for (const v of model.variables.values()) v.dispose();
  });
});
