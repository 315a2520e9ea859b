/**
 * POST /v3/* and /v1/*: OVMS's routing of a request into a servable's graph.
 *
 * 1. API key (when set), then the Content-Type: JSON, multipart, or none
 *    (URI routing, as OVMS); anything else is 415 rather than OVMS's silent
 *    URI routing into a JSON parse error.
 * 2. The body is read under the size limits (per body, smaller for JSON,
 *    and all bodies held at once) and parsed; the `model` field
 *    names the servable. An empty `model` (or no body type) routes by URI:
 *    `/v3/images/generations` → `images/generations`, as OVMS's uri.substr(4).
 * 3. The servable must be AVAILABLE: unknown 404, retired 404, loading 503,
 *    failed to load 503 with the reason (servable-errors.ts).
 *    Its lease keeps it alive until the response is written, even if a
 *    reload removes it meanwhile.
 * 4. The request packet goes on the graph's HTTP_REQUEST_PAYLOAD stream; the
 *    first HTTP_RESPONSE_PAYLOAD packet becomes the response (http-streams.ts).
 */
import { performance } from "node:perf_hooks";
import type { Request, Response } from "express";
import { httpStreams, RESPONSE_TAG } from "../servables/http-streams.js";
import type { ServableLease } from "../servables/types.js";
import { bodyKind, bodyLimit, parseJsonBody, parseMultipart, readBody } from "./body.js";
import { locals, sendBody, sendError, toHttpError, type ServerContext } from "./context.js";
import { HttpError, OVMS } from "./errors.js";
import { watchClient } from "./client-gone.js";
import { loggedError } from "./logging.js";
import { graphFailure } from "./graph-errors.js";
import { flushWithin, writePaced } from "./send-timeout.js";
import { servableUnavailable } from "./servable-errors.js";
import type { ServableMetrics } from "./metrics.js";
import { HttpRequest, isResponseObject, isSseResponse, type HttpSseResponse, type MultipartBody, type SseEvent } from "./payload.js";
import { GraphRunError } from "../engine/run-errors.js";

const unsupportedType = (type: string) =>
  new HttpError(415, `Unsupported Content-Type "${type}": send application/json, or multipart/form-data for file uploads`, { code: "unsupported_content_type" });

export function inferenceHandler(ctx: ServerContext) {
  return async function infer(req: Request, res: Response): Promise<void> {
    const contentType = req.headers["content-type"];
    const kind = bodyKind(contentType);
    if (kind === "other") throw unsupportedType(contentType!);
    const body = await readBody(req, res, bodyLimit(kind, ctx.limits), kind, ctx.bodies);

    let json: Record<string, unknown> | undefined;
    let multipart: MultipartBody | undefined;
    let model = "";
    let stream = false;
    if (kind === "json") {
      json = parseJsonBody(body, ctx.limits.maxJsonDepth);
      // OVMS answers a missing or non-string model with 412; 400 is the same
      // failure in the status OpenAI SDKs map to BadRequestError. A missing
      // key is an error rather than URI routing: a client that forgot it is
      // told so instead of getting a "not found" for "images/generations".
      if (!Object.hasOwn(json, "model")) throw new HttpError(400, OVMS.modelMissing, { param: "model" });
      if (typeof json.model !== "string") throw new HttpError(400, OVMS.modelNotString, { param: "model" });
      model = json.model;
      stream = json.stream === true;
    } else if (kind === "multipart") {
      multipart = await parseMultipart(body, req.headers, ctx.limits.maxBodyBytes);
      const m = multipart.fields.model;
      model = typeof m === "string" ? m : (m?.[0] ?? "");
      stream = multipart.fields.stream === "true";
    }
    const path = req.path;
    if (model === "") model = path.slice(4);

    const servableName = ctx.servables.get(model) !== undefined ? model : (ctx.aliases?.resolve(model) ?? model);
    locals(res).servable = servableName;
    const servable = ctx.servables.get(servableName);
    if (servable === undefined) throw new HttpError(404, OVMS.graphNotFound, { param: "model", code: "model_not_found" });
    const metrics = ctx.metrics.for(servableName, stream ? "Stream" : "Unary");
    const overloaded = servable.overloaded();
    if (overloaded !== undefined) {
      metrics.rejected();
      throw new HttpError(429, `Servable "${servableName}" is at capacity: every generation slot and queue place is taken; retry after ${overloaded.retryAfterSeconds} s`, {
        type: "rate_limit_error",
        code: "queue_full",
        headers: { "Retry-After": String(overloaded.retryAfterSeconds) },
      });
    }
    const lease = servable.acquire();
    if (lease === undefined) {
      metrics.rejected();
      throw servableUnavailable(servableName, servable.status(), "model");
    }
    try {
      await runGraph(ctx, req, res, lease, metrics, { body, json, multipart, model, servable: servableName, stream });
    } finally {
      lease.release();
    }
  };
}

interface Parsed {
  readonly body: Buffer;
  readonly json: Record<string, unknown> | undefined;
  readonly multipart: MultipartBody | undefined;
  readonly model: string;
  readonly servable: string;
  readonly stream: boolean;
}

