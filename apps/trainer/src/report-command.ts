import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { InputError } from '@kstar/core';
import { writeFileAtomic } from './atomic-write.ts';
import { checkOutputPath } from './output-paths.ts';
import type { TrainReport } from './report.ts';
import { reportHtml } from './report-html.ts';

export const REPORT_USAGE = 'usage: kstar report REPORT.json --html FILE\n';

/** `kstar report REPORT.json --html FILE`: renders a `--report` JSON as a self-contained HTML page. */
export function reportCommand(argv: string[]): string {
  let parsed: ReturnType<typeof parseArgs<{ options: { html: { type: 'string' } }; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: { html: { type: 'string' } }, allowPositionals: true });
  } catch (e) {
    throw new InputError(`kstar report: ${(e as Error).message}; ${REPORT_USAGE.trim()}`, 'E_FLAG');
  }
  const [input, ...extra] = parsed.positionals;
  const html = parsed.values.html;
  if (input === undefined || extra.length > 0 || html === undefined) {
    throw new InputError(
      `kstar report: expected one REPORT.json and --html FILE, got ${JSON.stringify(argv)}; ${REPORT_USAGE.trim()}`,
      'E_FLAG',
    );
  }
  checkOutputPath(html, 'file', '--html');
  if (!existsSync(input))
    throw new InputError(
      `kstar report: '${input}' does not exist: pass a file written by 'kstar train --report'`,
      'E_FLAG',
    );
  let report: TrainReport;
  try {
    report = JSON.parse(readFileSync(input, 'utf8')) as TrainReport;
  } catch (e) {
    throw new InputError(`kstar report: '${input}' is not JSON (${(e as Error).message})`, 'E_FLAG');
  }
  if (report.version !== 1 || !Array.isArray(report.losses) || typeof report.memory !== 'object') {
    throw new InputError(
      `kstar report: '${input}' is not a kstar train report (version ${JSON.stringify(report.version)}): pass a file written by 'kstar train --report'`,
      'E_FLAG',
    );
  }
  writeFileAtomic(html, reportHtml(report));
  return html;
}
