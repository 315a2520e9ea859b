/**
 * `--source_model ORG/NAME --model_repository_path DIR`: brings a Hub
 * repository to `DIR/ORG/NAME`, as OVMS's pull does, without ever leaving a
 * half-downloaded model where a server would load it. Files are listed with
 * @huggingface/hub, fetched into a hidden staging folder beside the target
 * (kept between runs, so an interrupted pull resumes), verified, and the
 * folder is renamed into place in one step once everything is there.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { link, mkdir, readdir, readFile, rename, rm, stat, statfs, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { HubApiError, listFiles, type ListFileEntry } from "@huggingface/hub";
import { EnvHttpProxyAgent, fetch as undiciFetch } from "undici";
import { backendUnavailable, formatsOfFiles, type BackendKind } from "../../backends/formats.js";
import { DownloadError, downloadFiles, type RemoteFile } from "./download.js";
import { createProgress, type ProgressOptions } from "./progress.js";

export interface PullOptions {
  /** `ORG/NAME` on the Hub. */
  readonly sourceModel: string;
  readonly repositoryPath: string;
  /** Download again even when the model is already there. */
  readonly overwrite?: boolean;
  /** `image_generation` (the only task served), or undefined to detect it. */
  readonly task?: string;
  /** Default: $HF_ENDPOINT, else https://huggingface.co. */
  readonly endpoint?: string;
  /** Default: $HF_TOKEN. */
  readonly token?: string;
  readonly revision?: string;
  /** Default: fetch through $https_proxy / $http_proxy (honouring $no_proxy). */
  readonly fetch?: typeof fetch;
  readonly progress?: Omit<ProgressOptions, "now">;
  /** Lines for the log (what is happening, retries). */
  readonly log?: (line: string) => void;
  readonly concurrency?: number;
  readonly retries?: number;
  readonly retryDelayMs?: (attempt: number) => number;
  /** Called with the complete staging folder just before it is renamed into place (to add graph.pbtxt). */
  readonly beforeReveal?: (stagingDir: string) => Promise<void>;
  /** Free bytes where the model goes (tests replace it). */
  readonly freeBytes?: (path: string) => Promise<number>;
  /**
   * How long to wait for another process's pull of the same model (a replica
   * on a shared volume) before giving up; default 6 h. A holder that dies
   * stops refreshing its lock and is taken over within a minute, so this
   * bounds only a live but stuck pull; a big model on a slow link can take hours.
   */
  readonly lockWaitSeconds?: number;
  /** Stops the pull: transfers end, the lock is released, the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Why a backend cannot run here (default: tried for real; tests replace it). */
  readonly backendUnavailable?: (kind: BackendKind) => Promise<string | undefined>;
}

export interface PullResult {
  /** Where the model is: `repositoryPath/ORG/NAME`. */
  readonly dir: string;
  /** False when it was already there (nothing was touched). */
  readonly downloaded: boolean;
  readonly files: number;
  readonly bytes: number;
}

/** A pull that cannot succeed as asked; the message says what to do. */
export class PullError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PullError";
  }
}

export const STAGING_SUFFIX = ".graphserve-download";

/** Where `ORG/NAME` lands, or a PullError for a name that could escape the repository. */
export function modelDir(repositoryPath: string, sourceModel: string): string {
  const parts = sourceModel.split("/");
  if (parts.length > 2 || parts.some((p) => p === "" || p === "." || p === ".." || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(p))) {
    throw new PullError(`--source_model must be a Hugging Face repository id such as OpenVINO/stable-diffusion-v1-5-int8-ov, got "${sourceModel}"`);
  }
  return join(resolve(repositoryPath), ...parts);
}

/** Why `task` cannot be served, or undefined when it can (or is left to be detected). */
export function unservedTask(task: string | undefined): string | undefined {
  return task === undefined || task === "image_generation" ? undefined : `--task ${task} is not served by graphserve; it serves image_generation`;
}

