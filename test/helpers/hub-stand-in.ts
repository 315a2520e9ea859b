/**
 * A local stand-in for the Hugging Face Hub, served on loopback with plain `node:http`.
 *
 * Mirrors the response shapes the real Hub gives for the endpoints a model downloader uses:
 *  - GET  /api/models/{org}/{name}/tree/{revision}[/{path}]?recursive=&expand=   (paginated, Link rel="next")
 *  - GET  /api/models/{org}/{name}[/revision/{revision}]                          (model info)
 *  - GET|HEAD /{org}/{name}/resolve/{revision}/{path}                             (200 plain / 302 LFS)
 *  - GET|HEAD /cdn/{sha256}?...                                                   (LFS bytes, Range support)
 *
 * Also exports a tiny HTTP forward proxy (absolute-form and CONNECT) that records what it forwarded.
 */
import http from "node:http";
import net from "node:net";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";

export interface StandInRepo {
  files: Record<string, Uint8Array | string>;
  /** Which files are stored in LFS. Default: .onnx .bin .safetensors .onnx_data .pb .msgpack and anything > 10 KiB. */
  lfs?: (path: string) => boolean;
  /**
   * Gate the repo behind a token. As on the real Hub, only file content (resolve / CDN) is gated;
   * set `listing: true` to also gate the tree and model-info endpoints.
   */
  gated?: { token: string; listing?: boolean };
  /** Commit sha; default a fixed 40-hex. */
  revision?: string;
  libraryName?: string;
}

export interface Fault {
  path: string;
  kind: "cut" | "corrupt" | "status";
  /** For "cut": body bytes sent before the socket is destroyed (default: half the body). */
  afterBytes?: number;
  /** For "status": the status to answer (default 500). */
  status?: number;
  /** How many requests it affects, default 1. */
  times?: number;
}

export interface HubRequestRecord {
  method: string;
  url: string;
  range?: string;
  auth?: string;
  status: number;
  bytes: number;
}

export interface HubStandIn {
  readonly url: string;
  addRepo(id: string, repo: StandInRepo): void;
  addRepoFromFolder(id: string, dir: string, opts?: Omit<StandInRepo, "files">): Promise<void>;
  fault(f: Fault): void;
  readonly requests: HubRequestRecord[];
  pageSize: number;
  close(): Promise<void>;
}

export interface ForwardProxy {
  readonly url: string;
  /** Absolute URLs it forwarded (absolute-form requests). */
  readonly seen: string[];
  /** `host:port` of every CONNECT tunnel it opened (undici's ProxyAgent tunnels by default). */
  readonly tunnels: string[];
  close(): Promise<void>;
}

export const DEFAULT_REVISION = "0123456789abcdef0123456789abcdef01234567";
const LFS_EXTENSIONS = [".onnx", ".bin", ".safetensors", ".onnx_data", ".pb", ".msgpack"];
const LFS_THRESHOLD = 10 * 1024;
const CHUNK = 64 * 1024;

/** Where a file's bytes live: in memory, or on disk (streamed from the file). */
type Source = { kind: "mem"; data: Uint8Array } | { kind: "disk"; file: string };

interface FileEntry {
  path: string;
  size: number;
  source: Source;
  /** git blob sha1 of the content (plain) or of the LFS pointer (LFS). */
  oid: string;
  lfs?: { oid: string; size: number; pointerSize: number };
}

interface RepoState {
  id: string;
  sha: string;
  objectId: string;
  files: Map<string, FileEntry>;
  /** Tree entries in listing order (pre-order, per level directories before files, alphabetical). */
  entries: TreeEntry[];
  gated?: { token: string; listing?: boolean };
  libraryName?: string;
}

interface TreeEntry {
  type: "file" | "directory";
  oid: string;
  size: number;
  path: string;
  lfs?: { oid: string; size: number; pointerSize: number };
}

function defaultIsLfs(p: string, size: number): boolean {
  const lower = p.toLowerCase();
  return size > LFS_THRESHOLD || LFS_EXTENSIONS.some((e) => lower.endsWith(e));
}

