import { BackendUnavailableError, InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { backendSelected, noBackendStarted } from './backend-attempts.ts';
import type { BackendAttempt, BackendName, BackendRequest, SelectBackendOptions } from './backends.ts';

/** `auto` in a browser: the page's own WebGPU, else wasm, else cpu (no tfjs-node, no Dawn). */
export const BROWSER_AUTO_ORDER: readonly BackendName[] = ['webgpu', 'wasm', 'cpu'];

/** The backends a browser can start, imported by literal specifier so that bundlers include them. */
const BROWSER_LOADERS: Record<string, () => Promise<unknown>> = {
  '@tensorflow/tfjs-backend-webgpu': () => import('@tensorflow/tfjs-backend-webgpu'),
  '@tensorflow/tfjs-backend-wasm': () => import('@tensorflow/tfjs-backend-wasm'),
};

function browserInstallHint(backend: BackendName): string {
  switch (backend) {
    case 'webgpu':
      return 'use a browser with WebGPU (Chrome/Edge 113+, or --enable-unsafe-webgpu), or request wasm';
    case 'wasm':
      return "serve tfjs-backend-wasm's .wasm files and call setWasmPaths() from @tensorflow/tfjs-backend-wasm, or request cpu";
    case 'cpu':
      return "import '@tensorflow/tfjs' (or '@tensorflow/tfjs-backend-cpu') before selecting the backend";
    case 'tensorflow':
      return 'tfjs-node runs in Node only: request webgpu, wasm or cpu in a browser';
  }
}

async function start(name: BackendName, load: (pkg: string) => Promise<unknown>): Promise<void> {
  if (name === 'tensorflow') throw new Error('tfjs-node does not run in a browser');
  if (name === 'webgpu') {
    const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<unknown> } } }).navigator
      ?.gpu;
    if (gpu == null) throw new Error('navigator.gpu is undefined: this browser has no WebGPU');
    if ((await gpu.requestAdapter()) == null) throw new Error('navigator.gpu.requestAdapter() returned null');
    if (tf.findBackendFactory('webgpu') == null) await load('@tensorflow/tfjs-backend-webgpu');
  }
  if (name === 'wasm' && tf.findBackendFactory('wasm') == null) await load('@tensorflow/tfjs-backend-wasm');
  if (name === 'cpu' && tf.findBackendFactory('cpu') == null) {
    throw new Error("the 'cpu' backend is not registered");
  }
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') returned false`);
  await tf.ready();
}

/**
 * The browser's `selectBackend`: same contract as the Node one (`@kstar/kernels` in Node), with `auto` trying
 * WebGPU (navigator.gpu must give an adapter), then wasm, then cpu. Registers the K* kernels on success.
 */
export async function selectBackend(
  request: BackendRequest,
  options: SelectBackendOptions = {},
): Promise<{ backend: BackendName; tried: BackendAttempt[] }> {
  const names = ['auto', ...BROWSER_AUTO_ORDER];
  if (!names.includes(request)) {
    throw new InputError(
      `unknown browser backend ${JSON.stringify(request)}: use one of ${names.map((n) => `'${n}'`).join(', ')}`,
    );
  }
  const load = options.load ?? ((pkg: string) => BROWSER_LOADERS[pkg]!());
  const log = options.log ?? (() => {});
  const tried: BackendAttempt[] = [];
  for (const backend of request === 'auto' ? BROWSER_AUTO_ORDER : [request as BackendName]) {
    try {
      await start(backend, load);
    } catch (e) {
      const reason = (e as Error).message;
      tried.push({ backend, ok: false, reason });
      log(`backend ${backend}: unavailable (${reason})`);
      if (request !== 'auto') {
        throw new BackendUnavailableError(
          backend,
          `backend '${backend}' requested but it could not start (${reason}): ${browserInstallHint(backend)}`,
        );
      }
      continue;
    }
    return backendSelected(backend, tried, log);
  }
  throw noBackendStarted(tried, browserInstallHint('cpu'));
}
