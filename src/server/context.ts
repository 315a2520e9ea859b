/**
 * What the route handlers share: the registry, limits, logger, metrics, and
 * the helpers that write responses the same way everywhere.
 */
import type { Response } from "express";
import type { Logger } from "pino";
import type { Servables } from "../servables/types.js";
import type { ApiKeyScope } from "./auth.js";
import type { BodyLimits } from "./body.js";
import type { BodyBudget } from "./body-budget.js";
import { HttpError } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";
import { endPaced } from "./send-timeout.js";

/**
 * The hook for names that are not servables (OVMS's LoRA adapter aliases):
 * a request naming an alias runs its servable's graph, with `model` set to
 * the alias.
 */
export interface ModelAliases {
  /** The servable serving `name`, or undefined. Consulted only when no servable has that name. */
  resolve(name: string): string | undefined;
  /** Listed in /v3/models after the servables, while their servable is available. */
  list(): readonly { readonly alias: string; readonly servable: string }[];
}

export interface ServerContext {
  readonly servables: Servables;
  readonly logger: Logger;
  readonly metrics: ServerMetrics;
  readonly limits: BodyLimits;
  /** The bytes of request bodies held at once (`limits.maxTotalBodyBytes`). */
  readonly bodies: BodyBudget;
  /** A client that takes none of its response for this long is dropped (send-timeout.ts). */
  readonly sendTimeoutMs: number;
  readonly aliases: ModelAliases | undefined;
  /** Throws 401 unless the Authorization header carries the key; undefined when no key is set. */
  readonly checkAuth: ((authorization: string | undefined) => void) | undefined;
  /** What `checkAuth` guards besides the inference routes. */
  readonly apiKeyScope: ApiKeyScope;
  /** Set when shutting down: responses ask the client to close the connection. */
  closing: boolean;
}

/** Per-request facts kept on `res.locals`, for the log line. */
export interface RequestLocals {
  requestId: string;
  /** performance.now() at arrival. */
  start: number;
  servable?: string;
  error?: string;
  /** The caller showed the API key, or none is set (set from the route's declared auth). */
  trusted: boolean;
}

export const locals = (res: Response): RequestLocals => res.locals as RequestLocals;

/** Writes a complete response; the body is sent as is, to a client that keeps taking it (send-timeout.ts). */
export function sendBody(ctx: ServerContext, res: Response, status: number, body: string | Uint8Array, contentType: string, headers?: Readonly<Record<string, string>>): void {
  res.statusCode = status;
  if (headers !== undefined) for (const k in headers) res.setHeader(k, headers[k]);
  if (!res.hasHeader("Content-Type")) res.setHeader("Content-Type", contentType);
  if (ctx.closing) res.setHeader("Connection", "close");
  endPaced(res, body, ctx.sendTimeoutMs);
}

export function sendJson(ctx: ServerContext, res: Response, status: number, value: unknown): void {
  sendBody(ctx, res, status, JSON.stringify(value), "application/json");
}

/** An empty 200 (OVMS's health answers). */
export function sendEmpty(ctx: ServerContext, res: Response, status = 200): void {
  res.statusCode = status;
  if (ctx.closing) res.setHeader("Connection", "close");
  res.end();
}

export function sendError(ctx: ServerContext, res: Response, err: HttpError): void {
  locals(res).error = err.message;
  if (res.headersSent) {
    // Mid-stream (SSE): the status is gone; the SDKs throw on an `error` event.
    if (!res.writableEnded) endPaced(res, `event: error\ndata: ${JSON.stringify(err.toBody())}\n\n`, ctx.sendTimeoutMs);
    return;
  }
  // The message may echo what the client sent (a path, a field): never let a browser sniff it into HTML.
  sendBody(ctx, res, err.status, JSON.stringify(err.toBody()), "application/json", { ...err.headers, "X-Content-Type-Options": "nosniff" });
}

/** Any thrown value as an HttpError: unknown ones are 500s whose details stay in the log. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  return new HttpError(500, `Internal server error: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
