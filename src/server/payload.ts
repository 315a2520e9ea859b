/**
 * What travels on a servable's HTTP streams: the request packet the server
 * puts on `HTTP_REQUEST_PAYLOAD`, and the shapes it accepts back on
 * `HTTP_RESPONSE_PAYLOAD`.
 */
import type { IncomingHttpHeaders } from "node:http";

/** One file part of a multipart/form-data body. */
export interface MultipartFile {
  /** The form field name, e.g. `image` or `image[]`. */
  readonly field: string;
  readonly filename: string;
  /** The part's declared type; clients often send `application/octet-stream`, so sniff the bytes. */
  readonly contentType: string;
  readonly data: Buffer;
}

export interface MultipartBody {
  /** Text fields; a name sent more than once maps to all its values, in order. */
  readonly fields: Readonly<Record<string, string | readonly string[]>>;
  /** File parts, in the order they were sent. */
  readonly files: readonly MultipartFile[];
}

/** The request as a graph sees it on `HTTP_REQUEST_PAYLOAD`. */
export interface HttpRequestPayload {
  readonly method: string;
  /** The request target as sent, query string included. */
  readonly uri: string;
  /** The path without the query string, e.g. `/v3/images/generations`. */
  readonly path: string;
  /** Header names are lower-case (Node's parsing). */
  readonly headers: IncomingHttpHeaders;
  /** The raw body, always present (empty when there was none). */
  readonly body: Buffer;
  /** The parsed body when it was JSON (always an object). */
  readonly json?: Readonly<Record<string, unknown>>;
  /** The parsed body when it was multipart/form-data. */
  readonly multipart?: MultipartBody;
  /**
   * The name the request asked for: the `model` field, or the URI-derived
   * name when it was empty (OVMS's routing). With LoRA aliases this may be
   * an alias of `servable`.
   */
  readonly model: string;
  /** The servable whose graph runs the request. */
  readonly servable: string;
  /** The request asked for a streamed answer (`stream: true`). */
  readonly stream: boolean;
  /** The request id, also sent back as `x-request-id`. */
  readonly requestId: string;
  /** When the server received the request, in `performance.now()` milliseconds of the main thread (for queue-wait figures). */
  readonly receivedAt: number;
  /**
   * Aborted when the client goes away before the response is complete.
   * Not enumerable: it stays on the main thread, so the payload can be
   * cloned to a worker executor (whose context `signal` covers cancellation).
   */
  readonly signal: AbortSignal;
}

/** One server-sent event: `event:` line when given, then `data:` lines (objects are JSON-encoded). */
export interface SseEvent {
  readonly event?: string;
  readonly data: string | object;
  readonly id?: string;
}

export interface HttpResponseObject {
  /** Defaults to 200. */
  readonly status?: number;
  /** Content-Type defaults to application/json. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: string | Uint8Array;
}

export interface HttpSseResponse {
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Written as `text/event-stream`, one event at a time as the iterable yields them. */
  readonly events: AsyncIterable<SseEvent>;
}

/**
 * What a graph may emit on `HTTP_RESPONSE_PAYLOAD`: a body (string or bytes,
 * sent as 200 application/json, as OVMS sends its calculators' strings), a
 * body with status and headers, or an event stream.
 */
export type HttpResponsePayload = string | Uint8Array | HttpResponseObject | HttpSseResponse;

/** The request packet's fields as the server builds them: all but the signal. */
export type HttpRequestInit = Omit<HttpRequestPayload, "signal">;

// The class carries the payload's fields (declared here, assigned in the constructor).
export interface HttpRequest extends HttpRequestInit {}

/**
 * The concrete request packet. A class so `signal` can live in a private
 * field behind a getter: structured cloning copies own enumerable fields
 * only, so the payload crosses into worker threads without the (uncloneable)
 * AbortSignal and without a per-request `defineProperty`.
 */
export class HttpRequest implements HttpRequestPayload {
  readonly #signal: AbortSignal;

  constructor(init: HttpRequestInit, signal: AbortSignal) {
    Object.assign(this, init);
    this.#signal = signal;
  }

  get signal(): AbortSignal {
    return this.#signal;
  }
}

export function isSseResponse(v: unknown): v is HttpSseResponse {
  return typeof v === "object" && v !== null && "events" in v && typeof (v as { events: { [Symbol.asyncIterator]?: unknown } }).events?.[Symbol.asyncIterator] === "function";
}

export function isResponseObject(v: unknown): v is HttpResponseObject {
  if (typeof v !== "object" || v === null || v instanceof Uint8Array || !("body" in v)) return false;
  const body = (v as { body: unknown }).body;
  return typeof body === "string" || body instanceof Uint8Array;
}
