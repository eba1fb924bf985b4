import { createRequire } from 'node:module';

/** Set by `scripts/bundle.mjs` (esbuild `define`): the offline bundle has no package.json beside it. */
declare const __KSTAR_VERSION__: string | undefined;

/** The K* trainer's version (its package.json: one level above both src/ and dist/). */
export const KSTAR_VERSION: string =
  typeof __KSTAR_VERSION__ === 'string'
    ? __KSTAR_VERSION__
    : (createRequire(import.meta.url)('../package.json') as { version: string }).version;
