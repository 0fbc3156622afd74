import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Debugger,
  GdbServer,
  I386_REGISTERS,
  RspDecoder,
  encodePacket,
  type GdbRegisterName,
  type GdbResumeAction,
  type GdbStop,
  type GdbTarget,
  type RspInput,
} from "@vmmkit/dbgf";
import { FakeHost } from "./fake-host.js";

/** A two-vCPU target over FakeHost's memory, recording what the server asks. */
class FakeTarget implements GdbTarget {
  readonly cpuCount = 2;
  readonly registers = [new Map<GdbRegisterName, number>(), new Map<GdbRegisterName, number>()];
  readonly resumes: GdbResumeAction[][] = [];
  interrupts = 0;
  detached = 0;
  killed = 0;
  readonly monitorHelp = ["state     machine state"];

  constructor(readonly host: FakeHost) {
    this.registers[0]!.set("eip", 0x1000);
    this.registers[0]!.set("eax", 0x11223344);
    this.registers[1]!.set("eip", 0x2000);
  }

  readRegister(cpu: number, name: GdbRegisterName): number {
    return this.registers[cpu]!.get(name) ?? 0;
  }

  writeRegister(cpu: number, name: GdbRegisterName, value: number): void {
    if (name === "cs") throw new Error("cs is read-only here");
    this.registers[cpu]!.set(name, value);
  }

  readMemory(cpu: number, address: number, length: number): Uint8Array {
    return this.host.readLinear(cpu, BigInt(address), length);
  }

  writeMemory(_cpu: number, address: number, bytes: Uint8Array): void {
    if (address + bytes.length > this.host.memory.length) throw new Error("outside RAM");
    this.host.memory.set(bytes, address);
  }

  resume(actions: readonly GdbResumeAction[]): void {
    this.resumes.push([...actions]);
  }

  interrupt(): void {
    this.interrupts++;
  }

  detach(): void {
    this.detached++;
  }

  kill(): void {
    this.killed++;
  }

  describeThread(cpu: number): string {
    return `vCPU ${cpu} idle`;
  }

  monitor(command: string, print: (text: string) => void): boolean | Promise<boolean> {
    if (command === "state") {
      print("running fine\n");
      return true;
    }
    if (command === "slow") return Promise.resolve(true);
    return false;
  }
}

function latin1(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}

function packet(payload: string): Uint8Array {
  return encodePacket(payload);
}

/** A server with a fake target and a decoder of its output into replies. */
function setUp() {
  const host = new FakeHost(2);
  const dbg = new Debugger(host);
  const target = new FakeTarget(host);
  const output: string[] = [];
  const server = new GdbServer({ target, debugger: dbg, send: (bytes) => output.push(latin1(bytes)) });
  const replies = (): string[] => {
    const decoder = new RspDecoder(1 << 20);
    const found: string[] = [];
    decoder.push(
      Uint8Array.from(output.join(""), (char) => char.charCodeAt(0)),
      (input: RspInput) => {
        if (input.kind === "packet") found.push(input.payload);
      },
    );
    return found;
  };
  const ask = (payload: string): string => {
    output.length = 0;
    server.receive(packet(payload));
    const all = replies();
    return all[all.length - 1] ?? "<none>";
  };
  return { host, dbg, target, server, output, replies, ask };
}

function decodeHex(hex: string): string {
  let text = "";
  for (let i = 0; i < hex.length; i += 2) text += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  return text;
}

describe("RSP framing", () => {
  it("decodes packets split at every byte boundary, acks, nacks and Ctrl-C", () => {
    const stream = new Uint8Array([0x2b, ...packet("qSupported:swbreak+"), 0x03, 0x2d, ...packet("g")]);
    for (let split = 0; split <= stream.length; split++) {
      const decoder = new RspDecoder(4096);
      const seen: RspInput[] = [];
      decoder.push(stream.subarray(0, split), (input) => seen.push(input));
      decoder.push(stream.subarray(split), (input) => seen.push(input));
      expect(seen).toEqual([
        { kind: "ack" },
        { kind: "packet", payload: "qSupported:swbreak+" },
        { kind: "interrupt" },
        { kind: "nack" },
        { kind: "packet", payload: "g" },
      ]);
    }
  });

  it("computes the modulo-256 checksum gdb expects", () => {
    // "$OK#9a" is the canonical example of the protocol documentation.
    expect(latin1(encodePacket("OK"))).toBe("$OK#9a");
    expect(latin1(encodePacket(""))).toBe("$#00");
  });

  it("reports bad checksums and oversized packets instead of passing them on", () => {
    const decoder = new RspDecoder(8);
    const seen: RspInput[] = [];
    const bytes = (text: string) => Uint8Array.from(text, (char) => char.charCodeAt(0));
    decoder.push(bytes("$OK#00$OK#zz$0123456789#00"), (input) => seen.push(input));
    expect(seen).toEqual([
      { kind: "bad-checksum", payload: "OK" },
      { kind: "bad-checksum", payload: "OK" },
      { kind: "oversized", length: 10 },
    ]);
  });
});

