import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { watchWebGPUDevice } from './webgpu-errors.ts';
import {
  dawnOptions,
  F16_FEATURES,
  installDirectiveHoisting,
  recordSubgroupMatrixSupport,
  subgroupMatrixSupport,
  webgpuMatMulPrecision,
} from './webgpu-f16-support.ts';
import { boundWebGPUPool, DEFAULT_MAX_FREE_POOL_BYTES } from './webgpu-pool.ts';

/**
 * WebGPU in Node through the `webgpu` package (Dawn). The tfjs webgpu backend registers itself at import time
 * only when `navigator.gpu` exists, and it needs the WebGPU globals (GPUBufferUsage, GPUMapMode, …) that a
 * browser provides. We install both, then register our own backend factory so the device is created with the
 * adapter's maximum limits whether or not `@tensorflow/tfjs-backend-webgpu` was imported before.
 */

/** The few GPU objects we touch; the full types live in `@webgpu/types`, which we do not require. */
export interface MinimalGPUAdapter {
  readonly features: ReadonlySet<string>;
  readonly limits: Record<string, number>;
  readonly info?: unknown;
  requestDevice(descriptor?: unknown): Promise<MinimalGPUDevice>;
}
export interface MinimalGPUDevice {
  pushErrorScope(filter: 'validation' | 'out-of-memory' | 'internal'): void;
  popErrorScope(): Promise<{ message: string } | null>;
  destroy(): void;
}
interface MinimalGPU {
  requestAdapter(options?: unknown): Promise<MinimalGPUAdapter | null>;
}

/** Set when we installed `navigator` (Node 20 has none) or `navigator.gpu`, so shutdown removes only ours. */
let installed: 'navigator' | 'gpu' | null = null;

function currentGpu(): MinimalGPU | undefined {
  return (globalThis as { navigator?: { gpu?: MinimalGPU } }).navigator?.gpu;
}

/**
 * Makes `navigator.gpu` available (from the `webgpu` package when the runtime has none), checks that it yields
 * an adapter and registers the `webgpu` tfjs backend. Throws an Error whose message says why WebGPU is
 * unavailable; `selectBackend` turns it into a `BackendUnavailableError`.
 */
export async function initWebGPU(
  load: (pkg: string) => Promise<unknown> = (pkg) => import(pkg),
  options: { rejectFallbackAdapter?: boolean } = {},
): Promise<void> {
  if (currentGpu() == null) {
    let mod: { create: (options: string[]) => MinimalGPU; globals: Record<string, unknown> };
    try {
      mod = (await load('webgpu')) as typeof mod;
    } catch (e) {
      throw new Error(`the 'webgpu' package could not be loaded (${(e as Error).message})`);
    }
    Object.assign(globalThis, mod.globals);
    // Dawn options, e.g. KSTAR_DAWN_FLAGS='enable-dawn-features=allow_unsafe_apis' (timestamp queries for profiling);
    // f16-mixed matmuls add the toggles that expose f16 and subgroup matrices on NVIDIA.
    const gpu = mod.create(dawnOptions(process.env.KSTAR_DAWN_FLAGS ?? '', webgpuMatMulPrecision()));
    const g = globalThis as unknown as { navigator?: Record<string, unknown> };
    if (g.navigator == null) {
      // Node 20: no navigator at all.
      Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
      installed = 'navigator';
    } else {
      // Node ≥ 21 has a navigator without gpu.
      Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
      installed = 'gpu';
    }
  }
  const adapter = await currentGpu()!.requestAdapter();
  if (adapter == null) {
    const icd = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
    throw new Error(
      `navigator.gpu.requestAdapter() returned null: no Vulkan/Metal/D3D12 adapter` +
        (icd ? ` (VK_DRIVER_FILES=${icd})` : ' (VK_DRIVER_FILES is not set)'),
    );
  }
  // A fallback adapter is a software rasterizer on the CPU (Mesa lavapipe/llvmpipe, SwiftShader): slower than the
  // wasm backend for training (tiny preset, batch 16: 575 against 1,550 tokens/s on 2 cores,
  // bench/results/2026-11-23-lavapipe-vs-wasm.json), so `auto` passes it by.
  const info = adapter.info as
    | { isFallbackAdapter?: boolean; description?: string; device?: string }
    | undefined;
  if (options.rejectFallbackAdapter && info?.isFallbackAdapter) {
    throw new Error(
      `the only adapter is a software fallback (${info.description || info.device || 'CPU'}), slower than wasm; pass --backend webgpu to use it anyway`,
    );
  }
  type WebGPUModule = { WebGPUBackend: new (device: unknown, adapterInfo?: unknown) => tf.KernelBackend };
  // In the esbuild bundle the CommonJS package is imported as an ES module: its exports sit under `default`.
  const loaded = (await load('@tensorflow/tfjs-backend-webgpu')) as Partial<WebGPUModule> & {
    default?: WebGPUModule;
  };
  const webgpuModule = (loaded.WebGPUBackend ? loaded : loaded.default) as WebGPUModule;
  if (tf.findBackend('webgpu') != null) return; // already initialised (a second selectBackend call)
  // Replace a factory registered at import time by our own, which requests the adapter's maximum limits.
  if (tf.findBackendFactory('webgpu') != null) tf.removeBackend('webgpu');
  tf.registerBackend(
    'webgpu',
    async () => {
      const a = await currentGpu()!.requestAdapter();
      if (a == null) throw new Error('navigator.gpu.requestAdapter() returned null');
      const l = a.limits;
      const requiredLimits = {
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      };
      const wanted = ['timestamp-query', ...(webgpuMatMulPrecision() === 'f16-mixed' ? F16_FEATURES : [])];
      const requiredFeatures = wanted.filter((f) => a.features.has(f));
      const device = await a.requestDevice({ requiredLimits, requiredFeatures });
      watchWebGPUDevice(device);
      if (webgpuMatMulPrecision() === 'f16-mixed') {
        // The f16 kernel's `enable` directives must precede tfjs's shader prelude.
        installDirectiveHoisting(device);
        recordSubgroupMatrixSupport(device, subgroupMatrixSupport(a));
      }
      const backend = new webgpuModule.WebGPUBackend(device, a.info);
      // tfjs's pool never frees a buffer; bound its free bytes (KSTAR_WEBGPU_MAX_FREE_BYTES, default 1 GiB).
      boundWebGPUPool(backend, maxFreePoolBytes());
      return backend;
    },
    3,
  );
}

