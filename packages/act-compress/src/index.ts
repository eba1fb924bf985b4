export { bf16Codec, fromBf16Bits, toBf16Bits } from './bf16.ts';
export type { CompressFormat, CompressOptions, CompressStrategy } from './compress.ts';
export { compress } from './compress.ts';
export { int8Codec } from './int8.ts';
