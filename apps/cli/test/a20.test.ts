/**
 * The A20 line in a running machine: the 8042 powers on with A20 enabled, its command 0xDD
 * disables it (FFFF:0010 then wraps to 0), and port 0x92 bit 1 enables it again. Also run
 * as a boot sector under qemu-system-i386 where QEMU is installed.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { temporaryFile, vmmkit } from "./helpers.js";
import { qemuAvailable } from "./qemu.js";

// guests are NASM as a rule; this one is 80 bytes, so its bytes stand here with the source:
//   cli; xor ax,ax; mov ds,ax; mov ax,0xffff; mov es,ax
//   mov word [0],0; mov word [es:0x10],0x1234; cmp word [0],0; jne fail      ; A20 on
//   mov al,0xdd; out 0x64,al                                                   ; 8042: A20 off
//   mov word [es:0x10],0x5678; cmp word [0],0x5678; jne fail                   ; wraps to 0
//   in al,0x92; or al,2; out 0x92,al                                           ; fast A20 on
//   mov word [es:0x10],0x9abc; cmp word [0],0x5678; jne fail                   ; no wrap
//   mov al,0x10; out 0xf4,al  /  fail: mov al,0x11; out 0xf4,al
const CODE = [
  0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0xb8, 0xff, 0xff, 0x8e, 0xc0, 0xc7, 0x06, 0x00, 0x00, 0x00, 0x00, 0x26, 0xc7, 0x06, 0x10, 0x00, 0x34, 0x12, 0x83,
  0x3e, 0x00, 0x00, 0x00, 0x75, 0x2c, 0xb0, 0xdd, 0xe6, 0x64, 0x26, 0xc7, 0x06, 0x10, 0x00, 0x78, 0x56, 0x81, 0x3e, 0x00, 0x00, 0x78, 0x56, 0x75,
  0x19, 0xe4, 0x92, 0x0c, 0x02, 0xe6, 0x92, 0x26, 0xc7, 0x06, 0x10, 0x00, 0xbc, 0x9a, 0x81, 0x3e, 0x00, 0x00, 0x78, 0x56, 0x75, 0x04, 0xb0, 0x10,
  0xe6, 0xf4, 0xb0, 0x11, 0xe6, 0xf4,
];

describe("A20", () => {
  it("is on after power-on, off after 8042 command 0xDD (addresses wrap at 1 MiB), on again through port 0x92", async () => {
    const result = await vmmkit("run", temporaryFile("a20.bin", Uint8Array.from(CODE)));
    expect(result.stderr).toBe("");
    expect(result.status).toBe(33);
  });
});

describe.runIf(qemuAvailable || process.env.CI)("A20, differential against qemu-system-i386", () => {
  it("QEMU's PC agrees (the same code as a boot sector)", () => {
    const sector = new Uint8Array(512);
    sector.set(CODE);
    sector[510] = 0x55;
    sector[511] = 0xaa;
    const disk = temporaryFile("a20-boot.img", sector);
    const qemu = spawnSync(
      "qemu-system-i386",
      ["-M", "pc", "-m", "64", "-display", "none", "-serial", "null", "-monitor", "none", "-nic", "none", "-no-reboot"]
        .concat(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-drive", `format=raw,file=${disk}`]),
      { timeout: 60_000 },
    );
    expect(qemu.status).toBe(33);
  }, 60_000);
});
