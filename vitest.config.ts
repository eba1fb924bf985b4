import { defineConfig } from 'vitest/config';

// One vitest project per package (each has its own vitest.config.ts).
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'release', 'testkit', 'bench'],
  },
});
