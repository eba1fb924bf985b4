// Bundles the page for browsers into dist/: esbuild (platform browser, K* from source), tfjs-backend-wasm's
// .wasm files beside it, index.html. Usage: node build.mjs
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
export const distDir = join(here, 'dist');

export async function buildPage() {
  mkdirSync(distDir, { recursive: true });
  await build({
    entryPoints: [join(here, 'src/main.ts')],
    outfile: join(distDir, 'main.js'),
    bundle: true,
    platform: 'browser',
    format: 'esm',
    conditions: ['@kstar/source'],
    minify: true,
    logLevel: 'warning',
  });
  const wasmDir = dirname(
    createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'),
  );
  for (const file of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm')))
    copyFileSync(join(wasmDir, file), join(distDir, file));
  copyFileSync(join(here, 'src/index.html'), join(distDir, 'index.html'));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildPage();
