/**
 * gdb's hardware breakpoints and watchpoints against `vmmkit run --gdb`: Z1-Z4 become dbgf
 * breakpoints in the four debug-register slots, which the CPU checks.
 */
import { describe, expect, it } from "vitest";
import { guest } from "./helpers.js";
import { gdbAvailable, gdbSession } from "./gdb-session.js";

const image = guest("gdb-target/gdb-target.elf");
const session = (script: string) => gdbSession(image, script, { symbols: image });

function values(output: string, label: string): string[] {
  return [...output.matchAll(new RegExp(`^${label}=(\\S+)$`, "gm"))].map((match) => match[1]!);
}

describe.runIf(gdbAvailable || process.env.CI)("gdb hardware breakpoints and watchpoints", () => {
  it("stops at hbreak, watch and rwatch through the debug registers, after the access for data", async () => {
    const { vmmkit, gdb } = await session(
      [
        "hbreak *trace_3",
        "continue",
        'printf "hbreak_pc=%d\\n", $pc == &trace_3',
        "delete",
        "watch *(int*)&watched",
        "continue",
        'printf "watch_pc=%d\\n", $pc == &watch_read',
        "delete",
        "rwatch *(int*)&watched",
        "continue",
        'printf "rwatch_pc=%d\\n", $pc == &store_result',
        "delete",
        "continue",
      ].join("\n"),
    );
    expect(values(gdb, "hbreak_pc")).toEqual(["1"]);
    expect(gdb).toMatch(/Hardware watchpoint 2: \*\(int\*\)&watched\s+Old value = 0\s+New value = 4660/);
    expect(values(gdb, "watch_pc")).toEqual(["1"]);
    expect(gdb).toMatch(/Hardware read watchpoint 3: \*\(int\*\)&watched\s+Value = 4660/);
    expect(values(gdb, "rwatch_pc")).toEqual(["1"]);
    expect(vmmkit.stdout).toContain("result 4660\n");
    expect(vmmkit.status).toBe(33);
  }, 60_000);

  it("stops at an awatch on the write and again on the read", async () => {
    const { vmmkit, gdb } = await session(
      [
        "awatch *(int*)&watched",
        "continue",
        'printf "first=%d\\n", $pc == &watch_read',
        "continue",
        'printf "second=%d\\n", $pc == &store_result',
        "delete",
        "continue",
      ].join("\n"),
    );
    expect(values(gdb, "first")).toEqual(["1"]);
    expect(values(gdb, "second")).toEqual(["1"]);
    expect(gdb).toMatch(/Hardware access \(read\/write\) watchpoint 1: \*\(int\*\)&watched\s+Old value = 0\s+New value = 4660/);
    expect(vmmkit.status).toBe(33);
  }, 60_000);

});
