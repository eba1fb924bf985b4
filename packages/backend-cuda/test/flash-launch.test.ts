import type * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import type { CudaBackend } from '../src/backend.ts';
import { CUDA_KERNEL_NAMES } from '../src/kernels.ts';
import { KSTAR_FLASH_KERNELS } from '../src/kstar-flash-kernels.ts';
import { kstarParityCases } from '../src/kstar-parity.ts';
import type { Param } from '../src/params.ts';

// The launches of kstar-flash-kernels.ts against a recording stand-in for the backend (no GPU): each launch's
// parameters must match its CUDA signature (count, order, C type), and the grids must cover the rows. The host test
// (flash-host.test.ts) calls the kernels itself, so this is what checks the TypeScript side of the contract.

interface Launch {
  name: string;
  source: string;
  grid: number;
  gridY: number;
  params: readonly Param[];
}

function recordingBackend() {
  const launches: Launch[] = [];
  let next = 1;
  const ptrs = new Map<tf.DataId, number>();
  const backend = {
    makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo {
      const dataId = {};
      ptrs.set(dataId, 4096 * next++);
      return { dataId, shape, dtype };
    },
    pointer: (id: tf.DataId) => ptrs.get(id)!,
    disposeData: () => true,
    device: {
      current: '',
      kernel: (name: string, source: string) => ({ name, source }),
      launch(
        fn: { name: string; source: string },
        grid: number,
        _b: number,
        params: readonly Param[],
        _w: string,
        gridY = 1,
      ) {
        launches.push({ ...fn, grid, gridY, params });
      },
      fill32() {},
    },
  };
  return { backend, launches, info: (shape: number[]) => backend.makeOutput(shape, 'float32') };
}

/** The C types of an extern "C" kernel's parameters, mapped to Param kinds. */
function signature(source: string, name: string): Param['kind'][] {
  const m = new RegExp(`void ${name}\\(([^)]*)\\)`).exec(source);
  if (!m) throw new Error(`no kernel ${name} in its source`);
  return m[1]!.split(',').map((p) => {
    const t = p.trim();
    if (t.includes('*')) return 'ptr';
    if (t.startsWith('long long')) return 'i64';
    if (t.startsWith('int')) return 'i32';
    if (t.startsWith('float')) return 'f32';
    throw new Error(`parameter type of '${t}'`);
  });
}

it('forward and gradient launches match their CUDA signatures and cover every row', () => {
  const [B, H, tq, tk, hd] = [2, 3, 37, 101, 64];
  const { backend, launches, info } = recordingBackend();
  const b = backend as unknown as CudaBackend;
  const [q, k, v, o, lse, dO] = [
    info([B, H, tq, hd]),
    info([B, H, tk, hd]),
    info([B, H, tk, hd]),
    info([B, H, tq, hd]),
    info([B, H, tq]),
    info([B, H, tq, hd]),
  ];
  const attrs = { scale: 0.125, queryOffset: tk - tq };
  const fwd = KSTAR_FLASH_KERNELS.KstarFlashAttention!({
    inputs: { q: q!, k: k!, v: v! },
    backend: b,
    attrs,
  });
  expect((fwd as tf.TensorInfo).shape).toEqual([B * H * tq * hd + B * H * tq]);
  const grads = KSTAR_FLASH_KERNELS.KstarFlashAttentionGrad!({
    inputs: { q: q!, k: k!, v: v!, o: o!, lse: lse!, dO: dO! },
    backend: b,
    attrs,
  }) as tf.TensorInfo[];
  expect(grads.map((g) => g.shape)).toEqual([q!.shape, k!.shape, k!.shape]);
  expect(launches.map((l) => l.name.replace(/_h\d+_t\d+$/, ''))).toEqual([
    'kstar_flash_fwd',
    'kstar_flash_rowdot',
    'kstar_flash_dq',
    'kstar_flash_dk',
    'kstar_flash_dv',
  ]);
  for (const l of launches) {
    expect(
      l.params.map((p) => p.kind),
      l.name,
    ).toEqual(signature(l.source, l.name));
    if (l.name === 'kstar_flash_rowdot') continue;
    const rows = l.name.includes('_fwd_') || l.name.includes('_dq_') ? tq : tk;
    expect(l.gridY, l.name).toBe(B * H);
    expect(l.grid * 64, l.name).toBeGreaterThanOrEqual(rows);
    expect((l.grid - 1) * 64, l.name).toBeLessThan(rows);
  }
  // The forward's lse lands right after o in the packed output.
  const [oPtr, lsePtr] = launches[0]!.params as readonly { value: number }[];
  expect(lsePtr!.value - oPtr!.value).toBe(4 * B * H * tq * hd);
});

it('both kernels are registered for cuda and have parity cases', () => {
  const covered = new Set(kstarParityCases().map((c) => c.kernel));
  for (const name of ['KstarFlashAttention', 'KstarFlashAttentionGrad']) {
    expect(CUDA_KERNEL_NAMES).toContain(name);
    expect(covered).toContain(name);
  }
});
