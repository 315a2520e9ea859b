/**
 * Reading and parsing request bodies under limits: size per body (smaller
 * for JSON, which carries no files), bytes held across all requests, JSON
 * nesting depth, multipart part counts. Every limit is checked against
 * Content-Length before a byte is read.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import busboy from "busboy";
import type { BodyBudget } from "./body-budget.js";
import { HttpError, OVMS } from "./errors.js";
import type { MultipartBody, MultipartFile } from "./payload.js";

export interface BodyLimits {
  /** Largest accepted body, in bytes (multipart uploads, bodies of other types). */
  readonly maxBodyBytes: number;
  /** Largest accepted JSON body, in bytes. */
  readonly maxJsonBodyBytes: number;
  /** Request bodies held at once, all requests together, in bytes. */
  readonly maxTotalBodyBytes: number;
  /** Deepest accepted JSON nesting (objects and arrays). */
  readonly maxJsonDepth: number;
}

/** 64 MiB: room for a few large images in an edit request; OVMS allows 1 GB. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
/**
 * 2 MiB: a JSON request carries prompts and settings, never pictures (edits
 * upload them as multipart). Its largest valid form is six prompts at
 * MAX_PROMPT_CHARS (32,000, OpenAI's limit), every UTF-16 unit escaped as
 * `\uXXXX` (6 bytes, as `ensure_ascii` JSON writers do): 1.15 MB.
 */
export const DEFAULT_MAX_JSON_BODY_BYTES = 2 * 1024 * 1024;
/** 256 MiB: four bodies of the largest size at once; more wait their turn (503 with Retry-After). */
export const DEFAULT_MAX_TOTAL_BODY_BYTES = 256 * 1024 * 1024;
/** Nesting beyond this is no request any image or text API sends; it guards recursive consumers. */
export const DEFAULT_MAX_JSON_DEPTH = 100;
export const DEFAULT_BODY_LIMITS: BodyLimits = {
  maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
  maxJsonBodyBytes: DEFAULT_MAX_JSON_BODY_BYTES,
  maxTotalBodyBytes: DEFAULT_MAX_TOTAL_BODY_BYTES,
  maxJsonDepth: DEFAULT_MAX_JSON_DEPTH,
};
const MAX_PARTS = 1000;
const MAX_FILES = 100;
const PARSE_SLICE = 1024 * 1024;

export type BodyKind = "json" | "multipart" | "none" | "other";

/** What the Content-Type says the body is: JSON (`application/json`, `*+json`), multipart, absent, or something else. */
export function bodyKind(contentType: string | undefined): BodyKind {
  if (contentType === undefined || contentType === "") return "none";
  const semi = contentType.indexOf(";");
  const mime = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (mime === "application/json" || (mime.startsWith("application/") && mime.endsWith("+json"))) return "json";
  if (mime === "multipart/form-data") return "multipart";
  return "other";
}

/**
 * The body limit of a body kind: JSON carries no files, so its limit is
 * smaller; and no body may pass the total (it would be 503 forever).
 */
export function bodyLimit(kind: BodyKind, limits: BodyLimits): number {
  return Math.min(kind === "json" ? limits.maxJsonBodyBytes : Number.POSITIVE_INFINITY, limits.maxBodyBytes, limits.maxTotalBodyBytes);
}

/** How long the rest of a refused body is read and dropped before the connection is cut. */
const LINGER_MS = 5000;

function tooLarge(limit: number, kind: BodyKind): HttpError {
  const json = kind === "json" ? " for JSON bodies (pictures are uploaded as multipart/form-data)" : "";
  return new HttpError(413, `Request body is larger than the server's limit of ${limit} bytes${json}`, { code: "request_too_large" });
}

/** The server holds as many request bodies as it may: the request is fine, later. */
function bodiesBusy(total: number): HttpError {
  return new HttpError(503, `The server is holding its limit of ${total} bytes of request bodies; retry shortly`, { code: "server_busy", headers: { "Retry-After": "1" } });
}

/**
 * Drops the rest of a refused body. Closing on unread bytes would reset the
 * connection, and the client could lose the answer before reading it; so
 * what it still sends is read and thrown away (the connection stays usable),
 * for LINGER_MS at most, then the connection is cut.
 */
function discardRest(req: IncomingMessage): void {
  req.resume();
  if (req.complete) return;
  const cut = setTimeout(() => req.socket.destroy(), LINGER_MS);
  const clear = () => clearTimeout(cut);
  req.once("end", clear);
  req.once("close", clear);
}

const continueDeferred = new WeakSet<ServerResponse>();

/**
 * Leaves `Expect: 100-continue` to readBody: a client that asks first is
 * refused (413, 503) before it sends a byte of the body, and told to go on
 * only when the body will be read. Node answers 100 at once otherwise.
 * Until told, the client holds its body back, so the connection cannot
 * carry another request: it closes after the answer unless readBody lets
 * the body come.
 */
export function deferContinue(server: Server): void {
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    continueDeferred.add(res);
    res.setHeader("Connection", "close");
    server.emit("request", req, res);
  });
}

