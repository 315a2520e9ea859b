/**
 * Downloads a repository's files into a staging folder: several at once,
 * each resumable (bytes land in a part file under `PARTS_DIR`, and a retry
 * or a later run continues with a Range request), each verified against
 * what the Hub publishes (sha256 and size for LFS files, the git blob id for
 * the rest) before it takes its final name. A corrupt file is fetched again
 * from scratch; a line that keeps failing gives up with the file named; the
 * first failure that retrying cannot fix stops every other transfer.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
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

/**
 * Part files live here, named by a hash of their path, so they can never
 * collide with a file of the repository (`x.bin` beside `x.bin.part`).
 */
export const PARTS_DIR = ".graphserve-parts";

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
  /**
   * Told of bytes on disk: fetched now, or `resumed` from an earlier run;
   * negative when bytes are thrown away (a corrupt file, a broken write).
   */
  onBytes?(delta: number, resumed?: boolean): void;
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
  const root = resolve(dir);
  for (const f of files) {
    const target = resolve(root, f.path);
    if (!target.startsWith(root + sep) || f.path.split("/")[0] === PARTS_DIR) throw new DownloadError(`${f.path}: the path would land outside the model folder`);
  }
  // The first failure retrying cannot fix aborts the other transfers (and their retry waits).
  const stop = new AbortController();
  const signal = opts.signal === undefined ? stop.signal : AbortSignal.any([opts.signal, stop.signal]);
  const run = { ...opts, signal };
  const queue = [...files];
  let failure: unknown;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 4, queue.length)) }, async () => {
      try {
        for (let f = queue.shift(); f !== undefined && failure === undefined; f = queue.shift()) await downloadFile(f, root, run);
      } catch (e) {
        if (failure === undefined) {
          failure = e;
          stop.abort(e);
        }
      }
    }),
  );
  if (failure !== undefined) throw failure;
  await rm(join(root, PARTS_DIR), { recursive: true, force: true });
}

async function downloadFile(file: RemoteFile, dir: string, opts: DownloadOptions): Promise<void> {
  const final = join(dir, file.path);
  const part = join(dir, PARTS_DIR, createHash("sha1").update(file.path).digest("hex"));
  await mkdir(dirname(final), { recursive: true });
  await mkdir(dirname(part), { recursive: true });
  // A complete file from an earlier run is kept if it still verifies.
  const existing = await sizeOf(final);
  if (existing !== undefined) {
    if (existing === file.size && verify(file, await hashFile(file, final))) {
      opts.onBytes?.(file.size, true);
      opts.onFile?.(file, false);
      return;
    }
    await rm(final, { force: true });
  }
  const resumed = (await sizeOf(part)) ?? 0;
  if (resumed > 0) opts.onBytes?.(resumed, true);
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
  let hash = startHash(file);
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
    const refuse = async (e: Error) => {
      await res.body?.cancel().catch(() => undefined);
      throw e;
    };
    if (res.status === 416 && offset > 0) {
      // The server will not continue from there: start over.
      await discard(part, offset, opts);
      await refuse(new TransientError("the server refused to resume (416)"));
    }
    if (res.status === 401 || res.status === 403 || res.status === 404) await refuse(new DownloadError(`${file.path}: ${res.status} ${res.statusText}`, res.status));
    if (res.status !== 200 && res.status !== 206) await refuse(new TransientError(`HTTP ${res.status}`));
    if (res.status === 200 && offset > 0) {
      // The server ignored the Range header: this body is the whole file, so it replaces the part.
      await discard(part, offset, opts);
      hash = startHash(file);
    } else if (res.status === 206 && !contentRangeStartsAt(res.headers.get("content-range"), offset)) {
      await discard(part, offset, opts);
      await refuse(new TransientError(`the server resumed at the wrong offset (${res.headers.get("content-range")})`));
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
  const before = (await sizeOf(part)) ?? 0;
  let counted = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      counted += chunk.length;
      opts.onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), count, createWriteStream(part, { flags: "a" }));
  } catch (e) {
    // Bytes counted but never written (in flight when it broke) are taken back, so progress matches the disk.
    const written = ((await sizeOf(part)) ?? before) - before;
    if (written < counted) opts.onBytes?.(written - counted);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOSPC") throw new DownloadError(`no space left on the device while writing ${file.path}`, undefined, { cause: e });
    if (code === "EACCES" || code === "EROFS" || code === "EPERM") throw new DownloadError(`cannot write ${part} (${code})`, undefined, { cause: e });
    if (opts.signal?.aborted) throw e;
    // The bytes that did arrive stay in the part file; the next attempt hashes them again and resumes after them.
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
