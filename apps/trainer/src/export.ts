import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '@kstar/core';
import { encodeHfGpt2, hfGpt2Config } from '@kstar/gpt';
import { selectBackend } from '@kstar/kernels';
import { writeFileAtomic } from './atomic-write.ts';
import { EVERY_RANK, readCheckpoint } from './checkpoint/read.ts';
import { float32Weights, modelFromCheckpoint } from './checkpoint/weights.ts';
import { type FlagTable, flagsHelp, parseCommandFlags } from './flags.ts';
import { checkOutputPath } from './output-paths.ts';
import { KSTAR_VERSION } from './version.ts';

// biome-ignore format: one line per flag
const EXPORT_FLAGS: FlagTable = {
  checkpoint: { type: 'string', value: 'DIR', help: 'the checkpoint (a step-N directory written by --save-dir)' },
  out: { type: 'string', value: 'DIR', help: 'where to write model.safetensors and config.json' },
  dtype: { type: 'string', choices: ['float32', 'bfloat16'], help: 'the stored weights (default float32)' },
  help: { type: 'boolean', short: 'h', help: 'this help' },
};

export const EXPORT_HELP = `kstar export --checkpoint DIR --out DIR [--dtype float32|bfloat16]

Writes the checkpoint's weights as DIR/model.safetensors in the Hugging Face GPT-2 layout (transformer.wte.weight,
transformer.h.0.attn.c_attn.weight as Conv1D [in, out], …; the tied lm_head is not written) and DIR/config.json, so
that transformers' GPT2LMHeadModel.from_pretrained(DIR) loads it. split24 weights are exported at their full 24 bits.

${flagsHelp(EXPORT_FLAGS)}
`;

/** `kstar export`: returns the files written. */
export async function exportCommand(argv: string[], log: (line: string) => void): Promise<string[] | 'help'> {
  const v = parseCommandFlags(argv, EXPORT_FLAGS, 'kstar export');
  if (v.help) return 'help';
  if (typeof v.checkpoint !== 'string' || typeof v.out !== 'string') {
    throw new InputError('kstar export needs --checkpoint DIR and --out DIR', 'E_FLAG');
  }
  const dtype = (v.dtype ?? 'float32') as 'float32' | 'bfloat16';
  // Before the checkpoint is read and decoded: a directory that cannot be made or written is refused now.
  checkOutputPath(v.out, 'directory', '--out');
  const checkpoint = readCheckpoint(v.checkpoint, EVERY_RANK);
  await selectBackend('cpu', { log });
  const model = await modelFromCheckpoint(checkpoint);
  try {
    const weights = await float32Weights(model);
    mkdirSync(v.out, { recursive: true });
    const files = [join(v.out, 'model.safetensors'), join(v.out, 'config.json')];
    writeFileAtomic(files[0]!, encodeHfGpt2(model.config, weights, dtype));
    const config = {
      ...hfGpt2Config(model.config, dtype),
      kstar: {
        version: KSTAR_VERSION,
        checkpoint: checkpoint.dir,
        step: checkpoint.trainer.step,
        tokenizer: checkpoint.trainer.config.tokenizer,
      },
    };
    writeFileAtomic(files[1]!, `${JSON.stringify(config, null, 2)}\n`);
    return files;
  } finally {
    model.dispose();
  }
}
