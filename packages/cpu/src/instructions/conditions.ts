import type { Cpu } from "../cpu.js";

/**
 * Evaluates condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc): O NO B NB Z NZ BE A
 * S NS P NP L GE LE G.
 */
export function conditionHolds(cpu: Cpu, cc: number): boolean {
  let result: boolean;
  switch (cc >> 1) {
    case 0: result = cpu.getOF(); break;
    case 1: result = cpu.getCF() !== 0; break;
    case 2: result = cpu.getZF(); break;
    case 3: result = cpu.getCF() !== 0 || cpu.getZF(); break;
    case 4: result = cpu.getSF(); break;
    case 5: result = cpu.getPF(); break;
    case 6: result = cpu.getSF() !== cpu.getOF(); break;
    default: result = cpu.getZF() || cpu.getSF() !== cpu.getOF(); break;
  }
  return (cc & 1) === 0 ? result : !result;
}
