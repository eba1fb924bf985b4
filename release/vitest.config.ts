import { defineProject } from 'vitest/config';

// Release checks: what users install (planned versions, package metadata, packed tarballs, the browser).
export default defineProject({
  test: { name: 'release', include: ['test/**/*.test.ts'], pool: 'forks', testTimeout: 600_000 },
});
