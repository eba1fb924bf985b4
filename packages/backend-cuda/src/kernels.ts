import * as tf from '@tensorflow/tfjs-core';
import type { CudaBackend } from './backend.ts';
import { pitchedCopySource, transposeTileSource } from './gemm-align.ts';
import type { Impl, Info } from './kernel-context.ts';
import { KSTAR_FACTORED_KERNELS } from './kstar-factored-kernels.ts';
import { kstarFactoredSources } from './kstar-factored-sources.ts';
import { KSTAR_FLASH_KERNELS } from './kstar-flash-kernels.ts';
import { kstarFlashSources } from './kstar-flash-sources.ts';
import { KSTAR_KERNELS } from './kstar-kernels.ts';
import { KSTAR_OPTIM_KERNELS } from './kstar-optim-kernels.ts';
import { kstarOptimSources } from './kstar-optim-sources.ts';
import { kstarSources } from './kstar-sources.ts';
import {
  argReduceRows,
  copyColumns,
  ctype,
  elementwise,
  launchFixed,
  pad,
  reduceColumns,
  reduceRows,
  release,
  softmaxRows,
  stridedCopy,
  transpose,
  view,
} from './launch.ts';
import { batchMatMul, isRowBias, toBf16Source } from './matmul.ts';
import { clearOperandCache, KEEPS_OPERAND_CACHE } from './operand-cache.ts';
import { f32, i64, ptr, StructBuilder } from './params.ts';
import { profileFile, timed } from './profile.ts';
import { broadcastStrides, contiguousStrides, reductionPermutation, sizeOf } from './shape.ts';
import {
  elementwiseSource,
  fixedSources,
  gatherSource,
  oneHotSource,
  type ReduceOp,
  scatterUpdateSource,
  segmentSumSource,
  softmaxSource,
} from './sources.ts';

const { backend_util, slice_util, util } = tf;

/** Element-wise unary kernels: tfjs kernel name → CUDA expression of `a` (`p0`, `p1`: the kernel's attributes). */
const UNARY: Record<
  string,
  { expr: string; float?: boolean; out?: tf.DataType; attrs?: (a: tf.NamedAttrMap) => number[] }
> = {
  Neg: { expr: '-a' },
  Abs: { expr: 'kabs(a)' },
  Square: { expr: 'a * a' },
  Sign: { expr: 'ksign(a)' },
  Exp: { expr: 'expf(a)', float: true },
  Expm1: { expr: 'expm1f(a)', float: true },
  Log: { expr: 'logf(a)', float: true },
  Log1p: { expr: 'log1pf(a)', float: true },
  Sqrt: { expr: 'sqrtf(a)', float: true },
  Rsqrt: { expr: 'rsqrtf(a)', float: true },
  Reciprocal: { expr: '1.f / a', float: true },
  Tanh: { expr: 'tanhf(a)', float: true },
  Sigmoid: { expr: '1.f / (1.f + expf(-a))', float: true },
  Softplus: { expr: 'a > 20.f ? a : (a < -20.f ? expf(a) : log1pf(expf(a)))', float: true },
  Erf: { expr: 'erff(a)', float: true },
  Sin: { expr: 'sinf(a)', float: true },
  Cos: { expr: 'cosf(a)', float: true },
  Floor: { expr: 'floorf(a)', float: true },
  Ceil: { expr: 'ceilf(a)', float: true },
  Round: { expr: 'rintf(a)', float: true },
  Relu: { expr: 'a != a ? a : (a > 0 ? a : 0)' },
  Relu6: { expr: 'a != a ? a : kmin(kmax(a, (decltype(a))0), (decltype(a))6)' },
  Elu: { expr: 'a >= 0.f ? a : expf(a) - 1.f', float: true },
  Selu: { expr: 'a >= 0.f ? 1.0507009873554805f * a : 1.7580993408473766f * (expf(a) - 1.f)', float: true },
  LeakyRelu: { expr: 'a < 0 ? p0 * a : a', float: true, attrs: (a) => [a.alpha as number] },
  Step: { expr: 'a != a ? a : (a > 0.f ? 1.f : p0)', float: true, attrs: (a) => [a.alpha as number] },
  ClipByValue: {
    expr: 'a != a ? a : fminf(fmaxf((float)a, p0), p1)',
    attrs: (a) => [a.clipValueMin as number, a.clipValueMax as number],
  },
  IsNan: { expr: 'a != a', out: 'bool' },
  IsInf: { expr: 'isinf((float)a)', out: 'bool' },
  IsFinite: { expr: 'isfinite((float)a)', out: 'bool' },
  LogicalNot: { expr: '!a', out: 'bool' },
};

