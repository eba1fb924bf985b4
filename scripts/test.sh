#!/usr/bin/env bash
# The README's test command: installs everything on a fresh machine, then lints, typechecks and runs every
# package's tests on cpu, wasm and WebGPU (Mesa lavapipe when there is no GPU). Prints `N passed, N failed` last.
set -uo pipefail
cd "$(dirname "$0")/.."
PNPM_VERSION=10.34.9
if ! command -v pnpm >/dev/null || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null 2>&1 || { echo "could not install pnpm@$PNPM_VERSION with npm"; echo "0 passed, 1 failed"; exit 1; }
fi
pnpm install --frozen-lockfile || { echo "pnpm install failed"; echo "0 passed, 1 failed"; exit 1; }
if [ "${KSTAR_SKIP_WEBGPU:-0}" != 1 ]; then
  bash scripts/setup-webgpu.sh || { echo "WebGPU driver setup failed (set KSTAR_SKIP_WEBGPU=1 to test without WebGPU)"; echo "0 passed, 1 failed"; exit 1; }
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
  export VK_DRIVER_FILES="${VK_DRIVER_FILES:-/usr/share/vulkan/icd.d/lvp_icd.json}"
fi
# The browser tests (apps/web, the HTML report) drive Debian's chromium through playwright-core.
if [ ! -x "${KSTAR_CHROMIUM:-/usr/bin/chromium}" ]; then
  { apt-get update && apt-get install -y chromium; } >/dev/null 2>&1 || { echo "could not install Debian's chromium for the browser tests (needs root; or set KSTAR_CHROMIUM)"; echo "0 passed, 1 failed"; exit 1; }
fi
# Open MPI for the multi-rank tests (ZeRO parity, faults); single-process tests need none of it.
bash scripts/setup-mpi.sh || { echo "Open MPI setup failed (apt-get install -y libopenmpi-dev openmpi-bin)"; echo "0 passed, 1 failed"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0
pnpm exec biome check . || { echo "lint failed: run 'pnpm format' and 'pnpm lint'"; status=1; }
pnpm exec tsc -p tsconfig.json || { echo "typecheck failed"; status=1; }
# What users install: the build against @tensorflow/tfjs-core alone, then publint and are-the-types-wrong on every
# packed package (the install test in apps/trainer reuses the build).
pnpm build || { echo "pnpm build failed"; status=1; }
node scripts/check-packages.mjs || { echo "package checks (publint, attw) failed"; status=1; }
rm -f .vitest-results.json
# A native hang (e.g. in a GPU driver) must not eat CI's time: the suite takes about 25 minutes on 2 cores.
timeout -k 30 3000 pnpm exec vitest run --reporter=default --reporter=json --outputFile=.vitest-results.json
vstatus=$?
[ $vstatus -eq 124 ] && echo "the test run exceeded 50 minutes and was stopped"
[ $vstatus -eq 0 ] || status=1
node scripts/summarize-tests.mjs .vitest-results.json $status