describe("GdbServer", () => {
  it("acknowledges packets and advertises its features", () => {
    const { server, output, ask } = setUp();
    const supported = ask("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386");
    expect(output[0]).toBe("+");
    expect(supported.split(";")).toEqual(
      expect.arrayContaining(["PacketSize=4000", "qXfer:features:read+", "swbreak+", "hwbreak+", "vContSupported+", "QStartNoAckMode+"]),
    );
    expect(ask("vCont?")).toBe("vCont;c;C;s;S;t");
    expect(ask("qAttached")).toBe("1");
    expect(ask("qSomethingUnknown")).toBe("");
    expect(ask("?")).toBe("T05thread:1;");
    expect(server.isRunning).toBe(false);
  });

  it("stops acknowledging after QStartNoAckMode", () => {
    const { server, output, ask } = setUp();
    expect(ask("QStartNoAckMode")).toBe("OK");
    expect(output[0]).toBe("+");
    output.length = 0;
    server.receive(packet("qC"));
    expect(output).toEqual([latin1(packet("QC1"))]);
  });

  it("answers a bad checksum with '-' and resends its last reply on '-'", () => {
    const { server, output, ask } = setUp();
    ask("qC");
    output.length = 0;
    server.receive(Uint8Array.from("$qC#00", (char) => char.charCodeAt(0)));
    expect(output).toEqual(["-"]);
    output.length = 0;
    server.receive(new Uint8Array([0x2d]));
    expect(output).toEqual([latin1(packet("QC1"))]);
  });

  it("serves the i386 target description in pieces gdb can reassemble", () => {
    const { ask } = setUp();
    let xml = "";
    for (let offset = 0; ; ) {
      const reply = ask(`qXfer:features:read:target.xml:${offset.toString(16)},100`);
      expect(reply[0]).toMatch(/[ml]/);
      const chunk = reply.slice(1).replace(/}(.)/g, (_, char: string) => String.fromCharCode(char.charCodeAt(0) ^ 0x20));
      xml += chunk;
      offset += chunk.length;
      if (reply[0] === "l") break;
    }
    expect(xml).toContain("<architecture>i386</architecture>");
    expect(xml).toContain('<feature name="org.gnu.gdb.i386.core">');
    for (const name of ["eax", "eip", "eflags", "gs", "st7", "fop", "xmm7", "mxcsr", "cr0", "cr3", "dr7"]) expect(xml).toContain(`name="${name}"`);
    expect(ask("qXfer:features:read:other.xml:0,100")).toBe("E00");
  });

  it("reads and writes registers in gdb's numbering and size", () => {
    const { target, ask } = setUp();
    const all = ask("g");
    const expectedLength = I386_REGISTERS.reduce((sum, register) => sum + register.bits / 4, 0);
    expect(all).toHaveLength(expectedLength);
    expect(all.slice(0, 8)).toBe("44332211"); // eax, little-endian
    expect(all.slice(8 * 8, 9 * 8)).toBe("00100000"); // eip = 0x1000
    expect(all.slice(16 * 8, 16 * 8 + 20)).toBe("x".repeat(20)); // st0: no FPU
    expect(ask("p8")).toBe("00100000");
    expect(ask("P0=78563412")).toBe("OK");
    expect(target.registers[0]!.get("eax")).toBe(0x12345678);
    expect(ask("P10=00000000")).toBe("E01"); // st0 cannot be written
    expect(ask("P99=00000000")).toBe("E01");
    expect(ask("pzz")).toBe("E01");
    expect(ask("Hg2")).toBe("OK");
    expect(ask("p8")).toBe("00200000");
    // G writes every register it carries; x's are skipped.
    const block = "01000000" + "02000000" + "x".repeat(all.length - 16);
    expect(ask(`G${block}`)).toBe("OK");
    expect(target.registers[1]!.get("eax")).toBe(1);
    expect(target.registers[1]!.get("ecx")).toBe(2);
    expect(ask("Gzz000000")).toBe("E01");
    // A refused write (the target throws) is an error reply, nothing else.
    expect(ask(`P${(10).toString(16)}=08000000`)).toBe("E01");
  });

  it("uses the target's batch register read for g when it has one, with the same result", () => {
    const { target, ask } = setUp();
    const one = ask("g");
    const batches: string[][] = [];
    const batching = target as FakeTarget & { readRegisters?: (cpu: number, names: readonly GdbRegisterName[]) => number[] };
    batching.readRegisters = (cpu, names) => {
      batches.push([...names]);
      return names.map((name) => target.readRegister(cpu, name));
    };
    expect(ask("g")).toBe(one);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.slice(0, 3)).toEqual(["eax", "ecx", "edx"]);
    expect(batches[0]).toContain("dr7");
  });

  it("reads memory with armed breakpoints hidden and writes with M and X", () => {
    const { host, dbg, ask } = setUp();
    host.memory.set([0x90, 0x90, 0xb8, 0x01], 0x1000);
    expect(ask("Z0,1002,1")).toBe("OK");
    expect(host.memory[0x1002]).toBe(0xcc);
    expect(dbg.isInt3Armed()).toBe(true);
    expect(ask("m1000,4")).toBe("9090b801");
    expect(ask("M1004,2:abcd")).toBe("OK");
    expect([...host.memory.subarray(0x1004, 0x1006)]).toEqual([0xab, 0xcd]);
    // X carries binary with } escapes: 0x7d 0x5d → 0x7d, 0x7d 0x03 → 0x23 ('#').
    expect(ask("X1006,3:a}]}\x03")).toBe("OK");
    expect([...host.memory.subarray(0x1006, 0x1009)]).toEqual([0x61, 0x7d, 0x23]);
    expect(ask("X1006,0:")).toBe("OK");
    expect(ask("X1006,5:ab")).toBe("E01"); // length mismatch
    expect(ask("M1004,2:abc")).toBe("E01");
    expect(ask("mffffff00,10")).toBe("E14"); // nothing mapped there
    expect(ask("m10,zz")).toBe("E01");
    expect(ask("Mfffff0,20:" + "00".repeat(0x20))).toBe("E14"); // the target refused
  });

  it("maps Z0-Z4 onto dbgf breakpoints and removes them on z, detach and a dropped connection", () => {
    const { host, dbg, target, server, ask } = setUp();
    host.memory[0x3000] = 0x55;
    expect(ask("Z0,3000,1")).toBe("OK");
    expect(ask("Z0,3000,1")).toBe("OK"); // gdb may insert twice; one breakpoint
    expect(dbg.breakpointCount).toBe(1);
    expect(ask("Z1,4000,1")).toBe("OK");
    expect(ask("Z2,5000,4")).toBe("OK");
    expect(ask("Z3,5008,2")).toBe("OK");
    expect(ask("Z4,5010,1")).toBe("OK");
    expect(dbg.breakpointCount).toBe(5);
    expect(dbg.getDr(1)).toBe(0x5000n);
    // The fifth hardware breakpoint does not fit in four DR slots.
    expect(ask("Z2,6000,4")).toMatch(/^E/);
    expect(ask("Z2,6001,4")).toMatch(/^E/); // unaligned for its length
    expect(ask("Z5,0,1")).toBe("");
    expect(ask("Z0,zz,1")).toBe("E01");
    expect(ask("z1,4000,1")).toBe("OK");
    expect(ask("z1,4000,1")).toBe("OK"); // removing what is gone is fine
    expect(dbg.breakpointCount).toBe(4);
    expect(ask("D")).toBe("OK");
    expect(target.detached).toBe(1);
    expect(dbg.breakpointCount).toBe(0);
    expect(host.memory[0x3000]).toBe(0x55);

    // A second connection, dropped without a detach.
    const output: string[] = [];
    const second = new GdbServer({ target, debugger: dbg, send: (bytes) => output.push(latin1(bytes)) });
    second.receive(packet("Z0,3000,1"));
    expect(host.memory[0x3000]).toBe(0xcc);
    second.connectionClosed();
    expect(host.memory[0x3000]).toBe(0x55);
    expect(target.detached).toBe(2);
    void server;
  });

  it("names the breakpoint kind in stop replies", () => {
    const { dbg, server, replies, ask, output } = setUp();
    ask("Z0,3000,1");
    ask("Z2,5000,4");
    ask("Z3,5008,4");
    ask("Z4,5010,4");
    const handleAt = (address: bigint) => {
      let found = -1;
      dbg.enumerate((handle, info) => {
        if ("address" in info && info.address === address) found = handle;
      });
      return found;
    };
    const stops: Array<[GdbStop, string]> = [
      [{ reason: "breakpoint", cpu: 1, handle: handleAt(0x3000n) }, "T05thread:2;swbreak:;"],
      [{ reason: "breakpoint", cpu: 0, handle: handleAt(0x5000n) }, "T05thread:1;watch:5000;"],
      [{ reason: "breakpoint", cpu: 0, handle: handleAt(0x5008n) }, "T05thread:1;rwatch:5008;"],
      [{ reason: "breakpoint", cpu: 0, handle: handleAt(0x5010n) }, "T05thread:1;awatch:5010;"],
      [{ reason: "step", cpu: 1 }, "T05thread:2;"],
      [{ reason: "interrupt", cpu: 0 }, "T02thread:1;"],
      [{ reason: "signal", cpu: 0, signal: 11 }, "T0bthread:1;"],
    ];
    for (const [stop, expected] of stops) {
      ask("c");
      expect(server.isRunning).toBe(true);
      output.length = 0;
      server.reportStop(stop);
      expect(replies()).toEqual([expected]);
      expect(ask("?")).toBe(expected);
    }
    output.length = 0;
    ask("c");
    server.reportStop({ reason: "exited", status: 33 });
    expect(replies()).toContain("W21");
    expect(ask("g")).toBe("E01");
  });

  it("turns c, s, vCont and Hc into per-vCPU actions (the leftmost match wins)", () => {
    const { target, server, ask } = setUp();
    const resume = (payload: string) => {
      ask(payload);
      server.reportStop({ reason: "step", cpu: 0 });
      return target.resumes.at(-1);
    };
    expect(resume("c")).toEqual(["continue", "continue"]);
    expect(resume("s")).toEqual(["step", "stay"]);
    expect(ask("Hc2")).toBe("OK");
    expect(resume("s")).toEqual(["stay", "step"]);
    expect(resume("vCont;s:2;c")).toEqual(["continue", "step"]);
    expect(resume("vCont;c;s:2")).toEqual(["continue", "continue"]);
    expect(resume("vCont;s:1")).toEqual(["step", "stay"]);
    expect(resume("vCont;C0b:1;t")).toEqual(["continue", "stay"]);
    expect(resume("vCont;c:-1")).toEqual(["continue", "continue"]);
    expect(resume("c2000")).toEqual(["continue", "continue"]);
    expect(target.registers[1]!.get("eip")).toBe(0x2000);
    const count = target.resumes.length;
    expect(ask("vCont;x")).toBe("E01");
    expect(ask("vCont;s:9")).toBe("E01");
    expect(ask("vCont;t")).toBe("E01"); // nothing would run
    expect(ask("Cxx")).toBe("E01");
    expect(target.resumes.length).toBe(count);
  });

  it("queues packets that arrive while the machine runs and passes Ctrl-C on", () => {
    const { target, server, replies, output } = setUp();
    server.receive(packet("c"));
    server.receive(packet("g"));
    server.receive(new Uint8Array([0x03]));
    expect(target.interrupts).toBe(1);
    output.length = 0;
    server.reportStop({ reason: "interrupt", cpu: 0 });
    const answered = replies();
    expect(answered[0]).toBe("T02thread:1;");
    expect(answered[1]).toMatch(/^44332211/);
  });

  it("lists threads as vCPUs", () => {
    const { ask } = setUp();
    expect(ask("qfThreadInfo")).toBe("m1,2");
    expect(ask("qsThreadInfo")).toBe("l");
    expect(ask("T2")).toBe("OK");
    expect(ask("T3")).toBe("E01");
    expect(ask("Hg3")).toBe("E01");
    expect(decodeHex(ask("qThreadExtraInfo,2"))).toBe("vCPU 1 idle");
  });

  it("runs monitor commands: help, breakpoints, port-I/O and MMIO breakpoints, machine commands", async () => {
    const { dbg, host, replies, output, server } = setUp();
    const monitor = (command: string) => {
      output.length = 0;
      server.receive(packet(`qRcmd,${[...command].map((char) => char.charCodeAt(0).toString(16).padStart(2, "0")).join("")}`));
      const all = replies();
      const text = all
        .filter((reply) => reply.startsWith("O") && reply !== "OK")
        .map((reply) => decodeHex(reply.slice(1)))
        .join("");
      return { text, result: all.at(-1) };
    };
    expect(monitor("help").text).toContain("break-io");
    expect(monitor("help").text).toContain("state     machine state");
    expect(monitor("breakpoints").text).toBe("no breakpoints\n");
    const io = monitor("break-io 0x3f8-0x3ff w");
    expect(io.result).toBe("OK");
    expect(dbg.isPortIoArmed()).toBe(true);
    expect(host.portNotifications.at(-1)).toBe(true);
    expect(monitor("break-io 0xffff r").result).toBe("OK");
    expect(monitor("break-io nonsense").result).toBe("E01");
    expect(monitor("break-mmio 0xfee00000 4 rw").result).toBe("OK");
    expect(host.mmioCalls.length).toBeGreaterThan(0);
    const list = monitor("breakpoints").text;
    expect(list).toContain("port I/O 0x3f8-0x3ff");
    expect(list).toContain("MMIO 0xfee00000+4");
    expect(list).toMatch(/hits 0/);
    const handle = Number(/breakpoint (\d+): ports 0x3f8/.exec(io.text)![1]);
    expect(monitor(`delete ${handle}`).result).toBe("OK");
    expect(monitor(`delete ${handle}`).result).toBe("E01");
    expect(monitor("state")).toEqual({ text: "running fine\n", result: "OK" });
    expect(monitor("frobnicate").text).toContain('unknown monitor command "frobnicate"');
    // An asynchronous machine command: later packets wait for its answer.
    expect(monitor("slow").result).toBeUndefined();
    server.receive(packet("qC"));
    expect(replies()).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(replies()).toEqual(["OK", "QC1"]);
    // Detach clears monitor breakpoints too.
    server.receive(packet("D"));
    expect(dbg.breakpointCount).toBe(0);
  });

  it("answers k and exits cleanly after the guest finished", () => {
    const { target, server, ask } = setUp();
    server.reportStop({ reason: "exited", status: 0 });
    expect(ask("?")).toBe("W00");
    expect(ask("k")).toBe("OK");
    const other = setUp();
    other.ask("k");
    expect(other.target.killed).toBe(1);
    void target;
  });

  it("survives 10 000 random packets, framing garbage and Ctrl-Cs without throwing", () => {
    const { host, dbg, target, server } = setUp();
    host.memory.set([0x90, 0x90, 0x90], 0x1000);
    const alphabet = "0123456789abcdefxXmMgGpPzZcCsSvVqQHTD?:,;=#$}*- \x03";
    const randomPacket = fc.oneof(
      fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 40 }),
      fc.constantFrom("Z0,1000,1", "z0,1000,1", "Z2,2000,4", "m1000,10", "vCont;s:1", "vCont;c", "Hg2", "qRcmd,68656c70", "g", "?", "s"),
    );
    let sent = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(randomPacket, fc.boolean(), fc.boolean()), { minLength: 100, maxLength: 100 }), (items) => {
        for (const [payload, corrupt, stop] of items) {
          sent++;
          const bytes = packet(payload);
          if (corrupt) bytes[bytes.length - 1] = 0x7a;
          server.receive(bytes);
          if (stop && server.isRunning) server.reportStop({ reason: "step", cpu: 0 });
        }
        if (server.isRunning) server.reportStop({ reason: "interrupt", cpu: 0 });
      }),
      { numRuns: 100 },
    );
    expect(sent).toBe(10_000);
    // Still serving, and every breakpoint it made is gone after a detach.
    server.receive(packet("D"));
    expect(target.detached).toBe(1);
    expect(dbg.breakpointCount).toBe(0);
    expect([...host.memory.subarray(0x1000, 0x1003)]).toEqual([0x90, 0x90, 0x90]);
  });

  it("refuses a packet size it cannot honour", () => {
    const host = new FakeHost(1);
    const dbg = new Debugger(host);
    const target = new FakeTarget(host);
    expect(() => new GdbServer({ target, debugger: dbg, send: () => {}, packetSize: 10 })).toThrow(/packetSize/);
  });
});
