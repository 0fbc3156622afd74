export { Uart16550 } from "./uart16550.js";
export type { SerialBackend } from "./uart16550.js";
export { DebugExit } from "./debug-exit.js";
