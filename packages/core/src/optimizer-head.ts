import { SPECIFICATION_VERSION } from './contracts.ts';

/**
 * What every optimizer plugin with a schedulable `lr` writes the same way: `specificationVersion`, `kind`, `name`,
 * the resolved hyper-parameters (`hparams`, frozen, read-only) and `learningRate`, whose setter checks the new value
 * with the schema (`check('lr', …)`, the field's `InputError`) and replaces `hparams`. A plugin adds its methods
 * with `Object.assign(head, {...})` (the accessors stay on `head`) and reads `head.hparams` at call time.
 */
export function optimizerHead<H extends { readonly lr: number }, const N extends string>(
  name: N,
  schema: { check(field: 'lr', value: unknown): number },
  initial: Readonly<H>,
) {
  let hparams = initial;
  return {
    specificationVersion: SPECIFICATION_VERSION,
    kind: 'optimizer' as const,
    name,
    get hparams(): Readonly<H> {
      return hparams;
    },
    get learningRate(): number {
      return hparams.lr;
    },
    set learningRate(lr: number) {
      hparams = Object.freeze({ ...hparams, lr: schema.check('lr', lr) });
    },
  };
}

/** The members a plugin adds to its `optimizerHead`: `P` without the head's (`{...} satisfies PluginMethods<P>`). */
export type PluginMethods<P> = Omit<P, 'specificationVersion' | 'kind' | 'name' | 'hparams' | 'learningRate'>;