/** Element-wise binary kernels with broadcasting. */
const BINARY: Record<string, { expr: string; float?: boolean; out?: tf.DataType }> = {
  Add: { expr: 'a + b' },
  Sub: { expr: 'a - b' },
  Multiply: { expr: 'a * b' },
  RealDiv: { expr: '(float)a / (float)b', float: true },
  FloorDiv: { expr: 'kfloordiv(a, b)' },
  Mod: { expr: 'kmod(a, b)' },
  Maximum: { expr: 'kmax(a, b)' },
  Minimum: { expr: 'kmin(a, b)' },
  Pow: { expr: 'kpow(a, b)' },
  SquaredDifference: { expr: '(a - b) * (a - b)' },
  Atan2: { expr: 'atan2f(a, b)', float: true },
  Prelu: { expr: 'a < 0 ? b * a : a', float: true },
  Equal: { expr: 'a == b', out: 'bool' },
  NotEqual: { expr: 'a != b', out: 'bool' },
  Less: { expr: 'a < b', out: 'bool' },
  LessEqual: { expr: 'a <= b', out: 'bool' },
  Greater: { expr: 'a > b', out: 'bool' },
  GreaterEqual: { expr: 'a >= b', out: 'bool' },
  LogicalAnd: { expr: 'a && b', out: 'bool' },
  LogicalOr: { expr: 'a || b', out: 'bool' },
};

function unary(name: string, spec: (typeof UNARY)[string]): Impl {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const out = spec.out ?? (spec.float ? 'float32' : x.dtype === 'bool' ? 'int32' : x.dtype);
    const [p0 = 0, p1 = 0] = spec.attrs?.(attrs) ?? [];
    return elementwise(backend, name, [x], out, spec.expr, p0, p1);
  };
}

function binary(name: string, spec: (typeof BINARY)[string]): Impl {
  return ({ inputs, backend }) => {
    const a = inputs.a ?? inputs.x!;
    const b = inputs.b ?? inputs.alpha!;
    const out = spec.out ?? (spec.float ? 'float32' : tf.upcastType(a.dtype, b.dtype));
    return elementwise(backend, name, [a, b], out === 'bool' && !spec.out ? 'int32' : out, spec.expr);
  };
}

/** Moves `axes` innermost and reduces them: the shape tfjs's reductions share. */
function reduce(
  b: CudaBackend,
  x: Info,
  axisAttr: number | number[] | null | undefined,
  keepDims: boolean,
  op: ReduceOp,
  outDtype: tf.DataType,
  mean = false,
): Info {
  const axes = util.parseAxisParam(axisAttr ?? x.shape.map((_, d) => d), x.shape);
  const perm = reductionPermutation(x.shape.length, axes);
  const rank = x.shape.length;
  const shapeOut = (outShape: number[]) =>
    keepDims ? backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
  // Leading axes (a bias gradient's Sum over rows): a column reduction, no transpose.
  const leading = [...axes].sort((p, q) => p - q).every((a, i) => a === i);
  if (perm && leading && ctype(outDtype) === ctype(x.dtype)) {
    const outShape = x.shape.slice(axes.length);
    const rows = sizeOf(x.shape.slice(0, axes.length));
    return reduceColumns(b, x, rows, sizeOf(outShape), op, shapeOut(outShape), outDtype, mean ? 1 / rows : 1);
  }
  const xt = perm ? transpose(b, x, perm) : x;
  const inner = axes.map((_, i) => rank - axes.length + i);
  const [outShape, reduceShape] = backend_util.computeOutAndReduceShapes(xt.shape, inner);
  const cols = sizeOf(reduceShape);
  const rows = sizeOf(outShape);
  const out = reduceRows(b, xt, rows, cols, op, shapeOut(outShape), outDtype, mean ? 1 / cols : 1);
  if (perm) release(b, xt);
  return out;
}

