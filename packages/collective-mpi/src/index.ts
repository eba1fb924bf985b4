export type { LaunchInfo } from './launcher.ts';
export { launchInfo } from './launcher.ts';
export type { LibMpi } from './libmpi.ts';
export { INSTALL_HINT, loadLibMpi } from './libmpi.ts';
export { localCollective } from './local-collective.ts';
export type { MpiCollective, MpiCollectiveOptions } from './mpi-collective.ts';
export { mpiCollective } from './mpi-collective.ts';
export type { OpenedCollective } from './open.ts';
export { openCollective } from './open.ts';
