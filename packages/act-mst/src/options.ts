import { InputError } from '@kstar/core';

/** Options of `mst()`. Precedence per op: its own option, then `chunks`, then `targetBytes`, then the default. */
export interface MstOptions {
  /** M for every op: MLP and loss row chunks, attention query chunks (T split into M balanced chunks). */
  readonly chunks?: number;
  /** Row chunks of the MLP (default ⌈N/D⌉: one chunk ≈ D tokens, the MsT rule). */
  readonly mlpChunks?: number;
  /** Query tokens per attention chunk (default ⌊D/H⌋ = head_dim: one chunk's scores ≈ the hidden state's size). */
  readonly attentionChunk?: number;
  /** Row chunks of the LM head + loss (default ⌈V/D⌉: one chunk's logits ≈ the hidden state's size, the MsT rule). */
  readonly lossChunks?: number;
  /**
   * Predicted working-set bytes per op (float32, see `predict.ts`): each op not set explicitly uses the coarsest
   * chunking whose prediction fits. Cannot be combined with `chunks`.
   */
  readonly targetBytes?: number;
}

const KEYS = ['chunks', 'mlpChunks', 'attentionChunk', 'lossChunks', 'targetBytes'] as const;

function checkPositiveInt(name: string, v: unknown): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new InputError(
      `mst option ${name} = ${String(v)} is not a positive integer: pass a whole number ≥ 1 (or leave it out for the default)`,
    );
  }
}

/** Validate `mst()` options; throws InputError naming the offending value. */
export function validateOptions(options: MstOptions): MstOptions {
  if (options === null || typeof options !== 'object') {
    throw new InputError(`mst options must be an object, got ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!(KEYS as readonly string[]).includes(key)) {
      throw new InputError(`mst option '${key}' is unknown: use ${KEYS.join(', ')}`);
    }
  }
  checkPositiveInt('chunks', options.chunks);
  checkPositiveInt('mlpChunks', options.mlpChunks);
  checkPositiveInt('attentionChunk', options.attentionChunk);
  checkPositiveInt('lossChunks', options.lossChunks);
  const t = options.targetBytes;
  if (t !== undefined && (typeof t !== 'number' || !Number.isFinite(t) || t <= 0)) {
    throw new InputError(
      `mst option targetBytes = ${String(t)} is not a positive number of bytes: pass e.g. 64e6`,
    );
  }
  if (t !== undefined && options.chunks !== undefined) {
    throw new InputError(
      `mst options chunks = ${options.chunks} and targetBytes = ${t} both set the chunk count: keep one of them`,
    );
  }
  return { ...options };
}

/**
 * Parse the trainer's flag value after `mst` (`mst`, `mst:8`, `mst:mlp=8,attn=64,loss=4`, `mst:target=64e6`).
 * Separators: ',' or ';' between fields.
 */
export function parseMstSpec(spec: string): MstOptions {
  const s = spec.trim();
  if (s === '' || s === 'mst') return {};
  const body = s.startsWith('mst:') ? s.slice(4) : s;
  if (/^\d+$/.test(body)) return validateOptions({ chunks: Number(body) });
  const names: Record<string, keyof MstOptions> = {
    m: 'chunks',
    chunks: 'chunks',
    mlp: 'mlpChunks',
    attn: 'attentionChunk',
    attention: 'attentionChunk',
    loss: 'lossChunks',
    target: 'targetBytes',
    targetBytes: 'targetBytes',
  };
  const out: Record<string, number> = {};
  for (const field of body.split(/[;,]/)) {
    const [k, v, extra] = field.split('=');
    const key = k ? names[k.trim()] : undefined;
    const num = v === undefined ? Number.NaN : Number(v.trim());
    if (!key || extra !== undefined || !Number.isFinite(num)) {
      throw new InputError(
        `mst spec '${spec}': field '${field}' is not understood: write mst, mst:M, or mst:mlp=M,attn=TOKENS,loss=M or mst:target=BYTES`,
      );
    }
    out[key] = num;
  }
  return validateOptions(out);
}
