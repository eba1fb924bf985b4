import { createRequire } from 'node:module';

/** The K* trainer's version (its package.json: one level above both src/ and dist/). */
export const KSTAR_VERSION: string = (
  createRequire(import.meta.url)('../package.json') as { version: string }
).version;
