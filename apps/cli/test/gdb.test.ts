/**
 * Stock gdb against `vmmkit run --gdb`: the guest guests/gdb-target/gdb-target.elf carries
 * its labels as ELF symbols, so the expected addresses come from gdb reading the ELF, not
 * from vmmkit.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { guest, temporaryDirectory, vmmkit as runVmmkit } from "./helpers.js";
import { gdbAvailable, gdbSession } from "./gdb-session.js";

const image = guest("gdb-target/gdb-target.elf");
const session = (script: string, options: Parameters<typeof gdbSession>[2] = {}) => gdbSession(image, script, { symbols: image, ...options });

/** `label=value` pairs the scripts print with printf. */
function values(output: string, label: string): string[] {
  return [...output.matchAll(new RegExp(`^${label}=(\\S+)$`, "gm"))].map((match) => match[1]!);
}

describe.runIf(gdbAvailable || process.env.CI)("gdb against vmmkit run --gdb", () => {
  it("gdb is installed (CI must have it)", () => {
    expect(gdbAvailable).toBe(true);
  });

  it("stops at a breakpoint once per pass, before the instruction runs, and the guest finishes after delete", async () => {
    const { vmmkit, gdb } = await session(
      [
        "break *count_site",
        ...Array.from({ length: 5 }, () => ["continue", 'printf "pc_ok=%d\\n", $pc == &count_site', 'printf "counter=%d\\n", *(int*)&counter'].join("\n")),
        "delete",
        "continue",
      ].join("\n"),
    );
    expect(values(gdb, "pc_ok")).toEqual(["1", "1", "1", "1", "1"]);
    // The breakpoint is on the increment, so each stop sees the value before it.
    expect(values(gdb, "counter")).toEqual(["0", "1", "2", "3", "4"]);
    expect(gdb).toContain("exited with code 041"); // isa-debug-exit 0x10 → 33, in octal
    expect(vmmkit.stdout).toContain("gdb-target: 12345\nresult 4660\nint3 handled\n");
    expect(vmmkit.status).toBe(33);
  }, 60_000);

  it("single-steps a straight run of instructions exactly as the symbols say, without leaking TF", async () => {
    const steps = Array.from({ length: 8 }, (_, i) => ["stepi", `printf "step=%x/%x\\n", $pc, &trace_${i + 1}`].join("\n"));
    const { vmmkit, gdb } = await session(
      [
        "break *trace_start",
        "continue",
        "delete",
        ...steps.slice(0, 6),
        // After stepping PUSHFD the saved flags are the guest's: TF (bit 8) clear.
        'printf "pushed_tf=%d\\n", (*(unsigned int*)$sp >> 8) & 1',
        ...steps.slice(6),
        'printf "eflags_tf=%d\\n", ($eflags >> 8) & 1',
        'printf "eax=%d ebx=%d ecx=%d\\n", $eax, $ebx, $ecx',
        "continue",
      ].join("\n"),
    );
    const trace = values(gdb, "step");
    expect(trace).toHaveLength(8);
    for (const pair of trace) {
      const [actual, expected] = pair.split("/");
      expect(actual).toBe(expected);
    }
    expect(values(gdb, "pushed_tf")).toEqual(["0"]);
    expect(values(gdb, "eflags_tf")).toEqual(["0"]);
    // mov eax,1; add eax,2; push/pop → ebx=3; xchg → eax=3, ebx=3; lea ecx,[eax+ebx*2] = 9.
    expect(gdb).toMatch(/^eax=3 ebx=3 ecx=9$/m);
    expect(vmmkit.status).toBe(33);
  }, 60_000);

  it("shows registers and memory and lets gdb change them", async () => {
    const { vmmkit, gdb } = await session(
      [
        "break *report_site",
        "continue",
        "info registers eip eflags cs ss cr0",
        "x/16xb &trace_start",
        "set $eax = 100",
        "set var *(int*)&bonus = 5",
        'printf "eax=%d\\n", $eax',
        "delete",
        "continue",
      ].join("\n"),
    );
    expect(gdb).toMatch(/^eip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <report_site>/m);
    expect(gdb).toMatch(/^cs\s+0x8\s/m); // the multiboot loader's flat code segment
    expect(gdb).toMatch(/^ss\s+0x10\s/m);
    expect(gdb).toMatch(/^cr0\s+0x11\s/m); // PE and ET, paging off
    // The encodings of trace_start's instructions (Intel SDM): mov eax,1; add eax,2; push eax;
    // pop ebx; xchg eax,ebx; lea ecx,[eax+ebx*2]; pushfd; popfd.
    const dump = [...gdb.matchAll(/^0x[0-9a-f]+ <trace_\w+(?:\+\d+)?>:((?:\s+0x[0-9a-f]{2})+)$/gm)].map((match) => match[1]!.trim().split(/\s+/)).flat();
    expect(dump).toEqual(["0xb8", "0x01", "0x00", "0x00", "0x00", "0x83", "0xc0", "0x02", "0x50", "0x5b", "0x93", "0x8d", "0x0c", "0x58", "0x9c", "0x9d"]);
    expect(values(gdb, "eax")).toEqual(["100"]);
    expect(vmmkit.stdout).toContain("result 105\n");
    expect(vmmkit.status).toBe(33);
  }, 60_000);

  it("lets the guest's own INT3 reach the guest while gdb has breakpoints set, and reports nothing for it", async () => {
    const { vmmkit, gdb } = await session(["break *finish", "continue", 'printf "at_finish=%d\\n", $pc == &finish', 'printf "int3_count=%d\\n", *(int*)&int3_count', "delete", "continue"].join("\n"));
    expect(values(gdb, "at_finish")).toEqual(["1"]);
    expect(values(gdb, "int3_count")).toEqual(["1"]);
    expect(gdb).not.toContain("SIGTRAP");
    expect(vmmkit.stdout).toContain("result 4660\nint3 handled\n");
    expect(vmmkit.status).toBe(33);
  }, 60_000);

  it("hides inserted breakpoints from memory reads (always-inserted mode)", async () => {
    const { gdb, vmmkit } = await session(
      ["set breakpoint always-inserted on", "break *trace_1", "break *trace_start", "continue", "x/4xb &trace_1", "delete", "continue"].join("\n"),
    );
    expect(gdb).toMatch(/<trace_1>:\s+0x83\s+0xc0\s+0x02\s+0x50/);
    expect(vmmkit.stdout).toContain("result 4660\n");
    expect(vmmkit.status).toBe(33);
  }, 60_000);

  it("detaches: breakpoints leave guest memory and the guest finishes with its normal output", async () => {
    const { vmmkit, gdb } = await session(["set breakpoint always-inserted on", "break *count_site", "continue", "detach"].join("\n"));
    expect(gdb).toContain("[Inferior 1 (Remote target) detached]");
    expect(vmmkit.stdout).toContain("gdb-target: 12345\nresult 4660\nint3 handled\n");
    expect(vmmkit.status).toBe(33);
  }, 60_000);

  it("stops a spinning guest on Ctrl-C and lets it go on", async () => {
    const { vmmkit, gdb } = await session(
      [
        "break *watch_write",
        "continue",
        "set var *(int*)&spin = 1",
        "delete",
        'echo spinning\\n',
        "continue",
        'printf "in_spin=%d\\n", $pc >= &spin_loop && $pc < &report_site',
        "set var *(int*)&spin = 0",
        "continue",
      ].join("\n"),
      { onOutput: { text: "spinning", action: (process) => setTimeout(() => process.kill("SIGINT"), 500) } },
    );
    expect(gdb).toContain("received signal SIGINT");
    expect(values(gdb, "in_spin")).toEqual(["1"]);
    expect(vmmkit.stdout).toContain("result 4660\n");
    expect(vmmkit.status).toBe(33);
  }, 60_000);

  it("debugs two vCPUs as two threads, stopping each at a shared breakpoint exactly once per pass", async () => {
    const smp = guest("gdb-smp/gdb-smp.elf");
    const { vmmkit, gdb } = await gdbSession(
      smp,
      [
        "info threads",
        "break *smp_site",
        ...Array.from({ length: 8 }, () => ["continue", 'printf "stop=%d %d\\n", $ebx, ((int*)&counts)[$ebx]'].join("\n")),
        "thread 2",
        'printf "thread2_eip=%d\\n", $eip == &smp_site || $eip != 0',
        "thread 1",
        "delete",
        "continue",
      ].join("\n"),
      { symbols: smp, args: ["--smp", "2"] },
    );
    expect(gdb).toMatch(/\* 1\s+Thread 1 \(vCPU 0 at 0x8:0x100010\)/);
    expect(gdb).toMatch(/\s2\s+Thread 2 \(vCPU 1 at 0x8:0x100010\)/);
    const pairs = [...gdb.matchAll(/^stop=(\d) (\d+)$/gm)].map((match) => [Number(match[1]), Number(match[2])] as const);
    expect(pairs).toHaveLength(8);
    // Both vCPUs stop there, and each one's counter grows by exactly one between its stops.
    expect(new Set(pairs.map(([cpu]) => cpu))).toEqual(new Set([0, 1]));
    for (const cpu of [0, 1]) {
      const seen = pairs.filter(([id]) => id === cpu).map(([, count]) => count);
      expect(seen).toEqual(seen.map((_, i) => i));
    }
    expect(gdb).toMatch(/Switching to Thread 2/);
    expect(values(gdb, "thread2_eip")).toEqual(["1"]);
    expect(vmmkit.stdout).toContain("smp: 1000 1000\n");
    expect(vmmkit.status).toBe(33);
  }, 60_000);

  it("resets the machine with monitor reset: the guest starts again and prints its banner twice", async () => {
    const { vmmkit, gdb } = await session(
      ["break *trace_start", "continue", "monitor reset", "flushregs", 'printf "at_start=%d\\n", $pc == &_start', "delete", "continue"].join("\n"),
    );
    expect(gdb).toContain("machine reset: the image is loaded again");
    expect(values(gdb, "at_start")).toEqual(["1"]);
    // Up to trace_start the first time, then the whole run after the reset (the counter
    // variable is back at 0 because the image, data included, was loaded again).
    expect(vmmkit.stdout).toBe("gdb-target: 12345\ngdb-target: 12345\nresult 4660\nint3 handled\n");
    expect(vmmkit.status).toBe(33);
  }, 60_000);

  it("stops on a monitor break-mmio watching a RAM variable, after the write", async () => {
    const { vmmkit, gdb } = await session(
      ['eval "monitor break-mmio 0x%x 4 w", &watched', "continue", 'printf "after_write=%d\\n", $pc == &watch_read', "monitor breakpoints", "continue"].join("\n"),
    );
    expect(values(gdb, "after_write")).toEqual(["1"]);
    expect(gdb).toMatch(/MMIO 0x[0-9a-f]+\+4\s+enabled\s+hits 1/);
    expect(vmmkit.stdout).toContain("result 4660\nint3 handled\n");
    expect(vmmkit.status).toBe(33);
  }, 60_000);

  it("saves the held machine with monitor save, and vmmkit restore continues from that instruction", async () => {
    const state = join(temporaryDirectory(), "held.state");
    const { vmmkit, gdb } = await session(["break *report_site", "continue", "delete", `monitor save ${state}`, "kill"].join("\n"));
    expect(gdb).toMatch(/saved \d+ bytes to /);
    expect(vmmkit.stdout).toBe("gdb-target: 12345\n"); // killed at report_site
    const restored = await runVmmkit("restore", state);
    // From report_site on: the result line, then the INT3 part.
    expect(restored.stdout).toBe("result 4660\nint3 handled\n");
    expect(restored.status).toBe(33);
  }, 60_000);

  it("answers monitor commands: help, state, a port-I/O breakpoint with its hit count", async () => {
    const { vmmkit, gdb } = await session(
      ["monitor help", "monitor state", "monitor break-io 0xf4 w", "continue", 'printf "at_finish=%d\\n", $pc > &finish && $pc <= &finish + 4', "monitor breakpoints", "monitor frobnicate", "continue"].join("\n"),
    );
    expect(gdb).toContain("break-io PORT[-LAST] [r|w|rw]");
    expect(gdb).toMatch(/VM state: RUNNING\n\s+vCPU 0 at 0x8:0x100010, 0 instructions retired/);
    // The OUT to the debug-exit port stops the guest just after it (a trap, like a DR I/O breakpoint).
    expect(values(gdb, "at_finish")).toEqual(["1"]);
    expect(gdb).toMatch(/port I\/O 0xf4-0xf4\s+enabled\s+hits 1/);
    expect(gdb).toContain('unknown monitor command "frobnicate"');
    expect(vmmkit.status).toBe(33);
  }, 60_000);
});
