import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@kstar/source'] },
  ssr: { resolve: { conditions: ['@kstar/source'] } },
  test: {
    name: 'web',
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
