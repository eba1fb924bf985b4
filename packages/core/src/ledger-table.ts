import type { MemoryReport } from './ledger.ts';

/** Bytes in binary units: `1536` → `1.50 KiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 2)} ${units[u]}`;
}

/** WebGPU's buffer-pool high-water marks over a run (the trainer's report `gpu`), when there are any. */
export interface GpuPeaks {
  peakBytesInUse: number;
  peakBytesAllocated: number;
}

/**
 * The memory ledger as a text table: every measured term, the predicted step peak and its error, and the predicted
 * terms. The `kstar` CLI prints it after training and the browser page (apps/web) shows it for its run.
 */
export function ledgerTable(memory: MemoryReport, params: number, gpu?: GpuPeaks): string {
  const rows: Array<[string, number | undefined, string]> = [
    ['parameters', memory.paramBytes, 'measured'],
    ['gradients (peak alive)', memory.gradBytes, 'measured'],
    ['optimizer state', memory.optimizerStateBytes, 'measured'],
    ['activations + temporaries (peak)', memory.activationPeakBytes, 'measured'],
    ['step peak', memory.peakBytes, 'measured'],
    ['predicted step peak', memory.predictedPeakBytes, 'predicted'],
  ];
  if (memory.gpuBytesInUse !== undefined) rows.push(['GPU bytes in use', memory.gpuBytesInUse, 'backend']);
  if (memory.gpuBytesAllocated !== undefined)
    rows.push(['GPU bytes allocated (pool)', memory.gpuBytesAllocated, 'backend']);
  if (gpu) {
    rows.push(['GPU bytes in use (run peak)', gpu.peakBytesInUse, 'backend']);
    rows.push(['GPU bytes allocated (run peak)', gpu.peakBytesAllocated, 'backend']);
  }
  const lines = [
    'memory ledger (unique data buffers)',
    `${'term'.padEnd(34)}${'bytes'.padStart(16)}${'human'.padStart(12)}${'B/param'.padStart(10)}  source`,
  ];
  for (const [name, bytes, source] of rows) {
    if (bytes === undefined) continue;
    lines.push(
      `${name.padEnd(34)}${bytes.toLocaleString('en-US').padStart(16)}${formatBytes(bytes).padStart(12)}${(bytes / params).toFixed(2).padStart(10)}  ${source}`,
    );
  }
  const err = memory.peakBytes > 0 ? (memory.predictedPeakBytes / memory.peakBytes - 1) * 100 : 0;
  lines.push(`prediction vs measured peak: ${err >= 0 ? '+' : ''}${err.toFixed(1)}%`);
  for (const [name, bytes] of Object.entries(memory.predicted)) {
    lines.push(`  predicted ${name.padEnd(30)}${bytes.toLocaleString('en-US').padStart(16)}`);
  }
  return lines.join('\n');
}
