import * as tf from '@tensorflow/tfjs-core';
import { accumulate, chunkedOp, concatOwned, nestedGrads } from './custom-op.ts';
import { splitBalanced } from './split.ts';

type Act = (h: tf.Tensor) => tf.Tensor;

/** One chunk of the MLP: x [c, D] → act(x·wfc + bfc)·wproj + bproj [c, D] (the model's own formula). */
function chunkMlp(
  x: tf.Tensor,
  wfc: tf.Tensor,
  bfc: tf.Tensor,
  wproj: tf.Tensor,
  bproj: tf.Tensor,
  act: Act,
) {
  return tf.tidy(() => {
    const h = tf.fused.matMul({ a: x, b: wfc, bias: bfc }); // [c, F]
    return tf.fused.matMul({ a: act(h), b: wproj, bias: bproj }); // [c, D]
  });
}

/**
 * Tiled MLP (ALST TiledMLP pattern): x [N, D] → act(x·wfc + bfc)·wproj + bproj [N, D] over `chunks` row chunks.
 * Forward: each chunk runs with the tape off and frees its [c, F] intermediates before the next; only x and the
 * weights are saved. Backward: per chunk, recompute the chunk's MLP under a fresh tape (`tf.grads` w.r.t. [x chunk,
 * wfc, bfc, wproj, bproj] with the dy chunk), write its dx and add its weight gradients into running sums, then free
 * the chunk's graph. So the backward holds one chunk's graph at a time, never all chunks' (the reference's bug).
 */
export function tiledMlp(
  x: tf.Tensor,
  wfc: tf.Tensor,
  bfc: tf.Tensor,
  wproj: tf.Tensor,
  bproj: tf.Tensor,
  act: Act,
  chunks: number,
): tf.Tensor {
  const [N, D] = x.shape as [number, number];
  const ranges = splitBalanced(N, chunks);
  const slice = (t: tf.Tensor, start: number, size: number) => tf.slice(t, [start, 0], [size, D]); // [c, D]
  const op = chunkedOp(([xi, a, b, c, d], save) => {
    const ys = ranges.map((r) => tf.tidy(() => chunkMlp(slice(xi!, r.start, r.size), a!, b!, c!, d!, act))); // [c, D] each
    save([xi!, a!, b!, c!, d!]);
    return {
      value: concatOwned(ys, 0), // [N, D]
      gradFunc: (dy, [xs, ws, bs, ps, pb]) => {
        const dxs: tf.Tensor[] = [];
        let dw: tf.Tensor[] | undefined; // d wfc, d bfc, d wproj, d bproj
        for (const r of ranges) {
          const g = tf.tidy(() =>
            nestedGrads(
              (xc, w1, b1, w2, b2) => chunkMlp(xc!, w1!, b1!, w2!, b2!, act),
              [slice(xs!, r.start, r.size), ws!, bs!, ps!, pb!],
              slice(dy, r.start, r.size),
            ),
          );
          dxs.push(g[0]!); // [c, D]
          dw = accumulate(dw, g.slice(1));
        }
        return [concatOwned(dxs, 0), ...dw!];
      },
    };
  });
  return op(x, wfc, bfc, wproj, bproj);
}
