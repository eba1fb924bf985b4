import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { planVersions } from './plan-versions.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The rows of the table in .changeset/README.md: `| `name`: type | `name` version, … |`. */
function documentedPlans(): { name: string; type: 'patch' | 'minor'; expected: Record<string, string> }[] {
  const readme = readFileSync(`${repoRoot}.changeset/README.md`, 'utf8');
  const rows = readme.split('\n').filter((line) => /^\| `@kstar\/[^`]+`: (patch|minor) \|/.test(line));
  return rows.map((line) => {
    const [change, planned] = line
      .split('|')
      .slice(1, 3)
      .map((cell) => cell.trim());
    const [, name, type] = /^`([^`]+)`: (patch|minor)$/.exec(change!)!;
    const expected = Object.fromEntries(
      planned!.split(', ').map((entry) => {
        const [, pkg, version] = /^`([^`]+)` (\S+)$/.exec(entry)!;
        return [pkg, version];
      }),
    );
    return { name: name!, type: type as 'patch' | 'minor', expected };
  });
}

describe('changeset version plans what .changeset/README.md says', () => {
  const plans = documentedPlans();

  it('the README documents a core patch, a core minor and a plugin patch', () => {
    const changes = plans.map((p) => `${p.name} ${p.type}`);
    expect(changes).toEqual(
      expect.arrayContaining(['@kstar/core patch', '@kstar/core minor', '@kstar/optim-lion patch']),
    );
  });

  for (const plan of plans) {
    it(`${plan.name} ${plan.type}`, () => {
      const planned = planVersions(repoRoot, { [plan.name]: plan.type });
      expect(planned).toEqual(plan.expected);
      for (const version of Object.values(planned)) expect(version).toMatch(/^0\./); // 0.x stays 0.x
    });
  }
});
