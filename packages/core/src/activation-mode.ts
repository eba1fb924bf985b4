import type { ActivationStrategy } from './contracts.ts';
import type { EngineMode } from './engine.ts';
import { InputError } from './errors.ts';

/** What decides whether a strategy recomputes segments: its name (for errors), its plan and its codec. */
export type RecomputeDeclaration = Pick<ActivationStrategy, 'name' | 'planSegments' | 'codec'>;

/**
 * Whether a strategy recomputes segments, and so needs segmented mode: it plans them (`planSegments`) or stores
 * their saved inputs (`codec`). Model ops alone (selective recompute, MsT) work in full-graph mode too. The one
 * statement of the rule: the engine and the trainer ask it.
 */
export function recomputesSegments(strategy: RecomputeDeclaration): boolean {
  return strategy.planSegments !== undefined || strategy.codec !== undefined;
}

/** How to word the refusal of a recomputing strategy under a requested full-graph mode. */
export interface RecomputeRefusal {
  /** The offending input, e.g. `--activations checkpoint:sqrt`. Default: "activation strategy 'NAME'". */
  what?: string;
  /** How the caller names full-graph mode. Default: "full-graph mode". */
  fullMode?: string;
  /** What to do instead. Default: "use mode 'segmented'". */
  fix?: string;
  /** The InputError's code. Default: E_INPUT. */
  code?: string;
}

/** The error for a strategy that recomputes segments under full-graph mode (`by`: the strategy's name). */
export function recomputeInFullMode(by: string, refusal: RecomputeRefusal = {}): InputError {
  return new InputError(
    `${refusal.what ?? `activation strategy '${by}'`} recomputes segments, which ${refusal.fullMode ?? 'full-graph mode'} does not do: ${refusal.fix ?? "use mode 'segmented'"}`,
    refusal.code,
  );
}

/**
 * The training mode for `strategies`: the `requested` one, or (none requested) 'segmented' when one of them
 * recomputes segments, else `fallback`. A recomputing strategy under a requested 'full' is refused
 * (`recomputeInFullMode`, worded by `refusal`).
 */
export function activationMode(
  strategies: readonly RecomputeDeclaration[],
  requested: EngineMode | undefined,
  fallback: EngineMode = 'full',
  refusal?: RecomputeRefusal,
): EngineMode {
  const recomputing = strategies.find(recomputesSegments);
  if (requested === 'full' && recomputing) throw recomputeInFullMode(recomputing.name, refusal);
  return requested ?? (recomputing ? 'segmented' : fallback);
}
