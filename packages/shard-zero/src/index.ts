export type { ZeroNormPass } from './norm-pass.ts';
export { zeroNormPass } from './norm-pass.ts';
export type { Ownership, RowOwnership, WholeOwnership } from './ownership.ts';
export { assignWhole, paddedElems, rowRange, rowStateBytes, rowsPerRank } from './ownership.ts';
export type { RankBytes, RankBytesInput } from './predict.ts';
export { predictRankBytes } from './predict.ts';
export type { ZeroOptions, ZeroPlugin, ZeroShardedTraining } from './zero.ts';
export { zero } from './zero.ts';
