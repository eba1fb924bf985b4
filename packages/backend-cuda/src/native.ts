import { BackendUnavailableError } from '@kstar/core';

/**
 * The CUDA driver API (libcuda), NVRTC and cuBLAS through koffi. koffi ships prebuilt binaries, so a machine without
 * a GPU installs this package and fails only when the backend is asked for, with a message naming the missing
 * library. Device pointers (CUdeviceptr) travel as plain numbers (< 2^53 on every driver); handles (context,
 * stream, module, function, cuBLAS handle) are koffi's opaque pointer objects.
 */

/** A native function bound by koffi. */
type NativeFn = (...args: unknown[]) => number;

export interface KoffiApi {
  load(path: string): { func(definition: string): NativeFn };
  alloc(type: string, length: number): unknown;
  address(ptr: unknown): bigint;
  view(ptr: unknown, bytes: number): ArrayBuffer;
}

export interface CudaDriver {
  cuInit(flags: number): number;
  cuDeviceGet(out: number[], ordinal: number): number;
  cuDeviceGetAttribute(out: number[], attr: number, dev: number): number;
  cuDeviceGetName(out: Buffer, len: number, dev: number): number;
  cuDevicePrimaryCtxRetain(out: unknown[], dev: number): number;
  cuCtxSetCurrent(ctx: unknown): number;
  cuStreamCreate(out: unknown[], flags: number): number;
  cuStreamSynchronize(stream: unknown): number;
  cuMemAllocAsync(out: number[], bytes: number, stream: unknown): number;
  cuMemFreeAsync(ptr: number, stream: unknown): number;
  cuMemcpyHtoDAsync(dst: number, src: ArrayBufferView, bytes: number, stream: unknown): number;
  cuMemcpyDtoHAsync(dst: ArrayBufferView, src: number, bytes: number, stream: unknown): number;
  cuMemcpyDtoDAsync(dst: number, src: number, bytes: number, stream: unknown): number;
  cuMemsetD32Async(dst: number, value: number, count: number, stream: unknown): number;
  cuMemGetInfo(free: number[], total: number[]): number;
  cuDeviceGetDefaultMemPool(out: unknown[], dev: number): number;
  cuMemPoolSetAttribute(pool: unknown, attr: number, value: BigUint64Array): number;
  cuMemPoolGetAttribute(pool: unknown, attr: number, value: BigUint64Array): number;
  cuModuleLoadData(out: unknown[], image: Buffer): number;
  cuModuleGetFunction(out: unknown[], mod: unknown, name: string): number;
  cuLaunchKernel(
    f: unknown,
    gx: number,
    gy: number,
    gz: number,
    bx: number,
    by: number,
    bz: number,
    shmem: number,
    stream: unknown,
    params: bigint,
    extra: null,
  ): number;
  cuGetErrorString(err: number, out: (string | null)[]): number;
  cuEventCreate(out: unknown[], flags: number): number;
  cuEventRecord(event: unknown, stream: unknown): number;
  cuEventElapsedTime(ms: number[], start: unknown, end: unknown): number;
  cuMemAllocHost(out: unknown[], bytes: number): number;
  cuMemFreeHost(ptr: unknown): number;
  /** cuMemcpyDtoHAsync into host memory given by address (pinned staging, see staged-read.ts). */
  cuMemcpyDtoHAsyncToAddress(dst: bigint, src: number, bytes: number, stream: unknown): number;
}

export interface Nvrtc {
  nvrtcCreateProgram(
    out: unknown[],
    src: string,
    name: string,
    nh: number,
    headers: null,
    names: null,
  ): number;
  nvrtcCompileProgram(prog: unknown, n: number, options: string[]): number;
  nvrtcGetProgramLogSize(prog: unknown, out: number[]): number;
  nvrtcGetProgramLog(prog: unknown, out: Buffer): number;
  nvrtcGetCUBINSize(prog: unknown, out: number[]): number;
  nvrtcGetCUBIN(prog: unknown, out: Buffer): number;
  nvrtcDestroyProgram(prog: unknown[]): number;
  nvrtcGetErrorString(err: number): string;
}

