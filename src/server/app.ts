/**
 * The Express app serving a Servables with OVMS's REST surface:
 *
 *   GET  /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/N]/ready
 *   GET  /v3/models[/{id}] (+ /v1/ and /v3/v1/ aliases), /v1/config
 *   POST /v1/config/reload
 *   GET  /metrics (when enabled)
 *   POST /v3/*, /v1/*: a servable's graph (routes-v3.ts), for every path no
 *     other route claims (the model lists, /v1/config…)
 *   GET  /graphserve/v1/graphs/{name}[/stats]: graph structure and live stats (routes-graphs.ts)
 *   GET  /, /assets/*: the web UI (web-ui.ts), unless turned off
 *
 * Each route declares its auth (auth.ts), checked before its handler. A
 * known path with the wrong method is 405 with `Allow`; anything else 404.
 * Every error is OpenAI's `{"error":{message,type,param,code}}`.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from "express";
import type { Logger } from "pino";
import type { Servables } from "../servables/types.js";
import { apiKeyChecker, authorize, DEFAULT_API_KEY_SCOPE, type ApiKeyScope, type RouteAuth } from "./auth.js";
import { DEFAULT_BODY_LIMITS, type BodyLimits } from "./body.js";
import { BodyBudget } from "./body-budget.js";
import { DEFAULT_SEND_TIMEOUT_SECONDS } from "./send-timeout.js";
import { locals, sendError, toHttpError, type ModelAliases, type RequestLocals, type ServerContext } from "./context.js";
import { createCors, DEFAULT_CORS, type CorsOptions } from "./cors.js";
import { inRequestScope } from "./crash-guard.js";
import { HttpError } from "./errors.js";
import { clip, loggedError } from "./logging.js";
import { ServerMetrics } from "./metrics.js";
import { inferenceHandler } from "./routes-v3.js";
import { statusHandlers } from "./routes-status.js";
import { GRAPHS_ROUTE, graphsHandler, isStatsPoll } from "./routes-graphs.js";
import { webUi } from "./web-ui.js";

export interface AppOptions {
  readonly servables: Servables;
  readonly logger: Logger;
  /** Require `Authorization: Bearer <apiKey>` on the inference routes. */
  readonly apiKey?: string;
  /** What else the key guards; default "admin" (see auth.ts). */
  readonly apiKeyScope?: ApiKeyScope;
  readonly cors?: CorsOptions;
  /** Default: metrics off (`/metrics` is 404). */
  readonly metrics?: ServerMetrics;
  readonly limits?: Partial<BodyLimits>;
  /** Drop a client that takes none of its response for this long; default DEFAULT_SEND_TIMEOUT_SECONDS. */
  readonly sendTimeoutSeconds?: number;
  /** Names that resolve to a servable without being one (LoRA aliases). */
  readonly aliases?: ModelAliases;
  /** Serve the web UI at `/` (default true). */
  readonly webUi?: boolean;
  /** The built UI's folder; default `<outDir>/web/` (see web-ui.ts). */
  readonly webUiDir?: string;
}

export interface GraphserveApp {
  readonly app: Express;
  readonly metrics: ServerMetrics;
  /** From now on responses carry `Connection: close` (graceful shutdown). */
  startClosing(): void;
}

type Method = "GET" | "POST";
interface Route {
  readonly path: string | RegExp;
  readonly methods: Partial<Record<Method, RequestHandler>>;
  readonly auth: RouteAuth;
}

const MODELS_PREFIX = String.raw`\/(?:v3\/v1|v3|v1)\/models`;
/** The paths a servable's graph may answer (OVMS routes by the body's model, else the path). */
const API_PATH = /^\/(?:v3|v1)\/./;

