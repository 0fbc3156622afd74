/**
 * The opcode tables. Index = opcode | (operandSize32 << 8) for the one-byte map and
 * 0x200 + (opcode | (operandSize32 << 8)) for the 0F map. One table per CPU model level,
 * built once and shared by every CPU of that model.
 */
import type { Cpu } from "../cpu.js";
import { installArithmetic } from "./arithmetic.js";
import { installControlTransfer } from "./control-transfer.js";
import { installDataTransfer } from "./data-transfer.js";
import { installInputOutput } from "./input-output.js";
import { installShiftsAndBits } from "./shifts-and-bits.js";
import { installStrings } from "./strings.js";
import { installSystem } from "./system.js";

export type InstructionHandler = (cpu: Cpu) => void;

/** Marks prefix bytes; the decoder loop recognises it and never calls it. */
export const PREFIX: InstructionHandler = () => {
  throw new Error("prefix handler called");
};

export const TWO_BYTE = 0x200;

/** Writes handlers into a table; `set(op, h)` installs for both operand sizes. */
export class TableBuilder {
  readonly handlers: InstructionHandler[];

  constructor(readonly modelLevel: number) {
    this.handlers = new Array<InstructionHandler>(0x400).fill(undefinedOpcodeHandler);
  }

  /** Same handler for 16- and 32-bit operand size. */
  set(index: number, handler: InstructionHandler): void {
    this.handlers[index] = handler;
    this.handlers[index | 0x100] = handler;
  }

  /** Separate handlers per operand size. */
  setSized(index: number, handler16: InstructionHandler, handler32: InstructionHandler): void {
    this.handlers[index] = handler16;
    this.handlers[index | 0x100] = handler32;
  }
}

function undefinedOpcodeHandler(cpu: Cpu): void {
  cpu.undefinedOpcode();
}

const tables = new Map<number, readonly InstructionHandler[]>();

/** The shared table for a model level (0 = 8086, 2 = 286, 3 = 386, 6 = Pentium Pro). */
export function instructionTableFor(modelLevel: number): readonly InstructionHandler[] {
  let table = tables.get(modelLevel);
  if (!table) {
    const builder = new TableBuilder(modelLevel);
    for (const prefix of [0x26, 0x2e, 0x36, 0x3e, 0xf0, 0xf2, 0xf3]) builder.set(prefix, PREFIX);
    if (modelLevel >= 3) for (const prefix of [0x64, 0x65, 0x66, 0x67]) builder.set(prefix, PREFIX);
    if (modelLevel === 0) builder.set(0xf1, PREFIX);
    installArithmetic(builder);
    installDataTransfer(builder);
    installControlTransfer(builder);
    installShiftsAndBits(builder);
    installStrings(builder);
    installInputOutput(builder);
    installSystem(builder);
    if (modelLevel >= 2) builder.set(0x0f, (cpu) => cpu.executeTwoByteOpcode());
    table = Object.freeze(builder.handlers.slice());
    tables.set(modelLevel, table);
  }
  return table;
}
