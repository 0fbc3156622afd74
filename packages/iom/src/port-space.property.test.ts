import fc from "fast-check";
import { expect, it } from "vitest";
import { isIomError, PortSpace, type PortDevice } from "./index.js";

interface ModelRange {
  readonly port: number;
  readonly count: number;
  readonly device: PortDevice;
  readonly id: number;
}

/** Which device was asked for which offset, in order. */
let reads: [id: number, offset: number][] = [];

function deviceFor(id: number): PortDevice {
  return {
    readPort(offset) {
      reads.push([id, offset]);
      return offset;
    },
  };
}

// Two crowded windows, one at each end of the port space, so attempts overlap often and
// some run past 0xFFFF.
const WINDOWS = [0, 0xffc0];
const WINDOW_SIZE = 0x40;
const startPort = fc.tuple(fc.constantFrom(...WINDOWS), fc.nat(WINDOW_SIZE - 1)).map(([base, offset]) => base + offset);
const operation = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("register" as const), port: startPort, count: fc.integer({ min: 1, max: 12 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deregister" as const), pick: fc.nat(), port: startPort }) },
);

it("never lets registered ranges overlap, and each registered port dispatches to its own device", () => {
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 80 }), (operations) => {
      const ports = new PortSpace();
      let model: ModelRange[] = [];
      let nextId = 1;
      reads = [];

      for (const op of operations) {
        if (op.kind === "register") {
          const last = op.port + op.count - 1;
          const device = deviceFor(nextId);
          const expected =
            last > 0xffff
              ? "ERR_IOM_INVALID_RANGE"
              : model.some((r) => op.port <= r.port + r.count - 1 && last >= r.port)
                ? "ERR_IOM_RANGE_OVERLAP"
                : "ok";
          let outcome = "ok";
          try {
            ports.register({ port: op.port, count: op.count, owner: `device ${nextId}`, device });
          } catch (error) {
            if (!isIomError(error)) throw error;
            outcome = error.code;
          }
          expect(outcome).toBe(expected);
          if (outcome === "ok") model.push({ port: op.port, count: op.count, device, id: nextId });
          nextId++;
        } else {
          // Half the time a registered range's first port, otherwise any port (usually not a start).
          const target = model.length > 0 && op.pick % 2 === 0 ? model[op.pick % model.length]!.port : op.port;
          const owned = model.find((r) => r.port === target);
          if (owned) {
            expect(ports.deregister(target).device).toBe(owned.device);
            model = model.filter((r) => r !== owned);
          } else {
            expect(() => ports.deregister(target)).toThrow(expect.objectContaining({ code: "ERR_IOM_NOT_FOUND" }));
          }
        }
      }

      // Every port of both windows: owned by the model's range (or none), dispatching to it.
      let unassigned = 0;
      for (const base of WINDOWS) {
        for (let port = base; port < Math.min(base + WINDOW_SIZE + 12, 0x10000); port++) {
          const owner = model.find((r) => port >= r.port && port < r.port + r.count);
          expect(ports.rangeAt(port)?.device).toBe(owner?.device);
          const value = ports.read(port, 1);
          if (owner) {
            expect(reads).toEqual([[owner.id, port - owner.port]]);
            expect(value).toBe(port - owner.port);
          } else {
            expect(reads).toEqual([]);
            expect(value).toBe(0xff);
            unassigned++;
          }
          reads = [];
        }
      }
      expect(ports.unassignedReads).toBe(unassigned);
    }),
  );
});

it("reads and writes of any width equal byte-by-byte accesses, whatever the ranges and their widths", () => {
  // Every device is a bank of byte registers, so however the bus splits an access the
  // result must equal the same access done one port at a time.
  const WINDOW = 12;
  const rangeArbitrary = fc.record({
    port: fc.nat(WINDOW - 1),
    count: fc.integer({ min: 1, max: 6 }),
    maxAccessSize: fc.constantFrom(1 as const, 2 as const, 4 as const),
  });
  const accessArbitrary = fc.record({
    write: fc.boolean(),
    port: fc.nat(WINDOW + 2),
    size: fc.constantFrom(1 as const, 2 as const, 4 as const),
    value: fc.nat(0xffffffff),
  });
  fc.assert(
    fc.property(fc.array(rangeArbitrary, { maxLength: 8 }), fc.array(accessArbitrary, { maxLength: 60 }), (ranges, accesses) => {
      const ports = new PortSpace();
      const registers = new Uint8Array(0x40);
      const assigned = new Uint8Array(0x40);
      for (const r of ranges) {
        const base = r.port;
        const device: PortDevice = {
          readPort(offset, size) {
            let value = 0;
            for (let i = 0; i < size; i++) value |= registers[base + offset + i]! << (8 * i);
            return value >>> 0;
          },
          writePort(offset, value, size) {
            for (let i = 0; i < size; i++) registers[base + offset + i] = value >>> (8 * i);
          },
        };
        try {
          ports.register({ port: r.port, count: r.count, owner: `at ${r.port}`, device, maxAccessSize: r.maxAccessSize });
          assigned.fill(1, r.port, r.port + r.count);
        } catch (error) {
          if (!isIomError(error)) throw error;
        }
      }
      const model = new Uint8Array(0x40);
      for (const a of accesses) {
        if (a.write) {
          ports.write(a.port, a.value, a.size);
          for (let i = 0; i < a.size; i++) if (assigned[a.port + i]) model[a.port + i] = a.value >>> (8 * i);
        } else {
          let expected = 0;
          for (let i = 0; i < a.size; i++) expected |= (assigned[a.port + i] ? model[a.port + i]! : 0xff) << (8 * i);
          expect(ports.read(a.port, a.size)).toBe(expected >>> 0);
        }
      }
      expect([...registers]).toEqual([...model]);
    }),
    { numRuns: 300 },
  );
});
