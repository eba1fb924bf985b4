import { fileURLToPath } from 'node:url';
import { describeOptimizerConformance } from '@kstar/testkit';
import { CAME } from '../src/index.ts';

describeOptimizerConformance({
  className: 'CAME',
  create: (options) => new CAME(options),
  trainOptions: { lr: 0.02, weightDecay: 0.01 },
  modulePath: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
});
