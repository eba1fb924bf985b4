import { createRequire } from 'node:module';
import { BackendUnavailableError, InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { backendSelected, noBackendStarted } from './backend-attempts.ts';
import { initWebGPU, probeWebGPUAdapter, shutdownWebGPU } from './webgpu-node.ts';

export type BackendName = 'cpu' | 'wasm' | 'webgpu' | 'tensorflow';
export type BackendRequest = 'auto' | BackendName;

export interface BackendAttempt {
  backend: BackendName;
  ok: boolean;
  reason?: string;
}

export interface SelectBackendOptions {
  /** Receives one line per backend tried. */
  log?: (line: string) => void;
  /** Whether a package can be resolved (injectable for tests; default: `require.resolve` from this package). */
  resolve?: (pkg: string) => boolean;
  /** Loads a package (injectable for tests; default: dynamic `import`). A throw is recorded as the reason. */
  load?: (pkg: string) => Promise<unknown>;
}

/** `auto` tries these in order and takes the first that starts. */
export const AUTO_ORDER: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];
const NAMES: readonly string[] = ['auto', ...AUTO_ORDER];

const TFJS_NODE = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

const require = createRequire(import.meta.url);
/**
 * Backends K* depends on, imported with literal specifiers so that bundlers (the offline `pnpm bundle`) include them;
 * `webgpu` stays external to bundles (dawn.node sits next to its index.js). Optional peers (tfjs-node) load by name.
 */
const STATIC_LOADERS: Record<string, () => Promise<unknown>> = {
  '@tensorflow/tfjs-backend-wasm': () => import('@tensorflow/tfjs-backend-wasm'),
  '@tensorflow/tfjs-backend-webgpu': () => import('@tensorflow/tfjs-backend-webgpu'),
  webgpu: () => import('webgpu'),
};

function defaultLoad(pkg: string): Promise<unknown> {
  return STATIC_LOADERS[pkg]?.() ?? import(pkg);
}

function defaultResolve(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    // Inside a bundle nothing resolves by name, but the backends K* depends on are part of it.
    return pkg in STATIC_LOADERS && pkg !== 'webgpu';
  }
}

/** What to install for each backend, appended to every `BackendUnavailableError`. */
export function installHint(backend: BackendName): string {
  switch (backend) {
    case 'tensorflow':
      return (
        "install it with 'pnpm add @tensorflow/tfjs-node' (or '@tensorflow/tfjs-node-gpu' for CUDA 11.2 + cuDNN 8.1); " +
        'its install script downloads libtensorflow 2.9.1 from storage.googleapis.com and 4.22 ships binaries for ' +
        'N-API 3-8 only (Node 20.20+/22 report N-API 9), or use --backend wasm'
      );
    case 'webgpu':
      return (
        "install it with 'pnpm add webgpu' and a Vulkan driver (Linux: mesa-vulkan-drivers, or run " +
        'scripts/setup-webgpu.sh), Metal (macOS) or D3D12 (Windows), or use --backend wasm'
      );
    case 'wasm':
      return "install it with 'pnpm add @tensorflow/tfjs-backend-wasm', or use --backend cpu";
    case 'cpu':
      return "import '@tensorflow/tfjs' (or '@tensorflow/tfjs-backend-cpu') before selecting the backend";
  }
}

function describeFailure(backend: BackendName, reason: string): string {
  const what: Record<BackendName, string> = {
    tensorflow: 'neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node could be loaded',
    webgpu: "the 'webgpu' package did not provide an adapter",
    wasm: '@tensorflow/tfjs-backend-wasm could not start',
    cpu: "the 'cpu' backend is not registered",
  };
  return `backend '${backend}' requested but ${what[backend]} (${reason}): ${installHint(backend)}`;
}

async function activate(name: BackendName): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok)
    throw new Error(`tf.setBackend('${name}') returned false (its factory failed; see the warning above)`);
  await tf.ready();
}

