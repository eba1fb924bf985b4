/**
 * How far the greedy plan search lands from the optimum: random multiple-choice knapsacks (7 slots, 2–4 options,
 * budgets at 10/30/50% between the smallest and the largest plan), each solved exhaustively and greedily from the
 * fastest plan alone, the smallest alone and both (the default). Deterministic (seeded).
 * Usage (repo root): node --conditions=@kstar/source --import tsx bench/packages/planner/greedy-vs-exhaustive.ts --json FILE
 */
import { writeFileSync } from 'node:fs';
import { type GreedyStart, type PlanProblem, solveExhaustive, solveGreedy } from '@kstar/planner';
import { rng } from '../../../testkit/src/random.ts';

type Item = { bytes: number; ms: number };
const VARIANTS: Record<string, GreedyStart[]> = {
  'fastest only': ['fastest'],
  'smallest only': ['smallest'],
  'both (default)': ['fastest', 'smallest'],
};
const json = process.argv[process.argv.indexOf('--json') + 1];
if (!process.argv.includes('--json') || !json) throw new Error('usage: greedy-vs-exhaustive.ts --json FILE');

const rows = [];
for (const nOptions of [2, 3, 4]) {
  const ratios: Record<string, number[]> = Object.fromEntries(Object.keys(VARIANTS).map((k) => [k, []]));
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed);
    const slots = Array.from({ length: 7 }, (_, i) => ({
      name: `slot ${i}`,
      options: Array.from({ length: nOptions }, () => ({ bytes: 1 + Math.floor(r() * 100), ms: r() * 10 })),
    }));
    const minBytes = slots.reduce((s, sl) => s + Math.min(...sl.options.map((o) => o.bytes)), 0);
    const maxBytes = slots.reduce((s, sl) => s + Math.max(...sl.options.map((o) => o.bytes)), 0);
    for (const f of [0.1, 0.3, 0.5]) {
      const p: PlanProblem<Item> = {
        slots,
        budget: Math.round(minBytes + f * (maxBytes - minBytes)),
        evaluate: (a) => ({ bytes: a.reduce((s, o) => s + o.bytes, 0), ms: a.reduce((s, o) => s + o.ms, 0) }),
      };
      const best = solveExhaustive(p).evaluation.ms;
      for (const [name, starts] of Object.entries(VARIANTS))
        ratios[name]!.push(solveGreedy(p, starts).evaluation.ms / best);
    }
  }
  for (const [name, rs] of Object.entries(ratios)) {
    rows.push({
      options: nOptions,
      starts: name,
      problems: rs.length,
      over5Percent: rs.filter((x) => x > 1.05).length,
      worst: Math.max(...rs),
      mean: rs.reduce((a, b) => a + b, 0) / rs.length,
    });
  }
}
writeFileSync(
  json,
  `${JSON.stringify({ benchmark: 'planner greedy vs exhaustive', command: `node --conditions=@kstar/source --import tsx bench/packages/planner/greedy-vs-exhaustive.ts --json ${json}`, date: new Date().toISOString(), rows }, null, 2)}\n`,
);
for (const r of rows)
  console.log(
    `${r.options} options, ${r.starts}: ${r.over5Percent}/${r.problems} over 5%, worst ${r.worst.toFixed(3)}`,
  );
