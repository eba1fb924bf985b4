export declare const repoRoot: string;
/** Packs every public package into `dest`; returns the tarball paths by package name. */
export declare function packPackages(dest: string): Record<string, string>;
/** Workspace packages that are published (not `private`). */
export declare function publicPackageDirs(): string[];
