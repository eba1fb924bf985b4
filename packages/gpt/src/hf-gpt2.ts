import {
  bfloat16Bytes,
  decodeSafetensors,
  encodeSafetensors,
  float32Of,
  InputError,
  type SafeTensor,
} from '@kstar/core';
import type { GPTConfig } from './config.ts';
import { paramSpecs } from './params.ts';

/**
 * Hugging Face `GPT2LMHeadModel` weight layout. K*'s GPT is GPT-2's architecture: pre-LayerNorm blocks with
 * epsilon 1e-5 (`layer_norm_epsilon`), GELU's tanh approximation (`gelu_new`), attention scaled by 1/√head_dim with
 * q, k, v as consecutive D-wide column blocks of one [D, 3D] matrix (heads split inside each block), learned
 * positions, a final LayerNorm and the LM head tied to `wte`, no dropout. K* keeps projection weights as [in, out],
 * which is exactly GPT-2's Conv1D layout, so no weight is transposed: the mapping is a renaming. The tied
 * `lm_head.weight` is not written (as `save_pretrained` does); on import it is accepted when equal to `wte`.
 */
const BLOCK: ReadonlyArray<[string, string]> = [
  ['ln1.gamma', 'ln_1.weight'],
  ['ln1.beta', 'ln_1.bias'],
  ['attn.wqkv', 'attn.c_attn.weight'],
  ['attn.bqkv', 'attn.c_attn.bias'],
  ['attn.wo', 'attn.c_proj.weight'],
  ['attn.bo', 'attn.c_proj.bias'],
  ['ln2.gamma', 'ln_2.weight'],
  ['ln2.beta', 'ln_2.bias'],
  ['mlp.wfc', 'mlp.c_fc.weight'],
  ['mlp.bfc', 'mlp.c_fc.bias'],
  ['mlp.wproj', 'mlp.c_proj.weight'],
  ['mlp.bproj', 'mlp.c_proj.bias'],
];

/** The Hugging Face GPT-2 name of a K* parameter name (`h3.attn.wqkv` → `transformer.h.3.attn.c_attn.weight`). */
export function hfGpt2Name(name: string): string {
  if (name === 'wte') return 'transformer.wte.weight';
  if (name === 'wpe') return 'transformer.wpe.weight';
  if (name === 'lnf.gamma') return 'transformer.ln_f.weight';
  if (name === 'lnf.beta') return 'transformer.ln_f.bias';
  const m = /^h(\d+)\.(.+)$/.exec(name);
  const hf = m && BLOCK.find(([k]) => k === m[2]);
  if (!m || !hf) throw new InputError(`'${name}' is not a K* GPT parameter name`);
  return `transformer.h.${m[1]}.${hf[1]}`;
}

/** Every parameter of `config`: K* name, HF name, shape (the HF shape is the same). */
export function hfGpt2Table(
  config: GPTConfig,
): Array<{ name: string; hf: string; shape: readonly number[] }> {
  return paramSpecs(config).map((s) => ({ name: s.name, hf: hfGpt2Name(s.name), shape: s.shape }));
}

/** `config.json` for `GPT2LMHeadModel.from_pretrained`. */
export function hfGpt2Config(
  config: GPTConfig,
  dtype: 'float32' | 'bfloat16' = 'float32',
): Record<string, unknown> {
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: config.vocabSize,
    n_positions: config.blockSize,
    n_ctx: config.blockSize,
    n_embd: config.nEmbd,
    n_layer: config.nLayer,
    n_head: config.nHead,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: true,
    bos_token_id: config.vocabSize - 1,
    eos_token_id: config.vocabSize - 1,
    torch_dtype: dtype,
  };
}

/** The model's K* config from a GPT-2 `config.json` (checking the features K* does not have). */
export function configFromHfGpt2(json: Record<string, unknown>, origin: string): GPTConfig {
  const act = json.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    throw new InputError(
      `${origin}: activation_function '${String(act)}' is not GPT-2's tanh GELU, which K* computes`,
    );
  }
  if (json.n_inner != null && json.n_inner !== 4 * Number(json.n_embd)) {
    throw new InputError(`${origin}: n_inner ${String(json.n_inner)} is not 4·n_embd, which K* requires`);
  }
  return {
    vocabSize: Number(json.vocab_size),
    nLayer: Number(json.n_layer),
    nHead: Number(json.n_head),
    nEmbd: Number(json.n_embd),
    blockSize: Number(json.n_positions ?? json.n_ctx),
  };
}

