/**
 * The PC's CMOS RAM and real-time clock, a Motorola MC146818A behind ports 0x70 (index, with
 * the NMI mask in bit 7) and 0x71 (data). Time comes from the machine's clock: the RTC shows
 * `startTime` at clock time 0 and counts from there, so a deterministic clock gives the same
 * dates on every run.
 *
 * Registers follow the MC146818A datasheet: the time, calendar and alarm bytes in BCD or
 * binary and 12- or 24-hour form (as register B says; they hold the bytes written, and the
 * mode bits say how the update cycle counts them), register A's divider and rate select with
 * update-in-progress, register B's SET/PIE/AIE/UIE/SQWE/DM/24h/DSE bits, register C's flags
 * (cleared when read), register D's valid-RAM bit, and 114 bytes of battery-backed RAM.
 */

import type { Clock } from "./clock.js";
import { packState, StateReader, TrackedTimer } from "./state.js";
import { DevicesError } from "./errors.js";
import { DISCONNECTED_IRQ, type DevicePortRange, type IrqLine, type PortHandler } from "./interfaces.js";

const NS_PER_SECOND = 1_000_000_000;
/** The time base: a 32.768 kHz crystal. */
const BASE_HZ = 32_768;
/** UIP rises 244 µs (8 time-base cycles) before each update. */
const UIP_COUNTS = 8;

export const RTC_REGISTER_A = 0x0a;
export const RTC_REGISTER_B = 0x0b;
export const RTC_REGISTER_C = 0x0c;
export const RTC_REGISTER_D = 0x0d;
/** First byte of battery-backed RAM. */
const RAM_START = 0x0e;
/** The IBM PC's century byte (BCD), kept in RAM. */
const CENTURY = 0x32;
export const CMOS_SIZE = 128;
export const NVRAM_SIZE = CMOS_SIZE - RAM_START;

const A_UIP = 0x80;
const B_SET = 0x80;
const B_PIE = 0x40;
const B_AIE = 0x20;
const B_UIE = 0x10;
const B_SQWE = 0x08;
const B_BINARY = 0x04;
const B_24_HOUR = 0x02;
const C_IRQF = 0x80;
const C_PF = 0x40;
const C_AF = 0x20;
const C_UF = 0x10;

/** 2000-01-01T00:00:00Z, a Saturday. */
const DEFAULT_START_TIME = 946_684_800_000;
const SECONDS_PER_DAY = 86_400;
/** The MC146818's calendar repeats every 100 years (every fourth year a leap year). */
const DAYS_PER_CYCLE = 36_525;
const DAYS_BEFORE_MONTH = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

function countsIn(nanoseconds: number): number {
  const seconds = Math.floor(nanoseconds / NS_PER_SECOND);
  const rest = nanoseconds - seconds * NS_PER_SECOND;
  return seconds * BASE_HZ + Math.floor((rest * BASE_HZ) / NS_PER_SECOND);
}

function nanosecondsFor(counts: number): number {
  const seconds = Math.floor(counts / BASE_HZ);
  const rest = counts - seconds * BASE_HZ;
  return seconds * NS_PER_SECOND + Math.ceil((rest * NS_PER_SECOND) / BASE_HZ);
}

const isLeap = (year: number) => year % 4 === 0;
/** Days from the start of year 00 of the cycle to the start of `year` (0-99). */
const daysBeforeYear = (year: number) => year * 365 + Math.ceil(year / 4);

/** Time-base counts between periodic interrupts for rate select `rs`, or 0 for none. */
function periodicCounts(rs: number): number {
  if (rs === 0) return 0;
  return rs <= 2 ? 1 << (rs + 6) : 1 << (rs - 1);
}

