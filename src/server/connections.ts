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
 *   headers, or kept alive between requests), so a new client such as a
 *   health probe still gets in; only when every socket is serving a request
 *   is the newcomer refused.
 */
import type { Server } from "node:http";
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
  // Insertion-ordered: the first idle socket is the one idle longest.
  const idle = new Set<Socket>();
  const busy = new Map<Socket, number>();
  server.on("connection", (socket: Socket) => {
    if (idle.size + busy.size >= maxConnections) {
      const oldest = idle.values().next();
      if (oldest.done === true) {
        socket.destroy();
        return;
      }
      idle.delete(oldest.value);
      oldest.value.destroy();
    }
    idle.add(socket);
    socket.once("close", () => {
      idle.delete(socket);
      busy.delete(socket);
    });
  });
  server.on("request", (req, res) => {
    const socket = req.socket;
    if (socket.destroyed) return;
    idle.delete(socket);
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    res.once("close", () => {
      const n = busy.get(socket);
      if (n === undefined) return;
      if (n > 1) {
        busy.set(socket, n - 1);
        return;
      }
      busy.delete(socket);
      if (!socket.destroyed) idle.add(socket);
    });
  });
}
