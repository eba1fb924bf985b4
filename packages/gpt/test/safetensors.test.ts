import { describe, expect, it } from 'vitest';
import {
  bfloat16Bytes,
  decodeHfGpt2,
  decodeSafetensors,
  encodeHfGpt2,
  encodeSafetensors,
  GPT_PRESETS,
  hfGpt2Config,
  hfGpt2Table,
  resolveConfig,
} from '../src/index.ts';

/** A safetensors file built by hand from the format's specification (not by the module under test). */
function handMade(header: Record<string, unknown>, data: Uint8Array, lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Bitwise equality of two float32 arrays (fast for large ones). */
const same = (a: Float32Array | undefined, b: Float32Array) =>
  a !== undefined &&
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const f32bytes = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);

describe('safetensors (format specification)', () => {
  it('reads a hand-made file: little-endian u64 length, JSON header, offsets into the data', () => {
    const data = new Uint8Array([...f32bytes([1.5, -2]), 7, 0, 0, 0]);
    const file = handMade(
      {
        __metadata__: { format: 'pt' },
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'I32', shape: [1, 1], data_offsets: [8, 12] },
      },
      data,
    );
    const { tensors, metadata } = decodeSafetensors(file, 'hand.safetensors');
    expect(metadata).toEqual({ format: 'pt' });
    expect([...new Float32Array(tensors.get('a')!.data.slice().buffer)]).toEqual([1.5, -2]);
    expect(tensors.get('b')!.shape).toEqual([1, 1]);
    expect([...new Int32Array(tensors.get('b')!.data.slice().buffer)]).toEqual([7]);
  });

  it('writes the layout the specification describes, the data 8-byte aligned', () => {
    const bytes = encodeSafetensors(
      [
        ['x', { dtype: 'F32', shape: [3], data: f32bytes([1, 2, 3]) }],
        ['y', { dtype: 'U8', shape: [2], data: new Uint8Array([9, 8]) }],
      ],
      { k: 'v' },
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header).toEqual({
      __metadata__: { k: 'v' },
      x: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
      y: { dtype: 'U8', shape: [2], data_offsets: [12, 14] },
    });
    expect(bytes.length).toBe(8 + n + 14);
    expect([...bytes.subarray(8 + n + 12)]).toEqual([9, 8]);
    const back = decodeSafetensors(bytes);
    expect([...back.tensors.keys()]).toEqual(['x', 'y']);
  });

  const x = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  it.each<[string, Uint8Array, RegExp]>([
    [
      'a header length beyond the file',
      handMade({ x }, f32bytes([1, 2]), 10_000n),
      /header length 10000 is larger than the file/,
    ],
    ['a file shorter than 8 bytes', new Uint8Array(5), /too short for the 8-byte header length/],
    [
      'overlapping offsets',
      handMade({ x, y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32bytes([1, 2])),
      /tensor '(x|y)' at \[\d, 8\] overlaps the previous tensor/,
    ],
    [
      'a wrong dtype',
      handMade({ x: { ...x, dtype: 'F33' } }, f32bytes([1, 2])),
      /tensor 'x' has dtype "F33": use one of F64, F32/,
    ],
    [
      'offsets that disagree with the shape',
      handMade({ x: { ...x, shape: [3] } }, f32bytes([1, 2])),
      /tensor 'x' F32 \[3\] needs 12 bytes but its data_offsets \[0, 8\] span 8/,
    ],
    [
      'a truncated buffer',
      handMade({ x }, f32bytes([1])),
      /tensor 'x' ends at byte 8 of the data, which holds 4: the file is truncated/,
    ],
    [
      'trailing bytes',
      handMade({ x }, f32bytes([1, 2, 3])),
      /the data holds 12 bytes but the tensors cover 8/,
    ],
    [
      'a header that is not JSON',
      handMade({ x }, f32bytes([1, 2])).fill(32, 8, 9),
      /header is not UTF-8 JSON/,
    ],
  ])('%s is a clear error', (_, bytes, message) => {
    expect(() => decodeSafetensors(bytes, 'bad.safetensors')).toThrow(message);
  });

  it('bfloat16 rounds to nearest, ties to even (float64 reference)', () => {
    const xs = Float32Array.from([
      1,
      -3.140625,
      1 + 2 ** -8,
      1 + 3 * 2 ** -8,
      1.00390625 + 2 ** -20,
      65504.7,
      1e-30,
      0,
    ]);
    const got = new Uint16Array(bfloat16Bytes(xs).buffer);
    xs.forEach((v, i) => {
      // Reference: the two bf16 neighbours of v by truncation, the nearer in float64 (ties: even mantissa).
      const w = new Uint32Array(Float32Array.of(v).buffer)[0]!;
      const lo = w >>> 16;
      const val = (h: number) => new Float32Array(Uint32Array.of(h << 16).buffer)[0]!;
      const dLo = Math.abs(v - val(lo));
      const dHi = Math.abs(v - val(lo + 1));
      const want = dLo < dHi ? lo : dHi < dLo ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
      expect(got[i], `value ${v}`).toBe(want);
    });
  });
});

