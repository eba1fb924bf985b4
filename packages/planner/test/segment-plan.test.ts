import { describe, expect, it } from 'vitest';
import { decodeSegmentPlan, type SegmentOption, segmentRows, segmentSlots } from '../src/index.ts';

type Option = SegmentOption<string, 'float32' | 'offload'>;

const space = {
  nStages: 4,
  cut: true,
  stores: ['bf16'],
  ops: [
    { label: 'plain', ops: 'plain' },
    { label: 'mst', ops: 'mst' },
  ],
  state: ['float32', 'offload'] as const,
  groups: ['g0', 'g1'],
};

/** The option of `slots[i]` labelled `label`. */
function pick(
  slots: ReturnType<typeof segmentSlots<string, 'float32' | 'offload'>>,
  labels: string[],
): Option[] {
  return labels.map((l, i) => slots[i]!.options.find((o) => o.label === l)!);
}

describe('segment plans', () => {
  it('has S − 1 boundary slots, the ops, one state slot per group; decodes segments, stores, ops and states', () => {
    const slots = segmentSlots({ ...space, state: [...space.state] });
    expect(slots.map((s) => s.name)).toEqual([
      'boundary 0|1',
      'boundary 1|2',
      'boundary 2|3',
      'ops',
      'state g0',
      'state g1',
    ]);
    expect(slots[0]!.options.map((o) => o.label)).toEqual(['keep', 'ckpt', 'ckpt+bf16']);
    const plan = decodeSegmentPlan(pick(slots, ['keep', 'ckpt+bf16', 'ckpt', 'mst', 'offload', 'float32']));
    expect(plan).toEqual({
      mode: 'segmented',
      segments: [[0, 1], [2], [3]],
      stores: ['float32', 'bf16', 'float32'],
      ops: 'mst',
      opsLabel: 'mst',
      states: ['offload', 'float32'],
    });
    const whole = decodeSegmentPlan(pick(slots, ['keep', 'keep', 'keep', 'plain', 'float32', 'float32']));
    expect([whole.mode, whole.segments]).toEqual(['full', [[0, 1, 2, 3]]]);
    expect(decodeSegmentPlan(pick(slots, ['keep', 'keep', 'keep', 'plain']), true).mode).toBe('segmented');
    expect(segmentSlots({ ...space, cut: false, state: [] })[0]!.options.map((o) => o.label)).toEqual([
      'keep',
    ]);
  });

  it('times a plan: forward+backward of every stage, the forward again outside the last segment, stores, updates', () => {
    const slots = segmentSlots({ ...space, state: [...space.state] });
    const plan = decodeSegmentPlan(pick(slots, ['keep', 'ckpt+bf16', 'ckpt', 'mst', 'offload', 'float32']));
    const forward = [1, 2, 4, 8];
    const forwardBackward = [10, 20, 40, 80];
    const costs = {
      stages: { mst: { forward, forwardBackward } },
      store: { float32: 0, bf16: 0.5 },
      state: [
        { float32: 3, offload: 7 },
        { float32: 5, offload: 11 },
      ],
    };
    const groups = [
      { name: 'g0', bytes: { float32: 100, offload: 0 } },
      { name: 'g1', bytes: { float32: 200, offload: 0 } },
    ];
    const rows = segmentRows(plan, costs, [64, 32, 64], groups);
    // Segment 0 = stages 0, 1 (forward again: not the last); segment 1 = stage 2 (+ its bf16 input's store and
    // fetch); segment 2 = stage 3 (last: its forward runs once, inside the gradient call; its input is not stored).
    expect(rows).toEqual([
      { choice: 'stages 0-1 input: tokens mst', predictedBytes: 0, predictedMs: 10 + 1 + 20 + 2 },
      { choice: 'stages 2-2 ckpt+bf16 mst', predictedBytes: 32, predictedMs: 40 + 4 + 0.5 },
      { choice: 'stages 3-3 ckpt mst', predictedBytes: 64, predictedMs: 80 },
      { choice: 'state g0 offload', predictedBytes: 0, predictedMs: 7 },
      { choice: 'state g1 float32', predictedBytes: 200, predictedMs: 5 },
    ]);
    expect(() => segmentRows({ ...plan, opsLabel: 'plain' }, costs, [])).toThrow(
      /no calibrated costs for ops 'plain'/,
    );
  });
});
