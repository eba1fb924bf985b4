// The page's time to a falling loss in headless Chromium: builds and serves the page, trains tiny with adam8bit +
// split24 + checkpointing on one backend (wasm, or webgpu: SwiftShader on a machine without a GPU) until the loss
// has fallen or the time is up, and writes the JSON. "Fallen" is the page test's criterion: the mean of the last 5
// losses at least 0.3 below the mean of the first 5 (so at step 10 at the earliest).
// Usage: node apps/web/bench.mjs --backend wasm|webgpu [--steps 30] [--limit-seconds 300] --out FILE.json
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { launchChromium } from '../../scripts/chromium.mjs';
import { buildPage } from './build.mjs';
import { servePage } from './serve.mjs';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    steps: { type: 'string', default: '30' },
    'limit-seconds': { type: 'string', default: '300' },
    out: { type: 'string' },
  },
});
if (!['wasm', 'webgpu'].includes(values.backend) || !values.out) {
  console.error(
    'usage: node apps/web/bench.mjs --backend wasm|webgpu [--steps 30] [--limit-seconds 300] --out FILE.json',
  );
  process.exit(2);
}
const steps = Number(values.steps);
const limitSeconds = Number(values['limit-seconds']);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The first step (1-based) at which the loss has fallen, or undefined. */
function fallenAt(losses) {
  for (let k = 10; k <= losses.length; k++) {
    if (mean(losses.slice(k - 5, k)) < mean(losses.slice(0, 5)) - 0.3) return k;
  }
  return undefined;
}

await buildPage();
const server = await servePage();
const browser = await launchChromium();
const loadBefore = loadavg()[0];
const page = await browser.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
const opened = Date.now();
await page.goto(
  `${server.origin}/?optimizer=adam8bit&split24=1&checkpoint=1&backend=${values.backend}&steps=${steps}&autostart=1`,
);
// Until the loss has fallen, the run ends, or the time is up.
let run;
for (;;) {
  run = await page.evaluate(() => ({
    done: window.kstarRun?.done ?? false,
    error: window.kstarRun?.error,
    progress: (window.kstarRun?.progress ?? []).map((p) => ({
      backend: p.backend,
      loss: p.result.loss,
      seconds: p.seconds,
      elapsedSeconds: p.elapsedSeconds,
    })),
  }));
  const losses = run.progress.map((p) => p.loss);
  if (run.done || fallenAt(losses) !== undefined || (Date.now() - opened) / 1000 > limitSeconds) break;
  await new Promise((r) => setTimeout(r, 500));
}
const chromiumVersion = browser.version();
await browser.close();
server.close();

const losses = run.progress.map((p) => p.loss);
const fallen = fallenAt(losses);
const result = {
  what: "apps/web: seconds from the start of the page's run (backend selection and model creation included) to the end of the step at which the loss has fallen (mean of the last 5 ≥ 0.3 below the mean of the first 5)",
  command: `node apps/web/bench.mjs --backend ${values.backend} --steps ${steps} --limit-seconds ${limitSeconds} --out ${values.out}`,
  machine: `${cpus().length}-core ${cpus()[0]?.model ?? 'x86-64'}, ${process.platform}, Node ${process.version}, headless Chromium ${chromiumVersion}; shared with parallel jobs (1-minute load average ${loadBefore.toFixed(1)} at the start)`,
  backend: run.progress[0]?.backend ?? values.backend,
  plugins: 'adam8bit + split24 + checkpoint every; tiny GPT, batch 4 × seq 64',
  fallenAtStep: fallen ?? null,
  secondsToFallingLoss: fallen === undefined ? null : run.progress[fallen - 1].elapsedSeconds,
  limitSeconds,
  stepsRun: losses.length,
  losses,
  stepSeconds: run.progress.map((p) => p.seconds),
  elapsedSeconds: run.progress.map((p) => p.elapsedSeconds),
  errors: run.error ? [run.error, ...errors] : errors,
};
writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
console.log(
  fallen === undefined
    ? `${result.backend}: the loss had not fallen after ${losses.length} steps (${limitSeconds} s limit)`
    : `${result.backend}: the loss had fallen at step ${fallen}, ${result.secondsToFallingLoss.toFixed(1)} s into the run`,
);
