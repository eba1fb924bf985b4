import { type Collective, KstarError, ShapeError, SPECIFICATION_VERSION } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import {
  bucketDtype,
  checkSlots,
  type Dtype,
  packChunkPiece,
  packSlots,
  readBucket,
  type Typed,
  unpackGatheredPiece,
  uploadBucket,
} from './bucket.ts';
import { HostBuffers } from './host-buffers.ts';
import type { LibMpi } from './libmpi.ts';

const MPI_THREAD_SERIALIZED = 2;

export interface MpiCollectiveOptions {
  /**
   * Largest message of one MPI call, in bytes (default 1 GiB): larger tensors are sent in pieces, so no call passes
   * the 2 GiB that MPI's int counts and some transports cannot carry.
   */
  maxMessageBytes?: number;
}

export interface MpiCollective extends Collective {
  /** True when MPI calls run on koffi's worker thread (MPI_THREAD_SERIALIZED provided), false when blocking. */
  readonly threaded: boolean;
  /** MPI calls made since start (a message split in k pieces counts k). */
  calls(): number;
  /** Finalizes MPI (after the last operation) and frees the host buffers. */
  close(): Promise<void>;
}

/**
 * K*'s `Collective` over Open MPI. A tensor is read to host memory (`await x.data()`: the asynchronous read-back that
 * stages WebGPU tensors), copied into a reused native buffer, reduced or gathered there by MPI on a worker thread
 * (the event loop keeps running: progress output, signals), and returned as a new tensor on the current backend.
 * Operations run one at a time in call order (MPI_THREAD_SERIALIZED).
 */
