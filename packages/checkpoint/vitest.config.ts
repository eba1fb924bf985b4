import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@kstar/source'] },
  ssr: { resolve: { conditions: ['@kstar/source'] } },
  test: {
    name: 'checkpoint',
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
  },
});
