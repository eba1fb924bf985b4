import { expect, it } from 'vitest';
import { createTokenizer, textStreamer } from '../src/index.ts';

it('textStreamer writes whole characters as byte tokens arrive, and all of the text by the end', () => {
  const tok = createTokenizer('byte');
  const text = 'a é 漢!';
  const pieces: string[] = [];
  const stream = textStreamer(tok, (s) => pieces.push(s));
  for (const id of tok.encode(text)) stream.push(id);
  stream.end();
  expect(pieces.join('')).toBe(text);
  expect(pieces.some((p) => p.includes('\uFFFD'))).toBe(false);
  // A cut character is written at the end as the decoder reads it.
  const cut: string[] = [];
  const partial = textStreamer(tok, (s) => cut.push(s));
  for (const id of tok.encode('é').slice(0, 1)) partial.push(id);
  expect(cut).toEqual([]);
  partial.end();
  expect(cut).toEqual([tok.decode(tok.encode('é').slice(0, 1))]);
});