export interface CmosRtcOptions {
  readonly clock: Clock;
  /** IRQ 8. */
  readonly irq?: IrqLine;
  /** The time the RTC shows at clock time 0, as Unix time in ms (default 2000-01-01T00:00:00Z). */
  readonly startTime?: number;
  /** Battery-backed RAM to start from: 114 bytes for CMOS 0x0E-0x7F (a previous `nvram()`). */
  readonly nvram?: Uint8Array;
  /** Guest RAM in bytes: fills the standard memory-size bytes and the checksum. */
  readonly memoryBytes?: number;
}

class CmosPorts implements PortHandler {
  constructor(private readonly rtc: CmosRtc) {}
  readPort(offset: number): number {
    return offset & 1 ? this.rtc.readRegister(this.rtc.index) : 0xff; // the index register is write-only
  }
  writePort(offset: number, value: number): void {
    if (offset & 1) this.rtc.writeRegister(this.rtc.index, value & 0xff);
    else this.rtc.selectIndex(value & 0xff);
  }
}

/**
 * CMOS RAM and RTC at ports 0x70-0x71, interrupting on IRQ 8.
 *
 * Time, date and alarm bytes keep what was written; a value out of range (a minute of 75,
 * month 13) is normalised by the next update cycle, where the datasheet leaves the
 * behaviour undefined. Daylight-saving (DSE) and the square-wave output (SQWE) are stored
 * but act on nothing, as the PC wires neither.
 */
export class CmosRtc {
  private readonly clock: Clock;
  private readonly irq: IrqLine;
  private readonly bytes = new Uint8Array(CMOS_SIZE);
  /** @internal The selected register (port 0x70 bits 0-6). */
  index = 0;
  private nmiDisabled = false;
  private irqLevel = false;
  /** Flags of register C (PF, AF, UF). */
  private flags = 0;
  /** The divider chain: counts of the 32.768 kHz time base at `dividerOrigin`. */
  private dividerOrigin = 0;
  private dividerStart = 0;
  private lastSecond = 0;
  private lastPeriodic = 0;
  private readonly periodicTimer: TrackedTimer;
  private readonly updateTimer: TrackedTimer;

  readonly ports: PortHandler;

  constructor(options: CmosRtcOptions) {
    this.clock = options.clock;
    this.irq = options.irq ?? DISCONNECTED_IRQ;
    const startTime = options.startTime ?? DEFAULT_START_TIME;
    if (!Number.isFinite(startTime) || startTime < 0) {
      throw new DevicesError("ERR_DEVICES_INVALID_ARGUMENT", `startTime must be Unix time in ms at or after 1970, got ${startTime}`);
    }
    if (options.nvram !== undefined && options.nvram.length !== NVRAM_SIZE) {
      throw new DevicesError("ERR_DEVICES_INVALID_ARGUMENT", `nvram must be ${NVRAM_SIZE} bytes (CMOS 0x0e-0x7f), got ${options.nvram.length}`);
    }
    if (options.memoryBytes !== undefined && (!Number.isInteger(options.memoryBytes) || options.memoryBytes < 0)) {
      throw new DevicesError("ERR_DEVICES_INVALID_ARGUMENT", `memoryBytes must be a whole number of bytes, got ${options.memoryBytes}`);
    }
    this.ports = new CmosPorts(this);
    this.periodicTimer = new TrackedTimer(this.clock, () => this.onTimer());
    this.updateTimer = new TrackedTimer(this.clock, () => this.onTimer());

    // Register defaults as a PC BIOS leaves them: 32.768 kHz time base, 1024 Hz rate, BCD, 24-hour.
    this.bytes[RTC_REGISTER_A] = 0x26;
    this.bytes[RTC_REGISTER_B] = B_24_HOUR;
    if (options.nvram) this.bytes.set(options.nvram, RAM_START);
    this.setTime(startTime);
    if (options.memoryBytes !== undefined) this.setMemorySize(options.memoryBytes);

    // Phase the divider so updates fall on the start time's whole seconds.
    const now = this.clock.now();
    this.dividerOrigin = now;
    this.dividerStart = Math.floor(((startTime % 1000) * BASE_HZ) / 1000);
    this.lastSecond = 0;
    this.resetPeriodicIndex(now);
    this.rearm();
  }

