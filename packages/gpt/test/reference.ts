/**
 * A float64 reference GPT in plain JS (micro configs only): the same math as the stages, used to check the tfjs
 * forward and, by central differences in float64, the tfjs gradients.
 */
import type { GPTConfig } from '../src/index.ts';

export type F64Params = Record<string, { shape: number[]; data: Float64Array }>;

function ln(x: Float64Array, N: number, D: number, g: Float64Array, b: Float64Array): Float64Array {
  const y = new Float64Array(N * D);
  for (let n = 0; n < N; n++) {
    let mu = 0;
    for (let d = 0; d < D; d++) mu += x[n * D + d]!;
    mu /= D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x[n * D + d]! - mu) ** 2;
    v /= D;
    const r = 1 / Math.sqrt(v + 1e-5);
    for (let d = 0; d < D; d++) y[n * D + d] = (x[n * D + d]! - mu) * r * g[d]! + b[d]!;
  }
  return y;
}

/** y[N, M] = x[N, K] · w[K, M] + b[M] (b optional). */
function linear(
  x: Float64Array,
  N: number,
  K: number,
  w: Float64Array,
  M: number,
  b?: Float64Array,
): Float64Array {
  const y = new Float64Array(N * M);
  for (let n = 0; n < N; n++)
    for (let m = 0; m < M; m++) {
      let s = b ? b[m]! : 0;
      for (let k = 0; k < K; k++) s += x[n * K + k]! * w[k * M + m]!;
      y[n * M + m] = s;
    }
  return y;
}

const gelu = (h: number) => 0.5 * h * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (h + 0.044715 * h ** 3)));

/** Mean cross-entropy of the reference model. tokens/targets: [B][T]. */
export function referenceLoss(cfg: GPTConfig, p: F64Params, tokens: number[][], targets: number[][]): number {
  const B = tokens.length;
  const T = tokens[0]!.length;
  const { nEmbd: D, nHead: H, vocabSize: V } = cfg;
  const hd = D / H;
  const N = B * T;
  const P = (n: string) => p[n]!.data;
  let x = new Float64Array(N * D);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let d = 0; d < D; d++)
        x[(b * T + t) * D + d] = P('wte')[tokens[b]![t]! * D + d]! + P('wpe')[t * D + d]!;
  for (let l = 0; l < cfg.nLayer; l++) {
    const q = (n: string) => P(`h${l}.${n}`);
    const a = ln(x, N, D, q('ln1.gamma'), q('ln1.beta'));
    const qkv = linear(a, N, D, q('attn.wqkv'), 3 * D, q('attn.bqkv'));
    const y = new Float64Array(N * D);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++)
        for (let i = 0; i < T; i++) {
          const s: number[] = [];
          for (let j = 0; j <= i; j++) {
            let dot = 0;
            for (let e = 0; e < hd; e++)
              dot += qkv[(b * T + i) * 3 * D + h * hd + e]! * qkv[(b * T + j) * 3 * D + D + h * hd + e]!;
            s.push(dot / Math.sqrt(hd));
          }
          const mx = Math.max(...s);
          const ex = s.map((v) => Math.exp(v - mx));
          const z = ex.reduce((u, v) => u + v, 0);
          for (let e = 0; e < hd; e++) {
            let acc = 0;
            for (let j = 0; j <= i; j++) acc += (ex[j]! / z) * qkv[(b * T + j) * 3 * D + 2 * D + h * hd + e]!;
            y[(b * T + i) * D + h * hd + e] = acc;
          }
        }
    const o = linear(y, N, D, q('attn.wo'), D, q('attn.bo'));
    const x1 = x.map((v, i) => v + o[i]!);
    const m = ln(x1, N, D, q('ln2.gamma'), q('ln2.beta'));
    const hh = linear(m, N, D, q('mlp.wfc'), 4 * D, q('mlp.bfc')).map(gelu);
    const o2 = linear(hh, N, 4 * D, q('mlp.wproj'), D, q('mlp.bproj'));
    x = x1.map((v, i) => v + o2[i]!);
  }
  const f = ln(x, N, D, P('lnf.gamma'), P('lnf.beta'));
  let loss = 0;
  for (let n = 0; n < N; n++) {
    const z: number[] = [];
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += f[n * D + d]! * P('wte')[v * D + d]!;
      z.push(s);
    }
    const mx = Math.max(...z);
    const lse = mx + Math.log(z.reduce((u, v) => u + Math.exp(v - mx), 0));
    const b = Math.floor(n / T);
    loss += lse - z[targets[b]![n % T]!]!;
  }
  return loss / N;
}
