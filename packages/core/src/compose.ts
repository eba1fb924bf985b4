import type { ActivationStrategy, AnyPlugin, Collective, OptimizerPlugin, Plugin } from './contracts.ts';
import { SPECIFICATION_VERSION } from './contracts.ts';
import { PluginConflictError } from './errors.ts';
import type { ShardingPlugin } from './sharding.ts';

/** A trainer's plugins sorted by role. */
export interface Composition {
  readonly optimizer: OptimizerPlugin;
  readonly activations: readonly ActivationStrategy[];
  readonly collective?: Collective;
  readonly sharding?: ShardingPlugin;
  readonly others: readonly Plugin[];
  readonly all: readonly AnyPlugin[];
}

/**
 * Check a list of plugins and sort it by role. Rejects: no optimizer, two optimizers, two collectives,
 * two plugins with one name, a plugin written for another contract version, two sharding plugins, a sharding plugin
 * over another collective than the one listed, an optimizer that needs all gradients with ZeRO stage 2 or 3 (their
 * gradients are reduce-scattered as they appear).
 */
export function composePlugins(plugins: readonly AnyPlugin[]): Composition {
  const names = new Map<string, AnyPlugin>();
  for (const p of plugins) {
    if (p.specificationVersion !== SPECIFICATION_VERSION) {
      throw new PluginConflictError(
        `plugin '${p.name}' implements contract ${String(p.specificationVersion)}, this @kstar/core implements ${SPECIFICATION_VERSION}: upgrade the plugin or @kstar/core so they match`,
      );
    }
    if (names.has(`${p.kind}:${p.name}`)) {
      throw new PluginConflictError(`plugin '${p.name}' (${p.kind}) is listed twice: list each plugin once`);
    }
    names.set(`${p.kind}:${p.name}`, p);
  }
  const optimizers = plugins.filter((p): p is OptimizerPlugin => p.kind === 'optimizer');
  if (optimizers.length === 0) {
    throw new PluginConflictError('no optimizer plugin given: a trainer needs exactly one (e.g. adamw)');
  }
  if (optimizers.length > 1) {
    throw new PluginConflictError(
      `two optimizers given (${optimizers.map((o) => o.name).join(', ')}): a trainer takes exactly one optimizer`,
    );
  }
  const collectives = plugins.filter((p): p is Collective => p.kind === 'collective');
  if (collectives.length > 1) {
    throw new PluginConflictError(
      `two collectives given (${collectives.map((c) => c.name).join(', ')}): choose one distributed engine`,
    );
  }
  const shardings = plugins.filter((p): p is ShardingPlugin => p.kind === 'sharding');
  if (shardings.length > 1) {
    throw new PluginConflictError(
      `two sharding plugins given (${shardings.map((s) => s.name).join(', ')}): choose one ZeRO stage`,
    );
  }
  const sharding = shardings[0];
  if (sharding && collectives[0] && sharding.collective !== collectives[0]) {
    throw new PluginConflictError(
      `sharding plugin '${sharding.name}' runs over collective '${sharding.collective.name}', not the listed '${collectives[0].name}': build it over the listed collective`,
    );
  }
  if (sharding && sharding.stage >= 2 && optimizers[0]!.needsAllGradients) {
    throw new PluginConflictError(
      `optimizer '${optimizers[0]!.name}' needs every gradient of a step at once, but ZeRO stage ${sharding.stage} keeps only this rank's shard of each: use stage 0 or 1`,
    );
  }
  const activations = plugins.filter((p): p is ActivationStrategy => p.kind === 'activation');
  const others = plugins.filter((p) => p.kind === 'master-weights' || p.kind === 'observer');
  return {
    optimizer: optimizers[0]!,
    activations,
    ...(collectives[0] ? { collective: collectives[0] } : {}),
    ...(sharding ? { sharding } : {}),
    others,
    all: plugins,
  };
}
