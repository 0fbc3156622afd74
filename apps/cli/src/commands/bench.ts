/** `vmmkit bench [name] [--json] [--quick]`. */
import type { Command } from "commander";
import { CliError } from "../cli-error.js";
import "../bench/all.js";
import { findBenchmark, listBenchmarks } from "../bench/registry.js";
import { benchEnvironment, renderJson, renderTable } from "../bench/report.js";
import type { CliIo } from "../cli.js";

export function registerBenchCommand(program: Command, io: CliIo): void {
  program
    .command("bench")
    .description("Run a benchmark and print a table, or with --json one JSON object. Without a name, list the benchmarks.")
    .argument("[name]", "which benchmark")
    .option("--json", "print one JSON object instead of the table")
    .option("--quick", "a short smoke run (numbers not meaningful)")
    .action(async (name: string | undefined, options: { json?: boolean; quick?: boolean }) => {
      if (name === undefined) {
        for (const benchmark of listBenchmarks()) io.stdout.write(`${benchmark.name.padEnd(10)} ${benchmark.description}\n`);
        return;
      }
      const benchmark = findBenchmark(name);
      if (!benchmark) {
        const known = listBenchmarks().map((b) => b.name).join(", ");
        throw new CliError(`no benchmark named "${name}" (known: ${known || "none"})`);
      }
      const report = await benchmark.run({ quick: options.quick === true });
      const environment = benchEnvironment();
      io.stdout.write(options.json ? renderJson(report, environment) : renderTable(report, environment));
    });
}
