import type { ParamInfo } from '@kstar/core';
import type { GPTConfig } from './config.ts';

/** How a parameter is initialised (GPT-2): normal(0, std), zeros or ones. */
export type ParamInit = { kind: 'normal'; std: number } | { kind: 'zeros' } | { kind: 'ones' };

export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly role: ParamInfo['role'];
  readonly init: ParamInit;
}

/**
 * Every parameter of the model, in a stable order (the order seeds are derived from).
 * Names: `wte` [V,D], `wpe` [T,D], per block `h{i}.ln1.{gamma,beta}` [D], `h{i}.attn.wqkv` [D,3D],
 * `h{i}.attn.bqkv` [3D], `h{i}.attn.wo` [D,D], `h{i}.attn.bo` [D], `h{i}.ln2.{gamma,beta}` [D], `h{i}.mlp.wfc` [D,4D],
 * `h{i}.mlp.bfc` [4D], `h{i}.mlp.wproj` [4D,D], `h{i}.mlp.bproj` [D], then `lnf.{gamma,beta}` [D].
 * Init (GPT-2): weights normal(0, 0.02); residual output projections (`attn.wo`, `mlp.wproj`) normal(0, 0.02/√(2L));
 * biases 0; LayerNorm gamma 1, beta 0.
 */
export function paramSpecs(config: GPTConfig): ParamSpec[] {
  const { vocabSize: V, nEmbd: D, blockSize: T, nLayer: L } = config;
  const std = 0.02;
  const residStd = 0.02 / Math.sqrt(2 * L);
  const normal = (s: number): ParamInit => ({ kind: 'normal', std: s });
  const zeros: ParamInit = { kind: 'zeros' };
  const ones: ParamInit = { kind: 'ones' };
  const specs: ParamSpec[] = [
    { name: 'wte', shape: [V, D], role: 'embedding', init: normal(std) },
    { name: 'wpe', shape: [T, D], role: 'embedding', init: normal(std) },
  ];
  for (let i = 0; i < L; i++) {
    const p = `h${i}`;
    specs.push(
      { name: `${p}.ln1.gamma`, shape: [D], role: 'vector', init: ones },
      { name: `${p}.ln1.beta`, shape: [D], role: 'vector', init: zeros },
      { name: `${p}.attn.wqkv`, shape: [D, 3 * D], role: 'matrix', init: normal(std) },
      { name: `${p}.attn.bqkv`, shape: [3 * D], role: 'vector', init: zeros },
      { name: `${p}.attn.wo`, shape: [D, D], role: 'matrix', init: normal(residStd) },
      { name: `${p}.attn.bo`, shape: [D], role: 'vector', init: zeros },
      { name: `${p}.ln2.gamma`, shape: [D], role: 'vector', init: ones },
      { name: `${p}.ln2.beta`, shape: [D], role: 'vector', init: zeros },
      { name: `${p}.mlp.wfc`, shape: [D, 4 * D], role: 'matrix', init: normal(std) },
      { name: `${p}.mlp.bfc`, shape: [4 * D], role: 'vector', init: zeros },
      { name: `${p}.mlp.wproj`, shape: [4 * D, D], role: 'matrix', init: normal(residStd) },
      { name: `${p}.mlp.bproj`, shape: [D], role: 'vector', init: zeros },
    );
  }
  specs.push(
    { name: 'lnf.gamma', shape: [D], role: 'vector', init: ones },
    { name: 'lnf.beta', shape: [D], role: 'vector', init: zeros },
  );
  return specs;
}

/** Names of the parameters block `i` reads. */
export function blockParamNames(i: number): string[] {
  const p = `h${i}`;
  return [
    `${p}.ln1.gamma`,
    `${p}.ln1.beta`,
    `${p}.attn.wqkv`,
    `${p}.attn.bqkv`,
    `${p}.attn.wo`,
    `${p}.attn.bo`,
    `${p}.ln2.gamma`,
    `${p}.ln2.beta`,
    `${p}.mlp.wfc`,
    `${p}.mlp.bfc`,
    `${p}.mlp.wproj`,
    `${p}.mlp.bproj`,
  ];
}

/**
 * Closed-form parameter count (tied head, so the LM head adds nothing):
 * `V·D + T·D + L·(12·D² + 13·D) + 2·D`.
 * Per block: wqkv 3D² + bqkv 3D + wo D² + bo D + wfc 4D² + bfc 4D + wproj 4D² + bproj D + two LayerNorms 4D
 * = 12D² + 13D. GPT-2 124M: 124,439,808.
 */
export function countParamsFormula(config: GPTConfig): number {
  const { vocabSize: V, nEmbd: D, blockSize: T, nLayer: L } = config;
  return V * D + T * D + L * (12 * D * D + 13 * D) + 2 * D;
}

/** A 32-bit seed for one parameter, from the model seed and the parameter's index (FNV-1a mix). */
export function paramSeed(seed: number, index: number): number {
  let h = 0x811c9dc5;
  for (const v of [seed >>> 0, (seed / 2 ** 32) >>> 0, index]) {
    for (let k = 0; k < 4; k++) {
      h ^= (v >>> (8 * k)) & 0xff;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  return h;
}