async function runGraph(ctx: ServerContext, req: Request, res: Response, lease: ServableLease, metrics: ServableMetrics, p: Parsed): Promise<void> {
  // Checked when the graph loaded (servable.ts): a graph without them is never served.
  const { input, output } = httpStreams(lease.graph);
  // The client going away before the response ended cancels the run (a half-close alone does not).
  const abort = new AbortController();
  watchClient(req, res, () => abort.abort(new DOMException("The client closed the connection.", "AbortError")));
  const payload = new HttpRequest(
    {
      method: req.method,
      uri: req.originalUrl,
      path: req.path,
      headers: req.headers,
      body: p.body,
      // Only the body kind the request had is a field at all.
      ...(p.json !== undefined ? { json: p.json } : {}),
      ...(p.multipart !== undefined ? { multipart: p.multipart } : {}),
      model: p.model,
      servable: p.servable,
      stream: p.stream,
      requestId: locals(res).requestId,
      receivedAt: locals(res).start,
    },
    abort.signal,
  );

  metrics.accepted();
  metrics.graphStarted();
  const started = performance.now();
  let value: unknown;
  try {
    const outputs = await lease.runner.run({ [input]: payload }, { signal: abort.signal });
    value = outputs[output]?.[0]?.value;
  } catch (e) {
    metrics.graphEnded();
    metrics.processingTimeUs((performance.now() - started) * 1000);
    if (abort.signal.aborted) return; // nobody to answer
    metrics.graphError();
    throw e instanceof GraphRunError || e instanceof HttpError ? graphFailure(e) : toHttpError(e);
  }
  metrics.processingTimeUs((performance.now() - started) * 1000);
  try {
    if (abort.signal.aborted) return;
    if (typeof value === "string" || value instanceof Uint8Array) {
      sendBody(ctx, res, 200, value, "application/json");
      metrics.responses();
    } else if (isSseResponse(value)) {
      await writeEvents(ctx, res, value, abort.signal, metrics);
    } else if (isResponseObject(value)) {
      sendBody(ctx, res, value.status ?? 200, value.body, "application/json", value.headers);
      metrics.responses();
    } else {
      metrics.graphError();
      throw new HttpError(
        500,
        value === undefined
          ? `Servable "${p.servable}" finished without a packet on its ${RESPONSE_TAG} stream`
          : `Servable "${p.servable}" sent an unsupported ${RESPONSE_TAG} value: expected a string, bytes, {status?, headers?, body} or {events}`,
      );
    }
  } finally {
    metrics.graphEnded();
    metrics.requestLatencyUs((performance.now() - locals(res).start) * 1000);
  }
}

/** `event:`/`id:` lines, one `data:` line per line of data, blank line. */
export function formatEvent(ev: SseEvent): string {
  let out = "";
  if (ev.event !== undefined) out += `event: ${ev.event}\n`;
  if (ev.id !== undefined) out += `id: ${ev.id}\n`;
  const data = typeof ev.data === "string" ? ev.data : JSON.stringify(ev.data);
  for (const line of data.split(/\r?\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/**
 * Streams events as they come. A client that disconnects ends the loop at
 * once (the pending `next()` is raced against the abort) and the iterator
 * is told to `return()`, and so does one that stops reading for the send
 * timeout; an iterator that throws ends the stream with an `error` event in
 * OpenAI's shape.
 */
async function writeEvents(ctx: ServerContext, res: Response, sse: HttpSseResponse, signal: AbortSignal, metrics: ServableMetrics): Promise<void> {
  res.statusCode = sse.status ?? 200;
  res.setHeader("Content-Type", "text/event-stream");
  res.setHeader("Cache-Control", "no-cache");
  res.setHeader("X-Accel-Buffering", "no");
  if (sse.headers !== undefined) for (const k in sse.headers) res.setHeader(k, sse.headers[k]);
  if (ctx.closing) res.setHeader("Connection", "close");
  res.flushHeaders();
  const it = sse.events[Symbol.asyncIterator]();
  const aborted = new Promise<"aborted">((resolve) => {
    if (signal.aborted) resolve("aborted");
    else signal.addEventListener("abort", () => resolve("aborted"), { once: true });
  });
  try {
    for (;;) {
      const r = await Promise.race([it.next(), aborted]);
      if (r === "aborted") {
        void Promise.resolve(it.return?.()).catch(() => undefined);
        return;
      }
      if (r.done) break;
      // The next event is not taken until this one is (or the client is dropped): one piece past the buffer at most.
      if (!(await writePaced(res, formatEvent(r.value), ctx.sendTimeoutMs))) {
        void Promise.resolve(it.return?.()).catch(() => undefined);
        return;
      }
      metrics.responses();
    }
    res.end();
    flushWithin(res, ctx.sendTimeoutMs);
  } catch (e) {
    metrics.graphError();
    const err = e instanceof HttpError ? e : toHttpError(e);
    ctx.logger.warn({ err: loggedError(e), requestId: locals(res).requestId }, "event stream failed");
    sendError(ctx, res, err);
  }
}
