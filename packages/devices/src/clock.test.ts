import { describe, expect, it } from "vitest";
import { isDevicesError, VirtualClock } from "./index.js";

describe("VirtualClock", () => {
  it("starts at 0 (or the given time) and moves only when told", () => {
    expect(new VirtualClock().now()).toBe(0);
    const clock = new VirtualClock(5_000);
    expect(clock.now()).toBe(5_000);
    clock.advanceBy(250);
    expect(clock.now()).toBe(5_250);
    clock.advanceTo(9_000);
    expect(clock.now()).toBe(9_000);
  });

  it("reports Infinity as the next deadline while no timer is armed", () => {
    const clock = new VirtualClock();
    clock.createTimer(() => {});
    expect(clock.nextDeadline()).toBe(Number.POSITIVE_INFINITY);
  });

  it("fires due timers in deadline order, each seeing its own deadline as now", () => {
    const clock = new VirtualClock();
    const fired: [string, number][] = [];
    const a = clock.createTimer(() => fired.push(["a", clock.now()]));
    const b = clock.createTimer(() => fired.push(["b", clock.now()]));
    const c = clock.createTimer(() => fired.push(["c", clock.now()]));
    a.arm(300);
    b.arm(100);
    c.arm(1_000);
    expect(clock.nextDeadline()).toBe(100);
    clock.advanceTo(500);
    expect(fired).toEqual([
      ["b", 100],
      ["a", 300],
    ]);
    expect(clock.now()).toBe(500);
    expect(clock.nextDeadline()).toBe(1_000);
  });

  it("fires timers due at the same time in the order they were armed", () => {
    const clock = new VirtualClock();
    const fired: string[] = [];
    const first = clock.createTimer(() => fired.push("first"));
    const second = clock.createTimer(() => fired.push("second"));
    second.arm(10);
    first.arm(10);
    clock.advanceTo(10);
    expect(fired).toEqual(["second", "first"]);
  });

  it("fires a timer once per arming, and lets it re-arm itself without drift", () => {
    const clock = new VirtualClock();
    const times: number[] = [];
    const period = 1_000_000;
    const timer = clock.createTimer(() => {
      times.push(clock.now());
      timer.arm(clock.now() + period);
    });
    timer.arm(period);
    clock.advanceTo(3_500_000);
    expect(times).toEqual([1_000_000, 2_000_000, 3_000_000]);
    expect(clock.nextDeadline()).toBe(4_000_000);
  });

  it("does not fire a disarmed or re-armed-later timer", () => {
    const clock = new VirtualClock();
    let fired = 0;
    const timer = clock.createTimer(() => fired++);
    timer.arm(100);
    timer.disarm();
    clock.advanceTo(200);
    timer.arm(300);
    timer.arm(1_000);
    clock.advanceTo(500);
    expect(fired).toBe(0);
    clock.advanceTo(1_000);
    expect(fired).toBe(1);
  });

  it("fires a timer armed in the past at the next advance, without moving time backwards", () => {
    const clock = new VirtualClock(1_000);
    const seen: number[] = [];
    const timer = clock.createTimer(() => seen.push(clock.now()));
    timer.arm(10);
    expect(clock.nextDeadline()).toBe(10);
    clock.advanceTo(1_000);
    expect(seen).toEqual([1_000]);
  });

  it("lets a timer callback arm another timer that is due within the same advance", () => {
    const clock = new VirtualClock();
    const fired: [string, number][] = [];
    const late = clock.createTimer(() => fired.push(["late", clock.now()]));
    const early = clock.createTimer(() => {
      fired.push(["early", clock.now()]);
      late.arm(clock.now() + 5);
    });
    early.arm(10);
    clock.advanceTo(100);
    expect(fired).toEqual([
      ["early", 10],
      ["late", 15],
    ]);
  });

  it.each([
    ["backwards", () => new VirtualClock(100).advanceTo(99)],
    ["to NaN", () => new VirtualClock().advanceTo(Number.NaN)],
    ["from a negative start", () => new VirtualClock(-1)],
    ["a NaN deadline", () => new VirtualClock().createTimer(() => {}).arm(Number.NaN)],
  ])("refuses to move %s with a DevicesError", (_case, action) => {
    let caught: unknown;
    try {
      action();
    } catch (error) {
      caught = error;
    }
    expect(isDevicesError(caught) && caught.code).toBe("ERR_DEVICES_INVALID_ARGUMENT");
  });

  it("keeps its time when an advance is refused", () => {
    const clock = new VirtualClock(100);
    expect(() => clock.advanceTo(50)).toThrow(/cannot move to 50 ns/);
    expect(clock.now()).toBe(100);
  });
});
