import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { fixedStepBytes, formatBytes, ledgerTable, type MemoryReport } from '../src/index.ts';
import { toyModel } from './toy.ts';

describe('ledgerTable and formatBytes (the CLI and the browser page print this table)', () => {
  it('formatBytes uses binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.00 GiB');
  });

  it('prints every measured term with bytes per parameter, the prediction error and the predicted terms', () => {
    const memory: MemoryReport = {
      paramBytes: 4000,
      gradBytes: 2000,
      optimizerStateBytes: 8000,
      activationPeakBytes: 6000,
      peakBytes: 20_000,
      predictedPeakBytes: 22_000,
      predicted: { params: 4000, 'optimizer:adamw': 8000, 'activations:gpt': 10_000 },
    };
    const lines = ledgerTable(memory, 1000).split('\n');
    expect(lines[0]).toBe('memory ledger (unique data buffers)');
    const row = (name: string) =>
      lines
        .find((l) => l.startsWith(name))!
        .slice(34)
        .trim()
        .split(/\s+/);
    expect(row('optimizer state')).toEqual(['8,000', '7.81', 'KiB', '8.00', 'measured']);
    expect(row('predicted step peak')).toEqual(['22,000', '21.48', 'KiB', '22.00', 'predicted']);
    expect(lines).toContain('prediction vs measured peak: +10.0%'); // 22,000 / 20,000
    expect(lines.filter((l) => l.startsWith('  predicted '))).toHaveLength(3);
    expect(lines.some((l) => l.startsWith('GPU'))).toBe(false);
  });
});

describe('fixedStepBytes: the non-activation terms of a predicted step peak', () => {
  it('counts parameters, state by role and tied gradients read by several segments', () => {
    const model = toyModel({ vocab: 10, dim: 4, depth: 2, seed: 1 }); // E [10, 4] read by the embedding and the head
    const roles: string[] = [];
    const fixed = fixedStepBytes(model, {
      stateBytes: (shape, role) => {
        roles.push(role!);
        return 8 * shape.reduce((a, b) => a * b, 1);
      },
    });
    const n = [...model.variables.values()].reduce((a, v) => a + v.size, 0);
    expect(fixed.params).toBe(4 * n);
    expect(fixed.optimizerState).toBe(8 * n);
    expect(roles).toEqual([...model.variables.keys()].map((name) => model.paramInfo(name).role));
    const last = model.stages.length - 1;
    expect(fixed.waitingGrads(undefined)).toBe(0);
    expect(fixed.waitingGrads([model.stages.map((_, i) => i)])).toBe(0); // one segment: nothing waits
    expect(fixed.waitingGrads(model.stages.map((_, i) => [i]))).toBe(4 * 10 * 4); // E, in two segments
    expect(fixed.waitingGrads([[0], [1, 2, last]])).toBe(4 * 10 * 4);
    const halves = fixedStepBytes(
      model,
      { stateBytes: () => 0 },
      { bytesFor: (s) => 2 * s.reduce((a, b) => a * b, 1) },
    );
    expect(halves.params).toBe(2 * n);
    tf.dispose([...model.variables.values()]);
  });
});
