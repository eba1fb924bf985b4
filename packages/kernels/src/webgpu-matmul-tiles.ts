import { F16_TILES, type F16TileName } from './webgpu-matmul-f16-program.ts';
import type { MatMulTile } from './webgpu-matmul-program.ts';

/**
 * The tiles K*'s WebGPU matmul chooses from, largest first. `large` is the classic 128×128 tile with 8×8 outputs per
 * thread (16 KiB of workgroup memory); the smaller ones keep enough workgroups in flight when the output is small
 * (attention's [T, hd] products, a [768, 768] weight gradient).
 */
export const MATMUL_TILES = {
  large: { tm: 128, tn: 128, tk: 16, ca: 2, cb: 2 },
  wide: { tm: 64, tn: 128, tk: 16, ca: 1, cb: 2 },
  tall: { tm: 128, tn: 64, tk: 16, ca: 2, cb: 1 },
  medium: { tm: 64, tn: 64, tk: 16, ca: 1, cb: 1 },
  small: { tm: 32, tn: 32, tk: 16, ca: 1, cb: 1 },
} as const satisfies Record<string, MatMulTile>;

export type MatMulTileName = keyof typeof MATMUL_TILES;

export function isMatMulTileName(name: string): name is MatMulTileName {
  return Object.hasOwn(MATMUL_TILES, name);
}

/**
 * Workgroups a tile must fill before the next larger one is taken: about two waves of a 132-SM GPU (H100/H200); a
 * larger tile that leaves SMs idle loses more than its better arithmetic intensity gains.
 */
export const MIN_WORKGROUPS = 264;

/** A tile must spend at least this share of its work on real outputs (n = 64 in a 128-wide tile wastes half). */
export const MIN_TILE_USE = 0.75;

/**
 * The tile for a [batch, m, k]·[batch, k, n] product: the largest that fills the GPU (`MIN_WORKGROUPS`) without
 * wasting more than a quarter of its work on padding; `small` when none does.
 */
export function chooseMatMulTile(batch: number, m: number, n: number): MatMulTileName {
  const order: MatMulTileName[] = ['large', 'wide', 'tall', 'medium'];
  for (const name of order) {
    const t = MATMUL_TILES[name];
    const rows = Math.ceil(m / t.tm);
    const cols = Math.ceil(n / t.tn);
    const use = (m * n) / (rows * t.tm * cols * t.tn);
    if (batch * rows * cols >= MIN_WORKGROUPS && use >= MIN_TILE_USE) return name;
  }
  return 'small';
}

/** K of each split must stay at least this long (shorter slices spend more on the partial sums than they win). */
export const MIN_SPLIT_K = 512;

/**
 * Split-K for products with few output tiles and a long K (a weight gradient xᵀ·dy: [768, 3072] from K = 8,192):
 * the 128×128 tile split `splits` ways along K, enough to reach twice `MIN_WORKGROUPS`. null: no split pays.
 */
export function chooseMatMulSplit(
  batch: number,
  m: number,
  n: number,
  k: number,
): { tile: MatMulTileName; splits: number } | null {
  const t = MATMUL_TILES.large;
  const workgroups = batch * Math.ceil(m / t.tm) * Math.ceil(n / t.tn);
  const use = (m * n) / (Math.ceil(m / t.tm) * t.tm * Math.ceil(n / t.tn) * t.tn);
  if (workgroups >= MIN_WORKGROUPS || use < MIN_TILE_USE) return null;
  const splits = Math.min(Math.ceil((2 * MIN_WORKGROUPS) / workgroups), Math.floor(k / MIN_SPLIT_K));
  return splits >= 2 ? { tile: 'large', splits } : null;
}

/**
 * Products K*'s tiles lose to tfjs's own program, measured on the H200 (`pnpm bench matmul`,
 * bench/results/2026-12-02-h200-matmul-run2.json): thin outputs over a long K, attention's probs·v
 * [96, 1024, 1024]·[96, 1024, 64] at 6.8 TFLOP/s (best tile) against tfjs's 18.8; the f16 program's 64×64 tile
 * reaches 3–5 there (bench/results/2026-12-03-s3-h200-f16-tiles.json). They go to tfjs's kernel in both precisions.
 */
export function matMulPrefersTfjs(m: number, n: number, k: number): boolean {
  return n <= 64 && k >= 512 && m >= 512;
}

/**
 * The f16 (subgroup-matrix) tile and split-K for a product: `large` (128×128) where it fills the GPU without wasting
 * more than a quarter of its work, else split-K of `large` for a long K (weight gradients), else `small` (64×64).
 */
export function chooseF16Tile(
  batch: number,
  m: number,
  n: number,
  k: number,
): { tile: F16TileName; splits: number } {
  const t = F16_TILES.large;
  const workgroups = batch * Math.ceil(m / t.tm) * Math.ceil(n / t.tn);
  const use = (m * n) / (Math.ceil(m / t.tm) * t.tm * Math.ceil(n / t.tn) * t.tn);
  if (use >= MIN_TILE_USE) {
    if (workgroups >= MIN_WORKGROUPS) return { tile: 'large', splits: 1 };
    const splits = Math.min(Math.ceil((2 * MIN_WORKGROUPS) / workgroups), Math.floor(k / MIN_SPLIT_K));
    if (splits >= 2) return { tile: 'large', splits };
  }
  return { tile: 'small', splits: 1 };
}
