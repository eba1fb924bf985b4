import {
  type LoadedCheckpoint as Loaded,
  readCheckpoint as readAny,
  readLatestCheckpoint as readLatestAny,
  type World,
} from '@kstar/checkpoint';
import type { TrainerState } from './format.ts';

export { EVERY_RANK, type World } from '@kstar/checkpoint';

/** A verified checkpoint written by the trainer (`trainer.json` is a TrainerState). */
export type LoadedCheckpoint = Loaded<TrainerState>;

/** `@kstar/checkpoint`'s `readCheckpoint` for the trainer's checkpoints. */
export const readCheckpoint = (dir: string, world?: Parameters<typeof readAny>[1]): LoadedCheckpoint =>
  readAny<TrainerState>(dir, world);

/** `@kstar/checkpoint`'s `readLatestCheckpoint` for the trainer's checkpoints. */
export const readLatestCheckpoint = (
  saveDir: string,
  warn: (line: string) => void,
  world?: World,
): LoadedCheckpoint => readLatestAny<TrainerState>(saveDir, warn, world);
