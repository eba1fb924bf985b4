import {
  type OptimizerPlugin,
  type OptimizerState,
  type ParamInfo,
  trackHostBytes,
  uniqueVariableName,
} from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import { HostCopy } from './host-copy.ts';
import type { HostUpdateRule } from './host-update.ts';
import { offloadEffective } from './offload.ts';

function isVariable(t: tf.Tensor): t is tf.Variable {
  return typeof (t as tf.Variable).assign === 'function' && typeof (t as tf.Variable).name === 'string';
}

/** One state tensor in host memory: its copy and what it was (a variable's name, to recreate it under it). */
interface HostedEntry {
  copy: HostCopy;
  name: string;
  variable: boolean;
}

export interface StateOffloadOptions {
  /** Which parameters' state lives in host memory (by the optimizer's `ParamInfo`). */
  offload(param: ParamInfo): boolean;
  /**
   * Where an offloaded parameter is updated: on the device by the wrapped optimizer (default), or on the host by a
   * rule (e.g. `hostAdamW`, ZeRO-Offload's CPU Adam): the gradient and parameter are copied out, the rule updates
   * host float32 arrays, the new parameter is written back. The state then never reaches the device, on any backend.
   */
  update?: 'device' | HostUpdateRule;
}

/** An optimizer whose chosen parameters' state lives in host memory between updates. */
export interface StateOffloadPlugin extends OptimizerPlugin {
  /** The wrapped optimizer (its hyper-parameters, its `stateBytes`). */
  readonly inner: OptimizerPlugin;
  /** Names of the parameters whose state is in host memory (empty on cpu/wasm: there it stays where it is). */
  readonly offloaded: readonly string[];
  /** Resolves when every copy-out started so far has landed and the device copies are freed. */
  settled(): Promise<void>;
  afterUpdate(): Promise<void> | undefined;
  /** Host bytes of the offloaded state (0 until the copies land, and on cpu/wasm). */
  readonly hostBytes: number;
  /** Free the host copies (the engine disposes only the state it holds: none for an offloaded parameter). */
  dispose(): void;
}

/**
 * Optimizer-state offload (ZeRO-Offload's placement, with the update on the device): the state of the parameters
 * `offload` picks lives in host memory between updates. Around each update it is uploaded into variables of the
 * same names, the wrapped optimizer updates as usual, and the new state is copied out again (`tensor.data()`,
 * asynchronous on WebGPU: the device copy is freed once the copy lands, overlapping the next updates and segments).
 * The engine's record of such a parameter stays empty between updates, so the ledger's optimizer-state bytes fall by
 * the offloaded bytes and the host bytes rise by them (`trackHostBytes`).
 *
 * On cpu and wasm the "device" is host memory: the state stays where it is (a no-op for placement, `describe` says
 * so) and the updates are the wrapped optimizer's, unchanged. Everywhere the updates compute exactly what the
 * wrapped optimizer computes on resident state (the values travel as they are).
 *
 * Not combined with row-chunked updates or partial gradients (the wrapper does not forward `rowChunks` or
 * `acceptsPartialGradients`: each update sees the whole state).
 */