/** The arguments every strided-batched GEMM of cuBLAS starts with: handle, both transposes, m, n, k, α. */
export type GemmHead = [
  handle: unknown,
  ta: number,
  tb: number,
  m: number,
  n: number,
  k: number,
  alpha: Float32Array,
];

export interface Cublas {
  cublasCreate(out: unknown[]): number;
  cublasSetStream(handle: unknown, stream: unknown): number;
  cublasSgemmStridedBatched(
    ...args: [
      ...GemmHead,
      a: number,
      lda: number,
      strideA: number,
      b: number,
      ldb: number,
      strideB: number,
      beta: Float32Array,
      c: number,
      ldc: number,
      strideC: number,
      batch: number,
    ]
  ): number;
  cublasGemmStridedBatchedEx(
    ...args: [
      ...GemmHead,
      a: number,
      aType: number,
      lda: number,
      strideA: number,
      b: number,
      bType: number,
      ldb: number,
      strideB: number,
      beta: Float32Array,
      c: number,
      cType: number,
      ldc: number,
      strideC: number,
      batch: number,
      computeType: number,
      algo: number,
    ]
  ): number;
}

export interface CudaLibraries {
  koffi: KoffiApi;
  driver: CudaDriver;
  nvrtc: Nvrtc;
  cublas: Cublas;
  /** The sonames that loaded, for logs and reports. */
  loaded: { driver: string; nvrtc: string; cublas: string };
}

/** Sonames tried in order (CUDA 13 first); `KSTAR_LIBCUDA`, `KSTAR_LIBNVRTC`, `KSTAR_LIBCUBLAS` come before them. */
export const LIBRARY_CANDIDATES = {
  driver: ['libcuda.so.1', 'libcuda.so'],
  nvrtc: ['libnvrtc.so.13', 'libnvrtc.so.12', 'libnvrtc.so'],
  cublas: ['libcublas.so.13', 'libcublas.so.12', 'libcublas.so'],
} as const;

/** What to install for each library, appended to the unavailable error. */
export const INSTALL_HINTS = {
  driver:
    'the NVIDIA driver (libcuda.so.1 ships with it; a machine without an NVIDIA GPU cannot use --backend cuda)',
  nvrtc:
    'the CUDA toolkit runtime compiler (Debian/Ubuntu: cuda-nvrtc-13-0, or pip nvidia-cuda-nvrtc; add its lib folder to LD_LIBRARY_PATH)',
  cublas:
    'cuBLAS (Debian/Ubuntu: libcublas-13-0, or pip nvidia-cublas; add its lib folder to LD_LIBRARY_PATH)',
} as const;

type LibKind = keyof typeof LIBRARY_CANDIDATES;

/**
 * Opens the first library of `names` that loads. Returns the failure of each name when none does. `open` is
 * injectable for tests.
 */
