import { InputError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import type { WasmBackendLike } from './wasm-kernels.ts';
import type { WebGPUBackendLike } from './wgsl.ts';

/**
 * One K* kernel = one tfjs kernel name + one implementation per backend + a portable fallback.
 *
 * Design:
 * - The per-backend implementations are ordinary tfjs `KernelFunc`s registered with `tf.registerKernel` under
 *   `Kstar<Name>` for `cpu` (typed-array loops over `backend.data`), `wasm` (JS over heap views: the shipped
 *   wasm binary only exposes its own C++ kernels) and `webgpu` (a WGSL program run with
 *   `backend.runWebGPUProgram`). Going through `tf.engine().runKernel` keeps `tf.profile`, kernel timing and
 *   the engine's bookkeeping of outputs intact.
 * - `fallback` uses tfjs ops only, so it runs on every backend, including `tensorflow` (tfjs-node), for which
 *   K* ships no native kernel (libtensorflow has no in-place access to tensors).
 * - `run(args)` dispatches to the kernel registered for the active backend, else to the fallback;
 *   `{impl: 'fallback'}` forces the fallback (parity tests, users who distrust a kernel); `canRunNative` lets a
 *   kernel decline at run time (e.g. an in-place kernel when a buffer is aliased).
 * - `invoke` maps the call's arguments to the kernel's named inputs and attributes; `finish` turns the
 *   kernel's outputs into the result and disposes what it does not return.
 * - Registration is idempotent and lazy: `run` registers on first use; `registerKstarKernels()` registers all.
 */

/** Backends K* writes native kernels for. `tensorflow` always uses the fallback. */
export type NativeBackend = 'cpu' | 'wasm' | 'webgpu';

/** The cpu backend as native kernels use it: the typed array of a tensor by its data id. */
export interface CpuBackendLike {
  data: { get(dataId: tf.DataId): { values: Float32Array | Int32Array | Uint8Array } };
  incRef(dataId: tf.DataId): void;
  /** A new output holding `values` (tfjs's `MathBackendCPU.makeTensorInfo`). */
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.BackendValues): tf.TensorInfo;
}

/** The float32 values of a tensor on the cpu backend (the buffer itself: writes are in place). */
export function cpuFloats(backend: CpuBackendLike, t: tf.TensorInfo): Float32Array {
  return backend.data.get(t.dataId).values as Float32Array;
}

/** The webgpu backend as native kernels use it: programs, and freeing their small temporaries. */
export type WebGPUKernelBackend = WebGPUBackendLike & {
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  /** A new (empty) output (tfjs's `WebGPUBackend.makeTensorInfo`). */
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** The GPUDevice (error scopes, queue). */
  device: unknown;
  /** tfjs's batched command encoder (null when nothing is pending); ending its pass and submitting it flushes. */
  commandEncoder: unknown;
  endComputePassEncoder(): void;
  submitQueue(): void;
};

/** The active backend as K*'s WebGPU code uses it (programs, buffers); refuses any other active backend. */
export function activeWebGPUBackend(where: string): WebGPUKernelBackend {
  const name = tf.getBackend();
  if (name !== 'webgpu') {
    throw new InputError(
      `${where}: the active backend is '${name}', not 'webgpu': select it first (selectBackend('webgpu'))`,
    );
  }
  return tf.backend() as unknown as WebGPUKernelBackend;
}

/**
 * A native kernel with typed inputs `I` (input name → tensor info), attributes `A` (the kernel's numbers) and
 * backend `B`: what tfjs passes, typed once here instead of cast in every kernel.
 */
export type TypedKernelFunc<I, A, B> = (config: {
  inputs: I;
  attrs: A;
  backend: B;
}) => tf.TensorInfo | tf.TensorInfo[];

export type CpuKernel<I, A> = TypedKernelFunc<I, A, CpuBackendLike>;
export type WasmKernel<I, A> = TypedKernelFunc<I, A, WasmBackendLike>;
export type WebGPUKernel<I, A> = TypedKernelFunc<I, A, WebGPUKernelBackend>;

/** The one place a typed kernel meets tfjs's untyped `KernelFunc` (tfjs passes exactly `{inputs, attrs, backend}`). */
export function toKernelFunc<I, A, B>(kernel: TypedKernelFunc<I, A, B>): tf.KernelFunc {
  return kernel as unknown as tf.KernelFunc;
}

