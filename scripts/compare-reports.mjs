// Compares two `kstar train --report` files field by field, to show that a change left a run as it was:
// node scripts/compare-reports.mjs BEFORE.json AFTER.json OUT.json ['the command that made them'] (timings, the process RSS and the report path left out).
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

const [beforePath, afterPath, out, ran = null] = process.argv.slice(2);
const [a, b] = [beforePath, afterPath].map((p) => JSON.parse(readFileSync(p, 'utf8')));
const timing = new Set(['stepSeconds', 'tokensPerSecond', 'wallSeconds']);
const strip = (r) => ({
  ...r,
  memory: { ...r.memory, rssBytes: undefined },
  config: { ...r.config, report: undefined },
});
const [sa, sb] = [strip(a), strip(b)];
const sorted = (v) =>
  JSON.stringify(v, (_, x) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x,
  );
const fields = Object.keys(sa).filter((k) => !timing.has(k));
const differing = fields.filter((k) => sorted(sa[k]) !== sorted(sb[k]));
writeFileSync(
  out,
  `${JSON.stringify(
    {
      command: ran,
      compare: `node scripts/compare-reports.mjs BEFORE AFTER OUT: every report field but ${[...timing].join(', ')}, memory.rssBytes and config.report, compared with keys sorted`,
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        memoryBytes: totalmem(),
        node: process.version,
        note: '2-core x86-64, Debian 12, shared with parallel jobs',
      },
      fieldsCompared: fields,
      differing,
      sameKeysInOrder: JSON.stringify(Object.keys(a)) === JSON.stringify(Object.keys(b)),
      configKeyOrderChanged: JSON.stringify(Object.keys(a.config)) !== JSON.stringify(Object.keys(b.config)),
      before: {
        losses: a.losses,
        valLosses: a.valLosses,
        sample: a.sample,
        predictedPeakBytes: a.memory.predictedPeakBytes,
        peakBytes: a.memory.peakBytes,
      },
      after: {
        losses: b.losses,
        valLosses: b.valLosses,
        sample: b.sample,
        predictedPeakBytes: b.memory.predictedPeakBytes,
        peakBytes: b.memory.peakBytes,
      },
    },
    null,
    2,
  )}\n`,
);
console.log(
  differing.length === 0 ? `identical in ${fields.length} fields` : `differ: ${differing.join(', ')}`,
);
