import type { ActivationStrategy, ModelOps, SavedTensorCodec, StageSummary } from './contracts.ts';
import { PluginConflictError } from './errors.ts';

/** The parts of several activation strategies, merged: at most one plan, one codec, and one provider per op. */
export interface ComposedActivations {
  readonly plan?: number[][];
  readonly planBy?: string;
  readonly ops: ModelOps;
  readonly codec?: SavedTensorCodec;
  readonly codecBy?: string;
}

export function composeActivations(
  strategies: readonly ActivationStrategy[],
  stages: readonly StageSummary[],
): ComposedActivations {
  let plan: number[][] | undefined;
  let planBy: string | undefined;
  let codec: SavedTensorCodec | undefined;
  let codecBy: string | undefined;
  const ops: Record<string, unknown> = {};
  const opBy = new Map<string, string>();
  for (const s of strategies) {
    if (s.planSegments) {
      if (planBy) {
        throw new PluginConflictError(
          `activation strategies '${planBy}' and '${s.name}' both plan segments: keep one of them`,
        );
      }
      plan = s.planSegments(stages);
      planBy = s.name;
    }
    if (s.codec) {
      if (codecBy) {
        throw new PluginConflictError(
          `activation strategies '${codecBy}' and '${s.name}' both store saved activations: keep one of them`,
        );
      }
      codec = s.codec;
      codecBy = s.name;
    }
    for (const [op, fn] of Object.entries(s.ops ?? {})) {
      if (fn === undefined) continue;
      const by = opBy.get(op);
      if (by) {
        throw new PluginConflictError(
          `activation strategies '${by}' and '${s.name}' both replace the model op '${op}': keep one of them`,
        );
      }
      opBy.set(op, s.name);
      ops[op] = fn;
    }
  }
  return {
    ...(plan ? { plan, planBy } : {}),
    ops: ops as ModelOps,
    ...(codec ? { codec, codecBy } : {}),
  };
}
