// README: packages/kernels/README.md (block 2). release/test/packed-install.test.ts type-checks and runs it against the
// published packages; scripts/readme-examples.mjs checks that the README shows the region below unchanged.
// type-checked only: the browser entry, under a bundler (apps/web runs it in Chromium)
// #region readme
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '@kstar/kernels'; // the browser entry under a bundler

setWasmPaths('/wasm/');
const { backend } = await selectBackend('auto'); // 'webgpu' where the browser has it, else 'wasm'
// #endregion
