/**
 * Reading and parsing request bodies under limits: total size, JSON nesting
 * depth, multipart part counts.
 */
import type { IncomingMessage } from "node:http";
import busboy from "busboy";
import { HttpError, OVMS } from "./errors.js";
import type { MultipartBody, MultipartFile } from "./payload.js";

export interface BodyLimits {
  /** Largest accepted body, in bytes. */
  readonly maxBodyBytes: number;
  /** Deepest accepted JSON nesting (objects and arrays). */
  readonly maxJsonDepth: number;
}

/** 64 MiB: room for a few large images in an edit request; OVMS allows 1 GB. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
/** Nesting beyond this is no request any image or text API sends; it guards recursive consumers. */
export const DEFAULT_MAX_JSON_DEPTH = 100;
const MAX_PARTS = 1000;
const MAX_FILES = 100;

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

export function tooLarge(limit: number): HttpError {
  return new HttpError(413, `Request body is larger than the server's limit of ${limit} bytes`, {
    code: "request_too_large",
    // The rest of an oversized body is not read: the connection cannot be reused.
    headers: { Connection: "close" },
  });
}

/** Reads the whole body; 413 as soon as it passes the limit (Content-Length is checked before reading). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(tooLarge(limit));
        return;
      }
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

/** Parses a buffered multipart/form-data body. Malformed: 400 with OVMS's text; over a limit: 413. */
export function parseMultipart(body: Buffer, headers: IncomingMessage["headers"], maxBytes: number): Promise<MultipartBody> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers,
        limits: { fieldSize: maxBytes, fileSize: maxBytes, parts: MAX_PARTS, files: MAX_FILES, fields: MAX_PARTS },
      });
    } catch (e) {
      // e.g. no boundary in the Content-Type.
      reject(new HttpError(400, `${OVMS.multipartInvalid}: ${(e as Error).message}`));
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
          stream.on("close", () => done({ field, filename: info.filename ?? "", contentType: info.mimeType, data: Buffer.concat(chunks) }));
        }),
      );
    });
    parser.on("partsLimit", () => overLimit("parts"));
    parser.on("filesLimit", () => overLimit("files"));
    parser.on("fieldsLimit", () => overLimit("fields"));
    parser.on("error", (e: Error) => fail(new HttpError(400, `${OVMS.multipartInvalid}: ${e.message}`)));
    parser.on("close", () => {
      void Promise.all(files).then((list) => {
        if (!failed) resolve({ fields, files: list });
      });
    });
    parser.end(body);
  });
}
