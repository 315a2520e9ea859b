/**
 * Telling a client that left from one that only half-closed. Both send a
 * FIN; the one that left answers the next bytes it gets with a reset, the
 * other still reads. Node ends the connection at the FIN unless told to
 * allow half-open ones, so a client that shut its sending side after the
 * request (legal HTTP/1.1) lost its answer. Here the FIN starts a probe:
 * bytes every client skips (an interim `100 Continue`, which HTTP/1.1
 * clients must accept, if nothing was sent yet; an SSE comment line in an
 * event stream), then empty writes, which fail once the reset has come
 * back: then the client is gone.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";

/** How often a half-closed connection is checked for a reset (a loopback round trip is microseconds, a WAN one ~100 ms). */
const PROBE_MS = 100;

/** Keeps connections open after the client's FIN, for the answer (see watchClient). */
export function allowHalfClose(server: Server): void {
  // Node's own switch (an http.Server field since v0.x, not in its typings): at a FIN, keep the response going.
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
}

/**
 * Calls `gone` once if the client goes away before the response has been
 * written in full: its connection closed, or it half-closed and then
 * answered the probe with a reset.
 */
export function watchClient(req: IncomingMessage, res: ServerResponse, gone: () => void): void {
  const socket = req.socket;
  let probe: NodeJS.Timeout | undefined;
  const onEnd = () => {
    if (res.writableFinished) return;
    if (!res.headersSent) res.writeContinue();
    else if (String(res.getHeader("content-type")).startsWith("text/event-stream")) res.write(":\n\n");
    probe = setInterval(() => socket.write(EMPTY), PROBE_MS);
  };
  if (socket.readableEnded) onEnd();
  else socket.once("end", onEnd);
  res.once("finish", () => clearInterval(probe));
  res.once("close", () => {
    clearInterval(probe);
    socket.off("end", onEnd);
    if (!res.writableFinished) gone();
  });
}

const EMPTY = Buffer.alloc(0);
