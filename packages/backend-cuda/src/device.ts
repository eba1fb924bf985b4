import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { CudaLibraries } from './native.ts';
import { type Param, packParams } from './params.ts';

/** A CUDA call failed: names the call, the CUDA error and what the backend was doing (the kernel). */
export class CudaError extends Error {
  constructor(
    readonly call: string,
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'CudaError';
  }
}

const CU_STREAM_NON_BLOCKING = 1;
const ATTR = {
  releaseThreshold: 4,
  reservedCurrent: 5,
  reservedHigh: 6,
  usedCurrent: 7,
  usedHigh: 8,
} as const;
const PARAM_BYTES = 16384;

/** Threads per block of the grid-stride kernels, and the most blocks one launch asks for. */
export const BLOCK = 256;
const MAX_BLOCKS = 132 * 32;

/**
 * One GPU: the primary context, one non-blocking stream that every kernel, copy, allocation and cuBLAS call is
 * queued on (so JavaScript runs ahead of the GPU and frees are stream-ordered), the stream-ordered memory pool
 * (cuMemAllocAsync; its release threshold set to the maximum so freed blocks are cached, not returned), and NVRTC
 * modules cached by source text, in memory and on disk (~/.cache/kstar/cuda, KSTAR_CUDA_CACHE to move it).
 */
export class CudaDevice {
  readonly stream: unknown;
  readonly cublas: unknown;
  readonly name: string;
  readonly arch: string;
  private readonly pool: unknown;
  private readonly modules = new Map<string, unknown>();
  private readonly paramView: DataView;
  private readonly paramBase: bigint;
  private readonly cacheDir: string | null;
  /** What the backend is running, for error messages (set by kernels). */
  current = '';
  compiledKernels = 0;

  constructor(readonly libs: CudaLibraries) {
    const d = libs.driver;
    this.check(d.cuInit(0), 'cuInit');
    const dev = [0];
    this.check(d.cuDeviceGet(dev, 0), 'cuDeviceGet');
    const ctx: unknown[] = [null];
    this.check(d.cuDevicePrimaryCtxRetain(ctx, dev[0]!), 'cuDevicePrimaryCtxRetain');
    this.check(d.cuCtxSetCurrent(ctx[0]), 'cuCtxSetCurrent');
    const major = [0];
    const minor = [0];
    this.check(d.cuDeviceGetAttribute(major, 75, dev[0]!), 'cuDeviceGetAttribute');
    this.check(d.cuDeviceGetAttribute(minor, 76, dev[0]!), 'cuDeviceGetAttribute');
    this.arch = `sm_${major[0]}${minor[0]}`;
    const nameBuf = Buffer.alloc(256);
    this.check(d.cuDeviceGetName(nameBuf, 256, dev[0]!), 'cuDeviceGetName');
    this.name = nameBuf.toString('utf8').replace(/\0.*$/s, '');
    const stream: unknown[] = [null];
    this.check(d.cuStreamCreate(stream, CU_STREAM_NON_BLOCKING), 'cuStreamCreate');
    this.stream = stream[0];
    const pool: unknown[] = [null];
    this.check(d.cuDeviceGetDefaultMemPool(pool, dev[0]!), 'cuDeviceGetDefaultMemPool');
    this.pool = pool[0];
    this.check(
      d.cuMemPoolSetAttribute(this.pool, ATTR.releaseThreshold, new BigUint64Array([0xffffffffffffffffn])),
      'cuMemPoolSetAttribute',
    );
    const handle: unknown[] = [null];
    this.checkBlas(libs.cublas.cublasCreate(handle), 'cublasCreate');
    this.cublas = handle[0];
    this.checkBlas(libs.cublas.cublasSetStream(this.cublas, this.stream), 'cublasSetStream');
    const mem = libs.koffi.alloc('uint8_t', PARAM_BYTES);
    this.paramView = new DataView(libs.koffi.view(mem, PARAM_BYTES));
    this.paramBase = libs.koffi.address(mem);
    this.cacheDir = process.env.KSTAR_CUDA_CACHE ?? join(homedir(), '.cache', 'kstar', 'cuda');
    try {
      mkdirSync(this.cacheDir, { recursive: true });
    } catch {
      this.cacheDir = null;
    }
  }

  check(code: number, call: string): void {
    if (code === 0) return;
    const s: (string | null)[] = [null];
    this.libs.driver.cuGetErrorString(code, s);
    const during = this.current ? ` while running ${this.current}` : '';
    const hint = code === 2 ? ' (out of GPU memory: use a smaller batch or the memory plugins)' : '';
    throw new CudaError(call, code, `${call} failed with CUDA error ${code} ${s[0] ?? ''}${during}${hint}`);
  }

  checkBlas(code: number, call: string): void {
    if (code !== 0)
      throw new CudaError(
        call,
        code,
        `${call} failed with cuBLAS status ${code}${this.current ? ` while running ${this.current}` : ''}`,
      );
  }

  alloc(bytes: number): number {
    if (bytes === 0) return 0;
    const out = [0];
    this.check(this.libs.driver.cuMemAllocAsync(out, bytes, this.stream), 'cuMemAllocAsync');
    return Number(out[0]);
  }

  free(ptr: number): void {
    if (ptr !== 0) this.check(this.libs.driver.cuMemFreeAsync(ptr, this.stream), 'cuMemFreeAsync');
  }

