// A user's config file for an installed `kstar` (TypeScript syntax on purpose: Node alone cannot import it).
interface RunConfig {
  preset: 'tiny';
  steps: number;
  batch: number;
  seq: number;
  evalEvery: number;
  backend: 'cpu';
}
const config: RunConfig = { preset: 'tiny', steps: 2, batch: 2, seq: 16, evalEvery: 0, backend: 'cpu' };
export default config;
