import { defineProject } from 'vitest/config';

// cpu only: the pieces are backend-independent tfjs ops.
export default defineProject({
  resolve: { conditions: ['@kstar/source'] },
  ssr: { resolve: { conditions: ['@kstar/source'] } },
  test: { name: 'train-loop', include: ['test/**/*.test.ts'] },
});
