import { fileURLToPath } from 'node:url';
import { describeOptimizerConformance } from '@kstar/testkit';
import { AdamW } from '../src/index.ts';

describeOptimizerConformance({
  className: 'AdamW',
  create: (options) => new AdamW(options),
  trainOptions: { lr: 0.02, weightDecay: 0.01 },
  modulePath: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
});
