/**
 * Downloads a repository's files into a staging folder: several at once,
 * each resumable (bytes land in `<file>.part` and a retry or a later run
 * continues with a Range request), each verified against what the Hub
 * publishes (sha256 and size for LFS files, the git blob id for the rest)
 * before it takes its final name. A corrupt file is fetched again from
 * scratch; a line that keeps failing gives up with the file named.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";

/** One file as the Hub lists it. */
export interface RemoteFile {
  readonly path: string;
  readonly size: number;
  /** LFS files: the sha256 of the content. */
  readonly sha256?: string;
  /** Other files: the git blob id (sha1 of `blob <size>\0` + content). */
  readonly gitOid?: string;
}

export interface DownloadOptions {
  readonly fetch: typeof fetch;
  /** The URL of a file's content (the Hub's resolve URL). */
  url(path: string): string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Files in flight at once (default 4). */
  readonly concurrency?: number;
  /** Attempts per file after the first, for network errors, 5xx and corrupt data (default 5). */
  readonly retries?: number;
  /** Wait before retry `attempt` (1-based), in ms (default 1 s doubling to 15 s). */
  readonly retryDelayMs?: (attempt: number) => number;
  /** Told of every byte that reaches the disk (negative when a corrupt file is thrown away). */
  onBytes?(delta: number): void;
  /** Told when a file is complete and verified. */
  onFile?(file: RemoteFile, fetched: boolean): void;
  /** Told of every retry, with its reason. */
  onRetry?(file: RemoteFile, attempt: number, reason: string): void;
  readonly signal?: AbortSignal;
}

/** A download that cannot succeed by retrying (auth, missing file, disk full, repeated corruption). */
export class DownloadError extends Error {
  constructor(message: string, readonly status?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "DownloadError";
  }
}

/** Retrying may help: a broken connection, a 5xx, a corrupt body. */
class TransientError extends Error {}

export async function downloadFiles(files: readonly RemoteFile[], dir: string, opts: DownloadOptions): Promise<void> {
  const queue = [...files];
  const workers = Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 4, queue.length)) }, async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) await downloadFile(f, dir, opts);
  });
  // One failure stops the others from taking more files; those in flight finish their attempt.
  const results = await Promise.allSettled(workers.map((w) => w.catch((e: unknown) => {
    queue.length = 0;
    throw e;
  })));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

async function downloadFile(file: RemoteFile, dir: string, opts: DownloadOptions): Promise<void> {
  const final = join(dir, file.path);
  const part = `${final}.part`;
  await mkdir(dirname(final), { recursive: true });
  // A complete file from an earlier run is kept if it still verifies.
  const existing = await sizeOf(final);
  if (existing !== undefined) {
    if (existing === file.size && (await verify(file, await hashFile(file, final)))) {
      opts.onBytes?.(file.size);
      opts.onFile?.(file, false);
      return;
    }
    await rm(final, { force: true });
  }
  // Bytes an interrupted run left in the .part file count as done (a discard takes them back).
  const resumed = (await sizeOf(part)) ?? 0;
  if (resumed > 0) opts.onBytes?.(resumed);
  const retries = opts.retries ?? 5;
  for (let attempt = 0; ; attempt++) {
    opts.signal?.throwIfAborted();
    try {
      await fetchInto(file, part, opts);
      await rename(part, final);
      opts.onFile?.(file, true);
      return;
    } catch (e) {
      if (!(e instanceof TransientError) || attempt >= retries) {
        if (e instanceof TransientError) throw new DownloadError(`${file.path}: ${e.message}; gave up after ${attempt + 1} attempts`, undefined, { cause: e });
        throw e;
      }
      opts.onRetry?.(file, attempt + 1, e.message);
      await sleep((opts.retryDelayMs ?? defaultDelay)(attempt + 1), opts.signal);
    }
  }
}

const defaultDelay = (attempt: number) => Math.min(15_000, 1000 * 2 ** (attempt - 1));