function argReduce(b: CudaBackend, x: Info, axisAttr: number | number[], op: 'max' | 'min'): Info {
  const axes = util.parseAxisParam(axisAttr, x.shape);
  const perm = reductionPermutation(x.shape.length, axes);
  const xt = perm ? transpose(b, x, perm) : x;
  const outShape = x.shape.filter((_, d) => !axes.includes(d));
  const cols = sizeOf(axes.map((a) => x.shape[a]!));
  const out = argReduceRows(b, xt, sizeOf(outShape), cols, op, outShape);
  if (perm) release(b, xt);
  return out;
}

function slice(b: CudaBackend, x: Info, begin: number[], size: number[]): Info {
  const s = contiguousStrides(x.shape);
  const offset = begin.reduce((acc, v, d) => acc + v * s[d]!, 0);
  if (slice_util.isSliceContinous(x.shape, begin, size)) {
    const out = b.makeOutput(size, x.dtype);
    b.device.copy(b.pointer(out.dataId), b.pointer(x.dataId) + 4 * offset, 4 * sizeOf(size));
    return out;
  }
  return stridedCopy(b, x, size, s, offset);
}

/** Concatenates along `axis` (inputs given with the shapes they have for this concat). */
function concat(b: CudaBackend, inputs: readonly Info[], axis: number): Info {
  const shapes = inputs.map((t) => t.shape);
  const outShape = backend_util.computeOutShape(shapes, axis);
  const dtype = inputs.map((t) => t.dtype).reduce((a, c) => tf.upcastType(a, c));
  const out = b.makeOutput(outShape, dtype);
  const rows = sizeOf(outShape.slice(0, axis));
  const outCols = sizeOf(outShape.slice(axis));
  let colOffset = 0;
  for (const t of inputs) {
    const cols = sizeOf(t.shape.slice(axis));
    const src = t.dtype === dtype ? t : elementwise(b, 'cast', [t], dtype, 'a');
    copyColumns(b, out, src, rows, cols, outCols, colOffset);
    if (src !== t) release(b, src);
    colOffset += cols;
  }
  return out;
}

function fill(b: CudaBackend, shape: number[], value: number, dtype: tf.DataType): Info {
  const out = b.makeOutput(shape, dtype);
  const bits =
    dtype === 'float32'
      ? new Int32Array(new Float32Array([value]).buffer)[0]!
      : dtype === 'bool'
        ? value
          ? 1
          : 0
        : value | 0;
  b.device.fill32(b.pointer(out.dataId), bits, sizeOf(shape));
  return out;
}

function cast(b: CudaBackend, x: Info, dtype: tf.DataType): Info {
  if (dtype === x.dtype) return view(b, x, x.shape);
  if (dtype === 'bool') return elementwise(b, 'tobool', [x], 'bool', 'a != 0');
  if (dtype === 'int32')
    return elementwise(
      b,
      x.dtype === 'bool' ? 'cast' : 'toint',
      [x],
      'int32',
      x.dtype === 'bool' ? 'a' : '(int)a',
    );
  if (dtype === 'float32') return elementwise(b, 'cast', [x], 'float32', '(float)a');
  throw new Error(`backend 'cuda': Cast to ${dtype} is not supported`);
}

const ACTIVATIONS: Record<string, string> = {
  relu: 'a > 0.f ? a : 0.f',
  relu6: 'fminf(fmaxf(a, 0.f), 6.f)',
  elu: 'a >= 0.f ? a : expf(a) - 1.f',
  sigmoid: '1.f / (1.f + expf(-a))',
  leakyrelu: 'a < 0.f ? p0 * a : a',
};