/**
 * Reads the whole body under `limit`, holding its bytes in `budget` until
 * the response closes. Refused with 413 past the limit and 503 past the
 * budget: from Content-Length before reading, else as soon as the bytes
 * read pass either.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, limit: number, kind: BodyKind, budget: BodyBudget): Promise<Buffer> {
  // A client that asked to be told before sending its body sends none when refused now.
  const heldBack = continueDeferred.has(res);
  const refuseNow = (e: HttpError) => {
    if (!heldBack) discardRest(req);
    return Promise.reject(e);
  };
  const declared = Number(req.headers["content-length"]);
  if (declared > limit) return refuseNow(tooLarge(limit, kind));
  const held = budget.hold(res);
  if (declared > 0 && !held.take(declared)) return refuseNow(bodiesBusy(budget.total));
  const reserved = declared > 0 ? declared : 0;
  if (heldBack) {
    res.removeHeader("Connection");
    res.writeContinue();
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const refuse = (e: HttpError) => {
      cleanup();
      discardRest(req);
      reject(e);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return refuse(tooLarge(limit, kind));
      // Without Content-Length (chunked), bytes are taken as they come.
      if (size > reserved && !held.take(Math.min(chunk.length, size - reserved))) return refuse(bodiesBusy(budget.total));
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

/**
 * Parses a JSON request body: it must be an object no deeper than
 * `maxDepth`. Errors are 400 with OVMS's texts (OVMS answers 412, which
 * clients treat as the same failure; 400 is what the OpenAI SDKs map to
 * BadRequestError).
 */
export function parseJsonBody(body: Buffer, maxDepth: number): Record<string, unknown> {
  // A body shorter than the limit cannot nest deeper than it: skip the scan.
  if (body.length > maxDepth && jsonDepthExceeds(body, maxDepth)) {
    throw new HttpError(400, `${OVMS.jsonInvalid}: nesting is deeper than the limit of ${maxDepth}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch (e) {
    throw new HttpError(400, `${OVMS.jsonInvalid}: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new HttpError(400, OVMS.jsonNotObject);
  return value as Record<string, unknown>;
}

/** Bracket depth outside strings, byte by byte (JSON's structural characters are ASCII). */
function jsonDepthExceeds(buf: Buffer, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

const malformed = (e: Error) => new HttpError(400, `${OVMS.multipartInvalid}: ${e.message}`);

/** Parses a buffered multipart/form-data body. Malformed: 400 with OVMS's text; over a limit: 413. */
export function parseMultipart(body: Buffer, headers: IncomingMessage["headers"], maxBytes: number): Promise<MultipartBody> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers,
        // Field names and filenames as UTF-8, as browsers and the SDKs send them (busboy's default is latin1).
        defParamCharset: "utf8",
        limits: { fieldSize: maxBytes, fileSize: maxBytes, parts: MAX_PARTS, files: MAX_FILES, fields: MAX_PARTS },
      });
    } catch (e) {
      // e.g. no boundary in the Content-Type.
      reject(malformed(e as Error));
      return;
    }
    const fields: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
    // One promise per file part, in the order sent (parts may finish out of order).
    const files: Promise<MultipartFile>[] = [];
    let failed = false;
    const fail = (e: HttpError) => {
      if (failed) return;
      failed = true;
      reject(e);
    };
    const overLimit = (what: string) => fail(new HttpError(413, `Multipart body has more ${what} than the server accepts (${what === "files" ? MAX_FILES : MAX_PARTS})`, { code: "request_too_large" }));
    parser.on("field", (name, value) => {
      const prev = fields[name];
      fields[name] = prev === undefined ? value : typeof prev === "string" ? [prev, value] : [...prev, value];
    });
    parser.on("file", (field, stream, info) => {
      const chunks: Buffer[] = [];
      files.push(
        new Promise((done) => {
          stream.on("data", (c: Buffer) => chunks.push(c));
          // A body that ends inside a file part fails the part's stream ("Unexpected end of form"), not only the parser.
          stream.on("error", (e: Error) => fail(malformed(e)));
          stream.on("close", () => done({ field, filename: info.filename ?? "", contentType: info.mimeType, data: Buffer.concat(chunks) }));
        }),
      );
    });
    parser.on("partsLimit", () => overLimit("parts"));
    parser.on("filesLimit", () => overLimit("files"));
    parser.on("fieldsLimit", () => overLimit("fields"));
    parser.on("error", (e: Error) => fail(malformed(e)));
    parser.on("close", () => {
      void Promise.all(files).then((list) => {
        if (!failed) resolve({ fields, files: list });
      });
    });
    // Fed a slice at a time, yielding in between: a large upload does not hold the event loop for its whole parse.
    let at = 0;
    const feed = (): void => {
      if (failed) return;
      if (body.length - at <= PARSE_SLICE) {
        parser.end(body.subarray(at));
        return;
      }
      const slice = body.subarray(at, at + PARSE_SLICE);
      at += PARSE_SLICE;
      parser.write(slice, () => setImmediate(feed));
    };
    feed();
  });
}