  /** The port range to register: 0x70-0x71, byte-wide. */
  portRanges(): DevicePortRange[] {
    return [{ port: 0x70, count: 2, owner: "cmos-rtc", device: this.ports, maxAccessSize: 1 }];
  }

  /** False while the guest has set port 0x70 bit 7, which masks NMIs on a PC. */
  get nmiEnabled(): boolean {
    return !this.nmiDisabled;
  }

  /** A copy of the battery-backed RAM (CMOS 0x0E-0x7F), to persist and pass back as `nvram`. */
  nvram(): Uint8Array {
    return this.bytes.slice(RAM_START);
  }

  /** All 128 bytes, the index and NMI mask, flags, the divider chain and both timers, for a saved state (version 1). */
  saveState(): Uint8Array {
    return packState("RTC1", 1, [
      ...this.bytes,
      this.index,
      +this.nmiDisabled,
      +this.irqLevel,
      this.flags,
      this.dividerOrigin,
      this.dividerStart,
      this.lastSecond,
      this.lastPeriodic,
      this.periodicTimer.deadline,
      this.updateTimer.deadline,
    ]);
  }

  /**
   * Restores a `saveState()` taken on the same clock time base (restore the clock first).
   * Bad input throws `ERR_DEVICES_INVALID_STATE` and changes nothing.
   */
  loadState(state: Uint8Array): void {
    const r = new StateReader("CMOS/RTC", "RTC1", 1, state);
    const bytes = r.bytes("CMOS", CMOS_SIZE);
    const index = r.int("index", 0, 0x7f);
    const nmiDisabled = r.bool("NMI disabled");
    const irqLevel = r.bool("IRQ 8 level");
    const flags = r.bits("register C flags", C_PF | C_AF | C_UF);
    const dividerOrigin = r.number("divider origin");
    const dividerStart = r.number("divider start");
    const lastSecond = r.number("last second");
    const lastPeriodic = r.number("last periodic");
    const periodicDeadline = r.deadline("periodic timer");
    const updateDeadline = r.deadline("update timer");
    r.done();
    this.bytes.set(bytes);
    this.index = index;
    this.nmiDisabled = nmiDisabled;
    this.flags = flags;
    this.dividerOrigin = dividerOrigin;
    this.dividerStart = dividerStart;
    this.lastSecond = lastSecond;
    this.lastPeriodic = lastPeriodic;
    this.periodicTimer.restore(periodicDeadline);
    this.updateTimer.restore(updateDeadline);
    if (irqLevel !== this.irqLevel) {
      this.irqLevel = irqLevel;
      this.irq.setLevel(irqLevel);
    }
  }

  /**
   * The RESET pin (a machine reset): clears PIE, AIE, UIE, SQWE and the interrupt flags,
   * leaving time, date, alarm and RAM alone.
   */
  reset(): void {
    const now = this.clock.now();
    this.sync(now);
    this.bytes[RTC_REGISTER_B]! &= ~(B_PIE | B_AIE | B_UIE | B_SQWE);
    this.flags = 0;
    this.nmiDisabled = false;
    this.rearm();
    this.updateIrq();
  }

  /** @internal */
  selectIndex(value: number): void {
    this.index = value & 0x7f;
    this.nmiDisabled = (value & 0x80) !== 0;
  }

  /** @internal */
  readRegister(register: number): number {
    if (register >= RAM_START) return this.bytes[register]!;
    const now = this.clock.now();
    this.sync(now);
    switch (register) {
      case RTC_REGISTER_A:
        return this.bytes[RTC_REGISTER_A]! | (this.updateInProgress(now) ? A_UIP : 0);
      case RTC_REGISTER_C: {
        const value = this.flags | (this.irqLevel ? C_IRQF : 0);
        this.flags = 0;
        this.updateIrq();
        return value;
      }
      case RTC_REGISTER_D:
        return 0x80; // VRT: the battery is good
      default:
        return this.bytes[register]!;
    }
  }

