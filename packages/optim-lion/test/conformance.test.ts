import { fileURLToPath } from 'node:url';
import { describeOptimizerConformance } from '@kstar/testkit';
import { Lion } from '../src/index.ts';

describeOptimizerConformance({
  className: 'Lion',
  create: (options) => new Lion(options),
  trainOptions: { lr: 0.01, weightDecay: 0.01, decoupledWeightDecay: true },
  modulePath: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
});
