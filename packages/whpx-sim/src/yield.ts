/**
 * Resolves on a later turn of the event loop (a macrotask), so timers, sockets and
 * cancel calls get to run between time slices. setImmediate where it exists (Node),
 * a MessageChannel elsewhere (browsers); setTimeout(0) is avoided for its 1-4 ms clamp.
 */
type ImmediateScheduler = (callback: () => void) => unknown;

interface MessagePortLike {
  onmessage: (() => void) | null;
  postMessage(message: unknown): void;
}
declare const MessageChannel: new () => { port1: MessagePortLike; port2: MessagePortLike };

const scheduleImmediate: ImmediateScheduler = (() => {
  const setImmediateFunction = (globalThis as { setImmediate?: ImmediateScheduler }).setImmediate;
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
