// Prints the closing line CI reads: `N passed, N failed`. A test file that failed to load counts as one failure,
// and a lint/typecheck failure (argv[3] === '1') counts as one failed check, so a red build never prints `0 failed`.
import { existsSync, readFileSync } from 'node:fs';

const file = process.argv[2] ?? '.vitest-results.json';
const otherFailure = process.argv[3] === '1';
let passed = 0;
let failed = 0;
if (existsSync(file)) {
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed = r.numPassedTests ?? 0;
  failed = r.numFailedTests ?? 0;
  const brokenFiles = (r.testResults ?? []).filter(
    (s) => s.status === 'failed' && (s.assertionResults ?? []).every((a) => a.status !== 'failed'),
  );
  failed += brokenFiles.length;
} else {
  failed = 1; // vitest did not run
}
if (otherFailure && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
