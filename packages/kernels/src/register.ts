// Side-effect entry: `import '@kstar/kernels/register'` registers every K* kernel with tfjs.
import { registerKstarKernels } from './register-kernels.ts';

registerKstarKernels();
