/**
 * A failed graph run as an HTTP error, OVMS's way (kept apart from
 * errors.ts so the public entry does not pull in the engine).
 */
import { GraphRunError, StatusError, type StatusCode } from "../engine/run-errors.js";
import { HttpError, OVMS } from "./errors.js";

/** absl status code names for the statuses a calculator may pick, as OVMS prints them. */
const STATUS_CODES: Readonly<Record<number, string>> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "ALREADY_EXISTS",
  412: "FAILED_PRECONDITION",
  413: "RESOURCE_EXHAUSTED",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  501: "UNIMPLEMENTED",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

/** The HTTP status a calculator's StatusError code asks for (gRPC's HTTP mapping; OVMS's 400 for the rest). */
const HTTP_STATUS: Readonly<Partial<Record<StatusCode, number>>> = {
  INVALID_ARGUMENT: 400,
  OUT_OF_RANGE: 400,
  FAILED_PRECONDITION: 412,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  ABORTED: 409,
  RESOURCE_EXHAUSTED: 429,
  CANCELLED: 499,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNKNOWN: 500,
  DATA_LOSS: 500,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
};

/**
 * An HttpError-like value: the class itself, or one that lost its prototype
 * (another copy of graphserve loaded by a user calculator).
 */
export function asHttpError(e: unknown): HttpError | undefined {
  if (e instanceof HttpError) return e;
  if (e instanceof Error && e.name === "HttpError" && typeof (e as { status?: unknown }).status === "number") {
    const o = e as Error & { status: number; type?: string; param?: string | null; code?: string | null };
    return new HttpError(o.status, o.message, { type: o.type, param: o.param, code: o.code, cause: e });
  }
  return undefined;
}

/** A StatusError, or one that crossed a worker thread (its class lost, its name and code kept). */
function asStatusError(e: unknown): { code: StatusCode } | undefined {
  if (e instanceof StatusError) return e;
  const code = e instanceof Error && e.name === "StatusError" ? (e as { code?: unknown }).code : undefined;
  return typeof code === "string" && Object.hasOwn(HTTP_STATUS, code) ? { code: code as StatusCode } : undefined;
}

/**
 * Maps a failed graph run to the response, as OVMS does, with two deliberate
 * differences: a calculator's HttpError chooses the status, and the message
 * starts with the reason.
 *
 * - `message` is `<msg>\n` then OVMS's full text, unchanged: `Mediapipe
 *   execution failed. MP status - INVALID_ARGUMENT: CalculatorGraph::Run()
 *   failed: \nCalculator::Process() for node "X" failed: <msg>`. OVMS's text
 *   alone puts the reason after a line break, behind 120 characters of
 *   status: the openai SDKs print it as `400 Mediapipe execution failed…`,
 *   and a one-line log or UI shows no reason at all. First line = the
 *   reason; the rest keeps every substring (and the suffix) OVMS clients and
 *   logs match on, including the failing node's name. Only a check for
 *   OVMS's text at the very start or for the whole message differs.
 * - The first failure decides. A calculator's StatusError (the engine's way
 *   to say how a call failed) gives the absl code in the text and the HTTP
 *   status its code maps to (NOT_FOUND 404, RESOURCE_EXHAUSTED 429,
 *   UNAVAILABLE 503…); the graph's own (a throttling deadlock) keeps 400. An
 *   HttpError, the optional override, gives status, type, param and code
 *   itself. Anything else is OVMS's MEDIAPIPE_EXECUTION_ERROR, 400 with
 *   INVALID_ARGUMENT (412 with OVMS's precondition text for
 *   FAILED_PRECONDITION).
 */
export function graphFailure(e: unknown): HttpError {
  const failure = e instanceof GraphRunError ? e.errors[0] : undefined;
  const first = e instanceof GraphRunError ? failure?.cause : e;
  const detail = e instanceof Error ? e.message : String(e);
  const reason = first instanceof Error ? first.message : String(first);
  const http = asHttpError(first);
  if (http) {
    const code = STATUS_CODES[http.status] ?? (http.status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT");
    return new HttpError(http.status, `${reason}\n${prefixFor(code)}: ${detail}`, {
      type: http.type,
      param: http.param,
      code: http.code,
      headers: http.headers,
      cause: e,
    });
  }
  const statusError = asStatusError(first);
  const code = statusError?.code ?? "INVALID_ARGUMENT";
  const fromCalculator = statusError !== undefined && failure?.phase !== "Graph";
  const status = fromCalculator ? (HTTP_STATUS[code] ?? 400) : code === "FAILED_PRECONDITION" ? 412 : 400;
  return new HttpError(status, `${reason}\n${prefixFor(code)}: ${detail}`, { cause: e });
}

function prefixFor(code: string): string {
  return code === "FAILED_PRECONDITION" ? `${OVMS.preconditionFailed} - ${code}` : `${OVMS.executionFailed} - ${code}`;
}
