export { BENCH_USAGE, benchJsonPath, runBench } from './cli.ts';
export { BENCHMARKS, type BenchIO, type Benchmark } from './registry.ts';
