import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  crc32,
  createRamUnit,
  isSavedStateError,
  MemorySink,
  memorySource,
  parseSavedState,
  RuntimeErrorFlags,
  type SavedStateUnit,
  Vm,
  type VmSubsystem,
  VmState,
} from "@vmmkit/vm";
import { type Exit, expectVmError, FakeEngine, makeVm, rejection, resumeAll, settle } from "./helpers.js";

const S = VmState;
const encoder = new TextEncoder();

/** A unit holding a value; records every load so a test can prove none happened. */
function valueUnit(name: string, initial: Uint8Array, version = 1) {
  const unit = {
    name,
    version,
    value: initial,
    loads: 0,
    preps: 0,
    save: () => unit.value.slice(),
    loadPrep: () => {
      unit.preps++;
    },
    load: (payload: Uint8Array) => {
      unit.loads++;
      unit.value = payload.slice();
    },
  };
  return unit;
}

function makeMachine(options: { ramBytes?: number; configuration?: string; cpuCount?: number } = {}) {
  const recorded = makeVm({ cpuCount: options.cpuCount ?? 1, configuration: options.configuration ?? "mem=64K" });
  const ram = new Uint8Array(options.ramBytes ?? 64 * 1024);
  const ramUnit = createRamUnit({ bytes: ram });
  const registers = valueUnit("cpu", encoder.encode("eax=1 ebx=2"));
  recorded.vm.registerUnit(ramUnit);
  recorded.vm.registerUnit(registers);
  return { ...recorded, ram, registers };
}

async function saveSuspended(vm: Vm<Exit>): Promise<Uint8Array> {
  const sink = new MemorySink();
  await vm.save({ sink });
  return sink.bytes();
}

describe("crc32", () => {
  it("matches the standard check values", () => {
    expect(crc32(encoder.encode("123456789"))).toBe(0xcbf43926); // the CRC-32/ISO-HDLC check value
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(encoder.encode("The quick brown fox jumps over the lazy dog"))).toBe(0x414fa339);
    // Incremental over two pieces equals one pass.
    const bytes = encoder.encode("123456789");
    expect(crc32(bytes, crc32(bytes, 0, 0, 4), 4)).toBe(0xcbf43926);
  });
});

