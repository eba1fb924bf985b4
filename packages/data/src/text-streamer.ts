import type { Tokenizer } from './tokenizer.ts';

/**
 * Decoded text as token ids arrive (generation): each `push` writes the text the new id completes, holding back a
 * trailing partial UTF-8 character (U+FFFD) until a later id finishes it; `end` writes what is left.
 */
export function textStreamer(tokenizer: Tokenizer, write: (s: string) => void) {
  const ids: number[] = [];
  let printed = 0;
  return {
    push(id: number) {
      ids.push(id);
      const text = tokenizer.decode(ids);
      if (text.endsWith('\uFFFD')) return;
      write(text.slice(printed));
      printed = text.length;
    },
    end() {
      const text = tokenizer.decode(ids);
      if (text.length > printed) write(text.slice(printed));
    },
  };
}