function gitBlobSha1(parts: Iterable<Uint8Array>, size: number): string {
  const h = createHash("sha1");
  h.update(`blob ${size}\0`);
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

function lfsPointer(sha256: string, size: number): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`;
}

function makeEntry(p: string, size: number, source: Source, sha1: string, sha256: string, isLfs: boolean): FileEntry {
  if (!isLfs) return { path: p, size, source, oid: sha1 };
  const pointer = Buffer.from(lfsPointer(sha256, size));
  return {
    path: p,
    size,
    source,
    oid: gitBlobSha1([pointer], pointer.length),
    lfs: { oid: sha256, size, pointerSize: pointer.length },
  };
}

interface DirNode {
  dirs: Map<string, DirNode>;
  files: Map<string, FileEntry>;
}

/** Builds the tree listing, computing real git tree oids for directories. */
function buildEntries(files: Map<string, FileEntry>): TreeEntry[] {
  const root: DirNode = { dirs: new Map(), files: new Map() };
  for (const f of files.values()) {
    const parts = f.path.split("/");
    let node = root;
    for (const d of parts.slice(0, -1)) {
      let next = node.dirs.get(d);
      if (!next) node.dirs.set(d, (next = { dirs: new Map(), files: new Map() }));
      node = next;
    }
    node.files.set(parts[parts.length - 1], f);
  }
  const treeOid = (node: DirNode): string => {
    const items: { sortKey: string; bytes: Buffer }[] = [];
    for (const [name, d] of node.dirs) {
      items.push({
        sortKey: name + "/",
        bytes: Buffer.concat([Buffer.from(`40000 ${name}\0`), Buffer.from(treeOid(d), "hex")]),
      });
    }
    for (const [name, f] of node.files) {
      items.push({ sortKey: name, bytes: Buffer.concat([Buffer.from(`100644 ${name}\0`), Buffer.from(f.oid, "hex")]) });
    }
    items.sort((a, b) => Buffer.compare(Buffer.from(a.sortKey), Buffer.from(b.sortKey)));
    const body = Buffer.concat(items.map((i) => i.bytes));
    return createHash("sha1").update(`tree ${body.length}\0`).update(body).digest("hex");
  };
  const out: TreeEntry[] = [];
  const walk = (node: DirNode, prefix: string) => {
    for (const name of [...node.dirs.keys()].sort()) {
      const d = node.dirs.get(name)!;
      out.push({ type: "directory", oid: treeOid(d), size: 0, path: prefix + name });
      walk(d, prefix + name + "/");
    }
    for (const name of [...node.files.keys()].sort()) {
      const f = node.files.get(name)!;
      const e: TreeEntry = { type: "file", oid: f.oid, size: f.size, path: f.path };
      if (f.lfs) e.lfs = { ...f.lfs };
      out.push(e);
    }
  };
  walk(root, "");
  return out;
}

function normalizeRepoId(id: string): string {
  const parts = id.split("/");
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new Error(`repo id must be "org/name", got ${id}`);
  return id;
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${port}`);
    });
  });
}

