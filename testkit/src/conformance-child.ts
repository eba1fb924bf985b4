// A fresh process for the conformance suite's "save → load → step in a new process" check:
// argv: <artifacts dir> <module that registers the optimizer class>. Loads model + optimizer state from the
// directory, takes one step on the toy regression, writes the resulting bits to `<dir>/child.json`.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { fitSteps, regressionData, stateBits } from './toy-regression.ts';

const [dir, modulePath] = process.argv.slice(2);
if (dir == null || modulePath == null) {
  console.error('usage: conformance-child.ts <artifacts dir> <optimizer module path>');
  process.exit(2);
}
await import(pathToFileURL(modulePath).href);
await tf.setBackend('cpu');
const topology = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as tf.io.ModelArtifacts;
const bin = readFileSync(join(dir, 'weights.bin'));
const weightData = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
const model = await tf.loadLayersModel(tf.io.fromMemory({ ...topology, weightData }));
const { x, y } = regressionData();
await fitSteps(model, x, y, 1);
writeFileSync(join(dir, 'child.json'), JSON.stringify(await stateBits(model)));