const KERNELS: Record<string, Impl> = {
  Identity: ({ inputs, backend }) => view(backend, inputs.x!, inputs.x!.shape),
  Reshape: ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    return view(backend, x, util.inferFromImplicitShape(attrs.shape as number[], sizeOf(x.shape)));
  },
  ExpandDims: ({ inputs, backend, attrs }) => {
    const x = inputs.input!;
    const rank = x.shape.length;
    let dim = attrs.dim as number;
    if (dim < 0) dim += rank + 1;
    const shape = x.shape.slice();
    shape.splice(dim, 0, 1);
    return view(backend, x, shape);
  },
  Squeeze: ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    return view(backend, x, util.squeezeShape(x.shape, attrs.axis as number[]).newShape);
  },
  Cast: ({ inputs, backend, attrs }) => cast(backend, inputs.x!, attrs.dtype as tf.DataType),
  ZerosLike: ({ inputs, backend }) => fill(backend, inputs.x!.shape, 0, inputs.x!.dtype),
  OnesLike: ({ inputs, backend }) => fill(backend, inputs.x!.shape, 1, inputs.x!.dtype),
  Fill: ({ backend, attrs }) =>
    fill(backend, attrs.shape as number[], attrs.value as number, (attrs.dtype as tf.DataType) ?? 'float32'),
  Range: ({ backend, attrs }) => {
    const { start, stop, step, dtype } = attrs as unknown as {
      start: number;
      stop: number;
      step: number;
      dtype: 'float32' | 'int32';
    };
    const n = Math.max(0, Math.ceil((stop - start) / step));
    const values = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = start + i * step;
    return { dataId: backend.write(values, [n], dtype), shape: [n], dtype };
  },
  Select: ({ inputs, backend }) => {
    const { condition, t, e } = inputs as { condition: Info; t: Info; e: Info };
    // tfjs: a rank-1 condition with higher-rank branches picks whole rows.
    const c =
      condition.shape.length === 1 && t.shape.length > 1
        ? { ...condition, shape: [condition.shape[0]!, ...t.shape.slice(1).map(() => 1)] }
        : condition;
    return elementwise(backend, 'select', [c, t, e], tf.upcastType(t.dtype, e.dtype), 'a ? b : c');
  },
  AddN: ({ inputs, backend }) => {
    const xs = Object.values(inputs) as Info[];
    let acc = elementwise(
      backend,
      'Add',
      xs.length > 1 ? [xs[0]!, xs[1]!] : [xs[0]!],
      xs[0]!.dtype,
      xs.length > 1 ? 'a + b' : 'a',
    );
    for (const x of xs.slice(2)) {
      const next = elementwise(backend, 'Add', [acc, x], acc.dtype, 'a + b');
      release(backend, acc);
      acc = next;
    }
    return acc;
  },
  Sum: ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    return reduce(
      backend,
      x,
      attrs.axis as number[],
      attrs.keepDims as boolean,
      'sum',
      tf.upcastType(x.dtype, 'int32'),
    );
  },
  Mean: ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const xf = x.dtype === 'float32' ? x : cast(backend, x, 'float32');
    const out = reduce(
      backend,
      xf,
      attrs.axis as number[],
      attrs.keepDims as boolean,
      'sum',
      'float32',
      true,
    );
    if (xf !== x) release(backend, xf);
    return out;
  },
  Prod: ({ inputs, backend, attrs }) =>
    reduce(
      backend,
      inputs.x!,
      attrs.axis as number[],
      attrs.keepDims as boolean,
      'prod',
      tf.upcastType(inputs.x!.dtype, 'int32'),
    ),
  Max: ({ inputs, backend, attrs }) =>
    reduce(
      backend,
      inputs.x!,
      attrs.reductionIndices as number[],
      attrs.keepDims as boolean,
      'max',
      inputs.x!.dtype,
    ),
  Min: ({ inputs, backend, attrs }) =>
    reduce(backend, inputs.x!, attrs.axis as number[], attrs.keepDims as boolean, 'min', inputs.x!.dtype),
  All: ({ inputs, backend, attrs }) =>
    reduce(backend, inputs.x!, attrs.axis as number[], attrs.keepDims as boolean, 'all', 'bool'),
  Any: ({ inputs, backend, attrs }) =>
    reduce(backend, inputs.x!, attrs.axis as number[], attrs.keepDims as boolean, 'any', 'bool'),
  ArgMax: ({ inputs, backend, attrs }) => argReduce(backend, inputs.x!, attrs.axis as number, 'max'),
  ArgMin: ({ inputs, backend, attrs }) => argReduce(backend, inputs.x!, attrs.axis as number, 'min'),
  Softmax: ({ inputs, backend, attrs }) => {
    const x = inputs.logits!;
    const dim = (attrs.dim as number) < 0 ? x.shape.length + (attrs.dim as number) : (attrs.dim as number);
    if (dim !== x.shape.length - 1)
      throw new Error(`backend 'cuda': Softmax over axis ${dim} of [${x.shape}] (only the last)`);
    const cols = x.shape[dim]!;
    return softmaxRows(backend, x, sizeOf(x.shape) / Math.max(cols, 1), cols);
  },
  Transpose: ({ inputs, backend, attrs }) => transpose(backend, inputs.x!, attrs.perm as number[]),
  Slice: ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const [begin, size] = slice_util.parseSliceParams(
      x as tf.Tensor,
      attrs.begin as number[],
      attrs.size as number[],
    );
    return slice(backend, x, begin, size);
  },
  StridedSlice: ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const a = attrs as unknown as {
      begin: number[];
      end: number[];
      strides: number[];
      beginMask: number;
      endMask: number;
      ellipsisMask: number;
      newAxisMask: number;
      shrinkAxisMask: number;
    };
    const info = slice_util.sliceInfo(
      x.shape,
      a.begin,
      a.end,
      a.strides,
      a.beginMask,
      a.endMask,
      a.ellipsisMask,
      a.newAxisMask,
      a.shrinkAxisMask,
    );
    if (info.isIdentity) return view(backend, x, info.finalShape);
    const s = contiguousStrides(x.shape);
    const sizes = x.shape.map((_, d) =>
      Math.max(0, Math.ceil((info.end[d]! - info.begin[d]!) / info.strides[d]!)),
    );
    const offset = x.shape.reduce((acc, _, d) => acc + info.begin[d]! * s[d]!, 0);
    return stridedCopy(
      backend,
      x,
      sizes,
      s.map((v, d) => v * info.strides[d]!),
      offset,
      [],
      info.finalShape,
    );
  },
  Reverse: ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const dims = util.parseAxisParam(attrs.dims as number[], x.shape);
    const s = contiguousStrides(x.shape);
    const offset = dims.reduce((acc, d) => acc + (x.shape[d]! - 1) * s[d]!, 0);
    return stridedCopy(
      backend,
      x,
      x.shape,
      s.map((v, d) => (dims.includes(d) ? -v : v)),
      offset,
    );
  },
  Tile: ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const reps = attrs.reps as number[];
    return stridedCopy(
      backend,
      x,
      x.shape.map((n, d) => n * reps[d]!),
      contiguousStrides(x.shape),
      0,
      x.shape,
    );
  },
  BroadcastTo: ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const shape = attrs.shape as number[];
    return stridedCopy(backend, x, shape, broadcastStrides(x.shape, shape));
  },
  PadV2: ({ inputs, backend, attrs }) =>
    pad(backend, inputs.x!, attrs.paddings as [number, number][], attrs.constantValue as number),
  Concat: ({ inputs, backend, attrs }) => {
    const xs = (Object.values(inputs) as Info[]).filter((t) => sizeOf(t.shape) > 0 || true);
    const axis = util.parseAxisParam(attrs.axis as number, xs[0]!.shape)[0]!;
    const nonEmpty = xs.filter((t) => sizeOf(t.shape) > 0);
    if (
      nonEmpty.length === 1 &&
      sizeOf(
        backend_util.computeOutShape(
          xs.map((t) => t.shape),
          axis,
        ),
      ) === sizeOf(nonEmpty[0]!.shape)
    )
      return view(
        backend,
        nonEmpty[0]!,
        backend_util.computeOutShape(
          xs.map((t) => t.shape),
          axis,
        ),
      );
    return concat(backend, xs, axis);
  },
  Pack: ({ inputs, backend, attrs }) => {
    const xs = Object.values(inputs) as Info[];
    const rank = xs[0]!.shape.length;
    let axis = attrs.axis as number;
    if (axis < 0) axis += rank + 1;
    const expanded = xs.map((t) => {
      const shape = t.shape.slice();
      shape.splice(axis, 0, 1);
      return { ...t, shape };
    });
    return concat(backend, expanded, axis);
  },
  Unpack: ({ inputs, backend, attrs }) => {
    const x = inputs.value!;
    let axis = attrs.axis as number;
    if (axis < 0) axis += x.shape.length;
    const n = x.shape[axis]!;
    const outShape = x.shape.filter((_, d) => d !== axis);
    const size = x.shape.slice();
    size[axis] = 1;
    return [...Array(n).keys()].map((i) => {
      const begin = x.shape.map((_, d) => (d === axis ? i : 0));
      const s = slice(backend, x, begin, size);
      return { ...s, shape: outShape };
    });
  },
  SplitV: ({ inputs, backend, attrs }) => {
    const x = inputs.x!;
    const axis = util.parseAxisParam(attrs.axis as number, x.shape)[0]!;
    const sizes = backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits as number[], axis);
    let start = 0;
    return sizes.map((n) => {
      const begin = x.shape.map((_, d) => (d === axis ? start : 0));
      const size = x.shape.slice();
      size[axis] = n;
      start += n;
      return slice(backend, x, begin, size);
    });
  },
  GatherV2: ({ inputs, backend, attrs }) => {
    const { x, indices } = inputs as { x: Info; indices: Info };
    const batchDims = (attrs.batchDims as number) ?? 0;
    const axis = util.parseAxisParam(attrs.axis as number, x.shape)[0]!;
    if (batchDims !== 0) throw new Error(`backend 'cuda': GatherV2 with batchDims ${batchDims} (only 0)`);
    const outer = sizeOf(x.shape.slice(0, axis));
    const inner = sizeOf(x.shape.slice(axis + 1));
    const count = sizeOf(indices.shape);
    const outShape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
    const out = backend.makeOutput(outShape, x.dtype);
    const t = ctype(x.dtype);
    const idx = indices.dtype === 'float32' ? cast(backend, indices, 'int32') : indices;
    launchFixed(backend, `gather_${t}`, gatherSource(`gather_${t}`, t), outer * count * inner, [
      ptr(backend.pointer(out.dataId)),
      ptr(backend.pointer(x.dataId)),
      ptr(backend.pointer(idx.dataId)),
      i64(outer),
      i64(x.shape[axis]!),
      i64(count),
      i64(inner),
    ]);
    if (idx !== indices) release(backend, idx);
    return out;
  },
  UnsortedSegmentSum: ({ inputs, backend, attrs }) => {
    const { x, segmentIds } = inputs as { x: Info; segmentIds: Info };
    const segments = attrs.numSegments as number;
    const rows = sizeOf(segmentIds.shape);
    const innerShape = x.shape.slice(segmentIds.shape.length);
    const inner = sizeOf(innerShape);
    const out = fill(backend, [segments, ...innerShape], 0, x.dtype);
    const t = ctype(x.dtype);
    const ids = segmentIds.dtype === 'float32' ? cast(backend, segmentIds, 'int32') : segmentIds;
    launchFixed(backend, `segment_sum_${t}`, segmentSumSource(`segment_sum_${t}`, t), rows * inner, [
      ptr(backend.pointer(out.dataId)),
      ptr(backend.pointer(x.dataId)),
      ptr(backend.pointer(ids.dataId)),
      i64(rows),
      i64(inner),
      i64(segments),
    ]);
    if (ids !== segmentIds) release(backend, ids);
    return out;
  },
  OneHot: ({ inputs, backend, attrs }) => {
    const indices = inputs.indices!;
    const { depth, onValue, offValue, dtype } = attrs as unknown as {
      depth: number;
      onValue: number;
      offValue: number;
      dtype: tf.DataType;
    };
    const out = backend.makeOutput([...indices.shape, depth], dtype);
    const t = ctype(dtype);
    const count = sizeOf(indices.shape);
    const idx = indices.dtype === 'float32' ? cast(backend, indices, 'int32') : indices;
    launchFixed(backend, `one_hot_${t}`, oneHotSource(`one_hot_${t}`, t), count * depth, [
      ptr(backend.pointer(out.dataId)),
      ptr(backend.pointer(idx.dataId)),
      i64(count),
      i64(depth),
      f32(onValue),
      f32(offValue),
    ]);
    if (idx !== indices) release(backend, idx);
    return out;
  },
  TensorScatterUpdate: ({ inputs, backend }) => {
    const { tensor, indices, updates } = inputs as { tensor: Info; indices: Info; updates: Info };
    const out = backend.makeOutput(tensor.shape, tensor.dtype);
    backend.device.copy(
      backend.pointer(out.dataId),
      backend.pointer(tensor.dataId),
      4 * sizeOf(tensor.shape),
    );
    const depth = indices.shape.length > 1 ? indices.shape[indices.shape.length - 1]! : 1;
    const count = sizeOf(indices.shape) / depth;
    const slice = sizeOf(tensor.shape.slice(depth));
    const strides = contiguousStrides(tensor.shape).slice(0, depth);
    const t = ctype(tensor.dtype);
    const meta = new StructBuilder()
      .int(depth)
      .longLong(strides, 6)
      .longLong(tensor.shape.slice(0, depth), 6)
      .build();
    launchFixed(
      backend,
      `scatter_update_${t}`,
      scatterUpdateSource(`scatter_update_${t}`, t),
      count * slice,
      [
        ptr(backend.pointer(out.dataId)),
        ptr(backend.pointer(indices.dataId)),
        ptr(backend.pointer(updates.dataId)),
        i64(count),
        i64(slice),
        meta,
      ],
    );
    return out;
  },
  BatchMatMul: ({ inputs, backend, attrs }) =>
    batchMatMul(backend, inputs.a!, inputs.b!, attrs.transposeA as boolean, attrs.transposeB as boolean),
  _FusedMatMul: ({ inputs, backend, attrs }) => {
    const { a, b, bias, preluActivationWeights } = inputs as Record<string, Info>;
    const transposeB = attrs.transposeB as boolean;
    const n = b!.shape.at(transposeB ? -2 : -1)!;
    // A bias of one value per column is added by the GEMM itself (β = 1 over the bias rows), else by an Add.
    const gemmBias = bias && isRowBias(bias.shape, n) ? bias : undefined;
    let out = batchMatMul(backend, a!, b!, attrs.transposeA as boolean, transposeB, gemmBias);
    if (bias && !gemmBias) {
      const next = elementwise(backend, 'Add', [out, bias], out.dtype, 'a + b');
      release(backend, out);
      out = next;
    }
    const activation = (attrs.activation as string) ?? 'linear';
    if (activation !== 'linear') {
      let next: Info;
      if (activation === 'prelu')
        next = elementwise(backend, 'Prelu', [out, preluActivationWeights!], 'float32', 'a < 0 ? b * a : a');
      else {
        const expr = ACTIVATIONS[activation];
        if (!expr)
          throw new Error(`backend 'cuda': _FusedMatMul activation '${activation}' is not supported`);
        next = elementwise(
          backend,
          `act_${activation}`,
          [out],
          'float32',
          expr,
          (attrs.leakyreluAlpha as number) ?? 0,
        );
      }
      release(backend, out);
      out = next;
    }
    return out;
  },
};

