import type { Batch, OptimizerPlugin, StepResult, TrainingEngine } from '@kstar/core';
import { InputError } from '@kstar/core';
import { inPlaceGradAccumulator } from '@kstar/kernels';
import { adafactor, adafactorFromReferenceHparams } from '@kstar/optim-adafactor';
import { adam8bit } from '@kstar/optim-adam8bit';
import { adamw, adamwFromReferenceHparams } from '@kstar/optim-adamw';
import { came, cameFromReferenceHparams } from '@kstar/optim-came';
import { lazyAdagrad, lazyAdagradFromReferenceHparams } from '@kstar/optim-lazy-adagrad';
import { lion, lionFromReferenceHparams } from '@kstar/optim-lion';
import {
  adalomo,
  adalomoFromReferenceHparams,
  lomo,
  lomoFromReferenceHparams,
  lomoStep,
} from '@kstar/optim-lomo';

/** How the trainer builds an optimizer: from CLI/config options, and from a golden file's reference hyper-parameters. */
export interface OptimizerEntry {
  /** Learning rate used when neither the config nor a flag sets one. */
  readonly defaultLr: number;
  create(lr: number, options: Record<string, number | boolean | null>): OptimizerPlugin;
  /** Names in golden files (e.g. `adamw`, `sgd`) this optimizer replays. */
  readonly replays: readonly string[];
  fromReference?(hparams: Record<string, unknown>): OptimizerPlugin;
  /** The engine mode it needs (LOMO and AdaLomo update inside the segmented backward pass). */
  readonly requiresMode?: 'segmented';
  /** A step other than `engine.trainStep` (LOMO's two-pass global-norm clipping). */
  trainStep?(engine: TrainingEngine, batch: Batch): Promise<StepResult>;
}

/** A plugin's reader of reference hyper-parameters, given a golden file's untyped record (the reader checks it). */
const referenceReader =
  <H>(read: (hparams: H) => OptimizerPlugin) =>
  (hparams: Record<string, unknown>): OptimizerPlugin =>
    read(hparams as H);

/**
 * `create` of a plugin factory: the CLI/config options over `defaults`, then the learning rate. The factory checks
 * the options (an unknown or invalid one is its InputError).
 */
const createWith =
  <O>(factory: (options: O) => OptimizerPlugin, defaults: Partial<O> = {}): OptimizerEntry['create'] =>
  (lr, options) =>
    factory({ ...defaults, ...(options as Record<string, never>), lr } as O);

/** LOMO and AdaLomo run `lomoStep`, which adds the norm pass when `clipGradNorm` is set. */
const lomoTrainStep = (engine: TrainingEngine, batch: Batch) =>
  lomoStep(engine, batch, engine.optimizer, { gradAccumulator: inPlaceGradAccumulator });

/** Every optimizer the trainer knows. Only apps/trainer knows every plugin. */
export const OPTIMIZERS: Record<string, OptimizerEntry> = {
  adamw: {
    defaultLr: 3e-3,
    create: createWith(adamw),
    replays: ['adamw'],
    fromReference: referenceReader(adamwFromReferenceHparams),
  },
  adafactor: {
    // A fixed step size (no relative step, no parameter scale), so schedules apply; the update is clipped to
    // RMS ≤ 1 like Adam's early steps, so AdamW's learning rate carries over. `--optimizer-option
    // relativeStep=true` gives HF's own step size (and ignores --lr).
    defaultLr: 3e-3,
    create: (lr, options) =>
      options.relativeStep === true
        ? adafactor({ scaleParameter: true, ...(options as Record<string, never>), relativeStep: true })
        : adafactor({
            relativeStep: false,
            scaleParameter: false,
            ...(options as Record<string, never>),
            lr,
          }),
    replays: ['adafactor'],
    fromReference: referenceReader(adafactorFromReferenceHparams),
  },
  came: {
    // Measured on tiny, 300 steps (bench/results/2026-11-23-tiny-optimizers-300.json): val loss +0.89% of AdamW's
    // at 1e-4, +0.40% at 3e-4, +2.51% at 1e-3. came_pytorch has no bias correction, so the CAME README's 0.5–0.9×
    // AdamW's lr does not carry over to short runs.
    defaultLr: 3e-4,
    create: createWith(came),
    replays: ['came'],
    fromReference: referenceReader(cameFromReferenceHparams),
  },
  adam8bit: {
    // AdamW's rule with 8-bit block-quantized moments (tensors under 4096 elements keep float32 state).
    defaultLr: 3e-3,
    create: createWith(adam8bit, { weightDecay: 0.01 }),
    replays: [],
  },
  lomo: {
    // Plain SGD applied inside the backward pass. Tiny, 300 steps: val loss +1.9% of AdamW's at 0.1, +20.8% at 0.5
    // (bench/results/2026-11-23-tiny-optimizers-300-b.json).
    defaultLr: 0.1,
    create: createWith(lomo),
    replays: ['sgd'],
    fromReference: referenceReader(lomoFromReferenceHparams),
    requiresMode: 'segmented',
    trainStep: lomoTrainStep,
  },
  adalomo: {
    // Updates are RMS-clipped and scaled by max(eps2, RMS(p)): lr is a relative step, as in Adafactor.
    defaultLr: 3e-2,
    create: createWith(adalomo),
    replays: ['adalomo'],
    fromReference: referenceReader(adalomoFromReferenceHparams),
    requiresMode: 'segmented',
    trainStep: lomoTrainStep,
  },
  'lazy-adagrad': {
    defaultLr: 3e-2,
    create: createWith(lazyAdagrad),
    replays: ['adagrad'],
    fromReference: referenceReader(lazyAdagradFromReferenceHparams),
  },
  lion: {
    // 10× below AdamW's (sign updates: the automl README advises 3–10×), decay 10× higher so that lr·wd equals
    // AdamW's 3e-3 · 0.01. Best of the 300-step tiny sweep {1e-4, 3e-4, 1e-3} (bench/results/), but still about 19%
    // above AdamW's validation loss there: Lion misses the 3% goal on this short, small-batch run.
    defaultLr: 3e-4,
    create: createWith(lion, { weightDecay: 0.1 }),
    replays: ['lion'],
    fromReference: referenceReader(lionFromReferenceHparams),
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
export function replayEntry(
  goldenName: string,
): [string, OptimizerEntry & Required<Pick<OptimizerEntry, 'fromReference'>>] | undefined {
  return Object.entries(OPTIMIZERS).find(([, e]) => e.replays.includes(goldenName) && e.fromReference) as
    | [string, OptimizerEntry & Required<Pick<OptimizerEntry, 'fromReference'>>]
    | undefined;
}
