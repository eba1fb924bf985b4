import { fileURLToPath } from 'node:url';
import { describeOptimizerConformance } from '@kstar/testkit';
import { Adafactor } from '../src/index.ts';

describeOptimizerConformance({
  className: 'Adafactor',
  create: (options) => new Adafactor(options),
  trainOptions: { relativeStep: false, scaleParameter: false, lr: 0.02, beta1: 0.9 },
  modulePath: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
});

// HF's defaults: relative step and parameter scaling, no learning rate to schedule.
describeOptimizerConformance({
  className: 'Adafactor',
  create: (options) => new Adafactor(options),
  trainOptions: {},
  modulePath: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
  lossRatio: 0.9,
});