  /** @internal */
  writeRegister(register: number, value: number): void {
    if (register >= RAM_START) {
      this.bytes[register] = value;
      return;
    }
    const now = this.clock.now();
    this.sync(now);
    switch (register) {
      case RTC_REGISTER_A: {
        const wasRunning = this.dividerRunning;
        this.bytes[RTC_REGISTER_A] = value & 0x7f; // UIP is read-only
        if (!wasRunning && this.dividerRunning) {
          // Leaving divider reset: the first update comes half a second later.
          this.dividerOrigin = now;
          this.dividerStart = BASE_HZ / 2;
          this.lastSecond = 0;
        }
        this.resetPeriodicIndex(now);
        break;
      }
      case RTC_REGISTER_B:
        // Setting SET stops updates and clears UIE.
        this.bytes[RTC_REGISTER_B] = value & B_SET ? value & ~B_UIE : value;
        break;
      case RTC_REGISTER_C:
      case RTC_REGISTER_D:
        return; // read-only
      default:
        this.bytes[register] = value;
    }
    this.rearm();
    this.updateIrq();
  }

  /** DV2-0 = 0, 1 or 2: the oscillator runs (2 is the PC's 32.768 kHz setting); 6-7 hold it in reset. */
  private get dividerRunning(): boolean {
    return (this.bytes[RTC_REGISTER_A]! & 0x70) <= 0x20;
  }

  private get updating(): boolean {
    return this.dividerRunning && (this.bytes[RTC_REGISTER_B]! & B_SET) === 0;
  }

  private divider(now: number): number {
    return this.dividerStart + countsIn(now - this.dividerOrigin);
  }

  private timeOfDivider(count: number): number {
    return this.dividerOrigin + nanosecondsFor(count - this.dividerStart);
  }

  private updateInProgress(now: number): boolean {
    return this.updating && this.divider(now) % BASE_HZ >= BASE_HZ - UIP_COUNTS;
  }

  private resetPeriodicIndex(now: number): void {
    const period = periodicCounts(this.bytes[RTC_REGISTER_A]! & 0x0f);
    this.lastPeriodic = period > 0 ? Math.floor(this.divider(now) / period) : 0;
  }

  /** Catches up with the clock: periodic flag, update cycles (time, UF, AF). */
  private sync(now: number): void {
    if (!this.dividerRunning) return;
    const count = this.divider(now);
    const period = periodicCounts(this.bytes[RTC_REGISTER_A]! & 0x0f);
    if (period > 0) {
      const index = Math.floor(count / period);
      if (index > this.lastPeriodic) {
        this.flags |= C_PF;
        this.lastPeriodic = index;
      }
    }
    const second = Math.floor(count / BASE_HZ);
    if (second > this.lastSecond) {
      const elapsed = second - this.lastSecond;
      this.lastSecond = second;
      if ((this.bytes[RTC_REGISTER_B]! & B_SET) === 0) {
        if (this.advanceTime(elapsed)) this.flags |= C_AF;
        this.flags |= C_UF;
      }
    }
    this.updateIrq();
  }

  private onTimer(): void {
    this.sync(this.clock.now());
    this.rearm();
  }

  /** Arms the periodic timer while PIE needs it and the update timer while UIE or AIE do. */
  private rearm(): void {
    const b = this.bytes[RTC_REGISTER_B]!;
    const period = periodicCounts(this.bytes[RTC_REGISTER_A]! & 0x0f);
    if (this.dividerRunning && b & B_PIE && period > 0) this.periodicTimer.arm(this.timeOfDivider((this.lastPeriodic + 1) * period));
    else this.periodicTimer.disarm();
    if (this.updating && b & (B_UIE | B_AIE)) this.updateTimer.arm(this.timeOfDivider((this.lastSecond + 1) * BASE_HZ));
    else this.updateTimer.disarm();
  }

