import { ShapeError } from '@kstar/core';

/**
 * How CAME sees a parameter. Rank ≥ 2: factored over the LAST TWO dims, the leading dims acting as a batch
 * (came_pytorch's rule, as HF Adafactor's): shape [...lead, m, n] = `batch` × [m, n] with batch = Π lead.
 * Rank 0 and 1: not factored (a full second moment of the parameter's shape).
 */
export interface CameGeometry {
  readonly factored: boolean;
  /** Elements of the parameter. */
  readonly numel: number;
  /** Π of the leading dims (1 for a matrix, for a vector and for a scalar). */
  readonly batch: number;
  /** m: the second-to-last dim (factored only; 1 otherwise). */
  readonly rows: number;
  /** n: the last dim (factored only; numel otherwise). */
  readonly cols: number;
  /** Shape of the row statistics `vRow`, `resRow`: shape[:-1] (factored only). */
  readonly rowShape: readonly number[];
  /** Shape of the column statistics `vCol`, `resCol`: shape[:-2] ++ shape[-1:] (factored only). */
  readonly colShape: readonly number[];
}

export function cameGeometry(shape: readonly number[]): CameGeometry {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`came: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  if (shape.length < 2) {
    return { factored: false, numel, batch: 1, rows: 1, cols: numel, rowShape: [], colShape: [] };
  }
  const rows = shape[shape.length - 2]!;
  const cols = shape[shape.length - 1]!;
  const lead = shape.slice(0, -2);
  return {
    factored: true,
    numel,
    batch: lead.reduce((a, b) => a * b, 1),
    rows,
    cols,
    rowShape: shape.slice(0, -1),
    colShape: [...lead, cols],
  };
}

/**
 * Bytes of CAME state for a parameter of `shape` (float32):
 * rank ≥ 2, [...lead, m, n] with batch B = Π lead: 4·B·m·n (momentum) + 8·B·(m + n) (row and column second
 * moments, row and column instabilities) = 4mn + 8(m + n) for a matrix; rank ≤ 1: 8·numel (momentum and
 * second moment). The reference's `step` counter and unused `RMS` scalar are not kept.
 */
export function cameStateBytes(shape: readonly number[]): number {
  const g = cameGeometry(shape);
  if (!g.factored) return 8 * g.numel;
  return 4 * g.numel + 8 * g.batch * (g.rows + g.cols);
}