function closeServer(server: http.Server, sockets: Set<Duplex>): Promise<void> {
  return new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

type Range = { start: number; end: number } | "unsatisfiable" | undefined;

/** Parses a single `bytes=` range (multi-range requests are answered as if no Range was sent). */
function parseRange(header: string | undefined, size: number): Range {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === "" && b === "") return undefined;
  if (a === "") {
    // suffix range: last N bytes
    const n = Number(b);
    if (n === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  let end = b === "" ? size - 1 : Number(b);
  if (start >= size) return "unsatisfiable";
  if (end < start) return undefined;
  if (end >= size) end = size - 1;
  return { start, end };
}

async function* sourceChunks(src: Source, start: number, end: number): AsyncGenerator<Uint8Array> {
  if (end < start) return;
  if (src.kind === "mem") {
    for (let i = start; i <= end; i += CHUNK) {
      yield src.data.subarray(i, Math.min(end + 1, i + CHUNK));
    }
  } else {
    for await (const c of createReadStream(src.file, { start, end, highWaterMark: CHUNK })) yield c as Buffer;
  }
}

export async function startHubStandIn(): Promise<HubStandIn> {
  const repos = new Map<string, RepoState>();
  const faults: (Fault & { remaining: number })[] = [];
  const requests: HubRequestRecord[] = [];
  const sockets = new Set<Duplex>();
  let baseUrl = "";

  const addState = (id: string, files: Map<string, FileEntry>, opts: Omit<StandInRepo, "files">) => {
    normalizeRepoId(id);
    repos.set(id, {
      id,
      sha: opts.revision ?? DEFAULT_REVISION,
      objectId: createHash("sha1").update(id).digest("hex").slice(0, 24),
      files,
      entries: buildEntries(files),
      gated: opts.gated,
      libraryName: opts.libraryName,
    });
  };

  const takeFault = (p: string): Fault | undefined => {
    const i = faults.findIndex((f) => f.path === p && f.remaining > 0);
    if (i < 0) return undefined;
    const f = faults[i];
    f.remaining--;
    if (f.remaining <= 0) faults.splice(i, 1);
    return f;
  };

  const server = http.createServer((req, res) => {
    const rec: HubRequestRecord = {
      method: req.method ?? "GET",
      url: req.url ?? "/",
      status: 0,
      bytes: 0,
    };
    if (typeof req.headers.range === "string") rec.range = req.headers.range;
    if (typeof req.headers.authorization === "string") rec.auth = req.headers.authorization;
    requests.push(rec);
    const origWriteHead = res.writeHead;
    res.writeHead = function (this: http.ServerResponse, status: number, ...rest: unknown[]) {
      rec.status = status;
      return (origWriteHead as (...a: unknown[]) => http.ServerResponse).call(this, status, ...rest);
    } as typeof res.writeHead;
    handle(req, res, rec).catch((err) => {
      if (!res.headersSent) {
        sendJson(res, 500, { error: String(err?.message ?? err) });
      } else {
        res.destroy();
      }
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    const text = JSON.stringify(body);
    const buf = Buffer.from(text);
    res.writeHead(status, {
      "Content-Type": "application/json; charset=utf-8",
      "Content-Length": String(buf.length),
      "X-Request-Id": "Root=1-" + randomBytes(12).toString("hex"),
      ...headers,
    });
    res.end(res.req.method === "HEAD" ? undefined : buf);
  }

  function sendError(res: http.ServerResponse, status: number, code: string, message: string) {
    sendJson(res, status, { error: message }, { "X-Error-Code": code, "X-Error-Message": message });
  }

  function repoNotFound(res: http.ServerResponse) {
    sendError(res, 404, "RepoNotFound", "Repository Not Found");
  }

  /** Returns true if the request may proceed. */
  function checkGate(repo: RepoState, req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (!repo.gated) return true;
    const auth = req.headers.authorization;
    const m = typeof auth === "string" ? /^Bearer\s+(.+)$/i.exec(auth) : null;
    if (!m) {
      sendError(
        res,
        401,
        "GatedRepo",
        `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
      );
      return false;
    }
    if (m[1].trim() !== repo.gated.token) {
      sendError(
        res,
        403,
        "GatedRepo",
        `Access to model ${repo.id} is restricted and you are not in the authorized list. Visit ${baseUrl}/${repo.id} to ask for access.`,
      );
      return false;
    }
    return true;
  }

  function revisionOk(repo: RepoState, rev: string): boolean {
    return rev === "main" || rev === "HEAD" || rev === repo.sha;
  }

  function decodeSegments(segs: string[]): string {
    return segs.map((s) => decodeURIComponent(s)).join("/");
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, rec: HubRequestRecord) {
    const u = new URL(req.url ?? "/", "http://stand-in");
    // "/api/models/org/name/tree/main" -> ["api","models","org","name","tree","main"]
    const parts = u.pathname.replace(/^\/+/, "").split("/");
    const method = req.method ?? "GET";

    // --- API ---
    if (parts[0] === "api" && parts[1] === "models" && parts.length >= 4) {
      if (method !== "GET" && method !== "HEAD") return sendError(res, 405, "MethodNotAllowed", "Method not allowed");
      const id = `${decodeURIComponent(parts[2])}/${decodeURIComponent(parts[3])}`;
      const repo = repos.get(id);
      if (!repo) return repoNotFound(res);
      if (repo.gated?.listing && !checkGate(repo, req, res)) return;
      const rest = parts.slice(4);
      if (rest.length === 0 || (rest[0] === "revision" && rest.length === 2)) {
        const rev = rest.length === 2 ? decodeURIComponent(rest[1]) : "main";
        if (!revisionOk(repo, rev)) return sendError(res, 404, "RevisionNotFound", `Invalid rev id: ${rev}`);
        return sendJson(res, 200, modelInfoJson(repo));
      }
      if (rest[0] === "tree" && rest.length >= 2) {
        const rev = decodeURIComponent(rest[1]);
        if (!revisionOk(repo, rev)) return sendError(res, 404, "RevisionNotFound", `Invalid rev id: ${rev}`);
        const sub = decodeSegments(rest.slice(2)).replace(/\/+$/, "");
        const recursive = ["true", "1"].includes(u.searchParams.get("recursive") ?? "");
        let list = repo.entries;
        if (sub) {
          const isDir = list.some((e) => e.type === "directory" && e.path === sub);
          if (!isDir) return sendError(res, 404, "EntryNotFound", `${sub} does not exist on "${rev}"`);
          list = list.filter((e) => e.path.startsWith(sub + "/"));
        }
        const depth = sub ? sub.split("/").length + 1 : 1;
        if (!recursive) list = list.filter((e) => e.path.split("/").length === depth);
        const cursor = u.searchParams.get("cursor");
        const offset = cursor ? Number(Buffer.from(cursor, "base64url").toString()) || 0 : 0;
        const size = Math.max(1, Math.floor(standIn.pageSize));
        const page = list.slice(offset, offset + size);
        const headers: Record<string, string> = {};
        if (offset + size < list.length) {
          const next = new URL(u.pathname + u.search, baseUrl);
          next.searchParams.set("cursor", Buffer.from(String(offset + size)).toString("base64url"));
          headers["Link"] = `<${next.toString()}>; rel="next"`;
        }
        return sendJson(res, 200, page, headers);
      }
      return sendError(res, 404, "NotFound", "Sorry, we can't find the page you are looking for.");
    }

    // --- CDN (LFS bytes) ---
    if (parts[0] === "cdn" && parts.length === 2) {
      if (method !== "GET" && method !== "HEAD") return sendError(res, 405, "MethodNotAllowed", "Method not allowed");
      const sha = parts[1];
      const repo = repos.get(u.searchParams.get("repo") ?? "");
      const file = repo?.files.get(u.searchParams.get("path") ?? "");
      if (!repo || !file || file.lfs?.oid !== sha) {
        res.writeHead(404, { "Content-Type": "text/plain" });
        return void res.end("Not Found");
      }
      const expires = Number(u.searchParams.get("Expires"));
      if (!Number.isFinite(expires) || expires * 1000 < Date.now()) {
        res.writeHead(403, { "Content-Type": "text/plain" });
        return void res.end("Request has expired");
      }
      return serveContent(req, res, rec, repo, file, {
        ETag: `"${sha}"`,
        "Content-Type": "application/octet-stream",
        "Content-Disposition": `inline; filename*=UTF-8''${encodeURIComponent(path.posix.basename(file.path))}; filename="${path.posix.basename(file.path)}";`,
      });
    }

    // --- resolve ---
    if (parts.length >= 5 && parts[2] === "resolve") {
      if (method !== "GET" && method !== "HEAD") return sendError(res, 405, "MethodNotAllowed", "Method not allowed");
      const id = `${decodeURIComponent(parts[0])}/${decodeURIComponent(parts[1])}`;
      const repo = repos.get(id);
      if (!repo) return repoNotFound(res);
      if (!checkGate(repo, req, res)) return;
      const rev = decodeURIComponent(parts[3]);
      if (!revisionOk(repo, rev)) return sendError(res, 404, "RevisionNotFound", `Invalid rev id: ${rev}`);
      const filePath = decodeSegments(parts.slice(4));
      const file = repo.files.get(filePath);
      if (!file) return sendError(res, 404, "EntryNotFound", "Entry not found");
      if (file.lfs) {
        const loc = new URL(`/cdn/${file.lfs.oid}`, baseUrl);
        loc.searchParams.set("repo", repo.id);
        loc.searchParams.set("path", file.path);
        loc.searchParams.set(
          "response-content-disposition",
          `inline; filename*=UTF-8''${encodeURIComponent(path.posix.basename(file.path))};`,
        );
        loc.searchParams.set("Expires", String(Math.floor(Date.now() / 1000) + 3600));
        loc.searchParams.set("Signature", randomBytes(16).toString("hex"));
        loc.searchParams.set("Key-Pair-Id", "STANDIN");
        const body = Buffer.from(`Found. Redirecting to ${loc.toString()}`);
        res.writeHead(302, {
          Location: loc.toString(),
          "X-Linked-Size": String(file.size),
          "X-Linked-Etag": `"${file.lfs.oid}"`,
          ETag: `"${file.lfs.oid}"`,
          "X-Repo-Commit": repo.sha,
          "Content-Type": "text/plain; charset=utf-8",
          "Content-Length": String(body.length),
          Vary: "Origin, Accept",
        });
        rec.bytes = method === "HEAD" ? 0 : body.length;
        return void res.end(method === "HEAD" ? undefined : body);
      }
      return serveContent(req, res, rec, repo, file, {
        ETag: `"${file.oid}"`,
        "X-Repo-Commit": repo.sha,
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Disposition": `inline; filename*=UTF-8''${encodeURIComponent(path.posix.basename(file.path))}; filename="${path.posix.basename(file.path)}";`,
      });
    }

    // --- repo page (used in gated messages) / anything else ---
    return sendError(res, 404, "NotFound", "Sorry, we can't find the page you are looking for.");
  }

  async function serveContent(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    rec: HubRequestRecord,
    repo: RepoState,
    file: FileEntry,
    headers: Record<string, string>,
  ) {
    const fault = takeFault(file.path);
    if (fault?.kind === "status") {
      const status = fault.status ?? 500;
      const body = Buffer.from(JSON.stringify({ error: `Injected fault: status ${status}` }));
      res.writeHead(status, { "Content-Type": "application/json", "Content-Length": String(body.length) });
      rec.bytes = req.method === "HEAD" ? 0 : body.length;
      return void res.end(req.method === "HEAD" ? undefined : body);
    }
    const range = parseRange(typeof req.headers.range === "string" ? req.headers.range : undefined, file.size);
    if (range === "unsatisfiable") {
      res.writeHead(416, { "Content-Range": `bytes */${file.size}`, "Content-Length": "0", ...headers });
      return void res.end();
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : file.size - 1;
    const length = Math.max(0, end - start + 1);
    const h: Record<string, string> = {
      ...headers,
      "Accept-Ranges": "bytes",
      "Content-Length": String(length),
    };
    if (range) h["Content-Range"] = `bytes ${start}-${end}/${file.size}`;
    res.writeHead(range ? 206 : 200, h);
    if (req.method === "HEAD") return void res.end();
    void repo;

    const cutAt = fault?.kind === "cut" ? Math.min(fault.afterBytes ?? Math.floor(length / 2), length) : undefined;
    // "corrupt": flip every bit of one byte in the middle of the body sent (and the first byte too, if tiny).
    const corruptAt = fault?.kind === "corrupt" ? Math.floor(length / 2) : undefined;

    let sent = 0;
    for await (const chunk0 of sourceChunks(file.source, start, end)) {
      if (res.destroyed) return;
      let chunk = chunk0;
      if (corruptAt !== undefined && corruptAt >= sent && corruptAt < sent + chunk.length) {
        const copy = Buffer.from(chunk);
        copy[corruptAt - sent] ^= 0xff;
        chunk = copy;
      }
      if (cutAt !== undefined && sent + chunk.length >= cutAt) {
        const part = chunk.subarray(0, cutAt - sent);
        sent += part.length;
        rec.bytes = sent;
        await new Promise<void>((resolve) => {
          if (part.length === 0) return resolve();
          res.write(part, () => resolve());
        });
        // make sure the partial bytes (and headers) left the process before breaking the connection
        await new Promise((r) => setTimeout(r, 20));
        res.socket?.destroy();
        res.destroy();
        return;
      }
      sent += chunk.length;
      rec.bytes = sent;
      if (!res.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off("drain", done);
            res.off("close", done);
            resolve();
          };
          res.on("drain", done);
          res.on("close", done);
        });
      }
    }
    res.end();
  }

  function modelInfoJson(repo: RepoState) {
    const lib = repo.libraryName;
    const tags = lib ? [lib] : [];
    if (lib === "diffusers") tags.push("diffusers:StableDiffusionPipeline");
    return {
      _id: repo.objectId,
      id: repo.id,
      modelId: repo.id,
      author: repo.id.split("/")[0],
      sha: repo.sha,
      lastModified: "2024-01-01T00:00:00.000Z",
      createdAt: "2024-01-01T00:00:00.000Z",
      private: false,
      gated: repo.gated ? "manual" : false,
      disabled: false,
      downloads: 0,
      likes: 0,
      ...(lib ? { library_name: lib } : {}),
      tags,
      ...(lib === "diffusers" ? { pipeline_tag: "text-to-image" } : {}),
      siblings: [...repo.files.keys()].sort().map((rfilename) => ({ rfilename })),
    };
  }

  baseUrl = await listen(server);

  const standIn: HubStandIn = {
    url: baseUrl,
    requests,
    pageSize: 50,
    addRepo(id: string, repo: StandInRepo) {
      const files = new Map<string, FileEntry>();
      for (const [p, content] of Object.entries(repo.files)) {
        const data = typeof content === "string" ? Buffer.from(content) : content;
        const sha256 = createHash("sha256").update(data).digest("hex");
        const sha1 = gitBlobSha1([data], data.length);
        const isLfs = repo.lfs ? repo.lfs(p) : defaultIsLfs(p, data.length);
        files.set(p, makeEntry(p, data.length, { kind: "mem", data }, sha1, sha256, isLfs));
      }
      addState(id, files, repo);
    },
    async addRepoFromFolder(id: string, dir: string, opts: Omit<StandInRepo, "files"> = {}) {
      const files = new Map<string, FileEntry>();
      const walk = async (abs: string, rel: string) => {
        for (const d of await readdir(abs, { withFileTypes: true })) {
          const a = path.join(abs, d.name);
          const r = rel ? `${rel}/${d.name}` : d.name;
          if (d.isDirectory()) await walk(a, r);
          else if (d.isFile() || (d.isSymbolicLink() && (await stat(a)).isFile())) {
            const size = (await stat(a)).size;
            const h1 = createHash("sha1").update(`blob ${size}\0`);
            const h256 = createHash("sha256");
            for await (const c of createReadStream(a)) {
              h1.update(c as Buffer);
              h256.update(c as Buffer);
            }
            const isLfs = opts.lfs ? opts.lfs(r) : defaultIsLfs(r, size);
            files.set(r, makeEntry(r, size, { kind: "disk", file: a }, h1.digest("hex"), h256.digest("hex"), isLfs));
          }
        }
      };
      await walk(dir, "");
      addState(id, files, opts);
    },
    fault(f: Fault) {
      faults.push({ ...f, remaining: f.times ?? 1 });
    },
    close() {
      return closeServer(server, sockets);
    },
  };
  return standIn;
}

/**
 * A plain HTTP forward proxy. Absolute-form requests (`GET http://host/path HTTP/1.1`, as http_proxy clients
 * and undici's `ProxyAgent({ proxyTunnel: false })` send) are relayed and recorded in `seen`; CONNECT requests
 * (undici's default, even for http:// targets) are tunnelled and recorded in `tunnels`.
 */
export async function startForwardProxy(): Promise<ForwardProxy> {
  const seen: string[] = [];
  const tunnels: string[] = [];
  const sockets = new Set<Duplex>();
  const server = http.createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? "");
      if (target.protocol !== "http:") throw new Error("only http:// targets");
    } catch {
      res.writeHead(400, { "Content-Type": "text/plain" });
      return void res.end("proxy expects an absolute-form http:// request URI");
    }
    seen.push(target.toString());
    const headers = { ...req.headers };
    delete headers["proxy-connection"];
    delete headers["proxy-authorization"];
    headers.host = target.host;
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port || 80,
        method: req.method,
        path: target.pathname + target.search,
        headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.rawHeaders as unknown as http.OutgoingHttpHeaders);
        up.pipe(res);
        up.on("error", () => res.destroy());
        up.on("aborted", () => res.destroy());
        // relay mid-body breaks as breaks
        up.on("close", () => {
          if (!up.complete) res.destroy();
        });
      },
    );
    upstream.on("error", (err) => {
      if (!res.headersSent) {
        res.writeHead(502, { "Content-Type": "text/plain" });
        res.end(`Bad gateway: ${err.message}`);
      } else res.destroy();
    });
    req.pipe(upstream);
  });
  server.on("connect", (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    const hostPort = req.url ?? "";
    tunnels.push(hostPort);
    const [host, port] = hostPort.split(":");
    const up = net.connect(Number(port) || 443, host, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    sockets.add(up);
    up.on("close", () => sockets.delete(up));
    up.on("error", () => client.destroy());
    client.on("error", () => up.destroy());
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  const url = await listen(server);
  return { url, seen, tunnels, close: () => closeServer(server, sockets) };
}
