// The atomic file write lives in @kstar/checkpoint (the checkpoint format uses it); the trainer's reports use it too.
export { fsyncDirectory, writeFileAtomic } from '@kstar/checkpoint';
