/**
 * OVMS's API key: from `--api_key_file` (its first line) or the `API_KEY`
 * environment variable, required as `Authorization: Bearer <key>` on the
 * inference routes (POST /v3/*, /v1/*). OVMS answers a bad key with 500
 * (UNAUTHORIZED is missing from its status map); we answer 401, which the
 * OpenAI SDKs turn into AuthenticationError.
 *
 * OVMS checks the key on inference routes only; `--api_key_scope` also puts
 * the admin routes (and /metrics) behind it. Health and the model lists stay
 * open whatever the scope: probes send no key.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { HttpError, OVMS } from "./errors.js";

/** The key to require, or undefined for none. The file wins over the environment, as in OVMS. */
export function readApiKey(file: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (file !== undefined) {
    const first = readFileSync(file, "utf8").split(/\r?\n/, 1)[0].trim();
    if (first === "") throw new Error(`--api_key_file "${file}": the first line is empty`);
    return first;
  }
  const key = env.API_KEY;
  return key === undefined || key === "" ? undefined : key;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * A checker for one key; throws 401 when the header does not carry it.
 * Compares digests in constant time so response timing does not leak the key.
 */
export function apiKeyChecker(key: string): (authorization: string | undefined) => void {
  const expected = digest(key);
  return (authorization) => {
    const m = authorization === undefined ? null : /^Bearer\s+(.+)$/i.exec(authorization.trim());
    if (m === null || !timingSafeEqual(digest(m[1]), expected)) {
      throw new HttpError(401, OVMS.unauthorized, { code: "invalid_api_key", headers: { "WWW-Authenticate": 'Bearer realm="graphserve"' } });
    }
  };
}

/**
 * What the key guards besides inference: `inference` (OVMS: nothing else),
 * `admin` (the default: `GET /v1/config` and `POST /v1/config/reload`), `all`
 * (admin and `/metrics`).
 */
export const API_KEY_SCOPES = ["inference", "admin", "all"] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];
export const DEFAULT_API_KEY_SCOPE: ApiKeyScope = "admin";

/** Whether a key of `scope` guards the admin routes or /metrics. */
export function keyGuards(scope: ApiKeyScope, routes: "admin" | "metrics"): boolean {
  return routes === "admin" ? scope !== "inference" : scope === "all";
}

/**
 * What a route declares about the key (app.ts checks it before the handler
 * runs): `open` (health, model lists, UI: probes send no key), `key`
 * (always, when a key is set: inference, graph views), `admin` (behind the
 * key when the scope guards admin routes; otherwise a caller without it is
 * served but not trusted with filesystem paths), `metrics` (behind the key
 * when the scope is `all`).
 */
export type RouteAuth = "open" | "key" | "admin" | "metrics";

/**
 * Checks a request against its route's auth; throws 401 when it must show
 * the key and does not. Returns whether the caller is trusted (showed the
 * key, or none is set).
 */
export function authorize(auth: RouteAuth, check: ((authorization: string | undefined) => void) | undefined, scope: ApiKeyScope, authorization: string | undefined): boolean {
  if (check === undefined) return true;
  switch (auth) {
    case "open":
      return false;
    case "key":
      check(authorization);
      return true;
    case "metrics":
      if (!keyGuards(scope, "metrics")) return false;
      check(authorization);
      return true;
    case "admin":
      try {
        check(authorization);
        return true;
      } catch (e) {
        if (keyGuards(scope, "admin")) throw e;
        return false;
      }
  }
}

/**
 * `text` with every absolute filesystem path cut to its last segment
 * (`/srv/models/sd/graph.pbtxt` → `…/graph.pbtxt`): what a caller without
 * the key may read of a load error.
 */
export function withoutPaths(text: string): string {
  // A path starts after anything but a word, a dot or a slash ("1/2" and "a/b" stay), so also after ":", "[" or "`" (file:///…).
  return text.replace(/(^|[^\w./\\])((?:[A-Za-z]:)?[\\/][^\s"'()]*)/g, (_match, before: string, path: string) => {
    const last = path.split(/[\\/]/).filter((p) => p !== "").pop();
    return `${before}…${last === undefined ? "" : `/${last}`}`;
  });
}
