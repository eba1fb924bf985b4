import { fileURLToPath } from 'node:url';
import { describeOptimizerConformance } from '@kstar/testkit';
import { LazyAdagrad } from '../src/index.ts';

describeOptimizerConformance({
  className: 'LazyAdagrad',
  create: (options) => new LazyAdagrad(options),
  trainOptions: { lr: 0.1 },
  modulePath: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
});
