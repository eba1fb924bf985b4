/**
 * Who owns what under ZeRO. A parameter is owned either by ROW RANGES (element-wise optimizers: AdamW, Adam8bit, Lion,
 * dense Lazy Adagrad; rank r keeps rows [r0, r0 + n) of its state, its gradient and, at stage 3, its value) or WHOLE
 * by one rank (factored optimizers: Adafactor, CAME, AdaLomo need whole-row/column statistics; LOMO has no state;
 * that rank keeps the whole state and does the whole update). Both give exactly the single-process update.
 */

/** Row ranges of one parameter: every rank's range has `rowsPerRank` rows (the last ones fewer, possibly none). */
export interface RowOwnership {
  readonly kind: 'rows';
  readonly shape: readonly number[];
  /** Rows of every rank's range before clipping to the parameter (a multiple of the state's row alignment). */
  readonly rowsPerRank: number;
  /** Elements per row. */
  readonly rowElems: number;
  /** State entry → parameter elements per state element (the optimizer's `rowChunks.stateLayout`). */
  readonly layout: Readonly<Record<string, number>>;
}

export interface WholeOwnership {
  readonly kind: 'whole';
  readonly shape: readonly number[];
  readonly owner: number;
}

export type Ownership = RowOwnership | WholeOwnership;

/** Rows [r0, r0 + n) of rank `rank` (n may be 0 for a small parameter on many ranks). */
export function rowRange(o: RowOwnership, rank: number): { r0: number; n: number } {
  const rows = o.shape[0]!;
  const r0 = Math.min(rows, rank * o.rowsPerRank);
  return { r0, n: Math.min(rows, r0 + o.rowsPerRank) - r0 };
}

/** Elements of the padded flat form that reduce-scatter and all-gather move: ranks × rowsPerRank × rowElems. */
export function paddedElems(o: RowOwnership, ranks: number): number {
  return ranks * o.rowsPerRank * o.rowElems;
}

/** Rows of each rank's range: ⌈rows / ranks⌉ rounded up to whole aligned groups of `rowStep` rows. */
export function rowsPerRank(rows: number, ranks: number, rowStep: number): number {
  return Math.ceil(Math.ceil(rows / ranks) / rowStep) * rowStep;
}

/**
 * Owners of whole parameters: largest first, each to the rank holding the fewest elements so far (`load`, which row
 * ranges already fill). Deterministic: every rank computes the same assignment from the same shapes.
 */
export function assignWhole(
  sizes: ReadonlyMap<string, number>,
  ranks: number,
  load: number[] = new Array(ranks).fill(0),
): Map<string, number> {
  const order = [...sizes].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const owners = new Map<string, number>();
  for (const [name, size] of order) {
    let best = 0;
    for (let r = 1; r < ranks; r++) if (load[r]! < load[best]!) best = r;
    owners.set(name, best);
    load[best]! += size;
  }
  return owners;
}

/** State bytes a rank keeps of a row-owned parameter: each entry's elements covering its rows (packed entries rounded up). */
export function rowStateBytes(o: RowOwnership, rank: number): number {
  const { r0, n } = rowRange(o, rank);
  if (n === 0) return 0;
  const e0 = r0 * o.rowElems;
  const e1 = (r0 + n) * o.rowElems;
  let bytes = 0;
  for (const ratio of Object.values(o.layout)) bytes += 4 * (Math.ceil(e1 / ratio) - e0 / ratio);
  return bytes;
}