export function createApp(opts: AppOptions): GraphserveApp {
  const limits: BodyLimits = { ...DEFAULT_BODY_LIMITS, ...opts.limits };
  const ctx: ServerContext = {
    servables: opts.servables,
    logger: opts.logger,
    metrics: opts.metrics ?? new ServerMetrics({ enable: false }),
    limits,
    bodies: new BodyBudget(limits.maxTotalBodyBytes),
    sendTimeoutMs: (opts.sendTimeoutSeconds ?? DEFAULT_SEND_TIMEOUT_SECONDS) * 1000,
    aliases: opts.aliases,
    checkAuth: opts.apiKey === undefined ? undefined : apiKeyChecker(opts.apiKey),
    apiKeyScope: opts.apiKeyScope ?? DEFAULT_API_KEY_SCOPE,
    closing: false,
  };
  const status = statusHandlers(ctx);
  const routes: Route[] = [
    { path: "/v2/health/live", methods: { GET: status.live }, auth: "open" },
    { path: "/v2/health/ready", methods: { GET: status.ready }, auth: "open" },
    { path: /^\/v2\/models\/(.+?)(?:\/versions\/\d+)?\/ready$/, methods: { GET: status.modelReady }, auth: "open" },
    { path: new RegExp(`^${MODELS_PREFIX}$`), methods: { GET: status.list }, auth: "open" },
    // Ids may hold slashes (e.g. OpenVINO/stable-diffusion-v1-5-int8-ov).
    { path: new RegExp(`^${MODELS_PREFIX}\\/(.+)$`), methods: { GET: status.retrieve }, auth: "open" },
    { path: "/v1/config", methods: { GET: status.config }, auth: "admin" },
    { path: "/v1/config/reload", methods: { POST: status.reload }, auth: "admin" },
    // The rest of /v1/config/ is the server's, not a graph's: 404.
    { path: /^\/v1\/config\/./, methods: {}, auth: "open" },
    { path: "/metrics", methods: { GET: status.metrics }, auth: "metrics" },
    { path: GRAPHS_ROUTE, methods: { GET: graphsHandler(ctx) }, auth: "key" },
  ];
  const ui = opts.webUi === false ? undefined : webUi(opts.webUiDir);
  if (ui !== undefined) routes.push({ path: "/", methods: { GET: ui.index }, auth: "open" });
  // Inference takes what no route above claims under /v3/ and /v1/, so a new
  // route there is never swallowed by it. Checked first: it is the hot path.
  const claimed = (path: string) => routes.some((r) => matches(r.path, path));
  const inference: Route = { path: API_PATH, methods: { POST: inferenceHandler(ctx) }, auth: "key" };
  const isInference = (path: string) => API_PATH.test(path) && !claimed(path);

  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  const cors = createCors(opts.cors ?? DEFAULT_CORS);

  app.use((req: Request, res: Response, next: NextFunction) => {
    const l = res.locals as RequestLocals;
    l.start = performance.now();
    l.requestId = requestIdOf(req.headers["x-request-id"]);
    res.setHeader("x-request-id", l.requestId);
    res.once("close", () => logRequest(ctx, req, res));
    if (cors.handle(req, res)) return;
    // Whatever this request starts runs in its scope: an error escaping it fails this request only (crash-guard.ts).
    inRequestScope({ requestId: l.requestId, fail: (e) => failEscaped(ctx, res, e) }, next);
  });

  const guarded = (route: Route, handler: RequestHandler): RequestHandler => {
    const auth = route.auth;
    return (req, res, next) => {
      locals(res).trusted = authorize(auth, ctx.checkAuth, ctx.apiKeyScope, req.headers.authorization);
      return handler(req, res, next);
    };
  };
  const infer = guarded(inference, inference.methods.POST!);
  app.use((req: Request, res: Response, next: NextFunction) => (req.method === "POST" && isInference(req.path) ? infer(req, res, next) : next()));
  for (const route of routes) {
    for (const [method, handler] of Object.entries(route.methods) as [Method, RequestHandler][]) {
      if (method === "GET") app.get(route.path, guarded(route, handler));
      else app.post(route.path, guarded(route, handler));
    }
  }

  // The UI's other files; a path with none falls through to the 404 below.
  if (ui !== undefined) app.use(ui.files);

  // Not routed: 405 on a known path (OPTIONS answers with Allow), else 404.
  app.use((req: Request, res: Response) => {
    const allowed = isInference(req.path) ? ["POST"] : routes.filter((r) => matches(r.path, req.path)).flatMap((r) => Object.keys(r.methods));
    if (allowed.length === 0) throw new HttpError(404, `Invalid request URL: ${req.method} ${req.path}`, { code: "not_found" });
    if (allowed.includes("GET")) allowed.push("HEAD");
    const allow = [...allowed, "OPTIONS"].join(", ");
    if (req.method === "OPTIONS") {
      res.statusCode = 204;
      res.setHeader("Allow", allow);
      res.end();
      return;
    }
    throw new HttpError(405, `Unsupported method ${req.method} for ${req.path}: allowed ${allow}`, { code: "method_not_allowed", headers: { Allow: allow } });
  });

  // Express recognises an error handler by its four parameters.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    // The client went away (an upload cut short): nobody to answer; its request line says 499.
    if (res.writableEnded || req.socket.destroyed) return;
    const http = expressError(err) ?? toHttpError(err);
    // 503 (loading, failed, reloading) is an answer the request line records, not a fault to trace.
    // An HttpError the server chose to send has no stack worth logging; what it wraps does.
    const traced = !(err instanceof HttpError) || err.cause !== undefined;
    if (http.status >= 500 && http.status !== 503) ctx.logger.error({ ...(traced ? { err: loggedError(err) } : {}), requestId: locals(res).requestId }, clip(http.message));
    sendError(ctx, res, http);
  });

  return {
    app,
    metrics: ctx.metrics,
    startClosing() {
      ctx.closing = true;
    },
  };
}

/** A request whose error escaped its handlers: answered with the error if nothing was sent yet, else cut off. */
function failEscaped(ctx: ServerContext, res: Response, e: unknown): void {
  if (res.headersSent) res.destroy();
  else if (!res.destroyed) sendError(ctx, res, toHttpError(e));
}

function matches(path: string | RegExp, actual: string): boolean {
  return typeof path === "string" ? path === actual : path.test(actual);
}

/** A client's id when it is a sane token, else a new one. */
function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === "string" && header.length > 0 && header.length <= 200 && /^[\x21-\x7e]+$/.test(header) ? header : randomUUID();
}

/** Errors Express itself raises (e.g. a malformed %-escape in a route parameter) carry a status. */
function expressError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  const status = (err as { status?: unknown } | undefined)?.status;
  if (typeof status === "number" && status >= 400 && status < 500) return new HttpError(status, (err as Error).message);
  return undefined;
}

/** Probes, scrapes and the UI's stats polls log at debug: at info they would drown the request lines. */
const QUIET = new Set(["/v2/health/live", "/v2/health/ready", "/metrics"]);

function logRequest(ctx: ServerContext, req: Request, res: Response): void {
  const l = locals(res);
  const quiet = QUIET.has(req.path) || isStatsPoll(req.path);
  if (!ctx.logger.isLevelEnabled(quiet ? "debug" : "info")) return;
  // 499 (nginx's "client closed request"): the socket closed before the response ended.
  const status = res.writableFinished ? res.statusCode : 499;
  const line: Record<string, unknown> = { requestId: l.requestId, method: req.method, path: clip(req.path), status, ms: Math.round((performance.now() - l.start) * 100) / 100 };
  if (l.servable !== undefined) line.servable = clip(l.servable);
  if (l.error !== undefined) line.error = clip(l.error);
  if (quiet) ctx.logger.debug(line, "request");
  else ctx.logger.info(line, "request");
}
