import type * as tf from '@tensorflow/tfjs-core';
import { doubles, type Impl, type Info, p } from './kernel-context.ts';
import {
  ABSMAX_BLOCK,
  ADAM8_CONSTS,
  adagradSource,
  adam8bitAbsmaxSource,
  adam8bitUpdateSource,
  dequantSource,
  packSource,
  quantAbsmaxSource,
  quantCodesSource,
  unpackSource,
} from './kstar-optim-sources.ts';
import { launchFixed, launchRows, release, view } from './launch.ts';
import { i32, i64 } from './params.ts';
import { sizeOf } from './shape.ts';

/**
 * The `cuda` implementations of K*'s 8-bit and sparse optimizer kernels, under their @kstar/kernels and plugin names
 * with their contracts (inputs, attributes, outputs): KstarQuantize8/KstarDequantize8, KstarPack/KstarUnpack,
 * KstarAdam8bit and KstarLazyAdagrad (both in place, returning aliases as the cpu kernels do). Registered, they
 * replace the tfjs-ops fallbacks that made the 8-bit runs slow on cuda.
 */

function requireDtype(kernel: string, dtype: tf.DataType, ts: Record<string, Info>): void {
  for (const [name, t] of Object.entries(ts))
    if (t.dtype !== dtype)
      throw new Error(
        `backend 'cuda': ${kernel} input ${name} is ${t.dtype}; it takes ${dtype} (cast it first)`,
      );
}

/** x (float32, n) → codes int32 [⌈n/4⌉], absmax float32 [⌈n/B⌉]: absmax per block, then codes per word. */
const quantize8: Impl = ({ inputs, backend: b, attrs }) => {
  const x = inputs.x!;
  requireDtype('KstarQuantize8', 'float32', { x });
  const n = sizeOf(x.shape);
  const B = attrs.blockSize as number;
  const nBlocks = Math.ceil(n / B);
  const codes = b.makeOutput([Math.ceil(n / 4)], 'int32');
  const absmax = b.makeOutput([nBlocks], 'float32');
  const am = 'kstar_quant_absmax';
  launchRows(b, am, quantAbsmaxSource(am), nBlocks, [p(b, absmax), p(b, x), i64(n), i64(B)], ABSMAX_BLOCK);
  const cs = 'kstar_quant_codes';
  launchFixed(b, cs, quantCodesSource(cs), Math.ceil(n / 4), [
    p(b, codes),
    p(b, x),
    p(b, absmax),
    i64(n),
    i64(B),
    i32(attrs.signed ? 1 : 0),
    i32(attrs.signFix ? 1 : 0),
  ]);
  return [codes, absmax];
};

const dequantize8: Impl = ({ inputs, backend: b, attrs }) => {
  const { codes, absmax } = inputs as Record<string, Info>;
  requireDtype('KstarDequantize8', 'int32', { codes: codes! });
  requireDtype('KstarDequantize8', 'float32', { absmax: absmax! });
  const shape = (attrs.shape as number[]).slice();
  const out = b.makeOutput(shape, 'float32');
  const name = 'kstar_dequant';
  const n = sizeOf(shape);
  launchFixed(b, name, dequantSource(name), n, [
    p(b, out),
    p(b, codes!),
    p(b, absmax!),
    i64(n),
    i64(attrs.blockSize as number),
    i32(attrs.signed ? 1 : 0),
  ]);
  return out;
};

/** int32 values (n) → int32 [⌈n/(32/bits)⌉]. */
const pack: Impl = ({ inputs, backend: b, attrs }) => {
  const values = inputs.values!;
  requireDtype('KstarPack', 'int32', { values });
  const bits = attrs.bits as number;
  const n = sizeOf(values.shape);
  const words = Math.ceil(n / (32 / bits));
  const out = b.makeOutput([words], 'int32');
  const name = 'kstar_pack';
  launchFixed(b, name, packSource(name), words, [p(b, out), p(b, values), i64(n), i32(bits)]);
  return out;
};

const unpack: Impl = ({ inputs, backend: b, attrs }) => {
  const packed = inputs.packed!;
  requireDtype('KstarUnpack', 'int32', { packed });
  const n = attrs.n as number;
  const out = b.makeOutput([n], 'int32');
  const name = 'kstar_unpack';
  launchFixed(b, name, unpackSource(name), n, [p(b, out), p(b, packed), i64(n), i32(attrs.bits as number)]);
  return out;
};

