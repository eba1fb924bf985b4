import { ShapeError } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Host-side layout of a bucket: several tensors sent as one message. Flat tensor i is read as zero-padded to its slot of
 * `sizes[i]` elements; slots are concatenated in order (`offsets`). Reduce-scatter and all-gather work on per-rank
 * chunks: chunk r of the bucket is chunk r of every tensor's slot, concatenated.
 */

export type Typed = Float32Array | Int32Array;
export type Dtype = 'float32' | 'int32';

/** The one dtype of a bucket's tensors; mixed dtypes cannot share one MPI datatype. */
export function bucketDtype(xs: readonly tf.Tensor[]): Dtype {
  const dtype = xs[0]!.dtype;
  for (const x of xs) {
    if (x.dtype !== dtype) {
      throw new ShapeError(
        `collective bucket: tensors of dtype ${dtype} and ${x.dtype} cannot share one message: bucket each dtype apart`,
      );
    }
  }
  if (dtype !== 'float32' && dtype !== 'int32') {
    throw new ShapeError(`collective: dtype '${dtype}' cannot be sent: pass float32 or int32 tensors`);
  }
  return dtype;
}

/** Reads every tensor of a bucket to host memory with all read-backs in flight together (WebGPU: asynchronous). */
export async function readBucket(xs: readonly tf.Tensor[]): Promise<Typed[]> {
  return (await Promise.all(xs.map((x) => x.data()))) as Typed[];
}

/** Start of each slot in the concatenation. */
export function offsetsOf(sizes: readonly number[]): number[] {
  const out: number[] = [];
  let o = 0;
  for (const s of sizes) {
    out.push(o);
    o += s;
  }
  return out;
}

/** Checks that tensor i fits its slot (`sizes[i]` elements, a multiple of `multiple`). */
export function checkSlots(
  op: string,
  xs: readonly tf.Tensor[],
  sizes: readonly number[],
  multiple: number,
): void {
  if (sizes.length !== xs.length) {
    throw new ShapeError(`${op}: ${xs.length} tensors but ${sizes.length} sizes: pass one size per tensor`);
  }
  xs.forEach((x, i) => {
    const s = sizes[i]!;
    if (!(Number.isInteger(s) && s >= x.size && s % multiple === 0)) {
      throw new ShapeError(
        `${op}: tensor ${i} has ${x.size} elements but its slot is ${s}: pass a size ≥ ${x.size} divisible by ${multiple}`,
      );
    }
  });
}

/** Writes every tensor into its slot of `dest` (padding zeroed). */
export function packSlots(dest: Typed, datas: readonly Typed[], sizes: readonly number[]): void {
  let o = 0;
  datas.forEach((d, i) => {
    dest.set(d, o);
    dest.fill(0, o + d.length, o + sizes[i]!);
    o += sizes[i]!;
  });
}

/**
 * Elements [o, o + len) of the bucket's chunk r (tensor i contributes elements [r·c_i, (r+1)·c_i) of its padded slot,
 * c_i = chunks[i]), written to dest[at …].
 */
export function packChunkPiece(
  dest: Typed,
  at: number,
  datas: readonly Typed[],
  chunks: readonly number[],
  r: number,
  o: number,
  len: number,
): void {
  let start = 0; // start of tensor i's chunk within the bucket's chunk
  for (let i = 0; i < datas.length && start < o + len; i++) {
    const c = chunks[i]!;
    const from = Math.max(o, start);
    const to = Math.min(o + len, start + c);
    if (from < to) {
      const d = datas[i]!;
      const src = r * c + (from - start); // index in tensor i's padded slot
      const avail = Math.max(0, Math.min(to - from, d.length - src));
      if (avail > 0) dest.set(d.subarray(src, src + avail), at + (from - o));
      dest.fill(0, at + (from - o) + avail, at + (to - o));
    }
    start += c;
  }
}

/**
 * All-gather's receive piece, [ranks, len] for elements [o, o + len) of the bucket's chunk, scattered into `out`: tensor
 * i's result (flat [ranks · c_i], rank-major) at out[ranks · offset_i …].
 */
export function unpackGatheredPiece(
  out: Typed,
  recv: Typed,
  chunks: readonly number[],
  ranks: number,
  o: number,
  len: number,
): void {
  let start = 0;
  for (let i = 0; i < chunks.length && start < o + len; i++) {
    const c = chunks[i]!;
    const from = Math.max(o, start);
    const to = Math.min(o + len, start + c);
    if (from < to) {
      for (let r = 0; r < ranks; r++) {
        out.set(
          recv.subarray(r * len + (from - o), r * len + (to - o)),
          ranks * start + r * c + (from - start),
        );
      }
    }
    start += c;
  }
}

/** The bucket's results (concatenated on the host) uploaded as ONE tensor, then split on the backend and shaped. */
export function uploadBucket(host: Typed, dtype: Dtype, shapes: readonly (readonly number[])[]): tf.Tensor[] {
  return tf.tidy(() => {
    const all = tf.tensor(host, [host.length], dtype);
    const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
    const parts = sizes.length === 1 ? [all] : tf.split(all, sizes);
    return parts.map((p, i) => tf.reshape(p, shapes[i] as number[]));
  });
}
