import type { CudaBackend } from './backend.ts';
import { type Impl, type Info, p } from './kernel-context.ts';
import {
  FLASH_BLOCK,
  FLASH_MAX_HEAD_DIM,
  FLASH_ROWDOT,
  flashKernelName,
  flashRowDotSource,
  flashSources,
  flashTile,
} from './kstar-flash-sources.ts';
import { launchFixed, release } from './launch.ts';
import { f32, i32, i64, type Param, ptr } from './params.ts';

/**
 * The `cuda` implementations of @kstar/kernels' fused causal attention, with its kernel contract
 * (flash-attention.ts):
 * - `KstarFlashAttention`: inputs q [B, H, Tq, hd], k, v [B, H, Tk, hd]; attrs scale, queryOffset; one output, flat
 *   [B·H·Tq·hd + B·H·Tq]: o then lse (the shared `finish` slices it, as on WebGPU).
 * - `KstarFlashAttentionGrad`: inputs q, k, v, o, lse, dO; the same attrs; outputs dq, dk, dv shaped like q, k, k.
 *   D = rowsum(dO∘o), then dq, dk and dv, one launch each.
 */

interface Dims {
  bh: number;
  tq: number;
  tk: number;
  hd: number;
}

function dimsOf(kernel: string, inputs: Record<string, Info>): Dims {
  for (const [name, t] of Object.entries(inputs))
    if (t.dtype !== 'float32')
      throw new Error(
        `backend 'cuda': ${kernel} input ${name} is ${t.dtype}; it takes float32 (cast it first)`,
      );
  const [B, H, tq, hd] = inputs.q!.shape as number[];
  const tk = inputs.k!.shape[2]!;
  if (hd! > FLASH_MAX_HEAD_DIM)
    throw new Error(
      `backend 'cuda': ${kernel} takes head dims up to ${FLASH_MAX_HEAD_DIM}, got ${hd}: run it with {impl: 'fallback'}`,
    );
  return { bh: B! * H!, tq: tq!, tk, hd: hd! };
}

const ROWDOT_SOURCE = flashRowDotSource(FLASH_ROWDOT);
const sourceCache = new Map<number, Record<string, string>>();

/** Launches a flash kernel of this head dim over `rows` rows (one thread each) × BH. */
function launchTiled(
  b: CudaBackend,
  kind: 'fwd' | 'dq' | 'dk' | 'dv',
  s: Dims,
  rows: number,
  params: Param[],
) {
  let sources = sourceCache.get(s.hd);
  if (sources == null) {
    sources = flashSources(s.hd);
    sourceCache.set(s.hd, sources);
  }
  const name = flashKernelName(kind, s.hd, flashTile(s.hd));
  const d = b.device;
  d.current = name;
  d.launch(d.kernel(name, sources[name]!), Math.ceil(rows / FLASH_BLOCK), FLASH_BLOCK, params, name, s.bh);
}

const sizes = (s: Dims, off: number, scale: number): Param[] => [i32(s.tq), i32(s.tk), i32(off), f32(scale)];

const flashAttention: Impl = ({ inputs, backend: b, attrs }) => {
  const { q, k, v } = inputs as Record<string, Info>;
  const s = dimsOf('KstarFlashAttention', { q: q!, k: k!, v: v! });
  const n = s.bh * s.tq * s.hd;
  const out = b.makeOutput([n + s.bh * s.tq], 'float32'); // o [BH·Tq·hd], then lse [BH·Tq]
  if (s.bh * s.tq === 0) return out;
  const o = b.pointer(out.dataId);
  launchTiled(b, 'fwd', s, s.tq, [
    ptr(o),
    ptr(o + 4 * n),
    p(b, q!),
    p(b, k!),
    p(b, v!),
    ...sizes(s, attrs.queryOffset as number, attrs.scale as number),
  ]);
  return out;
};

const flashAttentionGrad: Impl = ({ inputs, backend: b, attrs }) => {
  const { q, k, v, o, lse, dO } = inputs as Record<string, Info>;
  const s = dimsOf('KstarFlashAttentionGrad', { q: q!, k: k!, v: v!, o: o!, lse: lse!, dO: dO! });
  const dq = b.makeOutput(q!.shape.slice(), 'float32');
  const dk = b.makeOutput(k!.shape.slice(), 'float32');
  const dv = b.makeOutput(k!.shape.slice(), 'float32');
  if (s.bh * s.tq === 0) {
    // No query: every key's gradient is 0 (and dq is empty).
    for (const t of [dk, dv]) b.device.fill32(b.pointer(t.dataId), 0, s.bh * s.tk * s.hd);
    return [dq, dk, dv];
  }
  const rows = s.bh * s.tq;
  const d = b.makeOutput([rows], 'float32'); // D = rowsum(dO ∘ o)
  launchFixed(b, FLASH_ROWDOT, ROWDOT_SOURCE, rows, [p(b, d), p(b, o!), p(b, dO!), i64(rows), i64(s.hd)]);
  const common = [p(b, q!), p(b, k!), p(b, v!), p(b, dO!), p(b, lse!), p(b, d)];
  const rest = sizes(s, attrs.queryOffset as number, attrs.scale as number);
  launchTiled(b, 'dq', s, s.tq, [p(b, dq), ...common, ...rest]);
  launchTiled(b, 'dk', s, s.tk, [p(b, dk), ...common, ...rest]);
  launchTiled(b, 'dv', s, s.tk, [p(b, dv), ...common, ...rest]);
  release(b, d);
  return [dq, dk, dv];
};

/** The fused attention kernels the `cuda` backend implements natively, by their @kstar/kernels names. */
export const KSTAR_FLASH_KERNELS: Record<string, Impl> = {
  KstarFlashAttention: flashAttention,
  KstarFlashAttentionGrad: flashAttentionGrad,
};
