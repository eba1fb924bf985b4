import { createRequire } from 'node:module';
import { InputError } from '@kstar/core';

/** Names of the built-in tokenizers. */
export type TokenizerName = 'byte' | 'gpt2';

/** All built-in tokenizer names; the first is the default. */
export const TOKENIZER_NAMES: readonly TokenizerName[] = ['byte', 'gpt2'];

/** Text ↔ token ids. `encode` then `decode` returns the original text. */
export interface Tokenizer {
  readonly name: TokenizerName;
  /** Ids are in [0, vocabSize). */
  readonly vocabSize: number;
  encode(text: string): Int32Array;
  /** Throws `InputError` for an id outside [0, vocabSize) or not an integer. */
  decode(ids: ArrayLike<number>): string;
}

function checkIds(ids: ArrayLike<number>, vocabSize: number, name: string): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new InputError(
        `token id ${String(id)} at position ${i} is outside the ${name} tokenizer's vocabulary [0, ${vocabSize}): decode ids produced by the same tokenizer`,
        'E_TOKEN_ID',
      );
    }
  }
}

/** UTF-8 bytes, one token per byte (vocab 256). Exact round trip for any string of well-formed UTF-16. */
export class ByteTokenizer implements Tokenizer {
  readonly name = 'byte' as const;
  readonly vocabSize = 256;
  private readonly enc = new TextEncoder();

  encode(text: string): Int32Array {
    return Int32Array.from(this.enc.encode(text));
  }

  /** Byte sequences that are not valid UTF-8 (a window cut mid-character) decode to U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    checkIds(ids, this.vocabSize, this.name);
    return new TextDecoder('utf-8').decode(Uint8Array.from(ids));
  }
}

interface GptEncodingApi {
  encode(text: string, options?: { disallowedSpecial?: Set<string> }): number[];
  decode(ids: Iterable<number>): string;
  vocabularySize: number;
}

let gpt2Api: GptEncodingApi | undefined;
function loadGpt2(): GptEncodingApi {
  // Loaded on first use: the merge table is a few MB and most runs use the byte tokenizer.
  gpt2Api ??= createRequire(import.meta.url)('gpt-tokenizer/encoding/r50k_base') as GptEncodingApi;
  return gpt2Api;
}

/**
 * GPT-2 byte-level BPE (`r50k_base` from the `gpt-tokenizer` package, vocab 50257). Special-token text such
 * as `<|endoftext|>` in a corpus is encoded as ordinary text, never as the special token.
 */
export class Gpt2Tokenizer implements Tokenizer {
  readonly name = 'gpt2' as const;
  readonly vocabSize: number;
  private readonly api: GptEncodingApi;

  constructor() {
    this.api = loadGpt2();
    this.vocabSize = this.api.vocabularySize;
  }

  encode(text: string): Int32Array {
    return Int32Array.from(this.api.encode(text, { disallowedSpecial: new Set() }));
  }

  /** Ids that end mid-character decode without that partial character. */
  decode(ids: ArrayLike<number>): string {
    checkIds(ids, this.vocabSize, this.name);
    return this.api.decode(Array.from(ids));
  }
}

/** Build a tokenizer by name (`byte` is the default). Throws `InputError` for an unknown name. */
export function createTokenizer(name: string = 'byte'): Tokenizer {
  switch (name) {
    case 'byte':
      return new ByteTokenizer();
    case 'gpt2':
      return new Gpt2Tokenizer();
    default:
      throw new InputError(
        `unknown tokenizer '${name}': use one of ${TOKENIZER_NAMES.join(', ')}`,
        'E_TOKENIZER',
      );
  }
}