describe("save and load through the VM (spec §5.5-5.6)", { timeout: 10_000 }, () => {
  it("a suspended VM saves Suspended → Saving → Suspended and a fresh VM loads it Created → Loading → Suspended", async () => {
    const source = makeMachine();
    source.ram.set([1, 2, 3], 0x1000);
    source.ram[0xffff] = 0x5a;
    source.vm.forceState(S.Suspended);
    const progress: number[] = [];
    const sink = new MemorySink();
    await expect(source.vm.save({ sink, onProgress: (p) => progress.push(p) })).resolves.toEqual({ status: "ok", suspendedByUs: false });
    expect(source.transitions).toEqual([
      [S.Suspended, S.Saving],
      [S.Saving, S.Suspended],
    ]);
    expect(progress.at(-1)).toBe(100);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);

    const target = makeMachine();
    const loadProgress: number[] = [];
    await target.vm.load({ source: memorySource(sink.bytes()), onProgress: (p) => loadProgress.push(p) });
    expect(target.transitions).toEqual([
      [S.Created, S.Loading],
      [S.Loading, S.Suspended],
    ]);
    expect(target.ram).toEqual(source.ram);
    expect(new TextDecoder().decode(target.registers.value)).toBe("eax=1 ebx=2");
    expect(loadProgress.at(-1)).toBe(100);
    // criterion 50: after a load, power on is refused and resume runs the VM.
    expectVmError(await rejection(target.vm.powerOn()), "InvalidVmState");
    await target.vm.resume("state-restored");
    expect(target.vm.state).toBe(S.Running);
    await target.vm.powerOff();
  });

  it("load from Suspended replaces the state (criterion 51); from Running it is refused (52)", async () => {
    const a = makeMachine();
    a.ram[5] = 9;
    a.vm.forceState(S.Suspended);
    const image = await saveSuspended(a.vm);
    const b = makeMachine();
    b.vm.forceState(S.Suspended);
    b.ram[7] = 1;
    await b.vm.load({ source: memorySource(image) });
    expect([b.ram[5], b.ram[7], b.vm.state]).toEqual([9, 0, S.Suspended]);
    b.vm.forceState(S.Running);
    expectVmError(await rejection(b.vm.load({ source: memorySource(image) })), "InvalidVmState");
  });

  it("an idle 64 MiB guest saves to far less than 64 MiB", async () => {
    const machine = makeMachine({ ramBytes: 64 * 1024 * 1024, configuration: "mem=64M" });
    machine.ram.set(encoder.encode("a boot sector and a little code"), 0x7c00);
    machine.ram.fill(0x90, 0x100000, 0x100000 + 3 * 4096); // three pages of a kernel
    machine.vm.forceState(S.Suspended);
    const image = await saveSuspended(machine.vm);
    expect(image.length).toBeLessThan(5 * 4096 + 1024);
    const target = makeMachine({ ramBytes: 64 * 1024 * 1024, configuration: "mem=64M" });
    target.ram.fill(0xff); // loading must zero what the file does not store
    await target.vm.load({ source: memorySource(image) });
    expect(target.ram.every((byte, i) => byte === machine.ram[i])).toBe(true);
  });

  it("save needs a sink; not from Created, Off or LoadFailure; not from a vCPU", async () => {
    const { vm } = makeMachine();
    expectVmError(await rejection(vm.save({} as never)), "InvalidPointer");
    expectVmError(await rejection(vm.save({ sink: new MemorySink(), onProgress: 5 as never })), "InvalidPointer");
    for (const state of [S.Created, S.Off, S.LoadFailure, S.RunningLS]) {
      vm.forceState(state);
      expectVmError(await rejection(vm.save({ sink: new MemorySink() })), "InvalidVmState");
      expect(vm.state).toBe(state);
    }
    vm.forceState(S.Suspended);
    const error = await vm.request(0, () => rejection(vm.save({ sink: new MemorySink() })));
    expectVmError(error, "CalledOnVcpu");
    expectVmError(await rejection(vm.load({ source: {} as never })), "InvalidPointer");
  });

  it("a unit failing in save leaves the VM Suspended with that error (criterion 31)", async () => {
    const { vm } = makeVm();
    const problem = new Error("device busy");
    vm.registerUnit({ name: "bad", version: 1, save: () => Promise.reject(problem), load: () => {} });
    vm.forceState(S.Suspended);
    await expect(vm.save({ sink: new MemorySink() })).rejects.toBe(problem);
    expect(vm.state).toBe(S.Suspended);
  });

  it("a unit failing in load leaves LoadFailure with one generic report; only power off follows (criteria 53-54)", async () => {
    const source = makeVm();
    source.vm.registerUnit(valueUnit("dev", new Uint8Array([1])));
    source.vm.forceState(S.Suspended);
    const image = await saveSuspended(source.vm);
    const target = makeVm();
    const problem = new Error("register out of range");
    target.vm.registerUnit({
      name: "dev",
      version: 1,
      save: () => new Uint8Array(),
      load: () => {
        throw problem;
      },
    });
    await expect(target.vm.load({ source: memorySource(image), teleporting: true })).rejects.toBe(problem);
    expect(target.vm.state).toBe(S.LoadFailure);
    expect(target.vm.teleportedAndNotFullyResumedYet()).toBe(false);
    expect(target.errors.map(([code]) => code)).toEqual(["LoadFailed"]);
    expect(target.errors[0]![2]).toContain("should be discarded");
    for (const attempt of [target.vm.resume(), target.vm.reset(), target.vm.load({ source: memorySource(image) })]) {
      expectVmError(await rejection(attempt), "InvalidVmState");
    }
    await target.vm.powerOff();
    await target.vm.destroy();
    expect(target.vm.state).toBe(S.Terminated);
  });

  it("load runs the subsystems' relocate(0) while Loading; a unit may accept older versions; maxBytes limits the input", async () => {
    const source = makeVm();
    source.vm.registerUnit(valueUnit("dev", new Uint8Array([1, 2])));
    source.vm.forceState(S.Suspended);
    const image = await saveSuspended(source.vm);
    const log: string[] = [];
    let vmRef!: Vm<Exit>;
    const target = makeVm({ subsystems: [{ name: "pgm", relocate: (delta) => log.push(`relocate ${delta} in ${vmRef.state}`) }] });
    vmRef = target.vm;
    target.vm.registerUnit({
      name: "dev",
      version: 2,
      acceptsVersion: (version) => version === 1 || version === 2,
      save: () => new Uint8Array(),
      load: (payload, version, pass) => log.push(`load v${version} pass ${pass === 0xffffffff ? "final" : pass} [${[...payload]}]`),
    });
    expect(await rejection(target.vm.load({ source: memorySource(image), maxBytes: image.length - 1 }))).toMatchObject({ name: "SavedStateError" });
    expect(log).toEqual([]);
    await target.vm.load({ source: memorySource(image), maxBytes: image.length });
    expect(log).toEqual(["load v1 pass final [1,2]", "relocate 0 in LOADING"]);
  });

  it("registerUnit refuses malformed units and duplicates", () => {
    const { vm } = makeVm();
    const good: SavedStateUnit = { name: "a", version: 1, save: () => new Uint8Array(), load: () => {} };
    vm.registerUnit(good);
    expectVmError(
      (() => {
        try {
          vm.registerUnit({ ...good });
        } catch (error) {
          return error;
        }
      })(),
      "InvalidParameter",
    );
    vm.registerUnit({ ...good, instance: 1 });
    for (const bad of [{ ...good, name: "" }, { ...good, name: "ü" }, { ...good, version: 0 }, { ...good, instance: -1 }, { name: "x", version: 1 }]) {
      let error: unknown;
      try {
        vm.registerUnit(bad as SavedStateUnit);
      } catch (caught) {
        error = caught;
      }
      expect(isSavedStateError(error) && error.code).toBe("InvalidUnit");
    }
  });
});

