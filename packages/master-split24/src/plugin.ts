import {
  InputError,
  type MasterWeightsPlugin,
  ShapeError,
  SPECIFICATION_VERSION,
  stateVariableFrom,
} from '@kstar/core';
import { expand24, reconstruct24, split24Bytes, split24 as splitKernel } from '@kstar/kernels';
import * as tf from '@tensorflow/tfjs-core';

type Impl = 'auto' | 'fallback';

/** One parameter in split form. */
interface Entry {
  shape: number[];
  /** int32 [⌈n/2⌉]: bf16 halves. */
  hi: tf.Variable;
  /** int32 [⌈n/4⌉]: int8 corrections. */
  lo: tf.Variable;
  /** Name of the adopted float32 variable (the temporary update variable gets it back). */
  varName: string;
}

/** A checkpoint of the split weights: the packed words of every parameter (copies). */
export type Split24State = Record<string, { shape: number[]; hi: Int32Array; lo: Int32Array }>;

export interface Split24Plugin extends MasterWeightsPlugin {
  readonly name: 'split24';
  /** Names of the parameters held. */
  names(): string[];
  /** The full 24-bit value of a parameter as a new float32 tensor of its shape (export, tests). */
  reconstruct(name: string): tf.Tensor;
  /** Copies of the packed words (async: WebGPU in Node has no synchronous read-back). */
  getState(): Promise<Split24State>;
  /** Replaces (or, before `adopt`, creates) the held parameters from `getState()`'s output. */
  setState(state: Split24State): void;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * 24-bit split master weights (FlashOptim float splitting): every adopted float32 parameter is stored as its bf16
 * high half (two per int32) plus an int8 correction of the rounding error (four per int32), 3 bytes a parameter
 * instead of 4, and its float32 buffer is freed. Forward/backward read the bf16 value expanded to float32
 * (`materialize`, alive for one segment); the optimizer updates a temporary float32 variable holding the full 24-bit
 * value (within 2^−15 relative of the last stored float32), then both halves are split again and written back.
 * Works with every optimizer plugin unchanged. See `@kstar/kernels` split24.ts for the encoding and its error bound.
 */
export function split24(options: { impl?: Impl } = {}): Split24Plugin {
  const impl = options.impl ?? 'auto';
  if (impl !== 'auto' && impl !== 'fallback') {
    throw new InputError(
      `split24: impl = ${JSON.stringify(impl)} is invalid: it must be 'auto' or 'fallback'`,
    );
  }
  const store = new Map<string, Entry>();
  const entry = (name: string, where: string): Entry => {
    const e = store.get(name);
    if (!e) {
      throw new InputError(
        `split24.${where}: no parameter '${name}' is held (held: ${[...store.keys()].slice(0, 4).join(', ') || 'none'}…): adopt the model's variables first (build the engine with this plugin)`,
      );
    }
    return e;
  };
  /** Stores float32 `value` into e's parts (new parts assigned, old buffers freed). */
  const write = (e: Entry, value: tf.Tensor): void => {
    const parts = splitKernel(value, { impl });
    e.hi.assign(parts.hi);
    e.lo.assign(parts.lo);
    tf.dispose([parts.hi, parts.lo]);
  };
  const makeEntry = (varName: string, shape: number[], hi: tf.Tensor, lo: tf.Tensor): Entry => ({
    shape,
    varName,
    hi: stateVariableFrom(`${varName}/bf16`, () => tf.clone(hi)),
    lo: stateVariableFrom(`${varName}/bf16_correction`, () => tf.clone(lo)),
  });

  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'master-weights',
    name: 'split24',
    describe: () => ({
      format: 'bf16 high half + int8 rounding correction',
      bytesPerParam: 3,
      maxRelativeError: 2 ** -15,
      impl,
    }),
    adopt(variables) {
      for (const [name, v] of variables) {
        const held = store.get(name);
        if (held) {
          // Restored by setState (or adopted by another engine over the same model): free the float32 copy.
          if (held.shape.join() !== v.shape.join()) {
            throw new ShapeError(
              `split24.adopt: parameter '${name}' is held with shape [${held.shape}] but the model's is [${v.shape}]: restore a state of this model`,
            );
          }
          held.varName = v.name;
          if (!v.isDisposed) v.dispose();
          continue;
        }
        if (v.isDisposed) {
          throw new InputError(
            `split24.adopt: variable '${v.name}' (parameter '${name}') is already disposed: adopt a live model`,
          );
        }
        if (v.dtype !== 'float32') {
          throw new ShapeError(`split24.adopt: parameter '${name}' has dtype ${v.dtype}, expected float32`);
        }
        const parts = splitKernel(v, { impl });
        store.set(name, makeEntry(v.name, [...v.shape], parts.hi, parts.lo));
        tf.dispose([parts.hi, parts.lo]);
        v.dispose();
      }
    },
    materialize(names) {
      return tf.tidy(() => {
        const out: Record<string, tf.Tensor> = {};
        for (const n of names) {
          const e = entry(n, 'materialize');
          out[n] = tf.reshape(expand24(e.hi, numel(e.shape), { impl }), e.shape);
        }
        return out;
      });
    },
    update(name, fn) {
      const e = entry(name, 'update');
      // Made inside a tidy: the variable's buffer has refCount 1, so in-place optimizer kernels may write it.
      const param = stateVariableFrom(e.varName, () =>
        tf.reshape(reconstruct24(e.hi, e.lo, numel(e.shape), { impl }), e.shape),
      );
      try {
        fn(param);
        write(e, param);
      } finally {
        param.dispose();
      }
    },
    tensors: () => [...store.values()].flatMap((e) => [e.hi, e.lo]),
    bytesFor: (shape) => split24Bytes(numel(shape)),
    dispose() {
      for (const e of store.values()) tf.dispose([e.hi, e.lo]);
      store.clear();
    },
    names: () => [...store.keys()],
    reconstruct(name) {
      const e = entry(name, 'reconstruct');
      return tf.tidy(() => tf.reshape(reconstruct24(e.hi, e.lo, numel(e.shape), { impl }), e.shape));
    },
    async getState() {
      const out: Split24State = {};
      for (const [name, e] of store) {
        out[name] = {
          shape: [...e.shape],
          hi: Int32Array.from(await e.hi.data()),
          lo: Int32Array.from(await e.lo.data()),
        };
      }
      return out;
    },
    setState(state) {
      for (const [name, s] of Object.entries(state)) {
        const n = numel(s.shape);
        if (s.hi.length !== Math.ceil(n / 2) || s.lo.length !== Math.ceil(n / 4)) {
          throw new ShapeError(
            `split24.setState: parameter '${name}' [${s.shape}] needs ${Math.ceil(n / 2)} hi and ${Math.ceil(n / 4)} lo words, got ${s.hi.length} and ${s.lo.length}: pass getState()'s output`,
          );
        }
        const hi = tf.tensor1d(s.hi.slice(), 'int32');
        const lo = tf.tensor1d(s.lo.slice(), 'int32');
        const held = store.get(name);
        if (held) {
          if (held.shape.join() !== s.shape.join()) {
            throw new ShapeError(
              `split24.setState: parameter '${name}' is held with shape [${held.shape}], the state has [${s.shape}]`,
            );
          }
          held.hi.assign(hi);
          held.lo.assign(lo);
        } else {
          store.set(name, makeEntry(name, [...s.shape], hi, lo));
        }
        tf.dispose([hi, lo]);
      }
    },
  };
}
