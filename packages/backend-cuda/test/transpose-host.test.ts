import { afterAll, beforeAll, expect, it } from 'vitest';
import { TRANSPOSE_BLOCK, transposeTileGrid, transposeTileSource } from '../src/gemm-align.ts';
import * as host from './host-build.ts';

const { threadedCxx } = host;

// The tiled transpose (the LM head's transposed-output path, matmul.ts) built for the host, each block's 256 threads
// as std::threads: on shapes that end inside a tile in both directions every element must land at its transposed
// place. Needs a C++20 compiler (skipped without).

const MAIN = `
${host.THREADED_LAUNCH}int main(int, char** argv) {
  const long long rows = atoll(argv[1]), cols = atoll(argv[2]), batch = atoll(argv[5]), n = batch * rows * cols;
  float* in = new float[n];
  float* out = new float[n];
  for (long long i = 0; i < n; ++i) { if (scanf("%f", &in[i]) != 1) return 2; out[i] = -1.f; }
  blockDim.x = ${TRANSPOSE_BLOCK};
  for (blockIdx.z = 0; blockIdx.z < batch; ++blockIdx.z)
    launch(atoi(argv[3]), atoi(argv[4]), [&] { transpose_tile(out, in, rows, cols); });
  for (long long i = 0; i < n; ++i) printf("%g ", out[i]);
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
  [1, 37, 70],
  [1, 64, 5],
  [2, 33, 9], // a batch (grid z): each matrix transposed in its own place
])('transposes %i × [%i, %i]', (batch, rows, cols) => {
  const size = rows * cols;
  const x = host.floats(batch * size, rows, 0, 1);
  const grid = transposeTileGrid(rows, cols);
  const args = [rows, cols, grid.x, grid.y, batch].map(String);
  const [out] = host.runHost(dir, args, Array.from(x).join(' '));
  const want = Array.from({ length: batch * size }, (_, i) => {
    const z = Math.floor(i / size);
    const c = Math.floor((i % size) / rows);
    const r = i % rows;
    return Number(x[z * size + r * cols + c]!.toPrecision(6)); // %g prints 6 significant digits
  });
  expect(out).toEqual(want);
});
