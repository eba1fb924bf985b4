import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { TrainReport } from './report.ts';

/** Chart.js's UMD build, inlined so the page opens offline (the package's exports map does not list it). */
function chartJsSource(): string {
  const entry = createRequire(import.meta.url).resolve('chart.js'); // …/chart.js/dist/chart.cjs
  return readFileSync(join(dirname(entry), 'chart.umd.min.js'), 'utf8');
}

/** `<` escaped so that report strings can never close the inline script. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/**
 * A self-contained HTML page for a `--report` JSON: loss and validation-loss curves, tokens/s per step, and the
 * memory ledger as stacked bars by term with the plugins' prediction beside the measurement.
 */
export function reportHtml(report: TrainReport): string {
  const title = `kstar ${report.model.preset} on ${report.backend}: ${report.steps} steps`;
  const summary = [
    ['backend', report.backend],
    ['model', `${report.model.preset} (${report.model.params.toLocaleString('en-US')} params)`],
    ['plugins', report.plugins.map((p) => `${p.kind} ${p.name}`).join(', ')],
    ['steps', `${report.steps}${report.stoppedEarly ? ' (stopped early)' : ''}`],
    ['loss', `${report.losses[0]?.toFixed(4)} → ${report.losses.at(-1)?.toFixed(4)}`],
    ['tokens/s', Math.round(report.tokensPerSecond).toLocaleString('en-US')],
    ['wall time', `${report.wallSeconds.toFixed(1)} s`],
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5rem; max-width: 70rem; }
  table { border-collapse: collapse; } td { padding: .15rem .8rem .15rem 0; }
  .charts { display: grid; grid-template-columns: 1fr 1fr; gap: 1.5rem; }
</style>
<script>${chartJsSource()}</script>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<table id="summary">${summary.map(([k, v]) => `<tr><td>${escapeHtml(k!)}</td><td>${escapeHtml(v!)}</td></tr>`).join('')}</table>
<div class="charts">
  <div><h2>loss</h2><canvas id="loss"></canvas></div>
  <div><h2>tokens/s</h2><canvas id="speed"></canvas></div>
  <div><h2>memory ledger (unique data buffers)</h2><canvas id="memory"></canvas></div>
</div>
<script>
const report = ${jsonForScript(report)};
const MIB = 1024 * 1024;
const steps = report.losses.map((_, i) => i + 1);
new Chart(document.getElementById('loss'), {
  type: 'line',
  data: { labels: steps, datasets: [
    { label: 'training loss', data: report.losses, borderColor: '#cc3311', pointRadius: 0 },
    { label: 'validation loss', data: report.valLosses.map((v) => ({ x: v.step, y: v.loss })), borderColor: '#0077bb', showLine: true },
  ] },
  options: { animation: false, parsing: true, scales: { x: { type: 'linear', title: { display: true, text: 'step' } } } },
});
const tokensPerStep = Number(report.config.batch) * Number(report.config.seq);
new Chart(document.getElementById('speed'), {
  type: 'line',
  data: { labels: steps, datasets: [{ label: 'tokens/s', data: report.stepSeconds.map((s) => tokensPerStep / s), borderColor: '#009988', pointRadius: 0 }] },
  options: { animation: false, scales: { x: { title: { display: true, text: 'step' } } } },
});
const m = report.memory;
const measured = [
  ['parameters', m.paramBytes], ['gradients (peak alive)', m.gradBytes], ['optimizer state', m.optimizerStateBytes],
  ['activations + temporaries (peak)', m.activationPeakBytes],
];
const predicted = Object.entries(m.predicted);
const colors = ['#4477aa', '#66ccee', '#228833', '#ccbb44', '#ee6677', '#aa3377', '#bbbbbb'];
new Chart(document.getElementById('memory'), {
  type: 'bar',
  data: { labels: ['measured', 'predicted'], datasets: [
    ...measured.map(([label, bytes], i) => ({ label, data: [bytes / MIB, null], backgroundColor: colors[i % colors.length], stack: 's' })),
    ...predicted.map(([label, bytes], i) => ({ label: 'predicted ' + label, data: [null, bytes / MIB], backgroundColor: colors[(i + 4) % colors.length], stack: 's' })),
  ] },
  options: { animation: false, scales: { x: { stacked: true }, y: { stacked: true, title: { display: true, text: 'MiB' } } } },
});
</script>
</body>
</html>
`;
}
