/**
 * The web UI (playground and graph view): the Vite-built files in
 * `<outDir>/web/`, next to the compiled `<outDir>/src/`.
 *
 * - `GET /` is index.html, revalidated on every load (`no-cache`), so a new
 *   build is picked up at once; without a build it is a JSON 404 that says
 *   how to make one.
 * - `/assets/*` carry content hashes in their names: cached for a year,
 *   `immutable`.
 * - Any other file of the build (a favicon) is served as found, revalidated;
 *   a path with no file falls through to the app's usual 404/405.
 * Every UI file carries a strict Content-Security-Policy: the bundle loads
 * nothing from elsewhere, and images may be data: or blob: URLs (results,
 * uploads, the mask canvas).
 */
import { existsSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { HttpError } from "./errors.js";

/** Where the build lands: `<outDir>/web/`, from `<outDir>/src/server/`. */
export const DEFAULT_WEB_UI_DIR = fileURLToPath(new URL("../../web/", import.meta.url));

export const WEB_UI_CSP = [
  "default-src 'self'",
  "img-src 'self' data: blob:",
  "style-src 'self' 'unsafe-inline'",
  "object-src 'none'",
  "base-uri 'self'",
  "frame-ancestors 'none'",
].join("; ");

const IMMUTABLE = "public, max-age=31536000, immutable";
/** The headers of a UI file (set on success only: a 404 for a missing build is plain JSON). */
const uiHeaders = (cacheControl: string): Readonly<Record<string, string>> => ({
  "Cache-Control": cacheControl,
  "Content-Security-Policy": WEB_UI_CSP,
  "X-Content-Type-Options": "nosniff",
});
/** Hashed assets, cached for good. */
const ASSET_HEADERS = uiHeaders(IMMUTABLE);
/** index.html and other unhashed files: revalidated on every load. */
const FILE_HEADERS = uiHeaders("no-cache");

export interface WebUi {
  /** `GET /`: index.html. */
  readonly index: RequestHandler;
  /** GET/HEAD of any other file of the build; calls next() when there is none. */
  readonly files: RequestHandler;
}

/** Whether `dir` holds a build (for the startup log; requests check for themselves). */
export function webUiBuilt(dir: string = DEFAULT_WEB_UI_DIR): boolean {
  return existsSync(join(dir, "index.html"));
}

export function webUi(dir: string = DEFAULT_WEB_UI_DIR): WebUi {
  const setHeaders = (res: Response, file: string): void => {
    const headers = relative(dir, file).split(sep).join("/").startsWith("assets/") ? ASSET_HEADERS : FILE_HEADERS;
    for (const k in headers) res.setHeader(k, headers[k]);
  };
  const files = express.static(dir, { index: false, redirect: false, fallthrough: true, setHeaders });
  return {
    index(_req: Request, res: Response, next: NextFunction): void {
      res.sendFile("index.html", { root: dir, headers: FILE_HEADERS }, (err?: Error) => {
        if (err === undefined) return;
        const code = (err as NodeJS.ErrnoException).code;
        if (!res.headersSent && (code === "ENOENT" || code === "ENOTDIR")) {
          next(new HttpError(404, `the web UI is not built: run npm run build (no index.html in ${dir})`, { code: "web_ui_not_built" }));
        } else {
          next(err);
        }
      });
    },
    files,
  };
}