export function offloadState(inner: OptimizerPlugin, options: StateOffloadOptions): StateOffloadPlugin {
  // Keyed by the state record the engine holds (the same object comes back to every update).
  const hosted = new Map<OptimizerState, Map<string, HostedEntry>>();
  const offloaded: string[] = [];
  const pending = new Set<Promise<void>>();
  // Copy-outs of the latest update (they overlap the next one), and older ones `afterUpdate` waits for.
  let latest: Promise<void>[] = [];
  let older: Promise<void>[] = [];
  const rule = options.update === 'device' ? undefined : options.update;
  // Host-updated parameters: their state arrays, keyed by the (empty) record the engine holds.
  const hostState = new Map<OptimizerState, Float32Array[]>();
  let hostUpdates: Promise<void>[] = [];

  const store = (state: OptimizerState): Map<string, HostedEntry> => {
    const entries = new Map<string, HostedEntry>();
    older.push(...latest);
    latest = [];
    for (const [key, t] of Object.entries(state)) {
      const copy = new HostCopy(t);
      const settled = copy.settled().finally(() => pending.delete(settled));
      pending.add(settled);
      latest.push(settled);
      entries.set(key, { copy, name: (t as tf.Variable).name ?? key, variable: isVariable(t) });
      t.dispose();
      delete state[key];
    }
    return entries;
  };

  const restore = (state: OptimizerState, entries: Map<string, HostedEntry>): void => {
    for (const [key, e] of entries) {
      const t = e.copy.take();
      if (e.variable) {
        // Recreated under its own name (free again: the old variable was disposed) with t's buffer alone.
        state[key] = tf.variable(t, false, uniqueVariableName(e.name), t.dtype);
        t.dispose();
      } else state[key] = t;
    }
  };

  const plugin: StateOffloadPlugin = {
    specificationVersion: inner.specificationVersion,
    kind: 'optimizer',
    name: inner.name,
    inner,
    offloaded,
    ...(inner.needsAllGradients ? { needsAllGradients: true } : {}),
    describe() {
      const backend = tf.getBackend();
      return {
        ...inner.describe(),
        stateOffload: rule
          ? { target: 'host', update: `${rule.name} on the host`, backend, params: [...offloaded] }
          : offloadEffective(backend)
            ? { target: 'host', backend, params: [...offloaded] }
            : {
                target: 'none',
                backend,
                note: `backend ${backend} keeps tensors in host memory: state offload is a no-op`,
              },
      };
    },
    init(param) {
      if (rule && options.offload(param)) {
        const state: OptimizerState = {};
        const arrays = rule.init(param.shape.reduce((a, b) => a * b, 1));
        trackHostBytes(arrays.reduce((a, x) => a + x.byteLength, 0));
        hostState.set(state, arrays);
        offloaded.push(param.name);
        return state;
      }
      const state = inner.init(param);
      if (options.offload(param) && offloadEffective()) {
        hosted.set(state, store(state));
        offloaded.push(param.name);
      }
      return state;
    },
    update(param, grad, state, step, part) {
      const arrays = hostState.get(state);
      if (arrays) {
        // Own handles on the buffers (the engine disposes grad after this call); the write-back lands before
        // afterUpdate resolves, so the next step reads the new parameter.
        const g = tf.clone(grad);
        const p = tf.clone(param);
        const shape = param.shape.slice();
        hostUpdates.push(
          Promise.all([g.data(), p.data()]).then(([gd, pd]) => {
            g.dispose();
            p.dispose();
            const next = Float32Array.from(pd as Float32Array);
            rule!.update(next, gd as Float32Array, arrays, step);
            const t = tf.tensor(next, shape, 'float32');
            param.assign(t);
            t.dispose();
          }),
        );
        return;
      }
      const entries = hosted.get(state);
      if (!entries) return inner.update(param, grad, state, step, part);
      restore(state, entries);
      try {
        inner.update(param, grad, state, step, part);
      } finally {
        hosted.set(state, store(state));
      }
    },
    stateBytes: (shape, role) => inner.stateBytes(shape, role),
    // The engine awaits this after each update: every copy-out but the latest update's has landed, so at most one
    // parameter's offloaded state is on its way out while the next one is on the device.
    afterUpdate() {
      if (older.length === 0 && hostUpdates.length === 0) return undefined;
      const wait = Promise.all([...older, ...hostUpdates]).then(() => {});
      older = [];
      hostUpdates = [];
      return wait;
    },
    settled: async () => {
      await Promise.all([...pending]);
    },
    get hostBytes() {
      let bytes = 0;
      for (const entries of hosted.values()) for (const e of entries.values()) bytes += e.copy.hostBytes;
      for (const arrays of hostState.values()) for (const a of arrays) bytes += a.byteLength;
      return bytes;
    },
    dispose() {
      for (const entries of hosted.values()) for (const e of entries.values()) e.copy.dispose();
      hosted.clear();
      for (const arrays of hostState.values()) for (const a of arrays) trackHostBytes(-a.byteLength);
      hostState.clear();
      offloaded.length = 0;
    },
  };
  // Schedules set the learning rate on the plugin they hold: pass it through.
  if (inner.learningRate !== undefined) {
    Object.defineProperty(plugin, 'learningRate', {
      get: () => inner.learningRate,
      set: (lr: number) => {
        inner.learningRate = lr;
      },
      enumerable: true,
    });
  }
  return plugin;
}
