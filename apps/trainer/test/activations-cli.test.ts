import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseActivations } from '../src/activations.ts';
import { runCli } from '../src/index.ts';
import { capture } from './cli-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'kstar-act-'));

describe('--activations and --memory-budget', () => {
  it('parses strategies and plans', () => {
    expect(parseActivations('checkpoint:every:2,mst:4,compress:int8')).toEqual({
      checkpoint: { plan: 'every:2', selective: false },
      mst: { chunks: 4 },
      compress: { format: 'int8' },
    });
    expect(parseActivations('checkpoint:[[0,1],[2],[3]],mst:mlp=4,attn=16')).toEqual({
      checkpoint: { plan: [[0, 1], [2], [3]], selective: false },
      mst: { mlpChunks: 4, attentionChunk: 16 },
    });
    expect(parseActivations('checkpoint:sqrt+selective').checkpoint).toEqual({
      plan: 'sqrt',
      selective: true,
    });
    expect(parseActivations('checkpoint:selective').checkpoint).toEqual({ selective: true });
    expect(parseActivations('compress').compress).toEqual({ format: 'bf16' });
    expect(parseActivations('checkpoint:every,offload')).toEqual({
      checkpoint: { plan: 'every', selective: false },
      offload: true,
    });
  });

  const cases: Array<[string, string[], RegExp]> = [
    ['unknown strategy', ['--activations', 'recompute'], /'recompute' is not a strategy/],
    ['unknown plan', ['--activations', 'checkpoint:often'], /checkpoint plan 'often' is unknown/],
    ['unknown compress format', ['--activations', 'compress:fp4'], /compress format 'fp4' is unknown/],
    ['twice', ['--activations', 'mst,mst:2'], /'mst' is given twice/],
    ['compress and offload', ['--activations', 'compress,offload'], /compress:bf16 and offload both store/],
    ['offload with an argument', ['--activations', 'offload:all'], /'offload' takes no argument/],
    ['--host-update alone', ['--host-update'], /--host-update updates offloaded state: add --offload-state/],
    [
      '--host-update with another optimizer',
      ['--offload-state', '--host-update', '--optimizer', 'lion'],
      /--host-update computes AdamW's rule on the host; the run uses --optimizer lion/,
    ],
    [
      '--offload-state with the planner placing state',
      ['--offload-state', '--state-choices', 'offload', '--memory-budget', '9MiB'],
      /--offload-state does not work with --state-choices offload/,
    ],
    ['checkpoint with --mode full', ['--activations', 'checkpoint', '--mode', 'full'], /--mode full/],
    ['bad budget', ['--memory-budget', '12 parsecs'], /memory budget '12 parsecs' is not a size/],
    [
      'budget too small, before the first step',
      ['--memory-budget', '1MiB', '--activations', 'checkpoint,mst', '--steps', '2', '--backend', 'wasm'],
      /memory budget 1,048,576 bytes cannot hold a step of batch 8 × seq 128: the smallest predicted peak .* is [\d,]+ bytes .*try/,
    ],
  ];
  it.each(cases)('%s: one line, exit code 2, no report', async (_name, argv, pattern) => {
    const c = capture();
    const report = join(dir, `${_name.replace(/\W/g, '-')}.json`);
    const code = await runCli(['train', ...argv, '--report', report], c.io);
    expect(code).toBe(2);
    expect(c.err.join('')).toMatch(pattern);
    expect(c.out.join('')).toBe('');
    expect(existsSync(report)).toBe(false);
  });

  it('a budget that fits: the planner picks the plan and chunks, the report names them and the run stays under it', async () => {
    const c = capture();
    const report = join(dir, 'ok.json');
    const budget = 12 * 2 ** 20;
    const code = await runCli(
      [
        'train',
        ...['--steps', '2', '--batch', '2', '--seq', '48', '--backend', 'wasm', '--eval-every', '0'],
        ...['--activations', 'checkpoint,mst', '--memory-budget', String(budget), '--report', report],
      ],
      c.io,
    );
    expect(c.err.join('')).toMatch(/plan at step 1 \(start\)/);
    expect(code).toBe(0);
    const r = JSON.parse(readFileSync(report, 'utf8'));
    expect(r.config.mode).toBe('segmented');
    // The planner (@kstar/planner) picks among the listed strategies only: the segments, selective or MsT ops.
    const names = r.plugins.map((p: { name: string }) => p.name);
    expect(names[0]).toBe('adamw');
    for (const n of names.slice(1)) expect(['checkpoint', 'mst']).toContain(n);
    expect(r.plans).toHaveLength(1);
    expect(r.memory.predictedPeakBytes).toBeLessThanOrEqual(budget);
    expect(r.memory.peakBytes).toBeLessThanOrEqual(budget);
  });
});
