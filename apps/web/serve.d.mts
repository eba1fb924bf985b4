/** Starts the server; returns its origin (`http://127.0.0.1:PORT`) and a function that stops it. */
export declare function servePage(): Promise<{ origin: string; close: () => void }>;
