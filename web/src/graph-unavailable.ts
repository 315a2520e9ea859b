/**
 * What the graph view says when the server does not serve its graph: a 404
 * (the servable was retired from the configuration, or no servable has that
 * name) or a 503 `model_failed` (its last load failed; the message, already
 * worded by errors.ts, says why). Worded for the graph view, not the
 * playground's model picker.
 */
import { ApiError } from "./api.js";

export interface Unavailable {
  /** For the "State: …" line. */
  readonly state: "retired" | "not found" | "failed to load";
  /** A sentence for the alert or the live line. */
  readonly text: string;
}

/** null for other failures (a busy or unreachable server, a wrong key). */
export function graphUnavailable(name: string, err: unknown): Unavailable | null {
  if (!(err instanceof ApiError)) return null;
  if (err.status === 503 && err.code === "model_failed") return { state: "failed to load", text: err.message.endsWith(".") ? err.message : `${err.message}.` };
  if (err.status !== 404) return null;
  if (/retired/i.test(err.serverMessage)) {
    return { state: "retired", text: `${name} is no longer served: it was retired (removed from the server's configuration).` };
  }
  return { state: "not found", text: `The server serves no graph named ${name}: it may have been removed, or the name is misspelt.` };
}
