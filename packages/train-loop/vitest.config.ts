import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@kstar/source'] },
  ssr: { resolve: { conditions: ['@kstar/source'] } },
  test: {
    name: 'train-loop',
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    // WebGPU tests run on Mesa lavapipe (software Vulkan; `scripts/setup-webgpu.sh` installs it in CI) unless
    // the caller points the Vulkan loader elsewhere. KSTAR_SKIP_WEBGPU=1 skips them (reported as not tested).
    env: {
      XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
      VK_DRIVER_FILES: process.env.VK_DRIVER_FILES ?? '/usr/share/vulkan/icd.d/lvp_icd.json',
    },
  },
});