  private updateIrq(): void {
    const level = (this.flags & this.bytes[RTC_REGISTER_B]! & (C_PF | C_AF | C_UF)) !== 0;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    this.irq.setLevel(level);
  }

  private get binary(): boolean {
    return (this.bytes[RTC_REGISTER_B]! & B_BINARY) !== 0;
  }

  private decode(value: number): number {
    return this.binary ? value : (value >> 4) * 10 + (value & 15);
  }

  private encode(value: number): number {
    return this.binary ? value : ((value / 10) << 4) | value % 10;
  }

  private decodeHour(value: number): number {
    if (this.bytes[RTC_REGISTER_B]! & B_24_HOUR) return this.decode(value);
    return (this.decode(value & 0x7f) % 12) + (value & 0x80 ? 12 : 0);
  }

  private encodeHour(hour: number): number {
    if (this.bytes[RTC_REGISTER_B]! & B_24_HOUR) return this.encode(hour);
    const twelve = hour % 12 === 0 ? 12 : hour % 12;
    return this.encode(twelve) | (hour >= 12 ? 0x80 : 0);
  }

  /** Seconds since the start of the 100-year cycle, read leniently from the time registers. */
  private registerSeconds(): number {
    const b = this.bytes;
    const year = this.decode(b[9]!);
    const monthIndex = this.decode(b[8]!) - 1;
    const carriedYear = year + Math.floor(monthIndex / 12);
    const month = ((monthIndex % 12) + 12) % 12;
    const yearInCycle = ((carriedYear % 100) + 100) % 100;
    const day =
      daysBeforeYear(yearInCycle) + DAYS_BEFORE_MONTH[month]! + (month >= 2 && isLeap(yearInCycle) ? 1 : 0) + this.decode(b[7]!) - 1;
    return ((day * 24 + this.decodeHour(b[4]!)) * 60 + this.decode(b[2]!)) * 60 + this.decode(b[0]!);
  }

  /** Writes time and date registers (not the day of week) from seconds in the 100-year cycle. */
  private storeSeconds(total: number): void {
    total = ((total % (DAYS_PER_CYCLE * SECONDS_PER_DAY)) + DAYS_PER_CYCLE * SECONDS_PER_DAY) % (DAYS_PER_CYCLE * SECONDS_PER_DAY);
    let day = Math.floor(total / SECONDS_PER_DAY);
    const secondOfDay = total - day * SECONDS_PER_DAY;
    let year = Math.floor(day / 365.25);
    while (daysBeforeYear(year + 1) <= day) year++;
    while (daysBeforeYear(year) > day) year--;
    day -= daysBeforeYear(year);
    let month = 11;
    while (DAYS_BEFORE_MONTH[month]! + (month >= 2 && isLeap(year) ? 1 : 0) > day) month--;
    const dayOfMonth = day - DAYS_BEFORE_MONTH[month]! - (month >= 2 && isLeap(year) ? 1 : 0) + 1;
    const b = this.bytes;
    b[0] = this.encode(secondOfDay % 60);
    b[2] = this.encode(Math.floor(secondOfDay / 60) % 60);
    b[4] = this.encodeHour(Math.floor(secondOfDay / 3600));
    b[7] = this.encode(dayOfMonth);
    b[8] = this.encode(month + 1);
    b[9] = this.encode(year);
  }

  /** Runs `seconds` update cycles at once; returns whether any of them matched the alarm. */
  private advanceTime(seconds: number): boolean {
    const before = this.registerSeconds();
    const after = before + seconds;
    const days = Math.floor(after / SECONDS_PER_DAY) - Math.floor(before / SECONDS_PER_DAY);
    const dayOfWeek = this.decode(this.bytes[6]!);
    this.bytes[6] = this.encode((((dayOfWeek - 1 + days) % 7) + 7) % 7 + 1);
    const alarm = this.alarmMatchesWithin(before, seconds);
    this.storeSeconds(after);
    return alarm;
  }

