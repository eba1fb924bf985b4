import { type ChildProcess, spawn } from 'node:child_process';
import { adamw } from '@kstar/optim-adamw';
import type { Tensor, Variable } from '@tensorflow/tfjs';
import { OPTIMIZERS } from '../src/index.ts';

/** An in-process CliIO that records what the CLI writes. */
export function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: {
      stdout: { write: (s: string) => out.push(s) > 0 },
      stderr: { write: (s: string) => err.push(s) > 0, isTTY: false },
    },
    out,
    err,
  };
}

/**
 * Registers (for `--optimizer NAME`) AdamW followed by `fault(param, step)` after each update: a way to make step k's
 * loss NaN or spike. Returns the function that removes it.
 */
export function registerFaultyAdamw(
  name: string,
  fault: (param: Variable, step: number) => void,
): () => void {
  OPTIMIZERS[name] = {
    defaultLr: 3e-3,
    replays: [],
    create: (lr) => {
      const inner = adamw({ lr });
      return {
        ...inner,
        update(param: Variable, grad: Tensor, state, step) {
          inner.update(param, grad, state, step);
          fault(param, step);
        },
      };
    },
  };
  return () => {
    delete OPTIMIZERS[name];
  };
}

/** Runs a process to its end, collecting its output; `onStderr` sees the stderr so far after each chunk. */
export function runProcess(
  command: string,
  args: string[],
  options: Parameters<typeof spawn>[2],
  onStderr?: (text: string, child: ChildProcess) => void,
) {
  const t0 = performance.now();
  return new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>((resolve) => {
    const child = spawn(command, args, options);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => {
      stdout += d;
    });
    child.stderr?.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 }));
  });
}
