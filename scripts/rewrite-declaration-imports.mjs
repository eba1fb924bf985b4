// Rewrites relative `.ts` specifiers in emitted declaration files to `.js`.
// Why: `rewriteRelativeImportExtensions` rewrites them in the JavaScript only; a `.d.ts` that imports './x.ts'
// resolves in no TypeScript before 5.0 (every K* type would silently become `any` there).
// Usage: node scripts/rewrite-declaration-imports.mjs <dist directory>
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const RELATIVE_TS = /((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*?)\.ts(['"])/g;

function declarationFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return declarationFiles(path);
    return entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

const dist = process.argv[2];
if (!dist) {
  console.error('usage: rewrite-declaration-imports.mjs <dist directory>');
  process.exit(2);
}
for (const file of declarationFiles(dist)) {
  const text = readFileSync(file, 'utf8');
  const rewritten = text.replace(RELATIVE_TS, '$1$2.js$3');
  if (rewritten !== text) writeFileSync(file, rewritten);
}
