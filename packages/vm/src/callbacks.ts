import { VmError } from "./errors.js";

interface Registration<F, U> {
  readonly fn: F;
  readonly user: U;
}

/**
 * A callback registry with the reference's rules (spec/vm.md §6.1): duplicates allowed and
 * called once per registration, FIFO order, deregistration removes the earliest identical
 * (fn, user) pair, and a round iterates a snapshot so changes take effect next round.
 */
export class CallbackList<F extends (...args: never[]) => unknown> {
  private registrations: Registration<F, unknown>[] = [];

  constructor(private readonly kind: string) {}

  register(fn: F, user: unknown): void {
    if (typeof fn !== "function") throw new VmError("InvalidParameter", `${this.kind} callback must be a function, got ${typeof fn}`);
    this.registrations = [...this.registrations, { fn, user }];
  }

  deregister(fn: F, user: unknown): void {
    const index = this.registrations.findIndex((entry) => entry.fn === fn && Object.is(entry.user, user));
    if (index < 0) throw new VmError("CallbackNotFound", `that ${this.kind} callback (with that user value) is not registered`);
    this.registrations = this.registrations.filter((_, i) => i !== index);
  }

  /** The registrations at this moment; the list is replaced, never mutated, on change. */
  snapshot(): readonly Registration<F, unknown>[] {
    return this.registrations;
  }

  get size(): number {
    return this.registrations.length;
  }
}
