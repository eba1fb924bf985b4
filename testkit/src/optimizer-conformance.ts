import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DropInOptimizer, InputError, type NamedTensor, uniqueBufferBytes } from '@kstar/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { onBackend } from './backends.ts';
import { evalLoss, fitSteps, regressionData, regressionModel, stateBits } from './toy-regression.ts';

/** One drop-in optimizer under test. */
export interface ConformanceSpec<O extends object = Record<string, unknown>> {
  /** The name it is registered under (`tf.serialization.registerClass`). */
  className: string;
  /** A new instance with these options (the package's constructor). */
  create(options: O): DropInOptimizer;
  /** Options that train the toy regression (4 → 8 → 1, 64 rows) in 60 full-batch steps. */
  trainOptions: O;
  /** Absolute path of the module that defines and registers the class (imported by the new-process check). */
  modulePath: string;
  /** The loss after 60 steps must be below this fraction of the initial loss (default 0.5). */
  lossRatio?: number;
}

const CHILD = fileURLToPath(new URL('./conformance-child.ts', import.meta.url));

/** `model.save({includeOptimizer: true})` into memory. */
async function saveToMemory(m: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await m.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
    { includeOptimizer: true },
  );
  return artifacts!;
}

/** The toy regression compiled with a new optimizer of `spec`, trained `steps` full-batch steps (the caller disposes). */
async function trained<O extends object>(spec: ConformanceSpec<O>, steps: number) {
  const { x, y } = regressionData();
  const m = regressionModel();
  const opt = spec.create(spec.trainOptions);
  m.compile({ optimizer: opt, loss: 'meanSquaredError' });
  if (steps > 0) await fitSteps(m, x, y, steps);
  return { x, y, m, opt };
}

/** Trains a model 2 steps, saves it with its optimizer, then steps the original once more: the reference. */
async function trainedAndSaved<O extends object>(spec: ConformanceSpec<O>) {
  const { x, y, m, opt } = await trained(spec, 2);
  const artifacts = await saveToMemory(m);
  await fitSteps(m, x, y, 1);
  const uninterrupted = await stateBits(m);
  const dispose = () => {
    m.dispose();
    opt.dispose();
    tf.dispose([x, y]);
  };
  return { artifacts, uninterrupted, iterations: opt.iterations, dispose };
}

/**
 * The drop-in contract every K* optimizer holds (run on the cpu backend): registration and config round trip;
 * `fit` lowers the loss with a flat tensor count; measured state bytes equal the plugin's `stateBytes`;
 * save → load → step is bit-identical to the uninterrupted step, in the same process (renamed variables) and in a
 * new one; `setWeights` rejects malformed input and changes nothing.
 */
