import { Vm, type ExecutionEngine, type ExitAction, type VmState } from "@vmmkit/vm";

// The exits this stand-in accelerator reports (a real engine's exits carry registers too).
interface Exit {
  readonly exitReason: "io" | "halt";
}

// A stand-in accelerator: each run of the vCPU "executes" up to the next scripted exit.
const script: Exit[] = [{ exitReason: "io" }, { exitReason: "io" }, { exitReason: "halt" }];
const engine: ExecutionEngine<Exit> = {
  runVcpu: async () => script.shift() ?? { exitReason: "halt" },
  cancelVcpu: () => {},
};

export const exitCounts = { io: 0, halt: 0 };

const vm = new Vm<Exit>({
  cpuCount: 1,
  engine,
  handleExit: (exit): ExitAction => {
    exitCounts[exit.exitReason]++;
    return exit.exitReason === "halt" ? "powerOff" : "resume";
  },
});

export const states: VmState[] = [vm.state];
vm.onStateChange((state) => states.push(state));

await vm.powerOn();
export const finalState = await vm.whenStopped(); // "OFF"
// states: CREATED, POWERING_ON, RUNNING, POWERING_OFF, OFF
// exitCounts: { io: 2, halt: 1 }