describe('Hugging Face GPT-2 layout', () => {
  it('names and shapes: the GPT-2 table, 124,439,808 parameters for gpt2-124m', () => {
    const table = hfGpt2Table(GPT_PRESETS['gpt2-124m']);
    expect(table).toHaveLength(2 + 12 * 12 + 2);
    expect(table.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0)).toBe(124_439_808);
    const byHf = Object.fromEntries(table.map((t) => [t.hf, t.shape]));
    expect(byHf['transformer.wte.weight']).toEqual([50257, 768]);
    expect(byHf['transformer.wpe.weight']).toEqual([1024, 768]);
    expect(byHf['transformer.h.0.ln_1.weight']).toEqual([768]);
    expect(byHf['transformer.h.0.attn.c_attn.weight']).toEqual([768, 2304]); // Conv1D [in, out]
    expect(byHf['transformer.h.0.attn.c_attn.bias']).toEqual([2304]);
    expect(byHf['transformer.h.11.attn.c_proj.weight']).toEqual([768, 768]);
    expect(byHf['transformer.h.5.mlp.c_fc.weight']).toEqual([768, 3072]);
    expect(byHf['transformer.h.5.mlp.c_proj.weight']).toEqual([3072, 768]);
    expect(byHf['transformer.ln_f.bias']).toEqual([768]);
    expect(hfGpt2Config(GPT_PRESETS['gpt2-124m'])).toMatchObject({
      n_embd: 768,
      n_layer: 12,
      n_head: 12,
      n_positions: 1024,
      activation_function: 'gelu_new',
      layer_norm_epsilon: 1e-5,
    });
  });

  const config = resolveConfig('tiny');
  const weights = new Map(
    hfGpt2Table(config).map(({ name, shape }, k) => {
      const n = shape.reduce((a, b) => a * b, 1);
      return [name, Float32Array.from({ length: n }, (_, i) => Math.sin(k * 1000 + i))];
    }),
  );

  it('a GPT-2-layout file written by hand loads, and encode → decode gives identical weights', () => {
    // By hand: HF names in reverse order, lm_head tied, F32.
    const table = hfGpt2Table(config).reverse();
    let at = 0;
    const header: Record<string, unknown> = {};
    const chunks: Uint8Array[] = [];
    for (const { name, hf, shape } of [
      ...table,
      { name: 'wte', hf: 'lm_head.weight', shape: table.at(-1)!.shape },
    ]) {
      const b = new Uint8Array(weights.get(name)!.slice().buffer);
      header[hf] = { dtype: 'F32', shape, data_offsets: [at, at + b.length] };
      chunks.push(b);
      at += b.length;
    }
    const data = new Uint8Array(at);
    let o = 0;
    for (const c of chunks) {
      data.set(c, o);
      o += c.length;
    }
    const loaded = decodeHfGpt2(handMade(header, data), config, 'hand.safetensors');
    for (const [name, w] of weights) expect(same(loaded.get(name), w), name).toBe(true);
    const again = decodeHfGpt2(encodeHfGpt2(config, weights), config, 'ours.safetensors');
    for (const [name, w] of weights) expect(same(again.get(name), w), name).toBe(true);
  });

  it('a missing tensor, a wrong shape, another vocabulary or context say what to change', () => {
    const bytes = encodeHfGpt2(config, weights);
    const { tensors } = decodeSafetensors(bytes);
    const without = encodeSafetensors([...tensors].filter(([n]) => n !== 'transformer.h.1.mlp.c_fc.bias'));
    expect(() => decodeHfGpt2(without, config, 'f')).toThrow(
      /f: tensor 'transformer.h.1.mlp.c_fc.bias' \(K\* 'h1.mlp.bfc' \[512\]\) is missing/,
    );
    expect(() => decodeHfGpt2(bytes, { ...config, vocabSize: 300 }, 'f')).toThrow(
      /vocabulary 256 .* differs from the run's 300: use the tokenizer of those weights/,
    );
    expect(() => decodeHfGpt2(bytes, { ...config, blockSize: 64 }, 'f')).toThrow(
      /context 128 .* differs from the run's 64: pass --context 128/,
    );
    expect(() => decodeHfGpt2(bytes, { ...config, nLayer: 1 }, 'f')).not.toThrow();
    expect(() => decodeHfGpt2(bytes, { ...config, nEmbd: 64, nHead: 4 }, 'f')).toThrow(
      /has shape \[256,128\], the model needs \[256,64\]/,
    );
  });
});
