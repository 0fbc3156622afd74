/** Runs a guest under qemu-system-i386 (TCG) the way the differential tests compare it. */
import { spawnSync } from "node:child_process";

export const qemuAvailable = spawnSync("qemu-system-i386", ["--version"], { encoding: "utf8" }).status === 0;

export interface QemuResult {
  readonly status: number | null;
  readonly stdout: string;
}

/** A multiboot kernel with COM1 on stdout and isa-debug-exit at 0xF4, as `vmmkit run` has them. */
export function runUnderQemu(kernel: string, options: { memoryMiB?: number; reboot?: boolean } = {}): QemuResult {
  const result = spawnSync(
    "qemu-system-i386",
    [
      ...["-M", "pc", "-m", String(options.memoryMiB ?? 64), "-display", "none", "-serial", "stdio", "-monitor", "none", "-nic", "none"],
      ...(options.reboot === true ? [] : ["-no-reboot"]),
      ...["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", kernel],
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  return { status: result.status, stdout: result.stdout };
}
