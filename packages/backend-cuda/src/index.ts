export { CudaBackend, type CudaData } from './backend.ts';
export { CudaDevice, CudaError } from './device.ts';
export { CUDA_KERNEL_NAMES, cudaKernelSources, registerCudaKernels } from './kernels.ts';
export {
  batchMatMul,
  type CudaMatmulPrecision,
  gemmPlan,
  matmulPrecision,
  setMatmulPrecision,
  toBf16Source,
} from './matmul.ts';
export { GPT2_GEMMS, type MatmulSpeedRow, matmulSpeed } from './matmul-speed.ts';
export {
  INSTALL_HINTS,
  LIBRARY_CANDIDATES,
  loadCudaLibraries,
  openFirst,
  unavailableError,
} from './native.ts';
export { type ParityCase, type ParityResult, parityCases, runParity } from './parity.ts';
export { matmulPrecisionErrors, type PrecisionErrorRow } from './precision-error.ts';
export { type ProfileRow, profileRows } from './profile.ts';
export { CUDA_BACKEND_NAME, registerCudaBackend, startCudaBackend } from './register.ts';
export { broadcastStrides, collapseDims, elementwiseLayout, reductionPermutation } from './shape.ts';
export { elementwiseSource, fixedSources, MAX_RANK } from './sources.ts';
export {
  type PinnedAllocator,
  type PinnedBlock,
  PinnedStagingPool,
  readStaged,
  STAGING_ALIGN,
  type StagedRead,
  type StagingDevice,
  stagingLayout,
} from './staged-read.ts';
