/**
 * CUDA source of a warp and a block reduction: `warp<Op>(v)` combines a warp's 32 values by shuffles, `block<Op>(v)`
 * a whole block's (every thread gets the result; safe to call repeatedly: the first barrier guards the shared slots'
 * reuse). `combine(a, b)` is the C expression of two values, `identity` the value lanes beyond the block's warps
 * contribute. One pattern for the fused kernels' float sums and maxima, the factored moments' float64 sums and the
 * 8-bit quantizers' NaN-propagating absmax.
 */
export function blockReduceSource(
  op: string,
  type: 'float' | 'double',
  combine: (a: string, b: string) => string,
  identity: string,
): string {
  return `__device__ __forceinline__ ${type} warp${op}(${type} v) {
  for (int o = 16; o > 0; o >>= 1) v = ${combine('v', '__shfl_xor_sync(0xffffffffu, v, o)')};
  return v;
}
__device__ ${type} block${op}(${type} v) {
  __shared__ ${type} sh[32];
  v = warp${op}(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  v = (threadIdx.x & 31) < ((blockDim.x + 31) >> 5) ? sh[threadIdx.x & 31] : ${identity};
  return warp${op}(v);
}
`;
}