export interface KernelBackends<I, A> {
  cpu?: CpuKernel<I, A>;
  wasm?: WasmKernel<I, A>;
  webgpu?: WebGPUKernel<I, A>;
}

/**
 * `I` and `A` type the native kernels' inputs and attributes (`invoke` gives the attributes as `A`); left out, they
 * are tfjs's untyped maps and any `tf.KernelFunc` fits.
 */
export interface KernelSpec<Args, Result, I = tf.NamedTensorInfoMap, A = tf.NamedAttrMap> {
  /** `Kstar` + PascalCase, e.g. `KstarAdamW`. */
  name: string;
  /** Native implementations; each receives `{inputs, backend, attrs}` like any tfjs kernel. */
  backends: KernelBackends<I, A>;
  /** The kernel's named inputs and attributes for one call. */
  invoke: (args: Args) => { inputs: tf.NamedTensorMap; attrs?: A };
  /** Turns the kernel's outputs into the result; must dispose every output it does not return. */
  finish: (outputs: tf.Tensor[], args: Args) => Result;
  /** Portable implementation (tfjs ops only); the reference the native kernels are tested against. */
  fallback: (args: Args) => Result;
  /** Runs before the native path; returning false uses the fallback for this call. */
  canRunNative?: (args: Args, backend: tf.KernelBackend) => boolean;
}

export interface RunOptions {
  /** `auto` (default): the active backend's native kernel when there is one; `fallback`: tfjs ops. */
  impl?: 'auto' | 'fallback';
}

export interface KstarKernel<Args, Result> {
  readonly name: string;
  /** Backends with a native implementation. */
  readonly nativeBackends: readonly NativeBackend[];
  /** Registers the native implementations with tfjs (idempotent). */
  register(): void;
  /** Which implementation `run` would use for these arguments on the active backend. */
  which(args: Args, options?: RunOptions): 'native' | 'fallback';
  run(args: Args, options?: RunOptions): Result;
}

const NAME_RE = /^Kstar[A-Z][A-Za-z0-9]*$/;

export function defineKernel<Args, Result, I = tf.NamedTensorInfoMap, A = tf.NamedAttrMap>(
  spec: KernelSpec<Args, Result, I, A>,
): KstarKernel<Args, Result> {
  if (!NAME_RE.test(spec.name)) {
    throw new InputError(
      `kernel name ${JSON.stringify(spec.name)} is not 'Kstar' + PascalCase (letters and digits only, e.g. 'KstarAdamW')`,
    );
  }
  const nativeBackends = Object.keys(spec.backends) as NativeBackend[];
  const register = (): void => {
    for (const backendName of nativeBackends) {
      // `never`: each backend's own kernel type (tfjs passes that backend).
      const kernelFunc = toKernelFunc<I, A, never>(spec.backends[backendName]!);
      const existing = tf.getKernel(spec.name, backendName);
      if (existing?.kernelFunc === kernelFunc) continue;
      // A different function under our name (a second copy of this module) is replaced, which tfjs warns about.
      if (existing != null) tf.unregisterKernel(spec.name, backendName);
      tf.registerKernel({ kernelName: spec.name, backendName, kernelFunc });
    }
  };
  let registered = false;
  const which = (args: Args, options: RunOptions = {}): 'native' | 'fallback' => {
    if (options.impl === 'fallback') return 'fallback';
    if (options.impl != null && options.impl !== 'auto') {
      throw new InputError(`impl ${JSON.stringify(options.impl)} is not 'auto' or 'fallback'`);
    }
    if (!registered) {
      register();
      registered = true;
    }
    if (tf.getKernel(spec.name, tf.getBackend()) == null) return 'fallback';
    return spec.canRunNative == null || spec.canRunNative(args, tf.backend()) ? 'native' : 'fallback';
  };
  return {
    name: spec.name,
    nativeBackends,
    register() {
      register();
      registered = true;
    },
    which,
    run(args, options) {
      if (which(args, options) === 'fallback') return spec.fallback(args);
      const { inputs, attrs } = spec.invoke(args);
      const out = tf.engine().runKernel(spec.name, inputs, attrs as tf.NamedAttrMap | undefined) as
        | tf.Tensor
        | tf.Tensor[];
      return spec.finish(Array.isArray(out) ? out : [out], args);
    },
  };
}
