/**
 * Time as the devices see it. Devices never read the host's clock or start host timers:
 * they ask a `Clock` for the time and arm `ClockTimer`s, so the same guest produces the same
 * device behaviour on every run when the clock is driven by executed instructions.
 *
 * Times are nanoseconds since the machine was powered on, as numbers (exact up to 2^53 ns,
 * about 104 days of machine time).
 */

import { DevicesError } from "./errors.js";
import { packState, StateReader } from "./state.js";

/** A one-shot timer created by a clock. */
export interface ClockTimer {
  /** Fires once when the clock reaches `deadline` (ns). Re-arming replaces the old deadline. */
  arm(deadline: number): void;
  disarm(): void;
}

/** What devices consume: the current time and timers. */
export interface Clock {
  /** The current time in ns. Never decreases. */
  now(): number;
  /** A timer that calls `onExpire` when its deadline is reached; it starts disarmed. */
  createTimer(onExpire: () => void): ClockTimer;
}

const DISARMED = Number.POSITIVE_INFINITY;

class VirtualTimer implements ClockTimer {
  deadline = DISARMED;
  /** Arming order, so timers due at the same time fire in the order they were armed. */
  sequence = 0;
  constructor(
    private readonly clock: VirtualClock,
    readonly onExpire: () => void,
  ) {}

  arm(deadline: number): void {
    if (Number.isNaN(deadline)) throw new DevicesError("ERR_DEVICES_INVALID_ARGUMENT", "a timer deadline must be a number of nanoseconds, got NaN");
    this.deadline = deadline;
    this.sequence = this.clock.nextSequence();
    this.clock.timerChanged();
  }

  disarm(): void {
    if (this.deadline === DISARMED) return;
    this.deadline = DISARMED;
    this.clock.timerChanged();
  }
}

/**
 * A clock the host moves forward explicitly: from the count of executed instructions for a
 * deterministic machine, or from the host's monotonic clock for real time. Timers fire only
 * inside `advanceTo`, in deadline order, each seeing `now()` equal to its own deadline, so a
 * periodic device re-arming at "deadline + period" never drifts.
 */
export class VirtualClock implements Clock {
  private current = 0;
  private readonly timers: VirtualTimer[] = [];
  private sequence = 0;
  private earliest = DISARMED;

  /** `start` is the time at power-on (ns), 0 by default. */
  constructor(start = 0) {
    if (!Number.isFinite(start) || start < 0) throw new DevicesError("ERR_DEVICES_INVALID_ARGUMENT", `a clock cannot start at ${start} ns`);
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  createTimer(onExpire: () => void): ClockTimer {
    const timer = new VirtualTimer(this, onExpire);
    this.timers.push(timer);
    return timer;
  }

  /**
   * The earliest armed deadline (ns), or Infinity when no timer is armed. The host runs the
   * guest no further than this before calling `advanceTo`; a halted guest skips straight to it.
   */
  nextDeadline(): number {
    return this.earliest;
  }

  /**
   * Moves the clock to `time` (ns), firing every timer due on the way in deadline order.
   * A time earlier than now is refused: the clock never runs backwards.
   */
  advanceTo(time: number): void {
    if (!(time >= this.current)) {
      throw new DevicesError("ERR_DEVICES_INVALID_ARGUMENT", `the clock is at ${this.current} ns and cannot move to ${time} ns`);
    }
    for (;;) {
      const timer = this.dueTimer(time);
      if (timer === null) break;
      // Deadlines in the past fire "now": the clock never moves backwards for them.
      if (timer.deadline > this.current) this.current = timer.deadline;
      timer.deadline = DISARMED;
      this.timerChanged();
      timer.onExpire();
    }
    this.current = time;
  }

  /** The current time, for a saved state (version 1); the timers belong to the devices, which save their own deadlines. */
  saveState(): Uint8Array {
    return packState("VCLK", 1, [this.current]);
  }

  /**
   * Sets the time from a `saveState()` (restore the clock before the devices, which re-arm
   * their timers against it). Bad input throws `ERR_DEVICES_INVALID_STATE` and changes nothing.
   */
  loadState(bytes: Uint8Array): void {
    const r = new StateReader("virtual clock", "VCLK", 1, bytes);
    const current = r.number("time");
    r.done();
    if (current < 0) throw new DevicesError("ERR_DEVICES_INVALID_STATE", `virtual clock state: time ${current} ns is negative; nothing was changed`);
    this.current = current;
  }

  /** Moves the clock forward by `nanoseconds`. */
  advanceBy(nanoseconds: number): void {
    this.advanceTo(this.current + nanoseconds);
  }

  /** @internal */
  nextSequence(): number {
    return ++this.sequence;
  }

  /** @internal Recomputes the earliest deadline after a timer changed. */
  timerChanged(): void {
    let earliest = DISARMED;
    for (const timer of this.timers) if (timer.deadline < earliest) earliest = timer.deadline;
    this.earliest = earliest;
  }

  private dueTimer(limit: number): VirtualTimer | null {
    let best: VirtualTimer | null = null;
    for (const timer of this.timers) {
      if (timer.deadline > limit) continue;
      if (best === null || timer.deadline < best.deadline || (timer.deadline === best.deadline && timer.sequence < best.sequence)) best = timer;
    }
    return best;
  }
}
