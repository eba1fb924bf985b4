/**
 * The trainer's side of the checkpoint format (the format itself is `@kstar/checkpoint`: manifest, payload codec,
 * atomic directory write, verified read, sharded file names): what `trainer.json` holds. The format's names are
 * re-exported for the trainer's modules.
 */
import type { SaveOptions } from '@kstar/checkpoint';
import { KSTAR_VERSION } from '../version.ts';

export type { Manifest, ManifestFile } from '@kstar/checkpoint';
export {
  CHECKPOINT_FORMAT_VERSION,
  CheckpointError,
  MODEL_FILE,
  optimizerFile,
  stepDirName,
  TRAINER_STATE,
} from '@kstar/checkpoint';

/** What `trainer.json` holds: everything besides tensors that resuming needs. */
export interface TrainerState {
  step: number;
  /** The training data sampler's RNG state after `step` batches. */
  samplerState: number;
  schedule: { peakLr: number; warmup: number; totalSteps: number };
  /** The resolved `TrainConfig` of the run that wrote it. */
  config: Record<string, unknown>;
  model: { vocabSize: number; nLayer: number; nHead: number; nEmbd: number; blockSize: number };
  /** Training losses of steps 1..step (so a resumed report can show the whole curve). */
  losses: number[];
}

/** How the trainer keeps and signs its checkpoints (`--keep K`, K*'s version in the manifest). */
export const saveOptions = (keep: number): SaveOptions => ({ keep, kstarVersion: KSTAR_VERSION });