describe("a bad saved state changes nothing", { timeout: 30_000 }, () => {
  async function image(): Promise<Uint8Array> {
    const machine = makeMachine({ ramBytes: 16 * 1024 });
    machine.ram.fill(0x11, 4096, 4096 + 100);
    machine.vm.forceState(S.Suspended);
    return saveSuspended(machine.vm);
  }

  /** Loads `bytes` into a fresh machine; expects a SavedStateError and no change at all. */
  async function expectRefused(target: ReturnType<typeof makeMachine>, bytes: Uint8Array): Promise<string> {
    const before = target.ram.slice();
    const errorsBefore = target.errors.length;
    const error = await rejection(target.vm.load({ source: memorySource(bytes) }));
    expect(isSavedStateError(error), `not a SavedStateError: ${String(error)}`).toBe(true);
    expect(target.vm.state).toBe(S.Created);
    expect(target.transitions).toEqual([]);
    expect(target.registers.loads + target.registers.preps).toBe(0);
    expect(crc32(target.ram)).toBe(crc32(before)); // (toEqual on 16 KiB is too slow for thousands of runs)
    expect(target.errors.length).toBe(errorsBefore + 1);
    return (error as { code: string }).code;
  }

  it("every truncation length is refused", async () => {
    const bytes = await image();
    const target = makeMachine({ ramBytes: 16 * 1024 });
    target.ram.fill(0xee);
    const codes = new Set<string>();
    for (let length = 0; length < bytes.length; length++) codes.add(await expectRefused(target, bytes.subarray(0, length)));
    expect([...codes]).toEqual(["Truncated"]);
    // and the untruncated image loads
    await target.vm.load({ source: memorySource(bytes) });
    expect(target.ram[4096]).toBe(0x11);
  });

  it("single-bit flips are refused: every bit of the header and trailer, and a sample of the rest", async () => {
    const bytes = await image();
    const target = makeMachine({ ramBytes: 16 * 1024 });
    const positions = new Set<number>();
    for (let i = 0; i < 80; i++) positions.add(i);
    for (let i = bytes.length - 20; i < bytes.length; i++) positions.add(i);
    let seed = 12345;
    while (positions.size < 400) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      positions.add(seed % bytes.length);
    }
    const codes = new Set<string>();
    for (const position of positions) {
      for (const bit of position < 80 || position >= bytes.length - 20 ? [0, 1, 2, 3, 4, 5, 6, 7] : [(position * 7) % 8]) {
        const corrupt = bytes.slice();
        corrupt[position]! ^= 1 << bit;
        codes.add(await expectRefused(target, corrupt));
      }
    }
    expect(codes).toContain("SectionChecksum");
    expect(codes).toContain("HeaderChecksum");
    expect(codes).toContain("BadMagic");
    expect(codes).toContain("FileChecksum");
  });

  it("names the section and offset of a corrupt section", async () => {
    const bytes = await image();
    const parsed = parseSavedState(bytes);
    const cpu = parsed.sections.find((section) => section.unit === "cpu")!;
    const corrupt = bytes.slice();
    corrupt[cpu.offset + 24 + 2]! ^= 0x80; // inside the payload ("cpu" header: 4 + 1 + 3 + 16 bytes)
    const error = await rejection(makeMachine({ ramBytes: 16 * 1024 }).vm.load({ source: memorySource(corrupt) }));
    expect(error).toMatchObject({ name: "SavedStateError", code: "SectionChecksum", section: "cpu", offset: cpu.offset });
    expect((error as Error).message).toContain(`offset ${cpu.offset}`);
  });

  it.each([
    ["an unknown unit", () => makeMachine({ ramBytes: 16 * 1024 }), (m: ReturnType<typeof makeMachine>) => m, "MissingUnit"],
    ["a unit the file lacks", () => makeMachine({ ramBytes: 16 * 1024 }), (m: ReturnType<typeof makeMachine>) => (m.vm.registerUnit(valueUnit("extra", new Uint8Array())), m), "MissingUnit"],
    ["another RAM size", () => makeMachine({ ramBytes: 32 * 1024 }), (m: ReturnType<typeof makeMachine>) => m, "UnitRejected"],
    ["another configuration", () => makeMachine({ ramBytes: 16 * 1024, configuration: "mem=16K serial=2" }), (m: ReturnType<typeof makeMachine>) => m, "ConfigurationMismatch"],
    ["another CPU count", () => makeMachine({ ramBytes: 16 * 1024, cpuCount: 2 }), (m: ReturnType<typeof makeMachine>) => m, "ConfigurationMismatch"],
  ] as const)("a file for %s is refused", async (_what, build, adjust, code) => {
    const bytes = await image();
    const target = adjust(build());
    if (_what === "an unknown unit") {
      // A target without the cpu unit: the file's cpu section has no unit.
      const bare = makeVm({ configuration: "mem=64K" });
      bare.vm.registerUnit(createRamUnit({ bytes: new Uint8Array(16 * 1024) }));
      const error = await rejection(bare.vm.load({ source: memorySource(bytes) }));
      expect(error).toMatchObject({ code: "UnknownUnit", section: "cpu" });
      expect(bare.vm.state).toBe(S.Created);
      return;
    }
    expect(await expectRefused(target, bytes)).toBe(code);
  });

  it("a unit version the target does not accept, and trailing bytes, are refused", async () => {
    const bytes = await image();
    const target = makeMachine({ ramBytes: 16 * 1024 });
    const newer = makeVm({ configuration: "mem=64K" });
    newer.vm.registerUnit(createRamUnit({ bytes: new Uint8Array(16 * 1024) }));
    const cpu2 = valueUnit("cpu", new Uint8Array(), 2);
    newer.vm.registerUnit(cpu2);
    expect(await rejection(newer.vm.load({ source: memorySource(bytes) }))).toMatchObject({ code: "UnsupportedUnitVersion", section: "cpu" });
    expect(cpu2.loads).toBe(0);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(await expectRefused(target, longer)).toBe("TrailingData");
  });
});

