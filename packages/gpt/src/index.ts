// The safetensors codec lives in @kstar/core (the checkpoint format uses it too); re-exported here as before.
export type { SafeTensor, SafetensorsDtype, SafetensorsFile } from '@kstar/core';
export {
  bfloat16Bytes,
  bytesOf,
  decodeSafetensors,
  encodeSafetensors,
  float32Of,
  SAFETENSORS_DTYPE_BYTES,
} from '@kstar/core';
export type {
  ActivationBackend,
  ActivationBytesBreakdown,
  ActivationBytesOptions,
} from './activation-bytes.ts';
export { predictActivationBreakdown, predictActivationBytes } from './activation-bytes.ts';
export type { AttentionImpl } from './attention.ts';
export { attentionCore, attentionImpl, attentionSetting, fusedAttentionCore } from './attention.ts';
export { causalSoftmax } from './causal-softmax.ts';
export type { GPTConfig, GPTPresetName } from './config.ts';
export { GPT_PRESETS, resolveConfig, validateConfig } from './config.ts';
export { crossEntropy } from './cross-entropy.ts';
export { gelu } from './gelu.ts';
export type { GenerateOptions } from './generate.ts';
export { generate, pickToken } from './generate.ts';
export {
  configFromHfGpt2,
  decodeHfGpt2,
  encodeHfGpt2,
  hfGpt2Config,
  hfGpt2Name,
  hfGpt2Table,
} from './hf-gpt2.ts';
export { KVCache } from './kv-cache.ts';
export { LN_EPS, layerNorm } from './layer-norm.ts';
export type { CreateGPTOptions, GPTModel } from './model.ts';
export { createGPT } from './model.ts';
export type { ParamInit, ParamSpec } from './params.ts';
export { countParamsFormula, paramSpecs } from './params.ts';
export { linearCrossEntropyCore, mlpCore } from './stages.ts';
