/**
 * Timing helpers over tinybench. Tinybench times each call of a task; for nanosecond-scale
 * operations a task performs `operationsPerCall` of them so per-call overhead vanishes,
 * and the result is divided back to ns per operation.
 */
import { Bench } from "tinybench";
import type { BenchOptions } from "./registry.js";
import type { Measurement } from "./report.js";

export interface TimedOperation {
  readonly name: string;
  /** Performs `operationsPerCall` operations. */
  readonly run: () => void;
  readonly operationsPerCall: number;
}

/**
 * Times several operations in one tinybench run (interleaved warm-up, same conditions)
 * and returns ns per operation with the relative margin of error.
 */
export async function timeOperations(operations: readonly TimedOperation[], options: BenchOptions): Promise<Measurement[]> {
  const bench = new Bench({ time: options.quick ? 20 : 400, warmupTime: options.quick ? 5 : 100 });
  for (const operation of operations) bench.add(operation.name, operation.run);
  await bench.run();
  return operations.map((operation) => {
    const task = bench.getTask(operation.name);
    const result = task?.result;
    if (!result || (result.state !== "completed" && result.state !== "aborted-with-statistics")) {
      throw new Error(`benchmark task "${operation.name}" did not complete (${result?.state ?? "no result"})`);
    }
    return {
      name: operation.name,
      value: (result.latency.mean * 1e6) / operation.operationsPerCall,
      unit: "ns/op",
      errorPercent: result.latency.rme,
      samples: result.latency.samplesCount,
    };
  });
}
