// The page: a form of K* plugin choices, live charts, and `window.kstarRun` for tests (steps, losses, errors).
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core alone registers no gradients (the @tensorflow/tfjs bundle does): training needs them.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { ledgerTable } from '@kstar/core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createCharts } from './charts.ts';
import { type PageSample, type RunChoices, type RunProgress, trainInPage } from './run.ts';

interface PageRun {
  choices: RunChoices;
  progress: RunProgress[];
  done: boolean;
  error?: string;
  sample?: PageSample;
}
declare global {
  interface Window {
    kstarRun?: PageRun;
  }
}

setWasmPaths(new URL('./', location.href).href); // the .wasm files sit beside main.js

const form = document.querySelector<HTMLFormElement>('#options')!;
const status = document.querySelector<HTMLElement>('#status')!;
const ledger = document.querySelector<HTMLElement>('#ledger')!;
const sample = document.querySelector<HTMLElement>('#sample')!;
const charts = createCharts(document.querySelector('#loss')!, document.querySelector('#memory')!);

/** Form fields, overridden by the URL's query (`?optimizer=adamw&split24=0&steps=20&autostart=1`). */
function readChoices(): RunChoices {
  const data = new FormData(form);
  const query = new URLSearchParams(location.search);
  const pick = (name: string, fallback: string) => query.get(name) ?? fallback;
  const flag = (name: string) => (query.has(name) ? query.get(name) === '1' : data.get(name) === 'on');
  return {
    optimizer: pick('optimizer', String(data.get('optimizer'))) as RunChoices['optimizer'],
    split24: flag('split24'),
    checkpoint: flag('checkpoint'),
    backend: pick('backend', String(data.get('backend'))) as RunChoices['backend'],
    steps: Number(pick('steps', String(data.get('steps')))),
    batch: Number(pick('batch', '4')),
    seq: Number(pick('seq', '64')),
    sampleTokens: Number(pick('sample', '40')),
  };
}

/** The CLI's ledger table (`ledgerTable` from @kstar/core) for the run so far. */
function showLedger(p: RunProgress): void {
  ledger.textContent = `step ${p.step} on ${p.backend}\n${ledgerTable(p.memory, p.params)}`;
}

async function start(): Promise<void> {
  const choices = readChoices();
  const run: PageRun = { choices, progress: [], done: false };
  window.kstarRun = run;
  status.textContent = `training ${JSON.stringify(choices)}…`;
  try {
    const generated = await trainInPage(choices, (p) => {
      run.progress.push(p);
      charts.update(p);
      showLedger(p);
      status.textContent = `step ${p.step}/${choices.steps} on ${p.backend}: loss ${p.result.loss.toFixed(4)}`;
    });
    if (generated) {
      run.sample = generated;
      sample.textContent = `sample: ${generated.prompt}${generated.text}`;
    }
    status.textContent += ' (done)';
  } catch (e) {
    run.error = (e as Error).message;
    status.textContent = `error: ${run.error}`;
    console.error(e);
  }
  run.done = true;
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  void start();
});
if (new URLSearchParams(location.search).get('autostart') === '1') void start();
