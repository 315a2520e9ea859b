/**
 * Dropping clients that stop reading. What a client does not take stays in
 * memory (in Node's buffer, once the kernel's are full) for as long as its
 * connection lives, and a stream's generation keeps its slot; so a client
 * that takes nothing for the send timeout is disconnected, which cancels its
 * generation like any disconnect. As nginx's `send_timeout`, the time runs
 * between two writes, not over the whole answer: large answers and events
 * are written a piece at a time, each taken before the next, so a slow link
 * that keeps reading is never cut, and Node holds one piece past its buffer.
 */
import type { ServerResponse } from "node:http";

/** Generous for a slow link: within it, the client must take one piece (64 KiB). */
export const DEFAULT_SEND_TIMEOUT_SECONDS = 30;

const PIECE = 64 * 1024;

/**
 * Waits until `res`'s buffer has drained (true), or its connection closed
 * (false). Without a drain for `timeoutMs` the connection is destroyed.
 */
function drained(res: ServerResponse, timeoutMs: number): Promise<boolean> {
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

/**
 * Writes `data` a piece at a time, each taken by the connection before the
 * next. Resolves false when the client left, or took nothing for
 * `timeoutMs` (then it is disconnected).
 */
export async function writePaced(res: ServerResponse, data: string | Uint8Array, timeoutMs: number): Promise<boolean> {
  const bytes = typeof data === "string" && data.length * 3 > PIECE ? Buffer.from(data) : data;
  if (typeof bytes === "string") return res.write(bytes) || drained(res, timeoutMs);
  for (let at = 0; at < bytes.length; at += PIECE) {
    if (res.destroyed) return false;
    if (!res.write(bytes.subarray(at, at + PIECE)) && !(await drained(res, timeoutMs))) return false;
  }
  return !res.destroyed;
}

/** Ends `res` with `body`; a client that stops taking it for `timeoutMs` is disconnected. */
export function endPaced(res: ServerResponse, body: string | Uint8Array, timeoutMs: number): void {
  const size = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
  if (size <= PIECE) {
    res.end(body);
    flushWithin(res, timeoutMs);
    return;
  }
  res.setHeader("Content-Length", size);
  void writePaced(res, body, timeoutMs).then((ok) => {
    if (!ok) return;
    res.end();
    flushWithin(res, timeoutMs);
  });
}

/** For a response just ended: destroys its connection unless the rest of it is handed to the kernel within `timeoutMs`. */
export function flushWithin(res: ServerResponse, timeoutMs: number): void {
  if (res.writableFinished || res.destroyed) return;
  const timer = setTimeout(() => res.destroy(), timeoutMs);
  const clear = () => clearTimeout(timer);
  res.once("finish", clear);
  res.once("close", clear);
}