describe("round trips (property)", { timeout: 30_000 }, () => {
  it("any set of units and payloads loads back exactly", async () => {
    const unitArb = fc.record({
      name: fc.stringMatching(/^[a-z][a-z0-9.-]{0,20}$/),
      instance: fc.nat({ max: 3 }),
      version: fc.integer({ min: 1, max: 0xffffffff }),
      payload: fc.uint8Array({ maxLength: 300 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(unitArb, { selector: (u) => `${u.name}#${u.instance}`, maxLength: 6 }), fc.string({ maxLength: 30 }), async (specs, configuration) => {
        const build = () => {
          const vm = new Vm<Exit>({ cpuCount: 1, engine: new FakeEngine(), handleExit: resumeAll, configuration });
          const loaded = new Map<string, Uint8Array>();
          for (const spec of specs) {
            vm.registerUnit({
              name: spec.name,
              instance: spec.instance,
              version: spec.version,
              save: () => spec.payload,
              load: (payload, version) => {
                expect(version).toBe(spec.version);
                loaded.set(`${spec.name}#${spec.instance}`, payload.slice());
              },
            });
          }
          return { vm, loaded };
        };
        const source = build();
        source.vm.forceState(S.Suspended);
        const sink = new MemorySink();
        await source.vm.save({ sink });
        const target = build();
        await target.vm.load({ source: memorySource(sink.bytes()) });
        for (const spec of specs) expect(target.loaded.get(`${spec.name}#${spec.instance}`)).toEqual(spec.payload);
      }),
      { numRuns: 60 },
    );
  });

  it("RAM with arbitrary page contents (zero pages included) loads back exactly", async () => {
    const pages = 8;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ at: fc.nat({ max: pages * 256 - 1 }), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 40 }), async (writes) => {
        const source = makeVm();
        const ram = new Uint8Array(pages * 256);
        for (const { at, value } of writes) ram[at] = value;
        source.vm.registerUnit(createRamUnit({ bytes: ram, pageSize: 256 }));
        source.vm.forceState(S.Suspended);
        const image = await saveSuspended(source.vm);
        const target = makeVm();
        const restored = new Uint8Array(pages * 256).fill(0xaa);
        target.vm.registerUnit(createRamUnit({ bytes: restored, pageSize: 256 }));
        await target.vm.load({ source: memorySource(image) });
        expect(restored).toEqual(ram);
      }),
      { numRuns: 60 },
    );
  });
});