/** Starts one backend; throws an Error whose message is the reason it is unavailable. */
async function start(
  name: BackendName,
  resolve: (pkg: string) => boolean,
  load: (pkg: string) => Promise<unknown>,
  auto: boolean,
): Promise<void> {
  switch (name) {
    case 'tensorflow': {
      if (tf.findBackend('tensorflow') == null && tf.findBackendFactory('tensorflow') == null) {
        const reasons: string[] = [];
        let loaded = false;
        for (const pkg of TFJS_NODE) {
          if (!resolve(pkg)) {
            reasons.push(`${pkg} is not installed`);
            continue;
          }
          try {
            await load(pkg); // registers the 'tensorflow' backend as a side effect
            loaded = true;
            break;
          } catch (e) {
            reasons.push(`${pkg} failed to load: ${(e as Error).message}`);
          }
        }
        if (!loaded) throw new Error(reasons.join('; '));
      }
      return activate('tensorflow');
    }
    case 'webgpu': {
      const hasGpu = (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu != null;
      if (!hasGpu && !resolve('webgpu')) throw new Error("the 'webgpu' package is not installed");
      if (!resolve('@tensorflow/tfjs-backend-webgpu'))
        throw new Error('@tensorflow/tfjs-backend-webgpu is not installed');
      if (auto && !hasGpu) {
        // Decide out of process, so that a rejected adapter leaves no Dawn instance behind (see probeWebGPUAdapter).
        const probe = probeWebGPUAdapter();
        if (!probe.found)
          throw new Error(
            probe.error ?? 'navigator.gpu.requestAdapter() returned null: no Vulkan/Metal/D3D12 adapter',
          );
        if (probe.isFallbackAdapter) {
          throw new Error(
            `the only adapter is a software fallback (${probe.description || 'CPU'}), slower than wasm; pass --backend webgpu to use it anyway`,
          );
        }
      }
      try {
        await initWebGPU(load, { rejectFallbackAdapter: auto });
        return await activate('webgpu');
      } catch (e) {
        shutdownWebGPU(); // drop the navigator.gpu we installed: Dawn would keep Node alive
        throw e;
      }
    }
    case 'wasm': {
      if (!resolve('@tensorflow/tfjs-backend-wasm'))
        throw new Error('@tensorflow/tfjs-backend-wasm is not installed');
      if (tf.findBackendFactory('wasm') == null) await load('@tensorflow/tfjs-backend-wasm');
      return activate('wasm');
    }
    case 'cpu': {
      if (tf.findBackendFactory('cpu') == null) {
        if (!resolve('@tensorflow/tfjs-backend-cpu'))
          throw new Error('@tensorflow/tfjs-backend-cpu is not installed');
        await load('@tensorflow/tfjs-backend-cpu');
      }
      return activate('cpu');
    }
  }
}

/**
 * Initialises a tfjs backend, makes it active (`tf.setBackend` + `tf.ready`) and registers the K* kernels.
 * `auto` tries tensorflow (tfjs-node-gpu, then tfjs-node: must resolve AND load), webgpu (the `webgpu` package
 * must yield an adapter), wasm, cpu. An explicit request that cannot start throws `BackendUnavailableError`
 * naming what to install; `tried` lists every attempt with the reason it failed.
 */
export async function selectBackend(
  request: BackendRequest,
  options: SelectBackendOptions = {},
): Promise<{ backend: BackendName; tried: BackendAttempt[] }> {
  if (!NAMES.includes(request)) {
    throw new InputError(
      `unknown backend ${JSON.stringify(request)}: use one of ${NAMES.map((n) => `'${n}'`).join(', ')}`,
    );
  }
  const resolve = options.resolve ?? defaultResolve;
  const load = options.load ?? defaultLoad;
  const log = options.log ?? (() => {});
  const candidates = request === 'auto' ? AUTO_ORDER : [request];
  const tried: BackendAttempt[] = [];
  for (const backend of candidates) {
    try {
      await start(backend, resolve, load, request === 'auto');
    } catch (e) {
      const reason = (e as Error).message;
      tried.push({ backend, ok: false, reason });
      log(`backend ${backend}: unavailable (${reason})`);
      if (request !== 'auto') throw new BackendUnavailableError(backend, describeFailure(backend, reason));
      continue;
    }
    return backendSelected(backend, tried, log);
  }
  // Only reachable when even cpu failed under 'auto'.
  throw noBackendStarted(tried, installHint('cpu'));
}