export async function pullModel(opts: PullOptions): Promise<PullResult> {
  const dir = modelDir(opts.repositoryPath, opts.sourceModel);
  const log = opts.log ?? (() => undefined);
  const unserved = unservedTask(opts.task);
  if (unserved !== undefined) throw new PullError(unserved);
  const staging = join(dirname(dir), `.${basename(dir)}${STAGING_SUFFIX}`);
  const old = `${staging}.old`;
  // Already there: local files are authoritative, as in OVMS (a replacement left half-done waits for --overwrite_models).
  if (!opts.overwrite && existsSync(dir)) {
    const pending = existsSync(staging) ? `; an unfinished replacement is kept in ${staging} for --overwrite_models` : "";
    log(`${opts.sourceModel} is already in ${dir}; not downloading (--overwrite_models downloads it again)${pending}`);
    return { dir, downloaded: false, files: 0, bytes: 0 };
  }

  await mkdir(dirname(dir), { recursive: true });
  const unlock = await lock(staging, opts.sourceModel, { waitMs: (opts.lockWaitSeconds ?? DEFAULT_LOCK_WAIT_SECONDS) * 1000, log, signal: opts.signal });
  try {
    // A replace killed between its two renames left the previous copy aside: put it back (only
    // under the lock: outside it, this could be another pull's replace in progress).
    if (existsSync(old) && !existsSync(dir)) await rename(old, dir);
    // Checked again under the lock: a pull we waited for may have brought the model meanwhile.
    if (!opts.overwrite && existsSync(dir)) {
      log(`${opts.sourceModel} is already in ${dir}; not downloading`);
      return { dir, downloaded: false, files: 0, bytes: 0 };
    }
    const hub: HubSource = {
      endpoint: (opts.endpoint ?? (process.env.HF_ENDPOINT || "https://huggingface.co")).replace(/\/+$/, ""),
      token: opts.token ?? (process.env.HF_TOKEN || undefined),
      revision: opts.revision ?? "main",
      fetch: opts.fetch ?? proxyAwareFetch(),
    };
    const files = await listRepository(opts.sourceModel, { ...hub, fetch: withSignal(hub.fetch, opts.signal) }).catch((e: unknown) => {
      opts.signal?.throwIfAborted();
      throw e;
    });
    checkImageGenerationRepo(opts.sourceModel, files);
    await checkBackendRunsHere(opts.sourceModel, files, opts.backendUnavailable ?? backendUnavailable);
    const total = files.reduce((n, f) => n + f.size, 0);
    // An interrupted pull already holds part of it.
    await checkDiskSpace(dirname(dir), Math.max(0, total - (await filesUnder(staging)).reduce((n, f) => n + f.size, 0)), opts.freeBytes ?? freeBytesAt);
    log(`downloading ${opts.sourceModel} (${files.length} files, ${size(total)}) from ${hub.endpoint} into ${dir}`);
    await download(opts, hub, files, staging, log);
    // Files an earlier run fetched that the repository no longer lists stay out of the model.
    await removeUnlisted(staging, files);
    // Files the caller adds (graph.pbtxt) go in before the model is revealed, so it never appears without them.
    await opts.beforeReveal?.(staging);
    opts.signal?.throwIfAborted();
    await reveal(opts.sourceModel, staging, dir, old);
    log(`${opts.sourceModel} is complete in ${dir}`);
    return { dir, downloaded: true, files: files.length, bytes: total };
  } finally {
    await unlock();
  }
}

/** Where the files come from: the Hub (or a mirror), the token, the revision, and the fetch to use. */
interface HubSource {
  readonly endpoint: string;
  readonly token: string | undefined;
  readonly revision: string;
  readonly fetch: typeof fetch;
}

