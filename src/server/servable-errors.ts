/**
 * The answer for a servable that is configured but not serving, shared by
 * the inference routes and the graph endpoints so both tell the same story:
 *
 * - retired or retiring: 404 "Mediapipe is retired";
 * - loading (or starting): 503 "Mediapipe is not loaded yet", `Retry-After: 1`;
 * - failed to load: 503 with OVMS's text followed by why (the reason
 *   `GET /v1/config` reports), code `model_failed`, `x-should-retry: false`
 *   and no Retry-After: retrying cannot help until the config is fixed.
 *
 * OVMS's text leads each message, so clients matching on it keep working;
 * `code` tells a failure from a load in progress.
 */
import type { ServableStatus } from "../servables/types.js";
import { HttpError, OVMS } from "./errors.js";

/** `code` of the 503 for a servable whose last load failed. */
export const MODEL_FAILED = "model_failed";

/**
 * `name`'s error for its status `st`. `param`: the request field that named
 * the servable (`"model"` on inference routes), set on the 404 only, since
 * a servable that is not loaded is no fault of the request.
 */
export function servableUnavailable(name: string, st: ServableStatus, param: string | null = null): HttpError {
  if (st.state === "END" || st.state === "UNLOADING") return new HttpError(404, OVMS.graphRetired, { param, code: "model_not_found" });
  if (st.errorCode === "OK") return new HttpError(503, OVMS.graphNotLoaded, { headers: { "Retry-After": "1" } });
  return new HttpError(503, `${OVMS.graphNotLoaded} - servable "${name}" failed to load: ${st.errorMessage}`, {
    code: MODEL_FAILED,
    headers: { "x-should-retry": "false" },
  });
}