export async function mpiCollective(mpi: LibMpi, options: MpiCollectiveOptions = {}): Promise<MpiCollective> {
  const maxMessageBytes = options.maxMessageBytes ?? 2 ** 30;
  if (!(Number.isInteger(maxMessageBytes) && maxMessageBytes >= 4)) {
    throw new KstarError(
      'E_CONFIG',
      `maxMessageBytes = ${maxMessageBytes} is invalid: pass a whole number of bytes ≥ 4`,
      2,
    );
  }
  const flag = [0];
  mpi.initialized(flag);
  let provided = [MPI_THREAD_SERIALIZED];
  if (!flag[0]) {
    provided = [0];
    check(mpi, mpi.initThread(MPI_THREAD_SERIALIZED, provided), 'MPI_Init_thread');
  }
  const threaded = provided[0]! >= MPI_THREAD_SERIALIZED;
  const rankOut = [0];
  const sizeOut = [0];
  mpi.commRank(mpi.commWorld, rankOut);
  mpi.commSize(mpi.commWorld, sizeOut);
  const rank = rankOut[0]!;
  const size = sizeOut[0]!;
  const buffers = new HostBuffers(mpi.koffi);
  const pieceElems = Math.floor(maxMessageBytes / 4);
  let sent = 0;
  let callCount = 0;
  let tail: Promise<unknown> = Promise.resolve();
  let closed = false;

  /** Runs `op` after every earlier operation (MPI_THREAD_SERIALIZED: one call at a time; buffers are shared). */
  const serial = <T>(op: () => Promise<T>): Promise<T> => {
    if (closed)
      throw new KstarError('E_MPI', 'the MPI collective is closed: no operation may follow close()');
    const p = tail.then(op);
    tail = p.catch(() => {});
    return p;
  };
  const call = (name: string, fn: LibMpi['allreduce'], ...args: unknown[]): Promise<void> => {
    callCount++;
    if (!threaded) {
      check(mpi, fn(...args), name);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      fn.async(...args, (err: unknown, code: number) => {
        if (err) reject(err);
        else if (code !== 0) reject(mpiError(mpi, code, name));
        else resolve();
      });
    });
  };
  const typeOf = (dtype: string): bigint => {
    if (dtype === 'float32') return mpi.float;
    if (dtype === 'int32') return mpi.int;
    throw new ShapeError(`collective: dtype '${dtype}' cannot be sent: pass float32 or int32 tensors`);
  };
  const typed = (dtype: Dtype, buf: ArrayBuffer, elems: number): Typed =>
    dtype === 'float32' ? new Float32Array(buf, 0, elems) : new Int32Array(buf, 0, elems);
  const hostData = async (x: tf.Tensor): Promise<Typed> => {
    typeOf(x.dtype);
    return (await x.data()) as Typed;
  };
  const scaled = (out: Typed, op: 'sum' | 'mean', dtype: string): Typed => {
    if (op === 'sum') return out;
    if (dtype !== 'float32') {
      throw new ShapeError(
        `collective: a mean of ${dtype} tensors is not an ${dtype}: reduce int32 with 'sum'`,
      );
    }
    for (let i = 0; i < out.length; i++) out[i] = out[i]! / size;
    return out;
  };
  const checkRoot = (op: string, root: number) => {
    if (!(Number.isInteger(root) && root >= 0 && root < size)) {
      throw new ShapeError(`${op}: root ${root} is not a rank of ${size}: pass 0..${size - 1}`);
    }
  };
  const bytesOf = (elems: number) => 4 * elems;
  const shapesOf = (xs: readonly tf.Tensor[]) => xs.map((x) => x.shape);
  /**
   * A bucket concatenated into the 'reduce' buffer (read-backs awaited together; `read` false: the buffer is only
   * received into), then `args(ptr, len, type)`'s MPI call on it in place, piece by piece. Returns a copy of the result.
   */
  const inPlaceBucket = async (
    xs: readonly tf.Tensor[],
    args: (ptr: bigint, len: number, type: bigint) => [string, LibMpi['allreduce'], ...unknown[]],
    read = true,
  ): Promise<Typed> => {
    const dtype = bucketDtype(xs);
    const type = typeOf(dtype);
    const sizes = xs.map((x) => x.size);
    const n = sizes.reduce((a, b) => a + b, 0);
    const buf = buffers.get('reduce', bytesOf(n));
    const host = typed(dtype, buf.view, n);
    if (read) packSlots(host, await readBucket(xs), sizes);
    for (let o = 0; o < n; o += pieceElems) {
      const [name, fn, ...rest] = args(buf.ptr + BigInt(4 * o), Math.min(pieceElems, n - o), type);
      await call(name, fn, ...rest);
    }
    return host.slice();
  };
  /**
   * A reduce-scatter of `total` elements a rank, piece by piece (`o` from 0 while below `end`): `pack` writes piece
   * `o` of every rank's chunk into the send buffer as [size, len]; returns this rank's summed chunk.
   */
  const reduceScatterPieces = async (
    dtype: Dtype,
    total: number,
    end: number,
    pack: (sendHost: Typed, o: number, len: number) => void,
  ): Promise<Typed> => {
    const type = typeOf(dtype);
    const out = typed(dtype, new ArrayBuffer(bytesOf(total)), total);
    for (let o = 0; o < end; o += pieceElems) {
      const len = Math.min(pieceElems, total - o);
      const send = buffers.get('send', bytesOf(len * size));
      const recv = buffers.get('recv', bytesOf(len));
      pack(typed(dtype, send.view, len * size), o, len);
      await call(
        'MPI_Reduce_scatter_block',
        mpi.reduceScatterBlock,
        send.ptr,
        recv.ptr,
        len,
        type,
        mpi.sum,
        mpi.commWorld,
      );
      out.set(typed(dtype, recv.view, len), o);
    }
    return out;
  };
  type InPlaceCall = Parameters<typeof inPlaceBucket>[1];
  // The in-place MPI calls (one message piece at `ptr`), for one tensor and for a bucket alike.
  const allReduceCall: InPlaceCall = (ptr, len, type) => [
    'MPI_Allreduce',
    mpi.allreduce,
    mpi.inPlace,
    ptr,
    len,
    type,
    mpi.sum,
    mpi.commWorld,
  ];
  // The root reduces in place; the others only send (their receive buffer is ignored).
  const reduceCall =
    (root: number): InPlaceCall =>
    (ptr, len, type) => [
      'MPI_Reduce',
      mpi.reduce,
      rank === root ? mpi.inPlace : ptr,
      rank === root ? ptr : null,
      len,
      type,
      mpi.sum,
      root,
      mpi.commWorld,
    ];
  const broadcastCall =
    (root: number): InPlaceCall =>
    (ptr, len, type) => ['MPI_Bcast', mpi.bcast, ptr, len, type, root, mpi.commWorld];
  const ring = (elems: number) => Math.round((bytesOf(elems) * (size - 1)) / size);

  const collective: MpiCollective = {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'collective',
    name: 'mpi',
    rank,
    size,
    threaded,
    describe: () => ({ ranks: size, threaded, maxMessageBytes }),
    bytesSent: () => sent,
    calls: () => callCount,

    allReduce: (x, op = 'sum') =>
      serial(async () => {
        const host = await inPlaceBucket([x], allReduceCall);
        sent += 2 * ring(host.length);
        return tf.tensor(scaled(host, op, x.dtype), x.shape, x.dtype);
      }),

    reduce: (x, root, op = 'sum') =>
      serial(async () => {
        checkRoot('reduce', root);
        const host = await inPlaceBucket([x], reduceCall(root));
        sent += ring(host.length);
        if (rank !== root) return null;
        return tf.tensor(scaled(host, op, x.dtype), x.shape, x.dtype);
      }),

    reduceScatter: (x, op = 'sum') =>
      serial(async () => {
        typeOf(x.dtype); // a dtype MPI cannot send is refused before the shape
        const n = x.size;
        if (n % size !== 0) {
          throw new ShapeError(
            `reduceScatter: ${n} elements do not split over ${size} ranks: pad the tensor to a multiple of ${size}`,
          );
        }
        const data = await hostData(x);
        const c = n / size;
        // Piece o of every rank's chunk, packed contiguously: [size, len].
        const out = await reduceScatterPieces(x.dtype as Dtype, c, Math.max(c, 1), (sendHost, o, len) => {
          for (let r = 0; r < size; r++) sendHost.set(data.subarray(r * c + o, r * c + o + len), r * len);
        });
        sent += ring(n);
        return tf.tensor(scaled(out, op, x.dtype), [c], x.dtype);
      }),

    allGather: (x) =>
      serial(async () => {
        const type = typeOf(x.dtype);
        const data = await hostData(x);
        const c = x.size;
        const out = typed(x.dtype as Dtype, new ArrayBuffer(bytesOf(c * size)), c * size);
        for (let o = 0; o < Math.max(c, 1); o += pieceElems) {
          const len = Math.min(pieceElems, c - o);
          const send = buffers.get('send', bytesOf(len));
          const recv = buffers.get('recv', bytesOf(len * size));
          typed(x.dtype as Dtype, send.view, len).set(data.subarray(o, o + len));
          await call('MPI_Allgather', mpi.allgather, send.ptr, len, type, recv.ptr, len, type, mpi.commWorld);
          const recvHost = typed(x.dtype as Dtype, recv.view, len * size);
          // recv is [size, len]: rank r's piece goes to out[r·c + o …].
          for (let r = 0; r < size; r++) out.set(recvHost.subarray(r * len, (r + 1) * len), r * c + o);
        }
        sent += ring(c * size);
        return tf.tensor(out, [c * size], x.dtype);
      }),

    broadcast: (x, root) =>
      serial(async () => {
        checkRoot('broadcast', root);
        const host = await inPlaceBucket([x], broadcastCall(root), rank === root);
        sent += ring(host.length);
        return tf.tensor(host, x.shape, x.dtype);
      }),

    // Buckets (core's contract): all read-backs awaited together, one host buffer, one call per message piece, one
    // upload of the results (split on the backend).
    allReduceBucket: (xs, op = 'sum') =>
      serial(async () => {
        if (xs.length === 0) return [];
        const host = await inPlaceBucket(xs, allReduceCall);
        sent += 2 * ring(host.length);
        return uploadBucket(scaled(host, op, xs[0]!.dtype), xs[0]!.dtype as Dtype, shapesOf(xs));
      }),

    reduceBucket: (xs, root, op = 'sum') =>
      serial(async () => {
        checkRoot('reduce', root);
        if (xs.length === 0) return [];
        const host = await inPlaceBucket(xs, reduceCall(root));
        sent += ring(host.length);
        if (rank !== root) return [];
        return uploadBucket(scaled(host, op, xs[0]!.dtype), xs[0]!.dtype as Dtype, shapesOf(xs));
      }),

    broadcastBucket: (xs, root) =>
      serial(async () => {
        checkRoot('broadcast', root);
        if (xs.length === 0) return [];
        const host = await inPlaceBucket(xs, broadcastCall(root), rank === root);
        sent += ring(host.length);
        return uploadBucket(host, xs[0]!.dtype as Dtype, shapesOf(xs));
      }),

    reduceScatterBucket: (xs, padded, op = 'sum') =>
      serial(async () => {
        if (xs.length === 0) return [];
        const dtype = bucketDtype(xs);
        checkSlots('reduceScatterBucket', xs, padded, size);
        const datas = await readBucket(xs);
        const chunks = padded.map((p) => p / size);
        const total = chunks.reduce((a, b) => a + b, 0); // this rank's chunk of the bucket
        const out = await reduceScatterPieces(dtype, total, total, (sendHost, o, len) => {
          for (let r = 0; r < size; r++) packChunkPiece(sendHost, r * len, datas, chunks, r, o, len);
        });
        sent += ring(total * size);
        return uploadBucket(
          scaled(out, op, dtype),
          dtype,
          chunks.map((c) => [c]),
        );
      }),

    allGatherBucket: (xs, pieces) =>
      serial(async () => {
        if (xs.length === 0) return [];
        const dtype = bucketDtype(xs);
        checkSlots('allGatherBucket', xs, pieces, 1);
        const type = typeOf(dtype);
        const datas = await readBucket(xs);
        const total = pieces.reduce((a, b) => a + b, 0); // this rank's part of the bucket
        const send = buffers.get('send', bytesOf(total));
        packSlots(typed(dtype, send.view, total), datas, pieces);
        // Rank-major per tensor: tensor i's [size · pieces[i]] at size · offset_i.
        const out = typed(dtype, new ArrayBuffer(bytesOf(total * size)), total * size);
        for (let o = 0; o < total; o += pieceElems) {
          const len = Math.min(pieceElems, total - o);
          const recv = buffers.get('recv', bytesOf(len * size));
          await call(
            'MPI_Allgather',
            mpi.allgather,
            send.ptr + BigInt(4 * o),
            len,
            type,
            recv.ptr,
            len,
            type,
            mpi.commWorld,
          );
          unpackGatheredPiece(out, typed(dtype, recv.view, len * size), pieces, size, o, len);
        }
        sent += ring(total * size);
        return uploadBucket(
          out,
          dtype,
          pieces.map((p) => [p * size]),
        );
      }),

    barrier: () =>
      serial(async () => {
        await call('MPI_Barrier', mpi.barrier, mpi.commWorld);
      }),

    async close() {
      if (closed) return;
      await tail;
      closed = true;
      buffers.dispose();
      mpi.finalize();
    },
  };
  return collective;
}

function mpiError(mpi: LibMpi, code: number, name: string): KstarError {
  return new KstarError('E_MPI', `${name} failed with MPI error ${code} (${mpi.errorString(code)})`);
}

function check(mpi: LibMpi, code: number, name: string): void {
  if (code !== 0) throw mpiError(mpi, code, name);
}
