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
  expect(example.deviceRegister).toBe(0x12345678);
  expect(example.mmioRead).toBe(0x12345678);
  expect(example.word).toBe(0xbeef);
  expect(example.monitorCalls).toBe(2);
  expect(example.dirtyPages).toBe(0b1010);
  expect(example.arenaByte).toBe(0xbe);
  expect(example.romByte).toBe(0xea);
  expect(example.unassigned).toBe(0xffffffff);
  expect(example.consistency).toEqual([]);
});

it("exports exactly the documented names", async () => {
  const exports = Object.keys(await import("../src/index.js")).sort();
  expect(exports).toEqual([
    "AccessOrigin",
    "AccessResult",
    "AccessType",
    "FaultResult",
    "HandlerKind",
    "HandlerTypeFlags",
    "MAX_PHYSICAL_ADDRESS",
    "NIL_ADDRESS",
    "NIL_HANDLER_TYPE",
    "PAGE_SIZE",
    "PageAllocState",
    "PageHandlerState",
    "PageProtection",
    "PageType",
    "PgmError",
    "PhysicalMemory",
    "isPgmError",
  ]);
});