export function openFirst<T>(
  names: readonly (string | undefined)[],
  open: (name: string) => T,
): { lib: T; name: string } | { errors: string[] } {
  const errors: string[] = [];
  for (const name of names) {
    if (!name) continue;
    try {
      return { lib: open(name), name };
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return { errors };
}

/** The error `--backend cuda` gives where a library is missing: which one, what each name said, what to install. */
export function unavailableError(kind: LibKind, errors: readonly string[]): BackendUnavailableError {
  const env = { driver: 'KSTAR_LIBCUDA', nvrtc: 'KSTAR_LIBNVRTC', cublas: 'KSTAR_LIBCUBLAS' }[kind];
  return new BackendUnavailableError(
    'cuda',
    `backend 'cuda' requested but ${LIBRARY_CANDIDATES[kind][0]} could not be loaded (${errors.join('; ') || 'no name tried'}): ` +
      `install ${INSTALL_HINTS[kind]}, or point ${env} at the library; or use --backend webgpu or wasm`,
  );
}

let cached: CudaLibraries | null = null;

/** A native function bound on first call. */
function lazy(bind: () => NativeFn): NativeFn {
  let fn: NativeFn | null = null;
  return (...args) => {
    fn ??= bind();
    return fn(...args);
  };
}

function bindDriver(lib: ReturnType<KoffiApi['load']>): CudaDriver {
  const f = (d: string) => lib.func(d);
  return {
    cuInit: f('int cuInit(unsigned int flags)'),
    cuDeviceGet: f('int cuDeviceGet(_Out_ int *dev, int ordinal)'),
    cuDeviceGetAttribute: f('int cuDeviceGetAttribute(_Out_ int *value, int attr, int dev)'),
    cuDeviceGetName: f('int cuDeviceGetName(_Out_ uint8_t *name, int len, int dev)'),
    cuDevicePrimaryCtxRetain: f('int cuDevicePrimaryCtxRetain(_Out_ void **ctx, int dev)'),
    cuCtxSetCurrent: f('int cuCtxSetCurrent(void *ctx)'),
    cuStreamCreate: f('int cuStreamCreate(_Out_ void **stream, unsigned int flags)'),
    cuStreamSynchronize: f('int cuStreamSynchronize(void *stream)'),
    cuMemAllocAsync: f('int cuMemAllocAsync(_Out_ uint64_t *dptr, size_t bytes, void *stream)'),
    cuMemFreeAsync: f('int cuMemFreeAsync(uint64_t dptr, void *stream)'),
    cuMemcpyHtoDAsync: f('int cuMemcpyHtoDAsync_v2(uint64_t dst, const void *src, size_t n, void *stream)'),
    cuMemcpyDtoHAsync: f('int cuMemcpyDtoHAsync_v2(void *dst, uint64_t src, size_t n, void *stream)'),
    cuMemcpyDtoDAsync: f('int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t n, void *stream)'),
    cuMemsetD32Async: f('int cuMemsetD32Async(uint64_t dst, unsigned int value, size_t n, void *stream)'),
    cuMemGetInfo: f('int cuMemGetInfo_v2(_Out_ size_t *free, _Out_ size_t *total)'),
    cuDeviceGetDefaultMemPool: f('int cuDeviceGetDefaultMemPool(_Out_ void **pool, int dev)'),
    cuMemPoolSetAttribute: f('int cuMemPoolSetAttribute(void *pool, int attr, void *value)'),
    cuMemPoolGetAttribute: f('int cuMemPoolGetAttribute(void *pool, int attr, void *value)'),
    cuModuleLoadData: f('int cuModuleLoadData(_Out_ void **mod, const void *image)'),
    cuModuleGetFunction: f('int cuModuleGetFunction(_Out_ void **fn, void *mod, const char *name)'),
    cuLaunchKernel: f(
      'int cuLaunchKernel(void *f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem, void *stream, uint64_t params, void *extra)',
    ),
    cuGetErrorString: f('int cuGetErrorString(int err, _Out_ const char **str)'),
    // Only the profile uses events: bound lazily, so a driver without them still runs everything else.
    cuEventCreate: lazy(() => f('int cuEventCreate(_Out_ void **event, unsigned int flags)')),
    cuEventRecord: lazy(() => f('int cuEventRecord(void *event, void *stream)')),
    cuEventElapsedTime: lazy(() => {
      try {
        return f('int cuEventElapsedTime_v2(_Out_ float *ms, void *start, void *end)');
      } catch {
        return f('int cuEventElapsedTime(_Out_ float *ms, void *start, void *end)');
      }
    }),
    // Only checkpoints' staged reads use pinned memory (staged-read.ts): bound lazily too.
    cuMemAllocHost: lazy(() => f('int cuMemAllocHost_v2(_Out_ void **pp, size_t bytes)')),
    cuMemFreeHost: lazy(() => f('int cuMemFreeHost(void *p)')),
    cuMemcpyDtoHAsyncToAddress: lazy(() =>
      f('int cuMemcpyDtoHAsync_v2(uint64_t dst, uint64_t src, size_t n, void *stream)'),
    ),
  } as unknown as CudaDriver;
}

function bindNvrtc(lib: ReturnType<KoffiApi['load']>): Nvrtc {
  const f = (d: string) => lib.func(d);
  return {
    nvrtcCreateProgram: f(
      'int nvrtcCreateProgram(_Out_ void **prog, const char *src, const char *name, int nh, void *headers, void *names)',
    ),
    nvrtcCompileProgram: f('int nvrtcCompileProgram(void *prog, int n, const char **options)'),
    nvrtcGetProgramLogSize: f('int nvrtcGetProgramLogSize(void *prog, _Out_ size_t *size)'),
    nvrtcGetProgramLog: f('int nvrtcGetProgramLog(void *prog, _Out_ uint8_t *log)'),
    nvrtcGetCUBINSize: f('int nvrtcGetCUBINSize(void *prog, _Out_ size_t *size)'),
    nvrtcGetCUBIN: f('int nvrtcGetCUBIN(void *prog, _Out_ uint8_t *cubin)'),
    nvrtcDestroyProgram: f('int nvrtcDestroyProgram(_Inout_ void **prog)'),
    nvrtcGetErrorString: f(
      'const char *nvrtcGetErrorString(int err)',
    ) as unknown as Nvrtc['nvrtcGetErrorString'],
  } as unknown as Nvrtc;
}

function bindCublas(lib: ReturnType<KoffiApi['load']>): Cublas {
  const f = (d: string) => lib.func(d);
  return {
    cublasCreate: f('int cublasCreate_v2(_Out_ void **handle)'),
    cublasSetStream: f('int cublasSetStream_v2(void *handle, void *stream)'),
    cublasSgemmStridedBatched: f(
      'int cublasSgemmStridedBatched(void *h, int ta, int tb, int m, int n, int k, const float *alpha, uint64_t a, int lda, int64_t sa, uint64_t b, int ldb, int64_t sb, const float *beta, uint64_t c, int ldc, int64_t sc, int batch)',
    ),
    cublasGemmStridedBatchedEx: f(
      'int cublasGemmStridedBatchedEx(void *h, int ta, int tb, int m, int n, int k, const void *alpha, uint64_t a, int at, int lda, int64_t sa, uint64_t b, int bt, int ldb, int64_t sb, const void *beta, uint64_t c, int ct, int ldc, int64_t sc, int batch, int compute, int algo)',
    ),
  } as unknown as Cublas;
}

/**
 * Loads koffi, libcuda, NVRTC and cuBLAS (once). Throws BackendUnavailableError naming the first that is missing
 * and what to install.
 */
export async function loadCudaLibraries(): Promise<CudaLibraries> {
  if (cached) return cached;
  let koffi: KoffiApi;
  try {
    koffi = ((await import('koffi')) as unknown as { default: KoffiApi }).default;
  } catch (e) {
    throw new BackendUnavailableError(
      'cuda',
      `backend 'cuda' requested but the koffi FFI package could not load (${(e as Error).message}): reinstall @kstar/backend-cuda's dependencies with pnpm install`,
    );
  }
  const open = (kind: LibKind, env: string | undefined) => {
    const r = openFirst([env, ...LIBRARY_CANDIDATES[kind]], (n) => koffi.load(n));
    if ('errors' in r) throw unavailableError(kind, r.errors);
    return r;
  };
  const driver = open('driver', process.env.KSTAR_LIBCUDA);
  const nvrtc = open('nvrtc', process.env.KSTAR_LIBNVRTC);
  const cublas = open('cublas', process.env.KSTAR_LIBCUBLAS);
  cached = {
    koffi,
    driver: bindDriver(driver.lib),
    nvrtc: bindNvrtc(nvrtc.lib),
    cublas: bindCublas(cublas.lib),
    loaded: { driver: driver.name, nvrtc: nvrtc.name, cublas: cublas.name },
  };
  return cached;
}
