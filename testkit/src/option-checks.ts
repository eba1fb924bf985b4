import { InputError, type OptimizerPlugin, SPECIFICATION_VERSION } from '@kstar/core';
import { expect, it } from 'vitest';

/**
 * Calls `make` with `input` that its TypeScript type forbids, as a JavaScript caller or a parsed config file may
 * pass it (an unknown key, a string for a number, `null`): the one place the option tests step outside the types.
 */
export function callUntyped<O, R>(make: (input: O) => R, input: unknown): R {
  return make(input as O);
}

/** `new cls(input)` with `input` its type forbids: `callUntyped` for a constructor. */
export function constructUntyped<O, T>(cls: new (options: O) => T, input: unknown): T {
  return new cls(input as O);
}

/** One bad-options case: the test's label, the options as given, and what the error message must say. */
export type BadOptionsCase = readonly [label: string, options: unknown, message: RegExp];

/** One `it` per case: `make(options)` throws an `InputError` whose message matches. */
export function itRejectsBadOptions<O>(
  make: (options: O) => unknown,
  cases: readonly BadOptionsCase[],
): void {
  for (const [label, options, message] of cases) {
    it(label, () => {
      expect(() => callUntyped(make, options)).toThrow(InputError);
      expect(() => callUntyped(make, options)).toThrow(message);
    });
  }
}

/** `make` reads own properties only: inherited names (`constructor`, `toString`, …) are unknown options. */
export function itRefusesInheritedOptionNames<O>(make: (options: O) => unknown): void {
  it('refuses inherited names as options (own properties only): constructor, toString, __proto__', () => {
    for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      expect(() => callUntyped(make, Object.fromEntries([[name, 1]])), name).toThrow(
        new RegExp(`unknown option '${name}'`),
      );
    }
  });
}

/** An optimizer plugin's identity: kind `'optimizer'`, this release's specification version, and `name`. */
export function expectOptimizerPluginNamed(plugin: OptimizerPlugin, name: string): void {
  expect(plugin.kind).toBe('optimizer');
  expect(plugin.specificationVersion).toBe(SPECIFICATION_VERSION);
  expect(plugin.name).toBe(name);
}