// K*'s own kernels (defineKernel) with a cuda implementation: K* dispatches to them instead of their tfjs-ops
// fallbacks. GELU, tanh approximation (GPT-2), and its gradient recomputed from h (the formulas of @kstar/kernels' gelu.ts).
export const GELU_EXPR = '0.5f * a * (1.f + tanhf(0.7978845608028654f * a * (1.f + 0.044715f * a * a)))';
export const GELU_GRAD_EXPR =
  'b * (0.5f * (1.f + tanhf(0.7978845608028654f * a * (1.f + 0.044715f * a * a))) + 0.5f * 0.7978845608028654f * a * (1.f - tanhf(0.7978845608028654f * a * (1.f + 0.044715f * a * a)) * tanhf(0.7978845608028654f * a * (1.f + 0.044715f * a * a))) * (1.f + 3.f * 0.044715f * a * a))';
KERNELS.KstarGelu = ({ inputs, backend }) =>
  elementwise(backend, 'KstarGelu', [inputs.h!], 'float32', GELU_EXPR);
KERNELS.KstarGeluGrad = ({ inputs, backend }) =>
  elementwise(backend, 'KstarGeluGrad', [inputs.h!, inputs.dy!], 'float32', GELU_GRAD_EXPR);

Object.assign(KERNELS, KSTAR_KERNELS);
Object.assign(KERNELS, KSTAR_OPTIM_KERNELS);
Object.assign(KERNELS, KSTAR_FACTORED_KERNELS);
Object.assign(KERNELS, KSTAR_FLASH_KERNELS);

