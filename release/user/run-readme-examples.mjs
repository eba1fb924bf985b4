// Runs the README examples (readme/*.ts) one after another in this process, each from the cpu backend and with no
// variables left by the one before, and writes
// `{ file: { seconds } | { error } }` to readme-results.json. Started with tsx's loader (`node --import <tsx>`) by
// release/test/packed-install.test.ts; files that say `// type-checked only: why` are only type-checked there.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';

const results = {};
for (const file of readdirSync(new URL('./readme/', import.meta.url))
  .filter((f) => f.endsWith('.ts'))
  .sort()) {
  const url = new URL(`./readme/${file}`, import.meta.url);
  if (/^\/\/ type-checked only:/m.test(readFileSync(url, 'utf8'))) continue;
  await tf.setBackend('cpu');
  const t0 = performance.now();
  try {
    await import(url.href);
    results[file] = { seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    results[file] = { error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
  tf.disposeVariables(); // the next example may name its variables the same
}
writeFileSync(new URL('./readme-results.json', import.meta.url), JSON.stringify(results, null, 2));
