// README: packages/kernels/README.md (block 1). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
import { parameterSetup } from '../example-setup.ts';
import * as tfjs from '@tensorflow/tfjs';

const { param, grad, step } = parameterSetup();
const m = tfjs.variable(tfjs.zerosLike(param), false);
const v = tfjs.variable(tfjs.zerosLike(param), false);
// #region readme
import * as tf from '@tensorflow/tfjs';
import { adamwUpdate, backendMemory, selectBackend, shutdownWebGPU } from '@kstar/kernels';

const { backend, tried } = await selectBackend('auto', { log: console.log });
// … after tf.variableGrads(...) has returned:
adamwUpdate(param, grad, m, v, { lr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step });
console.log(backendMemory()); // { backend: 'webgpu', gpuBytesInUse, gpuBytesAllocated, peakGpuBytesInUse, … }
shutdownWebGPU(); // before exit: Dawn keeps Node alive while referenced
// #endregion