export function describeOptimizerConformance<O extends object>(spec: ConformanceSpec<O>): void {
  describe(`${spec.className} drop-in conformance`, () => {
    onBackend('cpu');

    it('is registered under its class name; getConfig → fromConfig round trip (snake_case keys too)', () => {
      const classes = tf.serialization.SerializationMap.getMap().classNameMap;
      expect(classes[spec.className]).toBeDefined();
      const opt = spec.create(spec.trainOptions);
      expect(opt.getClassName()).toBe(spec.className);
      // A scheduled learning rate survives the round trip (and lr₀ where the plugin keeps it).
      if (opt.learningRate != null && 'learningRate' in opt.plugin) opt.learningRate = opt.learningRate * 0.5;
      const [cls, fromConfig] = classes[spec.className]!;
      const config = opt.getConfig();
      const again = fromConfig(cls, config) as DropInOptimizer;
      expect(again.getConfig()).toEqual(config);
      const snake = Object.fromEntries(
        Object.entries(config).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]),
      );
      expect((fromConfig(cls, snake) as DropInOptimizer).getConfig()).toEqual(config);
      expect(again.learningRate).toBe(opt.learningRate);
      expect(() => spec.create({ ...spec.trainOptions, noSuchOption: 1 })).toThrow(InputError);
    });

    it('fit lowers the loss; the tensor count is flat from epoch to epoch', async () => {
      const { x, y, m, opt } = await trained(spec, 0);
      const before = evalLoss(m, x, y);
      await fitSteps(m, x, y, 5);
      const count = tf.memory().numTensors;
      await fitSteps(m, x, y, 55);
      expect(tf.memory().numTensors).toBe(count);
      const after = evalLoss(m, x, y);
      expect(after).toBeLessThan(before * (spec.lossRatio ?? 0.5));
      expect(opt.iterations).toBe(60);
      expect(opt.stateNames()).toEqual(m.trainableWeights.map((w) => w.name));
      m.dispose();
      opt.dispose();
      tf.dispose([x, y]);
    });

    it("measured state bytes (unique buffers) equal the plugin's stateBytes for every variable", async () => {
      const { x, y, m, opt } = await trained(spec, 3);
      for (const w of m.trainableWeights) {
        const role = w.shape.length === 2 ? 'matrix' : w.shape.length === 1 ? 'vector' : 'other';
        const measured = uniqueBufferBytes(Object.values(opt.stateOf(w.name)!));
        expect(measured, w.name).toBe(opt.plugin.stateBytes(w.shape as number[], role));
      }
      m.dispose();
      opt.dispose();
      tf.dispose([x, y]);
    });

    it('save → loadLayersModel in the same process → step: bit-identical to the uninterrupted step', async () => {
      const run = await trainedAndSaved(spec);
      const loaded = await tf.loadLayersModel(tf.io.fromMemory(run.artifacts));
      // tfjs-layers gives the loaded variables new names: the restored state must follow them by position.
      expect(loaded.trainableWeights.map((w) => w.name)).not.toEqual(
        (loaded.optimizer as DropInOptimizer).stateNames(),
      );
      expect(loaded.optimizer.getClassName()).toBe(spec.className);
      const { x, y } = regressionData();
      await fitSteps(loaded, x, y, 1);
      expect(await stateBits(loaded)).toEqual(run.uninterrupted);
      expect(loaded.optimizer.iterations).toBe(run.iterations);
      loaded.optimizer.dispose();
      loaded.dispose();
      tf.dispose([x, y]);
      run.dispose();
    });

    it('save → load in a new process → step: bit-identical to the uninterrupted step', async () => {
      const run = await trainedAndSaved(spec);
      const dir = mkdtempSync(join(tmpdir(), 'kstar-conformance-'));
      try {
        const { weightData, ...topology } = run.artifacts;
        writeFileSync(join(dir, 'model.json'), JSON.stringify(topology));
        writeFileSync(join(dir, 'weights.bin'), new Uint8Array(weightData as ArrayBuffer));
        execFileSync(
          process.execPath,
          ['--conditions=@kstar/source', '--import', 'tsx', CHILD, dir, spec.modulePath],
          { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: 'pipe' },
        );
        const child = JSON.parse(readFileSync(join(dir, 'child.json'), 'utf8'));
        expect(child).toEqual(run.uninterrupted);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        run.dispose();
      }
    });

    it('setWeights rejects malformed input and leaves the state as it was', async () => {
      const { x, y, m, opt } = await trained(spec, 2);
      const before = await stateBits(m);
      const saved = await opt.getWeights();
      const extra = tf.scalar(1, 'int32');
      const bad: NamedTensor[][] = [
        [],
        saved.slice(1), // no 'iter' first
        [...saved, { name: 'no-slash', tensor: extra }],
        [...saved, saved[1]!], // a weight twice
        [...saved, { name: 'v/bool', tensor: tf.tensor([true], [1], 'bool') }],
      ];
      for (const weights of bad) await expect(opt.setWeights(weights)).rejects.toThrow(InputError);
      expect(await stateBits(m)).toEqual(before);
      tf.dispose([extra, bad[4]!.at(-1)!.tensor]);
      m.dispose();
      opt.dispose();
      tf.dispose([x, y]);
    });
  });
}
