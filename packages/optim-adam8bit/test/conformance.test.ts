import { fileURLToPath } from 'node:url';
import { describeOptimizerConformance } from '@kstar/testkit';
import { Adam8bit } from '../src/index.ts';

describeOptimizerConformance({
  className: 'Adam8bit',
  create: (options) => new Adam8bit(options),
  trainOptions: { lr: 0.02, weightDecay: 0.01, minQuantizedSize: 1, blockSize: 16 },
  modulePath: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
});