/** One attempt: resume `part` from its current size, append the rest, verify the whole. */
async function fetchInto(file: RemoteFile, part: string, opts: DownloadOptions): Promise<void> {
  let offset = (await sizeOf(part)) ?? 0;
  if (offset > file.size) {
    await discard(part, offset, opts);
    offset = 0;
  }
  const hash = startHash(file);
  // An empty file (.gitkeep, __init__.py) needs no request.
  if (file.size === 0) await writeFile(part, "");
  if (offset > 0) await feed(hash, part);
  if (offset < file.size) {
    let res: Response;
    try {
      res = await opts.fetch(opts.url(file.path), {
        headers: { ...opts.headers, ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}) },
        redirect: "follow",
        signal: opts.signal,
      });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      throw new TransientError(`request failed (${reason(e)})`, { cause: e });
    }
    if (res.status === 416 && offset > 0) {
      // The server will not continue from there: start over.
      await res.body?.cancel();
      await discard(part, offset, opts);
      throw new TransientError("the server refused to resume (416)");
    }
    if (res.status === 401 || res.status === 403 || res.status === 404) {
      await res.body?.cancel();
      throw new DownloadError(`${file.path}: ${res.status} ${res.statusText}`, res.status);
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      throw new TransientError(`HTTP ${res.status}`);
    }
    if (res.status === 200 && offset > 0) {
      // The server ignored the Range header: the body is the whole file.
      await discard(part, offset, opts);
      return fetchInto(file, part, opts);
    }
    if (res.status === 206 && !contentRangeStartsAt(res.headers.get("content-range"), offset)) {
      await res.body?.cancel();
      await discard(part, offset, opts);
      throw new TransientError(`the server resumed at the wrong offset (${res.headers.get("content-range")})`);
    }
    await append(res, part, hash, file, opts);
  }
  const size = (await sizeOf(part)) ?? 0;
  if (size !== file.size || !verify(file, hash.digest("hex"))) {
    await discard(part, size, opts);
    throw new TransientError(size !== file.size ? `got ${size} bytes, expected ${file.size}` : "checksum mismatch: the downloaded bytes differ from what the Hub publishes");
  }
}

async function append(res: Response, part: string, hash: Hash, file: RemoteFile, opts: DownloadOptions): Promise<void> {
  if (res.body === null) throw new TransientError("empty response body");
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      opts.onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), count, createWriteStream(part, { flags: "a" }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOSPC") throw new DownloadError(`no space left on the device while writing ${file.path}`, undefined, { cause: e });
    if (code === "EACCES" || code === "EROFS" || code === "EPERM") throw new DownloadError(`cannot write ${part} (${code})`, undefined, { cause: e });
    if (opts.signal?.aborted) throw e;
    // The bytes that did arrive stay in the .part file: the next attempt resumes after them.
    throw new TransientError(`connection broke (${reason(e)})`, { cause: e });
  }
}

function startHash(file: RemoteFile): Hash {
  if (file.sha256 !== undefined) return createHash("sha256");
  const h = createHash("sha1");
  h.update(`blob ${file.size}\0`);
  return h;
}

function verify(file: RemoteFile, digest: string): boolean {
  const want = file.sha256 ?? file.gitOid;
  return want === undefined || want.toLowerCase() === digest;
}

async function hashFile(file: RemoteFile, path: string): Promise<string> {
  const h = startHash(file);
  await feed(h, path);
  return h.digest("hex");
}

async function feed(hash: Hash, path: string): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

async function discard(part: string, bytes: number, opts: DownloadOptions): Promise<void> {
  await rm(part, { force: true });
  if (bytes > 0) opts.onBytes?.(-bytes);
}

function contentRangeStartsAt(header: string | null, offset: number): boolean {
  const m = header === null ? null : /^bytes (\d+)-/.exec(header);
  return m !== null && Number(m[1]) === offset;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

function reason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message ?? String(e);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}
