import { runCli } from '../src/index.ts';

/** Runs the CLI in this process and returns its exit code and what it wrote. */
export async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, {
    stdout: { write: (s: string) => out.push(s) > 0 },
    stderr: { write: (s: string) => err.push(s) > 0, isTTY: false },
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}