  upload(dst: number, src: ArrayBufferView): void {
    if (src.byteLength > 0)
      this.check(
        this.libs.driver.cuMemcpyHtoDAsync(dst, src, src.byteLength, this.stream),
        'cuMemcpyHtoDAsync',
      );
  }

  /** Copies device bytes into `dst` and waits for them (the stream's earlier work included). */
  download(dst: ArrayBufferView, src: number): void {
    if (dst.byteLength > 0)
      this.check(
        this.libs.driver.cuMemcpyDtoHAsync(dst, src, dst.byteLength, this.stream),
        'cuMemcpyDtoHAsync',
      );
    this.sync();
  }

  copy(dst: number, src: number, bytes: number): void {
    if (bytes > 0)
      this.check(this.libs.driver.cuMemcpyDtoDAsync(dst, src, bytes, this.stream), 'cuMemcpyDtoDAsync');
  }

  fill32(dst: number, bits: number, count: number): void {
    if (count > 0)
      this.check(this.libs.driver.cuMemsetD32Async(dst, bits >>> 0, count, this.stream), 'cuMemsetD32Async');
  }

  sync(): void {
    this.check(this.libs.driver.cuStreamSynchronize(this.stream), 'cuStreamSynchronize');
  }

  /** The pool's bytes: in use by live allocations and reserved from the driver, now and at their highest. */
  poolBytes(): { used: number; reserved: number; usedHigh: number; reservedHigh: number } {
    const get = (attr: number) => {
      const v = new BigUint64Array(1);
      this.check(this.libs.driver.cuMemPoolGetAttribute(this.pool, attr, v), 'cuMemPoolGetAttribute');
      return Number(v[0]);
    };
    return {
      used: get(ATTR.usedCurrent),
      reserved: get(ATTR.reservedCurrent),
      usedHigh: get(ATTR.usedHigh),
      reservedHigh: get(ATTR.reservedHigh),
    };
  }

  /** The kernel `name` of `source`, compiled by NVRTC for this GPU on first use. */
  kernel(name: string, source: string): unknown {
    const key = `${name}\n${source}`;
    let fn = this.modules.get(key);
    if (fn) return fn;
    const cubin = this.compile(name, source);
    const d = this.libs.driver;
    const mod: unknown[] = [null];
    this.check(d.cuModuleLoadData(mod, cubin), `cuModuleLoadData(${name})`);
    const f: unknown[] = [null];
    this.check(d.cuModuleGetFunction(f, mod[0], name), `cuModuleGetFunction(${name})`);
    fn = f[0];
    this.modules.set(key, fn);
    return fn;
  }

  private compile(name: string, source: string): Buffer {
    const hash = createHash('sha256').update(`${this.arch}\n${source}`).digest('hex').slice(0, 32);
    const file = this.cacheDir ? join(this.cacheDir, `${hash}.cubin`) : null;
    if (file) {
      try {
        return readFileSync(file);
      } catch {
        // not cached yet
      }
    }
    const nv = this.libs.nvrtc;
    const prog: unknown[] = [null];
    const ok = (code: number, call: string) => {
      if (code !== 0)
        throw new CudaError(call, code, `${call}(${name}) failed: ${nv.nvrtcGetErrorString(code)}`);
    };
    ok(nv.nvrtcCreateProgram(prog, source, `${name}.cu`, 0, null, null), 'nvrtcCreateProgram');
    try {
      const opts = [`--gpu-architecture=${this.arch}`, '-default-device', '--std=c++17'];
      const rc = nv.nvrtcCompileProgram(prog[0], opts.length, opts);
      if (rc !== 0) {
        const size = [0];
        nv.nvrtcGetProgramLogSize(prog[0], size);
        const log = Buffer.alloc(Number(size[0]));
        nv.nvrtcGetProgramLog(prog[0], log);
        throw new CudaError(
          'nvrtcCompileProgram',
          rc,
          `NVRTC could not compile kernel ${name} for ${this.arch}: ${log.toString('utf8').replace(/\0+$/, '')}`,
        );
      }
      const size = [0];
      ok(nv.nvrtcGetCUBINSize(prog[0], size), 'nvrtcGetCUBINSize');
      const cubin = Buffer.alloc(Number(size[0]));
      ok(nv.nvrtcGetCUBIN(prog[0], cubin), 'nvrtcGetCUBIN');
      this.compiledKernels++;
      if (file) {
        try {
          writeFileSync(`${file}.${process.pid}`, cubin);
          renameSync(`${file}.${process.pid}`, file);
        } catch {
          // a read-only cache is only slower
        }
      }
      return cubin;
    } finally {
      nv.nvrtcDestroyProgram(prog);
    }
  }

  /** Queues `fn` on the stream: `grid` × `gridY` × `gridZ` blocks of `block` threads. */
  launch(
    fn: unknown,
    grid: number,
    block: number,
    params: readonly Param[],
    what: string,
    gridY = 1,
    gridZ = 1,
  ): void {
    const addr = packParams(params, this.paramView, this.paramBase);
    const rc = this.libs.driver.cuLaunchKernel(
      fn,
      grid,
      gridY,
      gridZ,
      block,
      1,
      1,
      0,
      this.stream,
      addr,
      null,
    );
    if (rc !== 0) this.check(rc, `cuLaunchKernel(${what})`);
  }

  /** Blocks for a grid-stride loop over n elements. */
  static gridFor(n: number): number {
    return Math.max(1, Math.min(MAX_BLOCKS, Math.ceil(n / BLOCK)));
  }
}
