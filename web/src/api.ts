/**
 * The one way this page talks to the server: adds the API key as a bearer
 * token and turns every failure (an error status, an unreachable server)
 * into an `ApiError` whose message is already a readable sentence.
 * Aborts pass through untouched as the fetch's AbortError.
 */
import { describeHttpFailure, NETWORK_DOWN, parseErrorBody } from "./errors.js";

export class ApiError extends Error {
  /** null when the server was not reached. */
  readonly status: number | null;
  /** The request field the server blamed, if any (the playground focuses its field). */
  readonly param: string | null;
  /** The server's own message (before rewording) and error code, "" / null when it sent none. */
  readonly serverMessage: string;
  readonly code: string | null;

  constructor(message: string, status: number | null, param: string | null = null, serverMessage = "", code: string | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.param = param;
    this.serverMessage = serverMessage;
    this.code = code;
  }
}

export const isAbort = (e: unknown): boolean => e instanceof DOMException && e.name === "AbortError";

/** `model`, when the request is about one servable, names it in error messages. */
export interface Api {
  /** A successful response (2xx); throws ApiError otherwise. */
  request(path: string, init?: RequestInit, model?: string): Promise<Response>;
  /** GET path as JSON. */
  json<T>(path: string, signal?: AbortSignal, model?: string): Promise<T>;
}

export function createApi(apiKey: () => string): Api {
  async function request(path: string, init: RequestInit = {}, model?: string): Promise<Response> {
    const headers = new Headers(init.headers);
    const key = apiKey().trim();
    if (key !== "") headers.set("Authorization", `Bearer ${key}`);
    let res: Response;
    try {
      res = await fetch(path, { ...init, headers });
    } catch (e) {
      if (isAbort(e)) throw e;
      throw new ApiError(NETWORK_DOWN, null);
    }
    if (res.ok) return res;
    let text = "";
    try {
      text = await res.text();
    } catch (e) {
      if (isAbort(e)) throw e;
    }
    const error = parseErrorBody(text);
    const message = describeHttpFailure({
      status: res.status, statusText: res.statusText, error, model,
      retryAfter: res.headers.get("Retry-After"), shouldRetry: res.headers.get("x-should-retry"),
    });
    throw new ApiError(message, res.status, error?.param ?? null, error?.message ?? "", error?.code ?? null);
  }

  async function json<T>(path: string, signal?: AbortSignal, model?: string): Promise<T> {
    const res = await request(path, { signal, headers: { Accept: "application/json" } }, model);
    try {
      return (await res.json()) as T;
    } catch (e) {
      if (isAbort(e)) throw e;
      throw new ApiError(`The server's answer to ${path} is not valid JSON`, res.status);
    }
  }

  return { request, json };
}
