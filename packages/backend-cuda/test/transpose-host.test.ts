import { afterAll, beforeAll, expect, it } from 'vitest';
import { TRANSPOSE_BLOCK, transposeTileGrid, transposeTileSource } from '../src/gemm-align.ts';
import * as host from './host-build.ts';

const { threadedCxx } = host;

// The tiled transpose (the LM head's transposed-output path, matmul.ts) built for the host, each block's 256 threads
// as std::threads: on shapes that end inside a tile in both directions every element must land at its transposed
// place. Needs a C++20 compiler (skipped without).

const MAIN = `
${host.THREADED_LAUNCH}int main(int, char** argv) {
  const long long rows = atoll(argv[1]), cols = atoll(argv[2]);
  float* in = new float[rows * cols];
  float* out = new float[rows * cols];
  for (long long i = 0; i < rows * cols; ++i) { if (scanf("%f", &in[i]) != 1) return 2; out[i] = -1.f; }
  blockDim.x = ${TRANSPOSE_BLOCK};
  launch(atoi(argv[3]), atoi(argv[4]), [&] { transpose_tile(out, in, rows, cols); });
  for (long long i = 0; i < rows * cols; ++i) printf("%g ", out[i]);
  printf("\\n");
}
`;

let dir = '';
beforeAll(() => {
  if (!threadedCxx) return;
  const src = transposeTileSource('transpose_tile').replace('extern "C" ', '');
  dir = host.buildHost(
    'kstar-transpose-host-',
    { 'main.cpp': `${host.THREADED_SHIMS}${src}${MAIN}` },
    threadedCxx,
    ['-std=c++20', '-O1', '-pthread'],
  );
}, 60_000);
afterAll(() => {
  if (dir) host.removeHostBuild(dir);
});

it.skipIf(!threadedCxx).each([
  [37, 70],
  [64, 5],
])('transposes [%i, %i]', (rows, cols) => {
  const x = host.floats(rows * cols, rows, 0, 1);
  const grid = transposeTileGrid(rows, cols);
  const [out] = host.runHost(dir, [rows, cols, grid.x, grid.y].map(String), Array.from(x).join(' '));
  const want = Array.from({ length: rows * cols }, (_, i) => {
    const c = Math.floor(i / rows);
    const r = i % rows;
    return Number(x[r * cols + c]!.toPrecision(6)); // %g prints 6 significant digits
  });
  expect(out).toEqual(want);
});