describe("live save (spec §5.5, criteria 32-47)", { timeout: 10_000 }, () => {
  /**
   * A running machine whose guest writes a counter into RAM at every io exit, and a unit
   * that can act during the first live pass.
   */
  async function runningMachine(onFirstPass?: (vm: Vm<Exit>) => void, subsystems: VmSubsystem[] = []) {
    const ram = new Uint8Array(8 * 4096);
    let counter = 0;
    const engine = new FakeEngine([], true);
    const recorded = makeVm({
      engine,
      subsystems,
      handleExit: () => {
        counter++;
        new DataView(ram.buffer).setUint32(4096 * (counter % 8), counter, true);
        return "resume";
      },
    });
    const { vm } = recorded;
    vm.registerUnit(createRamUnit({ bytes: ram, liveDoneThreshold: 0 }));
    const passes: number[] = [];
    vm.registerUnit({
      name: "probe",
      version: 1,
      liveSave: (pass) => {
        passes.push(pass);
        if (pass === 0) onFirstPass?.(vm);
        return { data: new Uint8Array([pass]), done: false };
      },
      save: () => new Uint8Array([0xff]),
      load: () => {},
    });
    await vm.powerOn();
    await settle();
    return { ...recorded, ram, passes, counter: () => counter };
  }

  it("from Running: RunningLS, the guest runs between passes, then suspended for the final pass; the image is the RAM at the end", async () => {
    const machine = await runningMachine();
    const progress: number[] = [];
    const sink = new MemorySink();
    const before = machine.counter();
    const result = await machine.vm.save({ sink, onProgress: (p) => progress.push(p), maxLivePasses: 4 });
    expect(result).toEqual({ status: "ok", suspendedByUs: true });
    expect(machine.vm.state).toBe(S.Suspended);
    expect(machine.transitions.slice(2)).toEqual([
      [S.Running, S.RunningLS],
      [S.RunningLS, S.SuspendingLS],
      [S.SuspendingLS, S.SuspendedLS],
      [S.SuspendedLS, S.Saving],
      [S.Saving, S.Suspended],
    ]);
    expect(machine.passes).toEqual([0, 1, 2, 3]);
    expect(machine.counter()).toBeGreaterThan(before); // the guest ran during the live passes
    expect(progress.at(-1)).toBe(100);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    // Not resumed automatically; the saved RAM equals the RAM at suspension.
    const target = makeVm();
    const ram = new Uint8Array(8 * 4096);
    target.vm.registerUnit(createRamUnit({ bytes: ram }));
    target.vm.registerUnit({ name: "probe", version: 1, save: () => new Uint8Array(), load: () => {} });
    await target.vm.load({ source: memorySource(sink.bytes()) });
    expect(ram).toEqual(machine.ram);
    expect(parseSavedState(sink.bytes()).header.live).toBe(true);
    await machine.vm.powerOff();
  });

  it("an external suspend during step 1 ends Suspended with live-save-suspended-externally (criterion 35)", async () => {
    const suspends: string[] = [];
    const machine = await runningMachine((vm) => void vm.suspend("user"), [{ name: "devices", suspend: () => suspends.push("suspend") }]);
    machine.vm.registerUnit({ name: "nothing", version: 1, save: () => new Uint8Array(), load: () => {} });
    const result = await machine.vm.save({ sink: new MemorySink(), maxLivePasses: 3 });
    expect(result).toEqual({ status: "live-save-suspended-externally", suspendedByUs: false });
    expect(machine.vm.state).toBe(S.Suspended);
    expect(machine.transitions.map(([, to]) => to)).toContain(S.SuspendedExtLS);
    expect(suspends).toEqual(["suspend"]); // from the external suspend only, none from the final suspend
  });

  it("a power off during step 1 gives LiveSavePoweredOff and ends Off; destroy then works (criterion 39)", async () => {
    const machine = await runningMachine((vm) => void vm.powerOff());
    expectVmError(await rejection(machine.vm.save({ sink: new MemorySink(), maxLivePasses: 3 })), "LiveSavePoweredOff");
    expect(machine.vm.state).toBe(S.Off);
    await machine.vm.destroy();
  });

  it("a hard reset during step 1: the save completes, suspended by us (criterion 36)", async () => {
    const machine = await runningMachine((vm) => void vm.reset());
    await expect(machine.vm.save({ sink: new MemorySink(), maxLivePasses: 3 })).resolves.toEqual({ status: "ok", suspendedByUs: true });
    expect(machine.vm.state).toBe(S.Suspended);
    expect(machine.vm.hardResetCount).toBe(1);
    await machine.vm.powerOff();
  });

  it("guru meditation and a fatal error during step 1 (criteria 40-41)", async () => {
    const guru = await runningMachine((vm) => vm.enterGuruMeditation());
    expectVmError(await rejection(guru.vm.save({ sink: new MemorySink(), maxLivePasses: 3 })), "LiveSaveGuruMeditation");
    expect(guru.vm.state).toBe(S.GuruMeditation);
    const fatal = await runningMachine((vm) => void vm.setRuntimeError(RuntimeErrorFlags.fatal, "X", "x"));
    expectVmError(await rejection(fatal.vm.save({ sink: new MemorySink(), maxLivePasses: 3 })), "LiveSaveFatalError");
    expect(fatal.vm.state).toBe(S.FatalError);
  });

  it("a progress callback that throws cancels a live save back to Running (criterion 45)", async () => {
    const machine = await runningMachine();
    const veto = new Error("user pressed cancel");
    await expect(
      machine.vm.save({
        sink: new MemorySink(),
        onProgress: (p) => {
          if (p >= 10) throw veto;
        },
      }),
    ).rejects.toBe(veto);
    expect(machine.vm.state).toBe(S.Running);
    const runs = machine.engine.runs.length;
    await settle();
    expect(machine.engine.runs.length).toBeGreaterThan(runs); // the guest runs on
    await machine.vm.powerOff();
  });

  it("a second save while RunningLS is refused (criterion 34); teleport sets the flag that resume clears (47)", async () => {
    const machine = await runningMachine((vm) => {
      void vm.save({ sink: new MemorySink() }).then(
        () => undefined,
        (error: unknown) => second.push((error as { code: string }).code),
      );
    });
    const second: string[] = [];
    await machine.vm.save({ sink: new MemorySink(), teleport: true, maxLivePasses: 2 });
    expect(second).toEqual(["InvalidVmState"]);
    expect(machine.vm.teleportedAndNotFullyResumedYet()).toBe(true);
    await machine.vm.resume();
    expect(machine.vm.teleportedAndNotFullyResumedYet()).toBe(false);
    await machine.vm.powerOff();
  });

  it("a debugger stop during step 1 is waited out; the save completes after the debugger continues (criterion 38)", async () => {
    const machine = await runningMachine((vm) => {
      vm.requestTransition("dbgf", [[S.RunningLS, S.DebuggingLS]]);
      setTimeout(() => vm.requestTransition("dbgf", [[S.DebuggingLS, S.RunningLS]]), 300);
    });
    await expect(machine.vm.save({ sink: new MemorySink(), maxLivePasses: 1 })).resolves.toEqual({ status: "ok", suspendedByUs: true });
    expect(machine.transitions.map(([, to]) => to).slice(3)).toEqual([S.DebuggingLS, S.RunningLS, S.SuspendingLS, S.SuspendedLS, S.Saving, S.Suspended]);
    await machine.vm.powerOff();
  });

  it("a live pass that fails puts the VM back to Running with that error (criterion 42)", async () => {
    const problem = new Error("disk full");
    const machine = await runningMachine(() => {
      throw problem;
    });
    await expect(machine.vm.save({ sink: new MemorySink() })).rejects.toBe(problem);
    expect(machine.vm.state).toBe(S.Running);
    expect(machine.transitions.slice(-2)).toEqual([
      [S.Running, S.RunningLS],
      [S.RunningLS, S.Running],
    ]);
    await machine.vm.powerOff();
  });

  it("teleport from Suspended passes through Saving and reports live-save-suspended-externally (criterion 48)", async () => {
    const { vm, transitions } = makeVm();
    vm.registerUnit(valueUnit("dev", new Uint8Array([7])));
    vm.forceState(S.Suspended);
    const sink = new MemorySink();
    await expect(vm.save({ sink, teleport: true })).resolves.toEqual({ status: "live-save-suspended-externally", suspendedByUs: false });
    expect(transitions).toEqual([
      [S.Suspended, S.Saving],
      [S.Saving, S.Suspended],
    ]);
    expect(parseSavedState(sink.bytes()).header.teleport).toBe(true);
    const target = makeVm();
    const dev = valueUnit("dev", new Uint8Array());
    target.vm.registerUnit(dev);
    await target.vm.load({ source: memorySource(sink.bytes()), teleporting: true });
    expect(target.vm.teleportedAndNotFullyResumedYet()).toBe(true);
    expect([...dev.value]).toEqual([7]);
  });
});

