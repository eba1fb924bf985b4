export { chunkedAttention, mstAttention, mstAttentionSetting } from './attention.ts';
export { chunkedLinearCrossEntropy } from './loss.ts';
export { tiledMlp } from './mlp.ts';
export type { MstStrategy, MstStrategyOptions } from './mst.ts';
export { mst } from './mst.ts';
export type { MstOptions } from './options.ts';
export { parseMstSpec, validateOptions } from './options.ts';
export type { ModelDims, MstBytes, MstChunks, MstShape, OpBytes } from './predict.ts';
export {
  attentionRanges,
  chooseAttentionChunk,
  chooseChunks,
  chooseLossChunks,
  chooseMlpChunks,
  defaultChunks,
  predictAttentionBytes,
  predictLossBytes,
  predictMlpBytes,
  predictMstBytes,
} from './predict.ts';
export type { Range } from './split.ts';
export { splitBalanced, splitBySize } from './split.ts';
