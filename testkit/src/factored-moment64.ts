/**
 * An independent float64 factored second moment, written from transformers' `Adafactor._approx_sq_grad` and its
 * exponential averages (AdaLomo's `fuse_update` is the same): for rank ≥ 2 the last two dims are factored into
 * row and column means of g² + eps1 (leading dims batch), for rank 1 one full average. The float64 reference of
 * Adafactor and AdaLomo in their tests (CAME's moment differs: it has its own).
 */
export class FactoredMoment64 {
  /** [B·rows] row averages (rank ≥ 2). */
  readonly row?: Float64Array;
  /** [B·cols] column averages (rank ≥ 2). */
  readonly col?: Float64Array;
  /** [n] the full average (rank 1). */
  readonly v?: Float64Array;
  private readonly B: number;
  private readonly rows: number;
  private readonly cols: number;

  constructor(shape: readonly number[]) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape.length >= 2) {
      this.cols = shape[shape.length - 1]!;
      this.rows = shape[shape.length - 2]!;
      this.B = n / (this.rows * this.cols);
      this.row = new Float64Array(this.B * this.rows);
      this.col = new Float64Array(this.B * this.cols);
    } else {
      this.B = this.rows = this.cols = 0;
      this.v = new Float64Array(n);
    }
  }

  /**
   * Averages g² + eps1 into the moment with weight `1 − beta2t` and returns g / √v̂ (v̂ = row·col / mean(row) when
   * factored), before any clipping.
   */
  scaledGradient(g: ArrayLike<number>, beta2t: number, eps1: number): Float64Array {
    const N = g.length;
    const update = new Float64Array(N);
    if (this.row && this.col) {
      const { B, rows, cols } = this;
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < rows; i++) {
          let s = 0;
          for (let j = 0; j < cols; j++) s += g[(b * rows + i) * cols + j]! ** 2 + eps1;
          this.row[b * rows + i] = this.row[b * rows + i]! * beta2t + (1 - beta2t) * (s / cols);
        }
        for (let j = 0; j < cols; j++) {
          let s = 0;
          for (let i = 0; i < rows; i++) s += g[(b * rows + i) * cols + j]! ** 2 + eps1;
          this.col[b * cols + j] = this.col[b * cols + j]! * beta2t + (1 - beta2t) * (s / rows);
        }
        let mean = 0;
        for (let i = 0; i < rows; i++) mean += this.row[b * rows + i]!;
        mean /= rows;
        for (let i = 0; i < rows; i++) {
          const rf = 1 / Math.sqrt(this.row[b * rows + i]! / mean);
          for (let j = 0; j < cols; j++) {
            const idx = (b * rows + i) * cols + j;
            update[idx] = rf * (1 / Math.sqrt(this.col[b * cols + j]!)) * g[idx]!;
          }
        }
      }
    } else {
      const v = this.v!;
      for (let i = 0; i < N; i++) {
        v[i] = v[i]! * beta2t + (1 - beta2t) * (g[i]! ** 2 + eps1);
        update[i] = (1 / Math.sqrt(v[i]!)) * g[i]!;
      }
    }
    return update;
  }
}
