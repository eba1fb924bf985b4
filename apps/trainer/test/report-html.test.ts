import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../../scripts/chromium.mjs';
import type { TrainReport } from '../src/index.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kstar-html-'));

function kstar(args: string[]) {
  return spawnSync(process.execPath, ['--conditions=@kstar/source', '--import', 'tsx', bin, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
  });
}

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

describe('the HTML report', () => {
  const json = join(dir, 'report.json');
  const fromTrain = join(dir, 'train.html');
  const fromReport = join(dir, 'report.html');

  it('kstar train --report-html and kstar report --html write the same page', () => {
    const train = kstar([
      'train',
      '--preset',
      'tiny',
      '--steps',
      '4',
      '--batch',
      '2',
      '--seq',
      '16',
      '--eval-every',
      '2',
      '--eval-batches',
      '1',
      '--backend',
      'cpu',
      '--report',
      json,
      '--report-html',
      fromTrain,
    ]);
    expect(train.status, train.stderr).toBe(0);
    const report = kstar(['report', json, '--html', fromReport]);
    expect(report.status, report.stderr).toBe(0);
    expect(readFileSync(fromReport, 'utf8')).toBe(readFileSync(fromTrain, 'utf8'));
  });

  it('bad input: exit 2, one line', () => {
    const r = kstar(['report', join(dir, 'missing.json'), '--html', join(dir, 'x.html')]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/does not exist/);
  });

  it('renders offline in headless Chromium: three non-empty charts, the summary from the JSON', async () => {
    const report = JSON.parse(readFileSync(json, 'utf8')) as TrainReport;
    const page = await browser.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) return route.continue();
      requests.push(url);
      return route.abort(); // offline: anything fetched from the network fails
    });
    await page.goto(pathToFileURL(fromReport).href);
    const painted = await page.evaluate(() =>
      Array.from(document.querySelectorAll('canvas')).map((canvas) => {
        const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
        let inked = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) inked++;
        return inked;
      }),
    );
    const summary = (await page.locator('#summary').textContent()) ?? '';
    await page.close();
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    expect(painted).toHaveLength(3);
    for (const inked of painted) expect(inked).toBeGreaterThan(500);
    expect(summary).toContain(Math.round(report.tokensPerSecond).toLocaleString('en-US'));
    expect(summary).toContain(`${report.losses[0]!.toFixed(4)} → ${report.losses.at(-1)!.toFixed(4)}`);
  });
});
