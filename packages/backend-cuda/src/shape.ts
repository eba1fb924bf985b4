import { MAX_RANK } from './sources.ts';

/** Row-major strides of a shape (elements). */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d]!;
  }
  return s;
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * Strides with which an input of `inShape` is read at the coordinates of `outShape` (numpy broadcasting: shapes
 * align at the right; a dimension of 1 or a missing one reads with stride 0).
 */
export function broadcastStrides(inShape: readonly number[], outShape: readonly number[]): number[] {
  if (inShape.length > outShape.length)
    throw new Error(`shape [${inShape}] does not broadcast to [${outShape}] (more dimensions)`);
  const own = contiguousStrides(inShape);
  const lead = outShape.length - inShape.length;
  return outShape.map((n, d) => {
    if (d < lead) return 0;
    const m = inShape[d - lead]!;
    if (m === n) return m === 1 ? 0 : own[d - lead]!;
    if (m === 1) return 0;
    throw new Error(`shape [${inShape}] does not broadcast to [${outShape}] (dimension ${d}: ${m} vs ${n})`);
  });
}

/**
 * Merges adjacent dimensions that every operand walks contiguously and drops dimensions of size 1, so that most
 * broadcasts index in ≤ 3 dimensions and any rank up to what merging allows fits MAX_RANK.
 */
export function collapseDims(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d]!;
    if (n === 1) continue;
    const last = outShape.length - 1;
    // Dimension `last` (outer) merges into d (inner) when, for every operand, outer stride = inner stride · n.
    if (last >= 0 && strides.every((s, k) => outStrides[k]![last] === s[d]! * n)) {
      outShape[last] = outShape[last]! * n;
      strides.forEach((s, k) => {
        outStrides[k]![last] = s[d]!;
      });
      continue;
    }
    outShape.push(n);
    for (const [k, s] of strides.entries()) outStrides[k]!.push(s[d]!);
  }
  return { shape: outShape, strides: outStrides };
}

/** How an element-wise kernel reads each input: 0 like the output, 1 a scalar, 2 through strides. */
export type InputMode = 0 | 1 | 2;

export interface ElementwiseLayout {
  shape: number[];
  strides: number[][];
  modes: InputMode[];
  /** The modes packed two bits per input, as the kernel takes them. */
  modeBits: number;
}

/** The indexing of an element-wise kernel with inputs of `inShapes` writing `outShape`. */
export function elementwiseLayout(
  outShape: readonly number[],
  inShapes: readonly (readonly number[])[],
): ElementwiseLayout {
  const n = sizeOf(outShape);
  const modes: InputMode[] = inShapes.map((s) => {
    const size = sizeOf(s);
    if (size === 1) return 1;
    if (size === n && s.length <= outShape.length) {
      // Same element count: equal to the output's shape once leading 1s are ignored.
      const a = s.filter((x) => x !== 1);
      const b = outShape.filter((x) => x !== 1);
      if (a.length === b.length && a.every((x, i) => x === b[i])) return 0;
    }
    return 2;
  });
  const full = inShapes.map((s) => broadcastStrides(s, outShape));
  const { shape, strides } = collapseDims(outShape, full);
  if (shape.length > MAX_RANK)
    throw new Error(
      `element-wise kernel: [${outShape}] needs ${shape.length} dimensions after merging (at most ${MAX_RANK})`,
    );
  return { shape, strides, modes, modeBits: modes.reduce<number>((bits, m, i) => bits | (m << (2 * i)), 0) };
}

/**
 * Strides of a transpose's input read at the output's coordinates: out[c] = in[Σ c_d·inStrides[perm[d]]].
 */
export function transposeStrides(
  inShape: readonly number[],
  perm: readonly number[],
): { shape: number[]; strides: number[] } {
  const inStrides = contiguousStrides(inShape);
  return { shape: perm.map((p) => inShape[p]!), strides: perm.map((p) => inStrides[p]!) };
}

/** Axes `axes` moved to the end, the others kept in order: the permutation a reduction transposes by (null: already innermost). */
export function reductionPermutation(rank: number, axes: readonly number[]): number[] | null {
  const sorted = [...axes].sort((a, b) => a - b);
  const innermost = sorted.every((a, i) => a === rank - sorted.length + i);
  if (innermost) return null;
  const rest = [...Array(rank).keys()].filter((d) => !sorted.includes(d));
  return [...rest, ...sorted];
}