async function download(opts: PullOptions, hub: HubSource, files: readonly RemoteFile[], staging: string, log: (line: string) => void): Promise<void> {
  const total = files.reduce((n, f) => n + f.size, 0);
  const progress = createProgress(opts.sourceModel, total, files.length, opts.progress ?? { tty: false, write: () => undefined });
  try {
    await downloadFiles(files, staging, {
      fetch: hub.fetch,
      url: (path) => `${hub.endpoint}/${opts.sourceModel}/resolve/${encodeURIComponent(hub.revision)}/${path.split("/").map(encodeURIComponent).join("/")}`,
      headers: hub.token !== undefined ? { Authorization: `Bearer ${hub.token}` } : {},
      concurrency: opts.concurrency,
      signal: opts.signal,
      retries: opts.retries,
      retryDelayMs: opts.retryDelayMs,
      onBytes: (d, resumed) => progress.bytes(d, resumed),
      onFile: () => progress.fileDone(),
      onRetry: (f, attempt, why) => log(`${f.path}: ${why}; retry ${attempt}`),
    });
  } catch (e) {
    opts.signal?.throwIfAborted();
    throw e instanceof DownloadError ? new PullError(explainDownload(opts.sourceModel, hub.token, e), { cause: e }) : e;
  } finally {
    progress.finish();
  }
}