for (const [name, spec] of Object.entries(UNARY)) KERNELS[name] = unary(name, spec);
for (const [name, spec] of Object.entries(BINARY)) KERNELS[name] = binary(name, spec);

/** The tfjs kernels the `cuda` backend implements. */
export const CUDA_KERNEL_NAMES: readonly string[] = Object.keys(KERNELS).sort();

/** Clears the matmuls' operand cache before every kernel that could write a tensor (see operand-cache.ts). */
function withOperandCache(kernelName: string, impl: Impl): Impl {
  if (KEEPS_OPERAND_CACHE.has(kernelName)) return impl;
  return (ctx) => {
    clearOperandCache();
    return impl(ctx);
  };
}

/** Launches the queued AdamW updates (adamw-queue.ts) before every other kernel: it may read what they write. */
function afterQueuedUpdates(kernelName: string, impl: Impl): Impl {
  if (kernelName === 'KstarAdamW') return impl;
  return (ctx) => {
    ctx.backend.adamw.flush(ctx.backend);
    return impl(ctx);
  };
}

/** Registers every kernel for the backend name `cuda` (idempotent). */
export function registerCudaKernels(backendName = 'cuda'): void {
  const profile = profileFile();
  for (const [kernelName, impl] of Object.entries(KERNELS)) {
    if (tf.getKernel(kernelName, backendName)) continue;
    const kernelFunc = afterQueuedUpdates(
      kernelName,
      profile
        ? timed(kernelName, withOperandCache(kernelName, impl), profile)
        : withOperandCache(kernelName, impl),
    );
    tf.registerKernel({ kernelName, backendName, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
}

/**
 * Every CUDA source the backend can generate for float32 and int32 operands (the element-wise kernels for each
 * table entry and the fixed kernels): what the nvcc test compiles without a GPU.
 */
export function cudaKernelSources(): Record<string, string> {
  const out: Record<string, string> = {
    ...fixedSources(),
    ...kstarSources(),
    ...kstarOptimSources(),
    ...kstarFactoredSources(),
    ...kstarFlashSources(),
  };
  const types = ['float', 'int'] as const;
  for (const [name, spec] of Object.entries(UNARY)) {
    for (const t of types) {
      const o = spec.out ? 'int' : spec.float ? 'float' : t;
      const k = `ew_${name}_${t[0]}_${o[0]}`;
      out[k] = elementwiseSource(k, [t], o, spec.expr);
    }
  }
  for (const [name, spec] of Object.entries(BINARY)) {
    for (const t of types) {
      const o = spec.out ? 'int' : spec.float ? 'float' : t;
      const k = `ew_${name}_${t[0]}${t[0]}_${o[0]}`;
      out[k] = elementwiseSource(k, [t, t], o, spec.expr);
    }
  }
  for (const [name, expr] of Object.entries(ACTIVATIONS))
    out[`ew_act_${name}_f_f`] = elementwiseSource(`ew_act_${name}_f_f`, ['float'], 'float', expr);
  out.ew_select_iff_f = elementwiseSource('ew_select_iff_f', ['int', 'float', 'float'], 'float', 'a ? b : c');
  out.ew_toint_f_i = elementwiseSource('ew_toint_f_i', ['float'], 'int', '(int)a');
  out.ew_tobool_f_i = elementwiseSource('ew_tobool_f_i', ['float'], 'int', 'a != 0');
  out.ew_KstarGelu_f_f = elementwiseSource('ew_KstarGelu_f_f', ['float'], 'float', GELU_EXPR);
  out.ew_KstarGeluGrad_ff_f = elementwiseSource(
    'ew_KstarGeluGrad_ff_f',
    ['float', 'float'],
    'float',
    GELU_GRAD_EXPR,
  );
  out.ew_cast_i_f = elementwiseSource('ew_cast_i_f', ['int'], 'float', '(float)a');
  out.softmax_float = softmaxSource('softmax_float');
  out.to_bf16 = toBf16Source('to_bf16');
  out.pitched_copy = pitchedCopySource('pitched_copy', false);
  out.pitched_to_bf16 = pitchedCopySource('pitched_to_bf16', true);
  out.transpose_tile = transposeTileSource('transpose_tile');
  return out;
}
