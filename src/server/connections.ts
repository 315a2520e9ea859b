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
 *   sending its request body longest, so a new client such as a health
 *   probe still gets in; only when every socket holds a whole request being
 *   served is the newcomer refused.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

/** Defaults: far above what an image server's slots and queues take, far below common fd limits. */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { maxConnections: 1000, headersTimeoutMs: 10_000, requestTimeoutMs: 120_000 };

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

/** Applies the connection cap to `server`. */
export function capConnections(server: Server, maxConnections: number): void {
  // Insertion-ordered: the first idle socket is the one idle longest, the first busy one the one busy longest.
  const idle = new Set<Socket>();
  /** Sockets with requests in progress: the latest one, and how many (pipelining). */
  const busy = new Map<Socket, { latest: IncomingMessage; count: number }>();
  /** The socket to give up for a newcomer: the longest idle, else the longest still sending its request body. */
  const victim = (): Socket | undefined => {
    const oldest = idle.values().next();
    if (oldest.done !== true) return oldest.value;
    for (const [socket, b] of busy) if (!b.latest.complete) return socket;
    return undefined;
  };
  server.on("connection", (socket: Socket) => {
    if (idle.size + busy.size >= maxConnections) {
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
    if (b === undefined) busy.set(socket, { latest: req, count: 1 });
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
