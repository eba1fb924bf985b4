// Serves the built page (dist/) on 127.0.0.1 at a free port: the page test and the benchmark open it in Chromium.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join } from 'node:path';
import { distDir } from './build.mjs';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

/** Starts the server; returns its origin (`http://127.0.0.1:PORT`) and a function that stops it. */
export async function servePage() {
  const server = createServer((req, res) => {
    const path = join(distDir, new URL(req.url ?? '/', 'http://x').pathname.replace(/\/$/, '/index.html'));
    try {
      const body = readFileSync(path);
      res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}
