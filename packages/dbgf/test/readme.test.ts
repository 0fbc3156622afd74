import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { expectReadmeShowsExample } from "../../../scripts/test-support/readme.js";

const packageDirectory = join(dirname(fileURLToPath(import.meta.url)), "..");

it("shows examples/usage.ts in the README", () => {
  expectReadmeShowsExample(packageDirectory);
});

it("runs the README example with the results its comments state", async () => {
  const example = await import("../examples/usage.js");
  expect(example.patched).toBe(0xcc);
  expect(example.counterResult).toBe("resume");
  expect(example.hits).toBe(1);
  expect(example.executedAt).toEqual([0x7c00n]);
  expect(example.stopResult).toBe("halt");
  expect(example.event).toEqual({ kind: "breakpoint", cpuId: 0, handle: example.stop });
  expect(example.shown).toEqual([0xb0, 0x41, 0xe6, 0xe9, 0xf4]);
  expect(example.outResult).toBe("halt");
  expect(example.dr7).toBe(0x000d2702);
  expect(example.restored).toBe(0xb0);
});

it("exports exactly the documented names", async () => {
  const api = await import("@vmmkit/dbgf");
  expect(Object.keys(api).sort()).toEqual(
    [
      "BreakpointFlags",
      "DEBUG_EVENT_TYPE_COUNT",
      "DR7_FIXED",
      "DbgfError",
      "DebugEventType",
      "Debugger",
      "GdbServer",
      "HARDWARE_SLOT_COUNT",
      "HardwareAccess",
      "I386_REGISTERS",
      "IoAccess",
      "NIL",
      "RspDecoder",
      "SYSTEM_REGISTER_NAMES",
      "U64_MAX",
      "encodePacket",
      "exceptionEvent",
      "guestInstructionBreakpoint",
      "guestIoBreakpoint",
      "guestIoBreakpointBits",
      "i386TargetXml",
      "isDbgfError",
    ].sort(),
  );
});
