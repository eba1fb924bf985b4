import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@kstar/source'] },
  ssr: { resolve: { conditions: ['@kstar/source'] } },
  test: {
    name: 'gpt',
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    // test/webgpu.test.ts runs on Mesa lavapipe (as @kstar/kernels' WebGPU tests); KSTAR_SKIP_WEBGPU=1 skips it.
    env: {
      XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
      VK_DRIVER_FILES: process.env.VK_DRIVER_FILES ?? '/usr/share/vulkan/icd.d/lvp_icd.json',
    },
  },
});