/** The model appears in one rename; a copy it replaces is moved aside first and removed after. */
async function reveal(repo: string, staging: string, dir: string, old: string): Promise<void> {
  try {
    await rm(old, { recursive: true, force: true });
    if (existsSync(dir)) await rename(dir, old);
    await rename(staging, dir);
    await rm(old, { recursive: true, force: true });
  } catch (e) {
    throw new PullError(`${repo} was downloaded to ${staging} but could not be moved to ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
}

/**
 * One pull per model at a time (replicas sharing a volume): a lock file
 * beside the staging folder naming its owner (host, pid, and a token unique
 * to this hold), its mtime refreshed while the pull runs. A live lock is
 * waited for: a pull of this process is awaited directly, another process's
 * lock is polled every LOCK_POLL_MS until it is released or goes stale, for
 * at most `waitMs`. A lock is stale when its owner is gone: on this host, a
 * dead pid, or our own pid in a lock this process does not hold (in a
 * container every pull is pid 1, so a killed pod's lock names the pid its
 * successor gets); from another host, a heartbeat older than LOCK_STALE_MS.
 */
async function lock(staging: string, repo: string, how: { waitMs: number; log: (line: string) => void; signal?: AbortSignal }): Promise<() => Promise<void>> {
  const file = `${staging}.lock`;
  const me = { host: hostname(), pid: process.pid, token: randomUUID() };
  const deadline = Date.now() + how.waitMs;
  let lastLog = -Infinity;
  for (;;) {
    how.signal?.throwIfAborted();
    // Known as ours before the lock appears: a pull of this process reading it meanwhile must not judge it stale.
    ownTokens.add(me.token);
    try {
      await createComplete(file, JSON.stringify(me));
    } catch (e) {
      ownTokens.delete(me.token);
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const seen = await readLock(file);
      if (seen === undefined) continue; // released between our create and our read
      if (seen.owner === undefined) {
        await takeOver(file, seen);
        continue;
      }
      const where = seen.owner.host === me.host ? `pid ${seen.owner.pid}` : `pid ${seen.owner.pid} on ${seen.owner.host}`;
      if (Date.now() >= deadline) {
        throw new PullError(`${repo} is still being pulled by another process (${where}) after waiting ${Math.round(how.waitMs / 1000)} s; remove ${file} if that process is gone`);
      }
      if (Date.now() - lastLog >= LOCK_LOG_MS) {
        how.log(`${repo} is being pulled by another process (${where}); waiting for it to finish`);
        lastLog = Date.now();
      }
      // Our own process's pull ends in a promise; another's is polled.
      const ours = seen.owner.host === me.host && seen.owner.pid === me.pid ? heldHere.get(file) : undefined;
      const cancel = new AbortController();
      await Promise.race([...(ours ? [ours] : []), sleep(Math.min(LOCK_POLL_MS, Math.max(0, deadline - Date.now())), how.signal, cancel.signal)]).finally(() => cancel.abort());
      continue;
    }
    let release!: () => void;
    heldHere.set(file, new Promise<void>((r) => (release = r)));
    const now = () => new Date();
    const heartbeat = setInterval(() => void utimes(file, now(), now()).catch(() => {}), LOCK_HEARTBEAT_MS);
    heartbeat.unref();
    return async () => {
      clearInterval(heartbeat);
      // Only a lock that is still ours: one taken over from us (we looked dead) belongs to its new owner.
      if ((await readLock(file))?.token === me.token) await rm(file, { force: true });
      ownTokens.delete(me.token);
      heldHere.delete(file);
      release();
    };
  }
}

/**
 * Removes a stale lock so that exactly one waiter can take it: the lock is
 * renamed to a name of our own (only one rename of it can succeed), then
 * checked to be the very lock judged stale. When another taker replaced it
 * in between, theirs is put back (link does not overwrite a newer one).
 */
async function takeOver(file: string, stale: LockRead): Promise<void> {
  const aside = `${file}.stale-${randomUUID()}`;
  try {
    await rename(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return; // another taker moved it first
    throw e;
  }
  const moved = await readFile(aside, "utf8").catch(() => "");
  if (moved !== stale.text) await link(aside, file).catch(() => {});
  await rm(aside, { force: true });
}

interface LockOwner {
  readonly host: string;
  readonly pid: number;
  readonly token?: string;
}

interface LockRead {
  readonly text: string;
  readonly token: string | undefined;
  /** The owner while it still holds the lock; undefined when the lock is stale or unreadable. */
  readonly owner: LockOwner | undefined;
}

/**
 * The tokens of the locks this process holds or is creating: the pid in a
 * lock is ours both for our own pulls and for a dead predecessor's, the token tells them apart.
 */
const ownTokens = new Set<string>();
/** Locks this process holds, each with a promise settled on release (a second pull of the same model awaits it). */
const heldHere = new Map<string, Promise<void>>();
const LOCK_HEARTBEAT_MS = 10_000;
const LOCK_STALE_MS = 6 * LOCK_HEARTBEAT_MS;
const LOCK_POLL_MS = 2_000;
const LOCK_LOG_MS = 30_000;
const DEFAULT_LOCK_WAIT_SECONDS = 6 * 3600;

/** The lock as it is now, or undefined when there is none. */
async function readLock(file: string): Promise<LockRead | undefined> {
  const [text, info] = await Promise.all([readFile(file, "utf8").catch(() => undefined), stat(file).catch(() => undefined)]);
  if (text === undefined || info === undefined) return undefined;
  let parsed: Partial<LockOwner> | null = null;
  try {
    parsed = JSON.parse(text) as Partial<LockOwner> | null;
  } catch {
    // Half-written or foreign: nobody can be shown to hold it.
  }
  const { host, pid, token } = parsed ?? {};
  const read = { text, token: typeof token === "string" ? token : undefined };
  if (typeof host !== "string" || typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0) return { ...read, owner: undefined };
  const owner = { host, pid, token: read.token };
  if (host === hostname()) return { ...read, owner: (pid === process.pid ? read.token !== undefined && ownTokens.has(read.token) : alive(pid)) ? owner : undefined };
  return { ...read, owner: Date.now() - info.mtimeMs < LOCK_STALE_MS ? owner : undefined };
}

/**
 * Creates `file` holding `text` unless it exists (EEXIST), never visible
 * half-written (a reader would judge an empty lock stale): the text is
 * written aside, then linked into place.
 */
async function createComplete(file: string, text: string): Promise<void> {
  const aside = `${file}.new-${randomUUID()}`;
  await writeFile(aside, text);
  try {
    await link(aside, file).catch(async (e: NodeJS.ErrnoException) => {
      // A volume without hard links (some SMB/NFS setups): an exclusive create, briefly empty.
      if (e.code === "EEXIST") throw e;
      await writeFile(file, text, { flag: "wx" });
    });
  } finally {
    await rm(aside, { force: true });
  }
}

/** Resolves after `ms`, or early when `cancel` fires; rejects when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined, cancel: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      cancel.removeEventListener("abort", finish);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      cancel.removeEventListener("abort", finish);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    cancel.addEventListener("abort", finish, { once: true });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function removeUnlisted(staging: string, files: readonly RemoteFile[]): Promise<void> {
  const listed = new Set(files.map((f) => f.path));
  for (const f of await filesUnder(staging)) if (!listed.has(f.path)) await rm(join(staging, f.path), { force: true });
}

/** Every regular file under `dir` (none when it does not exist): its path relative to `dir`, with "/", and size. */
async function filesUnder(dir: string): Promise<{ path: string; size: number }[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  const out: { path: string; size: number }[] = [];
  for (const e of entries) {
    if (!e.isFile()) continue;
    // parentPath is Node 20.12+; `path` is its older name.
    const full = join(e.parentPath ?? (e as { path?: string }).path ?? dir, e.name);
    out.push({ path: relative(dir, full).split(sep).join("/"), size: (await stat(full)).size });
  }
  return out;
}

const size = (n: number) => (n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(2)} GB` : `${(n / 1024 ** 2).toFixed(1)} MB`);

/** `f` with every request also ended by `signal`. */
function withSignal(f: typeof fetch, signal: AbortSignal | undefined): typeof fetch {
  if (signal === undefined) return f;
  return ((input: string | URL | Request, init?: RequestInit) => f(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal })) as typeof fetch;
}

/** fetch through $https_proxy / $http_proxy (Node's own fetch ignores them). */
function proxyAwareFetch(): typeof fetch {
  const env = process.env;
  if (!(env.https_proxy || env.HTTPS_PROXY || env.http_proxy || env.HTTP_PROXY)) return fetch;
  const dispatcher = new EnvHttpProxyAgent();
  return ((input: string | URL, init?: RequestInit) => undiciFetch(input, { ...(init as object), dispatcher })) as unknown as typeof fetch;
}

async function listRepository(repo: string, hub: HubSource): Promise<RemoteFile[]> {
  const files: RemoteFile[] = [];
  const { endpoint: hubUrl, token } = hub;
  try {
    for await (const e of listFiles({ repo: { type: "model", name: repo }, recursive: true, revision: hub.revision, hubUrl, fetch: hub.fetch, ...(token !== undefined ? { accessToken: token as `hf_${string}` } : {}) })) {
      if (e.type === "file") files.push(remoteFile({ ...e, path: safePath(repo, e.path) }));
    }
  } catch (e) {
    if (e instanceof PullError) throw e;
    throw new PullError(explainHubError(repo, hubUrl, token, e), { cause: e });
  }
  return files;
}

/** Refuses listing paths that could land outside the model folder (`..`, absolute, backslashes, NUL). */
function safePath(repo: string, path: string): string {
  const parts = path.split("/");
  const unsafe = (p: string) =>
    p === "" || p === "." || p === ".." || /[\x00-\x1f]/.test(p) ||
    // Names Windows cannot hold, refused there (a model folder should move between machines, but Linux allows these).
    (process.platform === "win32" && (/[<>:"|?*]/.test(p) || /[. ]$/.test(p) || /^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i.test(p)));
  if (path === "" || path.includes("\\") || parts.some(unsafe) || /^[A-Za-z]:/.test(path)) {
    throw new PullError(`${repo}: the Hub listing names an unsafe path ${JSON.stringify(path)}; refusing to download`);
  }
  return path;
}

function remoteFile(e: ListFileEntry): RemoteFile {
  return e.lfs !== undefined ? { path: e.path, size: e.lfs.size, sha256: e.lfs.oid } : { path: e.path, size: e.size, ...(e.oid !== undefined ? { gitOid: e.oid } : {}) };
}

function explainHubError(repo: string, hubUrl: string, token: string | undefined, e: unknown): string {
  if (e instanceof HubApiError) {
    if (e.statusCode === 401 || e.statusCode === 403) {
      return token === undefined
        ? `${repo} is gated or private on ${hubUrl}: request access on its page, then set HF_TOKEN to a token of that account (${e.statusCode})`
        : `${repo} on ${hubUrl} refused the token in HF_TOKEN (${e.statusCode}): check that it is valid and that this account was granted access`;
    }
    if (e.statusCode === 404) return `${repo} was not found on ${hubUrl} (404): check the repository id${token === undefined ? ", or set HF_TOKEN if it is private" : ""}`;
    return `listing ${repo} on ${hubUrl} failed with HTTP ${e.statusCode}: ${e.message}`;
  }
  const cause = (e as { cause?: { code?: string } }).cause?.code;
  return `cannot reach ${hubUrl} to list ${repo} (${cause ?? (e as Error).message}); set HF_ENDPOINT for a mirror, or https_proxy for a proxy`;
}

function explainDownload(repo: string, token: string | undefined, e: DownloadError): string {
  if (e.status === 401 || e.status === 403) {
    return token === undefined
      ? `${repo} is gated (${e.message}): request access on its Hub page, then set HF_TOKEN to a token of that account`
      : `${repo} refused the token in HF_TOKEN (${e.message}): check that it is valid and that this account was granted access`;
  }
  return `${repo}: ${e.message}`;
}

/** Refuses what graphserve could not serve before a byte is downloaded. */
function checkImageGenerationRepo(repo: string, files: readonly RemoteFile[]): void {
  const paths = new Set(files.map((f) => f.path));
  if (!paths.has("model_index.json")) {
    throw new PullError(`${repo} is not an image-generation model: it has no model_index.json (a diffusers pipeline); --task image_generation needs one`);
  }
  const runnable = files.some((f) => /(^|\/)(openvino_model\.xml|model\.onnx)$/.test(f.path));
  if (!runnable) {
    throw new PullError(
      `${repo} holds a diffusers pipeline without OpenVINO IR (openvino_model.xml) or ONNX (model.onnx) files; graphserve serves those formats: pull an exported repository (e.g. OpenVINO/*-ov), or export one with \`optimum-cli export onnx --model ${repo} DIR\` and serve DIR`,
    );
  }
}

/**
 * Refuses, before downloading it, a repository no backend here can run:
 * OpenVINO IR only, without OpenVINO (ONNX files beside it load on ONNX Runtime).
 */
async function checkBackendRunsHere(repo: string, files: readonly RemoteFile[], unavailable: (kind: BackendKind) => Promise<string | undefined>): Promise<void> {
  const kinds = formatsOfFiles(files.map((f) => f.path));
  if (!kinds.includes("openvino") || kinds.includes("onnxruntime")) return;
  const why = await unavailable("openvino");
  if (why === undefined) return;
  throw new PullError(
    `${repo} holds OpenVINO IR (openvino_model.xml), which this machine cannot run, so nothing was downloaded. ${why} ` +
      `Elsewhere, pull a repository with ONNX files (model.onnx), or export one with \`optimum-cli export onnx --model <the original diffusers repository> DIR\` and serve DIR.`,
  );
}

async function checkDiskSpace(path: string, needed: number, freeBytes: (path: string) => Promise<number>): Promise<void> {
  const free = await freeBytes(path);
  if (free < needed) throw new PullError(`not enough disk space in ${path}: the model needs ${size(needed)}, ${size(free)} are free`);
}

async function freeBytesAt(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}