describe("a restored guest continues exactly where it stopped", { timeout: 20_000 }, () => {
  /**
   * A deterministic stand-in guest: each run "executes" one step of a program that keeps a
   * counter in a register and a running sum in RAM, and exits with the value to print. Its
   * whole state is the register file (a "cpu" unit) and RAM (the RAM unit).
   */
  function guestMachine(stopAfter: number) {
    const registers = new Uint32Array(2); // [counter, steps]
    const ram = new Uint8Array(4 * 4096);
    const sums = new DataView(ram.buffer);
    const output: number[] = [];
    const engine = {
      runVcpu: () => {
        registers[0] = (registers[0]! * 1103515245 + 12345) >>> 0;
        registers[1]!++;
        const page = registers[0]! % 4;
        sums.setUint32(page * 4096, (sums.getUint32(page * 4096, true) + registers[0]!) >>> 0, true);
        return Promise.resolve({ exitReason: "io" as const, tag: String(sums.getUint32(page * 4096, true)) });
      },
      cancelVcpu: () => {},
    };
    let vmRef!: Vm<Exit>;
    const vm = new Vm<Exit>({
      cpuCount: 1,
      engine,
      configuration: "guest v1",
      handleExit: (exit) => {
        output.push(Number(exit.tag));
        if (registers[1]! >= stopAfter) return "powerOff";
        if (registers[1] === stopAt.value) void vmRef.suspend();
        return "resume";
      },
    });
    vmRef = vm;
    const stopAt = { value: -1 };
    vm.registerUnit(createRamUnit({ bytes: ram }));
    vm.registerUnit({
      name: "cpu",
      version: 1,
      save: () => new Uint8Array(registers.buffer.slice(0)),
      check: (payload) => {
        if (payload.length !== 8) throw new Error(`register file of ${payload.length} bytes`);
      },
      load: (payload) => registers.set(new Uint32Array(payload.slice().buffer)),
    });
    return { vm, output, stopAt };
  }

  const TOTAL = 60;

  async function uninterrupted(): Promise<number[]> {
    const { vm, output } = guestMachine(TOTAL);
    await vm.powerOn();
    await vm.whenStopped();
    return output;
  }

  it.each([1, 7, 30, 59])("suspended and saved after step %i", async (n) => {
    const expected = await uninterrupted();
    const source = guestMachine(TOTAL);
    source.stopAt.value = n;
    await source.vm.powerOn();
    while (source.vm.state !== S.Suspended) await settle();
    const sink = new MemorySink();
    await source.vm.save({ sink });
    await source.vm.powerOff();
    const target = guestMachine(TOTAL);
    await target.vm.load({ source: memorySource(sink.bytes()) });
    await target.vm.resume("state-restored");
    await target.vm.whenStopped();
    expect([...source.output, ...target.output]).toEqual(expected);
  });

  it("saved live while running", async () => {
    const expected = await uninterrupted();
    const source = guestMachine(TOTAL);
    await source.vm.powerOn();
    const sink = new MemorySink();
    const result = await source.vm.save({ sink, maxLivePasses: 2 });
    expect(result.suspendedByUs).toBe(true);
    const stoppedAt = source.output.length;
    expect(stoppedAt).toBeGreaterThan(0);
    expect(stoppedAt).toBeLessThan(TOTAL);
    const target = guestMachine(TOTAL);
    await target.vm.load({ source: memorySource(sink.bytes()) });
    await target.vm.resume("state-restored");
    await target.vm.whenStopped();
    expect([...source.output, ...target.output]).toEqual(expected);
    await source.vm.powerOff();
  });
});

describe("saveHeld: a save while the host holds every vCPU (a debugger stop)", () => {
  it("writes a state a fresh VM loads, without any state change", async () => {
    const source = makeMachine();
    source.ram.set([7, 8, 9], 0x2000);
    source.vm.forceState(S.Running);
    const sink = new MemorySink();
    await source.vm.saveHeld({ sink });
    expect(source.transitions).toEqual([]);
    expect(source.vm.state).toBe(S.Running);
    const target = makeMachine();
    await target.vm.load({ source: memorySource(sink.bytes()) });
    expect(target.ram).toEqual(source.ram);
    expect(target.vm.state).toBe(S.Suspended);
  });

  it("is refused outside Running and Suspended, and without a sink", async () => {
    const machine = makeMachine();
    expectVmError(await rejection(machine.vm.saveHeld({ sink: new MemorySink() })), "InvalidVmState"); // Created
    machine.vm.forceState(S.Running);
    expectVmError(await rejection(machine.vm.saveHeld({ sink: null as never })), "InvalidPointer");
  });
});
