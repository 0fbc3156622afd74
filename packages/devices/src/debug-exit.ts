/**
 * QEMU's isa-debug-exit device: a write of value v ends the machine with process exit
 * status (v << 1) | 1, so a guest can report success or failure to a test runner.
 */
export class DebugExit {
  constructor(private readonly onExit: (status: number) => void) {}

  writePort(_offset: number, value: number): void {
    this.onExit(((value << 1) | 1) >>> 0);
  }

  readPort(): number {
    return 0xff;
  }
}
