import { InputError } from '@kstar/core';
import { describe, expect, it } from 'vitest';
import { createTokenizer } from '../src/index.ts';

describe('byte tokenizer', () => {
  const tok = createTokenizer('byte');

  it('is the default and encodes UTF-8 bytes', () => {
    expect(createTokenizer().name).toBe('byte');
    expect(tok.vocabSize).toBe(256);
    expect(Array.from(tok.encode('Hi é'))).toEqual([72, 105, 32, 0xc3, 0xa9]);
    expect(tok.encode('')).toHaveLength(0);
  });

  it('round-trips multibyte text exactly', () => {
    const text = 'naïve café — 日本語 😀 \n\t"quotes"';
    const ids = tok.encode(text);
    expect(ids).toBeInstanceOf(Int32Array);
    expect(ids.length).toBe(Buffer.byteLength(text, 'utf8'));
    expect(tok.decode(ids)).toBe(text);
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([65, 256])).toThrow(InputError);
    expect(() => tok.decode([-1])).toThrow(/outside/);
  });
});

describe('gpt2 tokenizer', () => {
  const tok = createTokenizer('gpt2');

  it('has the GPT-2 vocabulary and known encodings', () => {
    expect(tok.name).toBe('gpt2');
    expect(tok.vocabSize).toBe(50257);
    expect(Array.from(tok.encode('Hello world'))).toEqual([15496, 995]);
    expect(tok.decode([50256])).toBe('<|endoftext|>');
  });

  it('round-trips text, including special-token text as plain text', () => {
    const text = "The Fulton County Grand Jury said Friday. 日本 😀\n<|endoftext|> isn't special";
    const ids = tok.encode(text);
    expect(ids).toBeInstanceOf(Int32Array);
    expect(ids.length).toBeLessThan(text.length);
    expect(Array.from(ids)).not.toContain(50256);
    expect(tok.decode(ids)).toBe(text);
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([50257])).toThrow(InputError);
  });
});

describe('createTokenizer', () => {
  it('rejects unknown names with the list of known ones', () => {
    expect(() => createTokenizer('bpe')).toThrow(InputError);
    expect(() => createTokenizer('bpe')).toThrow("unknown tokenizer 'bpe': use one of byte, gpt2");
  });
});