const ADAM8_ORDER = ['param', 'c1', 'a1', 'c2', 'a2'] as const;

/**
 * Attributes as computed by @kstar/optim-adam8bit's kernel.ts `constants` (float64). Two launches and two copies: the
 * new absmax of m and v per block into a [2·nBlocks] temporary (from the old codes), the update of p and both codes
 * per word, then the temporary into a1 and a2.
 */
const adam8bit: Impl = ({ inputs, backend: b, attrs }) => {
  const ins = inputs as Record<(typeof ADAM8_ORDER)[number] | 'grad', Info>;
  requireDtype('KstarAdam8bit', 'float32', { param: ins.param, grad: ins.grad, a1: ins.a1, a2: ins.a2 });
  requireDtype('KstarAdam8bit', 'int32', { c1: ins.c1, c2: ins.c2 });
  const n = sizeOf(ins.param.shape);
  const B = attrs.blockSize as number;
  const nBlocks = Math.ceil(n / B);
  const k = doubles(ADAM8_CONSTS.map((c) => attrs[c] as number));
  const newAbs = b.makeOutput([2 * nBlocks], 'float32'); // [m absmax | v absmax]
  const states = [p(b, ins.c1), p(b, ins.a1), p(b, ins.c2), p(b, ins.a2)];
  const am = 'kstar_adam8bit_absmax';
  launchRows(
    b,
    am,
    adam8bitAbsmaxSource(am),
    nBlocks,
    [p(b, newAbs), p(b, ins.grad), ...states, i64(n), i64(B), i64(nBlocks), k],
    ABSMAX_BLOCK,
  );
  const up = 'kstar_adam8bit_update';
  launchFixed(b, up, adam8bitUpdateSource(up), Math.ceil(n / 4), [
    p(b, ins.param),
    p(b, ins.grad),
    ...states,
    p(b, newAbs),
    i64(n),
    i64(B),
    i64(nBlocks),
    k,
  ]);
  const abs0 = b.pointer(newAbs.dataId);
  b.device.copy(b.pointer(ins.a1.dataId), abs0, 4 * nBlocks);
  b.device.copy(b.pointer(ins.a2.dataId), abs0 + 4 * nBlocks, 4 * nBlocks);
  release(b, newAbs);
  return ADAM8_ORDER.map((key) => view(b, ins[key], ins[key].shape.slice()));
};

/**
 * Attributes as @kstar/optim-lazy-adagrad's kernel sets them: dense (nRows −1) or the selected rows and their slab
 * slots (uploaded for the launch; rows are distinct, as the plugin selects them).
 */
const lazyAdagrad: Impl = ({ inputs, backend: b, attrs }) => {
  const { param, grad, acc } = inputs as Record<string, Info>;
  requireDtype('KstarLazyAdagrad', 'float32', { param: param!, grad: grad!, acc: acc! });
  const nRows = attrs.nRows as number;
  const d = attrs.d as number;
  const n = nRows < 0 ? sizeOf(param!.shape) : nRows * d;
  const upload = (values: Int32Array) => {
    const t = b.makeOutput([Math.max(1, values.length)], 'int32');
    if (values.length > 0) b.device.upload(b.pointer(t.dataId), values);
    return t;
  };
  const rows = upload(nRows < 0 ? new Int32Array(0) : (attrs.rows as Int32Array));
  const slots = upload(nRows < 0 ? new Int32Array(0) : (attrs.slots as Int32Array));
  const name = 'kstar_adagrad';
  launchFixed(b, name, adagradSource(name), n, [
    p(b, param!),
    p(b, grad!),
    p(b, acc!),
    p(b, rows),
    p(b, slots),
    i64(nRows),
    i64(d),
    i64(n),
    doubles([attrs.lr as number, attrs.eps as number]),
    i32(attrs.epsInside as number),
  ]);
  release(b, rows);
  release(b, slots);
  return [param!, acc!].map((t) => view(b, t, t.shape.slice()));
};

/** K*'s optimizer-side kernels the `cuda` backend implements natively, by their @kstar/kernels and plugins' names. */
export const KSTAR_OPTIM_KERNELS: Record<string, Impl> = {
  KstarQuantize8: quantize8,
  KstarDequantize8: dequantize8,
  KstarPack: pack,
  KstarUnpack: unpack,
  KstarAdam8bit: adam8bit,
  KstarLazyAdagrad: lazyAdagrad,
};
