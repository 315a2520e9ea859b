/**
 * Dropping clients that stop reading. What a client does not take stays in
 * memory (in Node's buffer, once the kernel's are full) for as long as its
 * connection lives, and a stream's generation keeps its slot; so a client
 * that takes none of the data waiting for it for the send timeout is
 * disconnected, which cancels its generation like any disconnect (nginx's
 * `send_timeout`, per write: the event writer waits for "drain" after each
 * event, and an ended response must be flushed in time).
 */
import type { ServerResponse } from "node:http";

/** Generous for a slow link: it must take in this time only what one event leaves past the buffer's high-water mark. */
export const DEFAULT_SEND_TIMEOUT_SECONDS = 30;

/**
 * Waits until `res`'s buffer has drained (true), or its connection closed
 * (false). Without a drain for `timeoutMs` the connection is destroyed.
 */
export function drained(res: ServerResponse, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      res.off("drain", onDrain);
      res.off("close", onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(() => res.destroy(), timeoutMs);
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}

/** For a response just ended: destroys its connection unless all of it is flushed within `timeoutMs`. */
export function flushWithin(res: ServerResponse, timeoutMs: number): void {
  if (res.writableFinished || res.destroyed) return;
  const timer = setTimeout(() => res.destroy(), timeoutMs);
  const clear = () => clearTimeout(timer);
  res.once("finish", clear);
  res.once("close", clear);
}
