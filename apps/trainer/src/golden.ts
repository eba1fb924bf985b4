import { existsSync, readFileSync, statSync } from 'node:fs';
import { InputError } from '@kstar/core';
import { z } from 'zod';
import { replayEntry } from './optimizers.ts';

const values = z.array(z.number());

/** The golden optimizer file format (fixtures/golden/optimizers.json); other top-level fields are kept, unread. */
const GoldenSchema = z.looseObject({
  shapes: z.record(z.string(), z.array(z.int().positive()).min(1)),
  init: z.record(z.string(), values),
  grads: z.array(z.record(z.string(), values)),
  runs: z.array(
    z.looseObject({
      optimizer: z.string().min(1),
      hparams: z.record(z.string(), z.unknown()),
      params_used: z.array(z.string()).min(1).optional(),
      after: z
        .array(z.strictObject({ step: z.int().positive(), params: z.record(z.string(), values) }))
        .min(1),
    }),
  ),
});

export type GoldenFile = z.infer<typeof GoldenSchema>;

/**
 * Reads and checks a golden file before any replay: its structure, every array's length against its parameter's
 * shape, every parameter name, the recorded steps against the gradient steps, and every replayable run's
 * hyper-parameters (built into K*'s optimizer now, so a bad `lr` or a string `beta1` is refused, not skipped).
 * Every problem is an InputError naming the file and the place.
 */
export function readGolden(path: string): GoldenFile {
  if (!existsSync(path) || !statSync(path).isFile())
    throw new InputError(
      `golden file '${path}' does not exist or is not a file: pass --golden FILE`,
      'E_REPLAY',
    );
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new InputError(`golden file '${path}' cannot be read as JSON: ${(e as Error).message}`, 'E_REPLAY');
  }
  const parsed = GoldenSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InputError(
      `golden file '${path}': field '${issue.path.join('.') || '(root)'}': ${issue.message} (it must follow the golden optimizers format of fixtures/golden/optimizers.json)`,
      'E_REPLAY',
    );
  }
  const golden = parsed.data;
  const bad = (where: string, problem: string) =>
    new InputError(`golden file '${path}': ${where}: ${problem}`, 'E_REPLAY');
  const size = (name: string) => golden.shapes[name]!.reduce((a, b) => a * b, 1);
  const checkValues = (where: string, name: string, v: number[] | undefined) => {
    if (!Object.hasOwn(golden.shapes, name)) {
      throw bad(where, `unknown parameter '${name}' (shapes has ${Object.keys(golden.shapes).join(', ')})`);
    }
    if (v === undefined) throw bad(where, `no values for parameter '${name}'`);
    if (v.length !== size(name)) {
      throw bad(
        where,
        `'${name}' has ${v.length} values, its shape [${golden.shapes[name]!.join(', ')}] needs ${size(name)}`,
      );
    }
  };
  for (const name of Object.keys(golden.shapes)) checkValues('init', name, golden.init[name]);
  golden.runs.forEach((run, i) => {
    const names = run.params_used ?? Object.keys(golden.shapes);
    for (const name of names) checkValues(`runs.${i}.params_used`, name, golden.init[name]);
    for (const rec of run.after) {
      if (rec.step > golden.grads.length) {
        throw bad(
          `runs.${i}.after`,
          `step ${rec.step} is recorded but grads has ${golden.grads.length} steps`,
        );
      }
      for (const name of names) checkValues(`runs.${i}.after step ${rec.step}`, name, rec.params[name]);
      for (let t = 0; t < rec.step; t++)
        for (const name of names) checkValues(`grads.${t}`, name, golden.grads[t]![name]);
    }
    const found = replayEntry(run.optimizer);
    if (!found) return; // K* has no optimizer for it: replay lists it as skipped
    try {
      found[1].fromReference(run.hparams);
    } catch (e) {
      throw bad(`runs.${i} (${run.optimizer}) hparams`, (e as Error).message);
    }
  });
  return golden;
}
