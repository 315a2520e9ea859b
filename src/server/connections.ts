/**
 * Bounds on connections, so that clients who open sockets and never finish
 * a request (slowloris, or just many idle keep-alives) cannot exhaust the
 * process's file descriptors or keep /v2/health/live from answering:
 *
 * - the request's headers must arrive within `headersTimeoutMs`, the whole
 *   request (body included) within `requestTimeoutMs`; Node checks both
 *   every `connectionsCheckingInterval` and closes the connection with 408;
 * - at most `maxConnections` sockets are open. One more evicts the socket
 *   that has been idle longest (no request in progress: still sending its
 *   headers, or kept alive between requests), else the one that has been
 *   sending its request body longest, else one whose client has taken none
 *   of its answer for `stalledReaderMs` (its send buffer full: a reader that
 *   stopped), so a new client such as a health probe still gets in; only
 *   when every socket holds a whole request being served to a client that
 *   reads is the newcomer refused. A stream waiting for its next event sends
 *   nothing and is never behind, however long it runs.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** How long a client must have taken nothing of a full send buffer before its connection counts as stalled (no flag). */
  readonly stalledReaderMs: number;
}

/** Defaults: far above what an image server's slots and queues take, far below common fd limits. */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { maxConnections: 1000, headersTimeoutMs: 10_000, requestTimeoutMs: 120_000, stalledReaderMs: 10_000 };

/** The `http.createServer` options carrying the time limits (Node enforces them itself). */
export function serverTimeouts(limits: ConnectionLimits) {
  const headersTimeout = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return {
    headersTimeout,
    requestTimeout: limits.requestTimeoutMs,
    // Node's default, 30 s, would let a 10 s limit run to 40 s.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 2))),
  };
}

/** How often sockets with a request in progress are checked for a client that stopped reading. */
const SWEEP_MS = 1000;

/** Applies the connection cap to `server`. */
export function capConnections(server: Server, limits: Pick<ConnectionLimits, "maxConnections" | "stalledReaderMs">): void {
  // Insertion-ordered: the first idle socket is the one idle longest, the first busy one the one busy longest.
  const idle = new Set<Socket>();
  /**
   * Sockets with requests in progress: the latest one, how many (pipelining),
   * and since when the send buffer has been full with no drain (undefined: not behind).
   */
  const busy = new Map<Socket, { latest: IncomingMessage; count: number; behindSince: number | undefined }>();
  /** The socket to give up for a newcomer: the longest idle, else the longest still sending its request body, else a stalled reader. */
  const victim = (): Socket | undefined => {
    const oldest = idle.values().next();
    if (oldest.done !== true) return oldest.value;
    for (const [socket, b] of busy) if (!b.latest.complete) return socket;
    const now = performance.now();
    for (const [socket, b] of busy) if (b.behindSince !== undefined && now - b.behindSince >= limits.stalledReaderMs) return socket;
    return undefined;
  };
  // A client that keeps reading may be behind at every sweep; its "drain" events say it took what was sent.
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const [socket, b] of busy) b.behindSince = socket.writableNeedDrain ? (b.behindSince ?? now) : undefined;
  }, SWEEP_MS);
  sweep.unref();
  server.once("close", () => clearInterval(sweep));
  server.on("connection", (socket: Socket) => {
    if (idle.size + busy.size >= limits.maxConnections) {
      const old = victim();
      if (old === undefined) {
        socket.destroy();
        return;
      }
      idle.delete(old);
      busy.delete(old);
      old.destroy();
    }
    idle.add(socket);
    socket.on("drain", () => {
      const b = busy.get(socket);
      if (b !== undefined) b.behindSince = undefined;
    });
    socket.once("close", () => {
      idle.delete(socket);
      busy.delete(socket);
    });
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    if (socket.destroyed) return;
    idle.delete(socket);
    const b = busy.get(socket);
    if (b === undefined) busy.set(socket, { latest: req, count: 1, behindSince: undefined });
    else {
      b.latest = req;
      b.count++;
    }
    res.once("close", () => {
      const b = busy.get(socket);
      if (b === undefined) return;
      if (--b.count > 0) return;
      busy.delete(socket);
      if (!socket.destroyed) idle.add(socket);
    });
  });
}
