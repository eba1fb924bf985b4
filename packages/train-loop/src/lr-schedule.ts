/** Learning rate at `step` (1-based): linear warm-up over `warmup` steps, then cosine decay to 10% of `peak`. */
export function learningRateAt(step: number, total: number, peak: number, warmup: number): number {
  if (warmup > 0 && step <= warmup) return (peak * step) / warmup;
  const span = Math.max(1, total - warmup);
  const progress = Math.min(1, (step - warmup) / span);
  return peak * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
