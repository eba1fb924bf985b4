export type { Split24Plugin, Split24State } from './plugin.ts';
export { split24 } from './plugin.ts';