  /** Whether the alarm matches any second in (start, start + seconds]. */
  private alarmMatchesWithin(start: number, seconds: number): boolean {
    const b = this.bytes;
    const alarmSecond = b[1]!;
    const alarmMinute = b[3]!;
    const alarmHour = b[5]!;
    const dontCare = (value: number) => (value & 0xc0) === 0xc0;
    const startOfDay = ((start % SECONDS_PER_DAY) + SECONDS_PER_DAY) % SECONDS_PER_DAY;
    // The alarm pattern repeats daily, so one day of candidates settles any longer gap.
    const limit = Math.min(seconds, SECONDS_PER_DAY);
    for (let step = 1; step <= limit; step++) {
      const t = (startOfDay + step) % SECONDS_PER_DAY;
      if (!dontCare(alarmSecond) && this.encode(t % 60) !== alarmSecond) continue;
      if (!dontCare(alarmMinute) && this.encode(Math.floor(t / 60) % 60) !== alarmMinute) continue;
      if (!dontCare(alarmHour) && this.encodeHour(Math.floor(t / 3600)) !== alarmHour) continue;
      return true;
    }
    return false;
  }

  /** Loads the time registers from Unix time in ms (the current BCD/binary and 12/24-hour modes). */
  private setTime(unixMilliseconds: number): void {
    const unixSeconds = Math.floor(unixMilliseconds / 1000);
    const unixDays = Math.floor(unixSeconds / SECONDS_PER_DAY);
    // 1970-01-01 was a Thursday: day of week 5 with Sunday = 1.
    this.bytes[6] = this.encode(((unixDays + 4) % 7) + 1);
    const { year, month, day } = civilFromDays(unixDays);
    const dayInCycle = daysBeforeYear(year % 100) + DAYS_BEFORE_MONTH[month - 1]! + (month > 2 && isLeap(year % 100) ? 1 : 0) + day - 1;
    this.storeSeconds(dayInCycle * SECONDS_PER_DAY + (unixSeconds - unixDays * SECONDS_PER_DAY));
    this.bytes[CENTURY] = this.encode(Math.floor(year / 100) % 100);
  }

  /**
   * The memory-size bytes a PC BIOS reads (as QEMU and Bochs fill them): base memory in KiB
   * (0x15-0x16), extended memory above 1 MiB in KiB (0x17-0x18 and 0x30-0x31, at most
   * 65535), memory above 16 MiB in 64 KiB units (0x34-0x35) and above 4 GiB (0x5B-0x5D),
   * then the checksum over 0x10-0x2D at 0x2E-0x2F.
   */
  private setMemorySize(memoryBytes: number): void {
    const b = this.bytes;
    const put16 = (at: number, value: number) => {
      b[at] = value & 0xff;
      b[at + 1] = value >> 8;
    };
    put16(0x15, 640);
    const extended = Math.min(Math.floor(Math.max(memoryBytes - 0x100000, 0) / 1024), 0xffff);
    put16(0x17, extended);
    put16(0x30, extended);
    const below4g = Math.min(memoryBytes, 2 ** 32);
    put16(0x34, below4g > 0x1000000 ? Math.min(Math.floor((below4g - 0x1000000) / 0x10000), 0xffff) : 0);
    const above4g = memoryBytes > 2 ** 32 ? Math.min(Math.floor((memoryBytes - 2 ** 32) / 0x10000), 0xffffff) : 0;
    b[0x5b] = above4g & 0xff;
    b[0x5c] = (above4g >> 8) & 0xff;
    b[0x5d] = above4g >> 16;
    let sum = 0;
    for (let i = 0x10; i <= 0x2d; i++) sum += b[i]!;
    b[0x2e] = (sum >> 8) & 0xff;
    b[0x2f] = sum & 0xff;
  }
}

/** Days since 1970-01-01 to a Gregorian date (Howard Hinnant's algorithm). */
function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const dayOfEra = z - era * 146097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36524) - Math.floor(dayOfEra / 146096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1;
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}
