/** Rank and size as an MPI launcher (Open MPI's `mpirun`, or a PMIx/PMI one) sets them in the environment. */
export interface LaunchInfo {
  readonly rank: number;
  readonly size: number;
  /** Which variables said so (for messages). */
  readonly source: string;
}

const SOURCES: ReadonlyArray<readonly [string, string, string]> = [
  ['Open MPI', 'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE'],
  ['PMIx', 'PMIX_RANK', 'PMI_SIZE'],
  ['PMI', 'PMI_RANK', 'PMI_SIZE'],
];

/** The launcher's rank and size, or null when this process was not started by an MPI launcher. */
export function launchInfo(env: NodeJS.ProcessEnv = process.env): LaunchInfo | null {
  for (const [source, rankVar, sizeVar] of SOURCES) {
    const rank = env[rankVar];
    const size = env[sizeVar];
    if (rank === undefined || size === undefined) continue;
    const r = Number(rank);
    const n = Number(size);
    if (Number.isInteger(r) && Number.isInteger(n) && n >= 1 && r >= 0 && r < n) {
      return { rank: r, size: n, source };
    }
  }
  return null;
}
