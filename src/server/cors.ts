/**
 * CORS with OVMS's flags: `--allowed_origins`, `--allowed_methods`,
 * `--allowed_headers` (comma lists, default `*`) and `--allow_credentials`.
 * Every response to a request with an allowed Origin carries the headers;
 * a preflight (OPTIONS with Access-Control-Request-Method) is answered 204
 * here, before auth: browsers never send credentials on a preflight.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export interface CorsOptions {
  /** `["*"]` or exact origins such as `https://app.example`. */
  readonly allowedOrigins: readonly string[];
  readonly allowedMethods: readonly string[];
  readonly allowedHeaders: readonly string[];
  readonly allowCredentials: boolean;
}

export const DEFAULT_CORS: CorsOptions = { allowedOrigins: ["*"], allowedMethods: ["*"], allowedHeaders: ["*"], allowCredentials: false };

/** A comma list flag value: trimmed, empties dropped. */
export function parseList(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

export interface Cors {
  /** Sets the CORS headers on `res`; true when the request was a preflight and has been answered. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

export function createCors(opts: CorsOptions): Cors {
  const anyOrigin = opts.allowedOrigins.includes("*");
  const origins = new Set(opts.allowedOrigins);
  const anyMethod = opts.allowedMethods.includes("*");
  const methods = opts.allowedMethods.map((m) => m.toUpperCase()).join(", ");
  const anyHeader = opts.allowedHeaders.includes("*");
  const headers = opts.allowedHeaders.join(", ");
  // `*` is not honoured by browsers on credentialed requests: echo instead.
  const wildcard = anyOrigin && !opts.allowCredentials;

  return {
    handle(req, res) {
      const origin = req.headers.origin;
      if (origin === undefined) return false;
      if (!anyOrigin && !origins.has(origin)) {
        // No CORS headers: the browser blocks the response; a preflight still gets its 204.
        return preflight(req, res);
      }
      if (wildcard) {
        res.setHeader("Access-Control-Allow-Origin", "*");
      } else {
        res.setHeader("Access-Control-Allow-Origin", origin);
        res.setHeader("Vary", "Origin");
      }
      if (opts.allowCredentials) res.setHeader("Access-Control-Allow-Credentials", "true");
      if (req.method !== "OPTIONS" || req.headers["access-control-request-method"] === undefined) {
        res.setHeader("Access-Control-Expose-Headers", "x-request-id");
        return false;
      }
      const wanted = req.headers["access-control-request-method"];
      // `*` echoes what was asked: a literal `*` does not cover Authorization,
      // nor anything on credentialed requests.
      res.setHeader("Access-Control-Allow-Methods", anyMethod ? wanted : methods);
      const wantedHeaders = req.headers["access-control-request-headers"];
      if (!anyHeader) res.setHeader("Access-Control-Allow-Headers", headers);
      else if (wantedHeaders !== undefined) res.setHeader("Access-Control-Allow-Headers", wantedHeaders);
      res.setHeader("Access-Control-Max-Age", "600");
      return preflight(req, res);
    },
  };
}

function preflight(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== "OPTIONS" || req.headers["access-control-request-method"] === undefined) return false;
  res.statusCode = 204;
  res.setHeader("Content-Length", "0");
  res.end();
  return true;
}
