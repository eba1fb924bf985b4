import { InputError } from './errors.ts';

/** Which update an optimizer plugin runs: its fused kernel when it can run (`auto`) or tfjs ops (`fallback`). */
export type KernelImpl = 'auto' | 'fallback';

/**
 * Splits an optimizer's options into the `impl` switch (checked; default `auto`) and the rest (its
 * hyper-parameters, for its schema's `resolve`). Null or undefined options are no options.
 */
export function splitImpl<O extends object>(
  options: (O & { impl?: unknown }) | null | undefined,
  where: string,
): { impl: KernelImpl; rest: O } {
  const { impl = 'auto', ...rest } = options ?? ({} as O & { impl?: unknown });
  if (impl !== 'auto' && impl !== 'fallback') {
    throw new InputError(
      `${where}: impl = ${JSON.stringify(impl)} is invalid: it must be 'auto' or 'fallback'`,
    );
  }
  return { impl, rest: rest as O };
}

/** Checks an update's step: 1-based, an integer (throws `InputError` naming the value). */
export function checkStep(step: number, where: string): void {
  if (!(Number.isInteger(step) && step >= 1)) {
    throw new InputError(`${where}: step = ${step} is invalid: it must be an integer ≥ 1 (1-based)`);
  }
}
