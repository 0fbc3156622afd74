/**
 * The benchmarks `vmmkit bench <name>` knows. Each lives in its own module in this folder,
 * measures through the packages' public APIs, and returns a BenchReport.
 */
import type { BenchReport } from "./report.js";

export interface BenchOptions {
  /** Fewer iterations: a smoke run for tests, not for numbers. */
  readonly quick: boolean;
}

export interface Benchmark {
  readonly name: string;
  readonly description: string;
  run(options: BenchOptions): Promise<BenchReport>;
}

const benchmarks = new Map<string, Benchmark>();

export function registerBenchmark(benchmark: Benchmark): void {
  if (benchmarks.has(benchmark.name)) throw new Error(`benchmark "${benchmark.name}" registered twice`);
  benchmarks.set(benchmark.name, benchmark);
}

export function listBenchmarks(): Benchmark[] {
  return [...benchmarks.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function findBenchmark(name: string): Benchmark | undefined {
  return benchmarks.get(name);
}
