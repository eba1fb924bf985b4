/** Segments of `blocksPerSegment` blocks; the embedding and the head are segments of their own. */
export function segmentPlan(nLayer: number, blocksPerSegment: number): number[][] {
  const segments: number[][] = [[0]];
  for (let b = 0; b < nLayer; b += blocksPerSegment) {
    const seg: number[] = [];
    for (let k = b; k < Math.min(nLayer, b + blocksPerSegment); k++) seg.push(1 + k);
    segments.push(seg);
  }
  segments.push([nLayer + 1]);
  return segments;
}
