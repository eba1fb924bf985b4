export declare const EXAMPLES_DIR: string;
/** The README files of the repository (tracked or new, not ignored). */
export declare function readmeFiles(root: string): string[];
/** The fenced ts/js blocks of one Markdown text: their first line (1-based), code and `not run` reason. */
export declare function codeBlocks(markdown: string): { line: number; code: string; notRun?: string }[];
/** What a README shows of an example file: its `// #region readme` part, else the whole file. */
export declare function shownPart(source: string): string;
/** The example files (paths relative to the root) and what READMEs must show of each. */
export declare function exampleFiles(root: string): { path: string; shown: string }[];
/** Problems, one line each; empty when every block is an example or says why it is not run. */
export declare function checkReadmes(root: string, readmes?: string[]): string[];
