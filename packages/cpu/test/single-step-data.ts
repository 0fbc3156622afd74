/** Locates and reads the SingleStepTests data in ../shared (outside the repository). */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import type { ConformanceModel, SingleStepTest } from "../src/conformance.js";

const here = dirname(fileURLToPath(import.meta.url));
export const SHARED_CPU_DATA = resolve(here, "../../../../shared/testdata/cpu");

export const SUITE_FOLDERS: Record<ConformanceModel, string> = {
  "8086": "8086/v1",
  "80286": "80286/v1_real_mode",
};

export function suiteFolder(model: ConformanceModel): string {
  return join(SHARED_CPU_DATA, SUITE_FOLDERS[model]);
}

export function dataAvailable(): boolean {
  return existsSync(suiteFolder("8086")) && existsSync(suiteFolder("80286"));
}

export function suiteFiles(model: ConformanceModel): string[] {
  return readdirSync(suiteFolder(model)).filter((name) => name.endsWith(".json.gz")).sort();
}

export function readSuiteFile(model: ConformanceModel, file: string): SingleStepTest[] {
  return JSON.parse(gunzipSync(readFileSync(join(suiteFolder(model), file))).toString("utf8"));
}

interface OpcodeInfo {
  readonly "flags-mask"?: number;
  readonly reg?: Record<string, { readonly "flags-mask"?: number }>;
}

export function flagsMaskFor(model: ConformanceModel, file: string): number {
  const metadata = JSON.parse(readFileSync(join(suiteFolder(model), "metadata.json"), "utf8")) as {
    opcodes: Record<string, OpcodeInfo>;
  };
  const [opcode, reg] = file.replace(".json.gz", "").split(".");
  const info = metadata.opcodes[opcode!];
  const entry = reg !== undefined ? info?.reg?.[reg] : info;
  return entry?.["flags-mask"] ?? 0xffff;
}
