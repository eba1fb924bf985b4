import { InputError } from '@kstar/core';
import { createGPT, resolveConfig } from '@kstar/gpt';
import { webgpuBufferLimit } from '@kstar/kernels';
import { describe, expect, it } from 'vitest';
import { checkTensorsFit } from '../src/memory-check.ts';
import { wholeTensors } from '../src/train.ts';

// WebGPU's per-buffer limit, checked before step 1 (no GPU here: a device is stood in by its `limits`).
describe('the WebGPU per-buffer check', () => {
  const device = (binding: number, buffer: number) => ({
    limits: { maxStorageBufferBindingSize: binding, maxBufferSize: buffer },
  });

  it('refuses the largest whole tensor of a step over the limit, and names it', () => {
    const config = resolveConfig('tiny', { vocabSize: 256 });
    const model = createGPT(config, { seed: 1 });
    try {
      const tensors = wholeTensors(model, 8, 64, []);
      const logits = 4 * 8 * 64 * 256; // [B·T, V] float32
      const mlp = 4 * config.nEmbd * 4 * config.nEmbd; // the largest parameter: an MLP matrix [D, 4D]
      expect(tensors.filter((t) => t.what.includes('logits')).map((t) => t.bytes)).toEqual([logits]);
      expect(Math.max(...tensors.map((t) => t.bytes))).toBe(Math.max(logits, mlp));
      // Just fits / one byte short.
      expect(() => checkTensorsFit(tensors, webgpuBufferLimit(device(logits, logits)))).not.toThrow();
      const refuse = () => checkTensorsFit(tensors, webgpuBufferLimit(device(logits - 1, 1 << 30)));
      expect(refuse).toThrow(InputError);
      expect(refuse).toThrow(
        /the logits \[B·T, V\] = \[512, 256\] needs one buffer of .* \(524,288 bytes\), more than .*maxStorageBufferBindingSize 524,287.*--activations mst/,
      );
      // MsT chunks the logits: then the largest parameter decides.
      const chunked = wholeTensors(model, 4, 32, [{ name: 'mst' }]);
      expect(chunked.some((t) => t.what.includes('logits'))).toBe(false);
      expect(() => checkTensorsFit(chunked, webgpuBufferLimit(device(1 << 30, mlp - 1)))).toThrow(
        /parameter '.*' \[(128,512|512,128)\] needs one buffer .*maxBufferSize 262,143/,
      );
      expect(() => checkTensorsFit(chunked, webgpuBufferLimit(device(mlp, mlp)))).not.toThrow();
      expect(() => checkTensorsFit(tensors, undefined)).not.toThrow();
    } finally {
      model.dispose();
    }
  });
});
