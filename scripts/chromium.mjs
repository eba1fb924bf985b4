// Headless Chromium for the browser tests (apps/web, the HTML report): Debian's `chromium` package through
// playwright-core. `--headless` comes from Playwright's headless launch (passed twice, screenshots hang);
// `--enable-unsafe-webgpu` gives a SwiftShader WebGPU adapter on a machine without a GPU.
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Launches headless Chromium (`KSTAR_CHROMIUM` or /usr/bin/chromium); says how to install it when it is missing. */
export function launchChromium() {
  const executablePath = process.env.KSTAR_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(
      `no Chromium at ${executablePath}: install Debian's package ('apt-get install -y chromium', which scripts/test.sh does) or set KSTAR_CHROMIUM`,
    );
  }
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS });
}
