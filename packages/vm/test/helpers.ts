import { expect } from "vitest";
import { isVmError, Vm, type ExecutionEngine, type ExitHandler, type VmOptions, type VmState } from "@vmmkit/vm";

export interface Exit {
  readonly exitReason: "io" | "mmio" | "hlt" | "canceled";
  readonly tag?: string;
}

/**
 * A scripted stand-in accelerator. Each vCPU returns its scripted exits in order (or, with
 * `forever`, an io exit on every run); once a script is used up a run stays pending (a guest
 * spinning in its own code) until the test delivers an exit or cancelVcpu resolves it with
 * a "canceled" exit.
 */
export class FakeEngine implements ExecutionEngine<Exit> {
  readonly runs: number[] = [];
  readonly cancels: number[] = [];
  private readonly pending = new Map<number, (exit: Exit) => void>();

  constructor(
    private readonly scripts: Exit[][] = [],
    private readonly forever = false,
  ) {}

  runVcpu(vcpu: number): Promise<Exit> {
    this.runs.push(vcpu);
    if (this.forever) return Promise.resolve({ exitReason: "io" });
    const next = this.scripts[vcpu]?.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve) => this.pending.set(vcpu, resolve));
  }

  cancelVcpu(vcpu: number): void {
    this.cancels.push(vcpu);
    this.deliver(vcpu, { exitReason: "canceled" });
  }

  isPending(vcpu: number): boolean {
    return this.pending.has(vcpu);
  }

  deliver(vcpu: number, exit: Exit): void {
    const resolve = this.pending.get(vcpu);
    this.pending.delete(vcpu);
    resolve?.(exit);
  }

  runCount(vcpu: number): number {
    return this.runs.filter((index) => index === vcpu).length;
  }
}

export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setTimeout(resolve, 0));
}

export function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject");
}

export function expectVmError(error: unknown, code: string): void {
  expect(isVmError(error), `not a VmError: ${String(error)}`).toBe(true);
  expect(error).toMatchObject({ name: "VmError", code });
}

export const resumeAll: ExitHandler<Exit> = () => "resume";

export interface Recorded {
  readonly vm: Vm<Exit>;
  readonly engine: FakeEngine;
  /** [previous, state] pairs seen by an at-state callback. */
  readonly transitions: [VmState, VmState][];
  /** [code, source, message] seen by an at-error callback. */
  readonly errors: [string, string, string][];
}

export function makeVm(options: Partial<VmOptions<Exit>> = {}): Recorded {
  const engine = (options.engine as FakeEngine | undefined) ?? new FakeEngine();
  const vm = new Vm<Exit>({ cpuCount: 1, handleExit: resumeAll, ...options, engine });
  const transitions: [VmState, VmState][] = [];
  const errors: [string, string, string][] = [];
  vm.onStateChange((to, from) => transitions.push([from, to]));
  vm.registerAtError((code, source, message) => errors.push([code, source, message]));
  return { vm, engine, transitions, errors };
}
