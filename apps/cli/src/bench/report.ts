/**
 * The shape every `vmmkit bench …` result takes, and its two renderings: a human table and
 * one JSON object. Performance claims are ratios against a baseline measured in the same
 * run, so a report carries its baselines next to its measurements.
 */
import { cpus, totalmem } from "node:os";

export interface Measurement {
  /** What was measured, e.g. "read 4 bytes, 10 000 handlers". */
  readonly name: string;
  readonly value: number;
  /** "ns/op", "MIPS", "ops/s", "s", "bytes"… */
  readonly unit: string;
  /** Relative margin of error (percent) when the value comes from repeated samples. */
  readonly errorPercent?: number;
  readonly samples?: number;
}

export interface Ratio {
  readonly name: string;
  /** value = numerator / denominator, both names of measurements in this report. */
  readonly numerator: string;
  readonly denominator: string;
  readonly value: number;
  /** A stated goal ("≥ 0.95", "≤ 2"), for the reader; never asserted. */
  readonly target?: string;
}

export interface BenchReport {
  readonly benchmark: string;
  readonly measurements: readonly Measurement[];
  readonly ratios: readonly Ratio[];
  readonly notes: readonly string[];
}

export interface BenchEnvironment {
  readonly date: string;
  readonly node: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
}

export function benchEnvironment(): BenchEnvironment {
  const processors = cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpu: processors[0]?.model.trim() ?? "unknown",
    cores: processors.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
}

/** Builds a ratio entry from two measurements of the same report. */
export function ratio(measurements: readonly Measurement[], name: string, numerator: string, denominator: string, target?: string): Ratio {
  const top = measurements.find((m) => m.name === numerator);
  const bottom = measurements.find((m) => m.name === denominator);
  if (!top || !bottom) throw new Error(`ratio "${name}": no measurement named "${top ? denominator : numerator}"`);
  return { name, numerator, denominator, value: top.value / bottom.value, ...(target ? { target } : {}) };
}

const format = (value: number) => (Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 1 ? value.toFixed(2) : value.toPrecision(3));

/** The human table. */
export function renderTable(report: BenchReport, environment: BenchEnvironment): string {
  const lines: string[] = [];
  lines.push(`vmmkit bench ${report.benchmark} — ${environment.date}, Node ${environment.node}, ${environment.cores} × ${environment.cpu}`);
  lines.push("");
  const nameWidth = Math.max(11, ...report.measurements.map((m) => m.name.length), ...report.ratios.map((r) => r.name.length));
  lines.push(`${"measurement".padEnd(nameWidth)}  ${"value".padStart(12)}  unit`);
  for (const m of report.measurements) {
    const error = m.errorPercent !== undefined ? `  ±${m.errorPercent.toFixed(1)}%` : "";
    lines.push(`${m.name.padEnd(nameWidth)}  ${format(m.value).padStart(12)}  ${m.unit}${error}`);
  }
  if (report.ratios.length > 0) {
    lines.push("");
    lines.push(`${"ratio".padEnd(nameWidth)}  ${"value".padStart(12)}  target`);
    for (const r of report.ratios) lines.push(`${r.name.padEnd(nameWidth)}  ${format(r.value).padStart(12)}  ${r.target ?? ""}`);
  }
  for (const note of report.notes) lines.push(`note: ${note}`);
  return lines.join("\n") + "\n";
}

/** The JSON rendering: one object, environment included. */
export function renderJson(report: BenchReport, environment: BenchEnvironment): string {
  return JSON.stringify({ ...report, environment }) + "\n";
}