/** `model.safetensors` bytes in the GPT-2 layout from float32 weights by K* name (`bfloat16`: rounded to nearest even). */
export function encodeHfGpt2(
  config: GPTConfig,
  weights: ReadonlyMap<string, Float32Array>,
  dtype: 'float32' | 'bfloat16' = 'float32',
): Uint8Array {
  const entries: Array<[string, SafeTensor]> = hfGpt2Table(config).map(({ name, hf, shape }) => {
    const w = weights.get(name);
    if (!w) throw new InputError(`no weights for parameter '${name}'`);
    const data =
      dtype === 'bfloat16'
        ? bfloat16Bytes(w)
        : new Uint8Array(w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength));
    return [hf, { dtype: dtype === 'bfloat16' ? 'BF16' : 'F32', shape, data }];
  });
  return encodeSafetensors(entries, { format: 'pt' });
}

/**
 * float32 weights by K* name from a GPT-2-layout safetensors file, checked against `config`: every tensor present,
 * shapes equal, F32 or BF16; a vocabulary or context mismatch says which flag to change. `transformer.` prefixes may
 * be absent (`GPT2Model` files); `lm_head.weight`, when present, must equal `wte` (tied).
 */
export function decodeHfGpt2(
  bytes: Uint8Array,
  config: GPTConfig,
  origin: string,
): Map<string, Float32Array> {
  const file = decodeSafetensors(bytes, origin);
  const get = (hf: string) => file.tensors.get(hf) ?? file.tensors.get(hf.replace(/^transformer\./, ''));
  const wte = get('transformer.wte.weight');
  if (wte && wte.shape[0] !== config.vocabSize) {
    throw new InputError(
      `${origin}: vocabulary ${wte.shape[0]} (transformer.wte.weight [${wte.shape}]) differs from the run's ${config.vocabSize}: use the tokenizer of those weights (--tokenizer gpt2 for 50257) or --vocab ${wte.shape[0]}`,
      'E_INIT_FROM',
    );
  }
  const wpe = get('transformer.wpe.weight');
  if (wpe && wpe.shape[0] !== config.blockSize) {
    throw new InputError(
      `${origin}: context ${wpe.shape[0]} (transformer.wpe.weight [${wpe.shape}]) differs from the run's ${config.blockSize}: pass --context ${wpe.shape[0]}`,
      'E_INIT_FROM',
    );
  }
  const out = new Map<string, Float32Array>();
  for (const { name, hf, shape } of hfGpt2Table(config)) {
    const t = get(hf);
    if (!t)
      throw new InputError(`${origin}: tensor '${hf}' (K* '${name}' [${shape}]) is missing`, 'E_INIT_FROM');
    if (t.shape.join() !== shape.join()) {
      throw new InputError(
        `${origin}: tensor '${hf}' has shape [${t.shape}], the model needs [${shape}]: match --layers/--d-model/--heads to the weights`,
        'E_INIT_FROM',
      );
    }
    if (t.dtype !== 'F32' && t.dtype !== 'BF16') {
      throw new InputError(
        `${origin}: tensor '${hf}' has dtype ${t.dtype}: weights must be F32 or BF16`,
        'E_INIT_FROM',
      );
    }
    out.set(name, float32Of(t, `${origin}: tensor '${hf}'`));
  }
  const head = file.tensors.get('lm_head.weight');
  if (head) {
    const w = float32Of(head, origin);
    const e = out.get('wte')!;
    if (w.length !== e.length || w.some((v, i) => v !== e[i])) {
      throw new InputError(
        `${origin}: lm_head.weight differs from transformer.wte.weight: K*'s LM head is tied to the embedding`,
        'E_INIT_FROM',
      );
    }
  }
  return out;
}