/** The pool bound from `KSTAR_WEBGPU_MAX_FREE_BYTES` (bytes, or `Infinity` for tfjs's unbounded pool). */
export function maxFreePoolBytes(env: Record<string, string | undefined> = process.env): number {
  const raw = env.KSTAR_WEBGPU_MAX_FREE_BYTES;
  if (raw == null || raw === '') return DEFAULT_MAX_FREE_POOL_BYTES;
  const n = Number(raw);
  if (!(n >= 0)) {
    throw new Error(`KSTAR_WEBGPU_MAX_FREE_BYTES must be a number of bytes ≥ 0 or Infinity (got '${raw}')`);
  }
  return n;
}

/** The active webgpu device, or null when the webgpu backend is not initialised. */
export function webgpuDevice(): MinimalGPUDevice | null {
  const backend = tf.findBackend('webgpu') as unknown as { device?: MinimalGPUDevice } | null;
  return backend?.device ?? null;
}

/**
 * Disposes the webgpu backend, destroys its device and removes the `navigator` (or `navigator.gpu`) we
 * installed: Dawn keeps Node alive while they are referenced. Call it in tests' `afterAll` and before a CLI
 * exits. Safe to call when WebGPU was never started.
 */
export function shutdownWebGPU(): void {
  const device = webgpuDevice();
  if (tf.findBackendFactory('webgpu') != null || tf.findBackend('webgpu') != null) tf.removeBackend('webgpu');
  device?.destroy();
  const g = globalThis as unknown as { navigator?: Record<string, unknown> };
  if (installed === 'navigator') delete g.navigator;
  else if (installed === 'gpu' && g.navigator) delete g.navigator.gpu;
  installed = null;
}

/** What a WebGPU adapter probe found. */
export interface AdapterProbe {
  found: boolean;
  isFallbackAdapter?: boolean;
  description?: string;
  error?: string;
}

/**
 * Asks the `webgpu` package for an adapter in a short-lived child process. `auto` backend selection uses it to
 * decide without creating a Dawn instance in this process: an instance it then discards (say, a software fallback
 * adapter that loses to wasm) keeps Node's event loop alive until a garbage collection that an idle process never
 * runs, so the process would not exit.
 */
export function probeWebGPUAdapter(timeoutMs = 30_000): AdapterProbe {
  let entry: string;
  try {
    entry = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch (e) {
    return {
      found: false,
      error: `the 'webgpu' package is not installed (${(e as Error).message.split('\n')[0]})`,
    };
  }
  const script = `
    const { create } = await import(${JSON.stringify(entry)});
    const adapter = await create([]).requestAdapter();
    const info = adapter?.info ?? {};
    process.stdout.write(JSON.stringify(adapter == null ? { found: false } :
      { found: true, isFallbackAdapter: info.isFallbackAdapter === true, description: info.description || info.device || '' }));
    process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  if (r.status !== 0) {
    const why =
      r.error?.message ??
      r.stderr
        ?.trim()
        .split('\n')
        .filter((l) => !l.startsWith('Warning'))
        .at(-1) ??
      `exit ${r.status}`;
    return { found: false, error: `the WebGPU adapter probe failed: ${why}` };
  }
  try {
    return JSON.parse(r.stdout) as AdapterProbe;
  } catch {
    return { found: false, error: `the WebGPU adapter probe printed no result (${r.stdout.slice(0, 200)})` };
  }
}
