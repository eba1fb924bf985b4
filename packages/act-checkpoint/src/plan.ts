import { InputError, type StageSummary } from '@kstar/core';

/**
 * Segment plans. `every`: one block a segment; `every:k`: k blocks a segment; `sqrt`: ≈√L segments of blocks (Chen et
 * al. 2016); an explicit list of stage-index groups. The blocks are the stages between the first (embedding) and the
 * last (head): the embedding joins the first group (its output is then not saved: the first block's recompute
 * re-embeds, which is cheap), the head stays a segment of its own (its [N, V] logits should not share a graph with a
 * block).
 */
export type CheckpointPlan = 'every' | `every:${number}` | 'sqrt' | number[][];

/** Groups of consecutive stage indices for `plan` over `nStages` stages (embedding, blocks, head). */
export function planSegments(plan: CheckpointPlan, nStages: number): number[][] {
  if (Array.isArray(plan)) return plan.map((g) => [...g]);
  if (nStages < 3) return [Array.from({ length: nStages }, (_, i) => i)];
  const L = nStages - 2;
  const k = blocksPerSegment(plan, L);
  const segments: number[][] = [];
  for (let b = 0; b < L; b += k) {
    const seg: number[] = b === 0 ? [0] : [];
    for (let j = b; j < Math.min(L, b + k); j++) seg.push(1 + j);
    segments.push(seg);
  }
  segments.push([nStages - 1]);
  return segments;
}

/** Blocks per segment of a named plan over L blocks. */
export function blocksPerSegment(plan: Exclude<CheckpointPlan, number[][]>, L: number): number {
  if (plan === 'every') return 1;
  if (plan === 'sqrt') {
    const groups = Math.max(1, Math.round(Math.sqrt(L)));
    return Math.ceil(L / groups);
  }
  const m = /^every:(\d+)$/.exec(plan);
  const k = m ? Number(m[1]) : Number.NaN;
  if (!Number.isInteger(k) || k < 1) {
    throw new InputError(
      `checkpoint plan '${String(plan)}' is unknown: use 'every', 'every:K' (K ≥ 1 blocks a segment), 'sqrt', 'selective' or a list of stage-index groups`,
      'E_CHECKPOINT_PLAN',
    );
  }
  return k;
}

/** Parse a plan from text: `every`, `every:4`, `sqrt`, or JSON groups `[[0,1],[2,3],[4]]`. */
export function parsePlan(text: string): CheckpointPlan | 'selective' {
  const t = text.trim();
  if (t === 'every' || t === 'sqrt' || t === 'selective') return t;
  if (/^every:\d+$/.test(t)) {
    blocksPerSegment(t as `every:${number}`, 1);
    return t as `every:${number}`;
  }
  if (t.startsWith('[')) {
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch {
      v = undefined;
    }
    if (Array.isArray(v) && v.every((g) => Array.isArray(g) && g.every((i) => Number.isInteger(i)))) {
      return v as number[][];
    }
  }
  throw new InputError(
    `checkpoint plan '${text}' is unknown: use every, every:K, sqrt, selective, or JSON stage groups like [[0,1],[2,3],[4]]`,
    'E_CHECKPOINT_PLAN',
  );
}

/** A summary's stage names grouped per segment (for messages and reports). */
export function describePlan(segments: number[][], stages: readonly StageSummary[]): string {
  return segments.map((g) => g.map((i) => stages[i]?.name ?? `#${i}`).join('+')).join(' | ');
}
