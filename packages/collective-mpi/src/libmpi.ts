import { BackendUnavailableError } from '@kstar/core';

/**
 * Open MPI's C API through koffi (an FFI package that ships prebuilt binaries: nothing is compiled at install, and a
 * machine without Open MPI still installs the monorepo). libmpi is loaded with RTLD_GLOBAL because Open MPI's
 * components (dlopened plugins) resolve symbols from it. Handles such as MPI_COMM_WORLD, MPI_FLOAT and MPI_SUM are,
 * in Open MPI's ABI, the addresses of exported globals (`ompi_mpi_comm_world`, …).
 */

/** A native function bound by koffi: callable synchronously, or on a worker thread with `.async(...args, cb)`. */
interface NativeFn {
  (...args: unknown[]): number;
  async(...args: unknown[]): void;
}

export interface LibMpi {
  readonly koffi: KoffiApi;
  readonly commWorld: bigint;
  readonly float: bigint;
  readonly int: bigint;
  readonly sum: bigint;
  /** MPI_IN_PLACE in Open MPI: (void *) 1. */
  readonly inPlace: bigint;
  initThread(required: number, provided: number[]): number;
  initialized(flag: number[]): number;
  commRank(comm: bigint, rank: number[]): number;
  commSize(comm: bigint, size: number[]): number;
  allreduce: NativeFn;
  reduce: NativeFn;
  reduceScatterBlock: NativeFn;
  allgather: NativeFn;
  bcast: NativeFn;
  barrier: NativeFn;
  finalize(): number;
  abort(comm: bigint, code: number): number;
  errorString(code: number): string;
}

export interface KoffiApi {
  load(
    path: string,
    options?: { global?: boolean },
  ): {
    func(definition: string): NativeFn;
    symbol(name: string): bigint;
  };
  alloc(type: string, length: number): bigint;
  free(ptr: bigint): void;
  view(ptr: bigint, bytes: number): ArrayBuffer;
}

/** The message naming what to install, used wherever MPI is asked for and missing. */
export const INSTALL_HINT =
  'install Open MPI (Debian/Ubuntu: apt-get install -y libopenmpi-dev openmpi-bin) and start the ranks with mpirun';

const LIBRARY_NAMES = ['libmpi.so.40', 'libmpi.so'];

let loaded: LibMpi | null = null;

/**
 * Loads libmpi (once), trying `names` in order (default: $KSTAR_LIBMPI, then Open MPI 4's soname). Throws
 * BackendUnavailableError naming the Debian packages when none loads.
 */
export async function loadLibMpi(
  names: readonly (string | undefined)[] = [process.env.KSTAR_LIBMPI, ...LIBRARY_NAMES],
): Promise<LibMpi> {
  if (loaded) return loaded;
  let koffi: KoffiApi;
  try {
    koffi = (await import('koffi')).default as KoffiApi;
  } catch (e) {
    throw new BackendUnavailableError(
      'mpi',
      `the koffi FFI package could not load (${(e as Error).message}): reinstall @kstar/collective-mpi's dependencies with pnpm install`,
    );
  }
  let lib: ReturnType<KoffiApi['load']> | undefined;
  const errors: string[] = [];
  for (const name of names) {
    if (!name) continue;
    try {
      lib = koffi.load(name, { global: true });
      break;
    } catch (e) {
      errors.push(`${name}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (!lib) {
    throw new BackendUnavailableError(
      'mpi',
      `Open MPI's libmpi was not found (${errors.join('; ')}): ${INSTALL_HINT}, or point KSTAR_LIBMPI at libmpi.so`,
    );
  }
  const errorStringFn = lib.func('int MPI_Error_string(int code, _Out_ char *text, _Out_ int *len)');
  const initThreadFn = lib.func(
    'int MPI_Init_thread(void *argc, void *argv, int required, _Out_ int *provided)',
  );
  loaded = {
    koffi,
    commWorld: lib.symbol('ompi_mpi_comm_world'),
    float: lib.symbol('ompi_mpi_float'),
    int: lib.symbol('ompi_mpi_int'),
    sum: lib.symbol('ompi_mpi_op_sum'),
    inPlace: 1n,
    initThread: (required: number, provided: number[]) => initThreadFn(null, null, required, provided),
    initialized: lib.func('int MPI_Initialized(_Out_ int *flag)'),
    commRank: lib.func('int MPI_Comm_rank(void *comm, _Out_ int *rank)'),
    commSize: lib.func('int MPI_Comm_size(void *comm, _Out_ int *size)'),
    allreduce: lib.func(
      'int MPI_Allreduce(void *send, void *recv, int count, void *type, void *op, void *comm)',
    ),
    reduce: lib.func(
      'int MPI_Reduce(void *send, void *recv, int count, void *type, void *op, int root, void *comm)',
    ),
    reduceScatterBlock: lib.func(
      'int MPI_Reduce_scatter_block(void *send, void *recv, int count, void *type, void *op, void *comm)',
    ),
    allgather: lib.func(
      'int MPI_Allgather(void *send, int sendCount, void *sendType, void *recv, int recvCount, void *recvType, void *comm)',
    ),
    bcast: lib.func('int MPI_Bcast(void *buf, int count, void *type, int root, void *comm)'),
    barrier: lib.func('int MPI_Barrier(void *comm)'),
    finalize: lib.func('int MPI_Finalize()'),
    abort: lib.func('int MPI_Abort(void *comm, int code)'),
    errorString(code: number): string {
      const text = Buffer.alloc(256);
      const len = [0];
      errorStringFn(code, text, len);
      return text.subarray(0, len[0]).toString();
    },
  } as LibMpi;
  return loaded;
}
