import { type ShardedTraining, type ShardingPlugin, SPECIFICATION_VERSION } from '@kstar/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ZeroPlugin } from './zero.ts';

/** A sharding plugin for a gradient-measuring pass over the parameters of an attached ZeRO plugin. */
export interface ZeroNormPass extends ShardingPlugin {
  /**
   * The L2 norm of the mean gradient over ranks (the single-process gradient of the global batch), over every
   * gradient consumed since the last call; every rank calls it (one scalar all-reduce) and gets the same value.
   */
  takeNorm(): Promise<number>;
  /** Drops the partial sums (after a failed pass). */
  reset(): void;
}

/**
 * LOMO's global-norm clipping under ZeRO: the norm pass is a second engine over the same model whose gradients must be
 * the global batch's, not this rank's rows'. This plugin reads parameters through `main`'s attached sharding (stage 3
 * gathers them), reduces each released gradient exactly as `main` does (`reduceOwned`: reduce-scatter or reduce to
 * the owner), adds Σg² of the part this rank owns, and updates nothing; `takeNorm` all-reduces the sum.
 */
export function zeroNormPass(main: ZeroPlugin): ZeroNormPass {
  let parts: tf.Tensor[] = [];
  const reset = () => {
    tf.dispose(parts);
    parts = [];
  };
  const c = main.collective;
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'sharding',
    name: `${main.name}-norm-pass`,
    stage: main.stage,
    collective: c,
    describe: () => ({ of: main.name, role: 'global gradient norm, no update' }),
    reset,
    async takeNorm() {
      const local = parts.length ? tf.addN(parts) : tf.scalar(0);
      reset();
      const total = await c.allReduce(local, 'sum');
      local.dispose();
      const value = Math.sqrt((await total.data())[0]!);
      total.dispose();
      return value;
    },
    attach(): ShardedTraining {
      const m = main.attached;
      if (!m) throw new Error(`${main.name}-norm-pass: attach the main ZeRO plugin (build its engine) first`);
      return {
        materializes: m.materializes,
        gather: (names) => m.gather(names),
        read: (names) => m.read(names),
        release: (params) => m.release(params),
        update(name) {
          throw new Error(`${main.name}-norm-pass: the norm pass updates nothing (parameter '${name}')`);
        },
        bytes: () => m.bytes(),
        async consume(name, grad) {
          const g = await m.reduceOwned(name, grad);
          if (!g) return;
          parts.push(tf.tidy(() => tf.sum(tf.square(g))));
          g.dispose();
        },
        mean: (value) => m.mean(value),
        stateTensors: () => [],
        stateOf: () => undefined,
        dispose: reset,
      };
    },
  };
}
