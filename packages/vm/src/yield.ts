/**
 * Resolves on a later turn of the event loop (a macrotask), so other vCPUs' loops, timers
 * and cancels run between slices: setImmediate where it exists (Node), a MessageChannel
 * elsewhere; setTimeout(0) is avoided for its 1-4 ms clamp.
 */
interface MessagePortLike {
  onmessage: (() => void) | null;
  postMessage(message: unknown): void;
}
declare const MessageChannel: new () => { port1: MessagePortLike; port2: MessagePortLike };
type Scheduler = (callback: () => void) => unknown;

const scheduleImmediate: Scheduler = (() => {
  const setImmediateFunction = (globalThis as { setImmediate?: Scheduler }).setImmediate;
  if (typeof setImmediateFunction === "function") return (callback: () => void) => setImmediateFunction(callback);
  const channel = new MessageChannel();
  const queue: (() => void)[] = [];
  channel.port1.onmessage = () => queue.shift()?.();
  return (callback: () => void) => {
    queue.push(callback);
    channel.port2.postMessage(0);
  };
})();

export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => scheduleImmediate(resolve));
}

declare const setTimeout: (callback: () => void, ms: number) => unknown;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
