import type { OptimizerPlugin } from '@kstar/core';
import { InputError } from '@kstar/core';
import { adamw, adamwFromReferenceHparams } from '@kstar/optim-adamw';

/** How the trainer builds an optimizer: from CLI/config options, and from a golden file's reference hyper-parameters. */
export interface OptimizerEntry {
  /** Learning rate used when neither the config nor a flag sets one. */
  readonly defaultLr: number;
  create(lr: number, options: Record<string, number | boolean | null>): OptimizerPlugin;
  /** Names in golden files (e.g. `adamw`, `sgd`) this optimizer replays. */
  readonly replays: readonly string[];
  fromReference(hparams: Record<string, unknown>): OptimizerPlugin;
}

/** Every optimizer the trainer knows. Only apps/trainer knows every plugin. */
export const OPTIMIZERS: Record<string, OptimizerEntry> = {
  adamw: {
    defaultLr: 3e-3,
    create: (lr, options) => adamw({ ...(options as Record<string, number>), lr }),
    replays: ['adamw'],
    fromReference: (h) => adamwFromReferenceHparams(h as Parameters<typeof adamwFromReferenceHparams>[0]),
  },
};

export function optimizerEntry(name: string): OptimizerEntry {
  const entry = OPTIMIZERS[name];
  if (!entry) {
    throw new InputError(
      `unknown optimizer '${name}': use one of ${Object.keys(OPTIMIZERS).join(', ')}`,
      'E_CONFIG',
    );
  }
  return entry;
}

/** The optimizer that replays a golden run's `optimizer` name, if K* has one. */
export function replayEntry(goldenName: string): [string, OptimizerEntry] | undefined {
  return Object.entries(OPTIMIZERS).find(([, e]) => e.replays.includes(goldenName));
}
