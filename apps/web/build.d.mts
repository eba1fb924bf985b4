export declare const distDir: string;
/** Bundles the page into dist/ (main.js, the tfjs-backend-wasm .wasm files, index.html). */
export declare function buildPage(): Promise<void>;
