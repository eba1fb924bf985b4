import { Rng } from '@kstar/data';

/** Uniform draws in [0, 1) from the run's seeded `Rng`: `@kstar/gpt`'s `generate` option `random`, reproducible. */
export function seededRandom(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.nextFloat();
}
