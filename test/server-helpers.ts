/**
 * Shared by the server tests: temporary servable folders, test calculators
 * (written as .mjs into a --calculators_dir, as a user would), a server on
 * an ephemeral loopback port with its log captured, and request helpers.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { request as httpRequest } from "node:http";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createInterface } from "node:readline";
import { after, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { DEFAULT_CORS } from "../src/server/cors.js";
import type { Servable, ServableErrorCode, ServableState } from "../src/servables/types.js";
import type { ServeOptions } from "../src/server/flags.js";
import { startServer, type RunningServer, type StartOptions } from "../src/server/serve.js";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const ECHO_GRAPH_DIR = join(ROOT, "graphs/echo");
/** The CLI as compiled next to this file. */
export const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
export const INDEX_URL = new URL("../src/index.js", import.meta.url).href;

const dirs: string[] = [];
const servers: RunningServer[] = [];
// Registered at import, i.e. on the file's root: everything started is closed when the file ends.
after(async () => {
  await Promise.all(servers.map((s) => s.close(0)));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Body = NonNullable<Parameters<typeof fetch>[1]>["body"];

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "graphserve-test-"));
  dirs.push(d);
  return d;
}

/** A graph whose single node, `calculator`, maps the request payload to the response. */
export function oneNodeGraph(calculator: string, header = ""): string {
  return `${header}input_stream: "HTTP_REQUEST_PAYLOAD:input"
output_stream: "HTTP_RESPONSE_PAYLOAD:output"
node { name: "${calculator.replace(/Calculator$/, "")}" calculator: "${calculator}" input_stream: "HTTP_REQUEST_PAYLOAD:input" output_stream: "HTTP_RESPONSE_PAYLOAD:output" }
`;
}

/** Writes `<dir>/<name>/graph.pbtxt`; returns the servable folder. */
export function writeServable(dir: string, name: string, graphText: string): string {
  const folder = join(dir, name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "graph.pbtxt"), graphText);
  return folder;
}

/**
 * Test calculators, in-process gates included: a request naming `gate`
 * waits until the test opens it (or, in a child process, writes
 * `entered_file` and waits until `wait_file` exists), so "in flight" is a
 * state, not a timing.
 */
const CALCULATORS = `
import { existsSync, writeFileSync } from "node:fs";
import { Calculator, HttpError, StatusError } from ${JSON.stringify(INDEX_URL)};

const io = { inputs: { HTTP_REQUEST_PAYLOAD: {} }, outputs: { HTTP_RESPONSE_PAYLOAD: {} } };
const gates = (globalThis.__graphserveGates ??= new Map());

export class GateCalculator extends Calculator {
  static contract = io;
  async process(ctx) {
    const req = ctx.inputs.value("HTTP_REQUEST_PAYLOAD");
    const name = req.json?.gate;
    const file = req.json?.wait_file;
    const gate = name === undefined ? undefined : gates.get(name);
    gate?.entered();
    if (req.json?.entered_file !== undefined) writeFileSync(req.json.entered_file, "");
    const stop = new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
    if (gate) await Promise.race([gate.opened, stop]);
    while (file !== undefined && !existsSync(file) && !ctx.signal.aborted) await new Promise((r) => setTimeout(r, 10));
    if (ctx.signal.aborted) {
      gate?.aborted(req.signal.aborted);
      return;
    }
    ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", JSON.stringify({ gate: name ?? null, file: file ?? null }));
  }
}

export class FailCalculator extends Calculator {
  static contract = io;
  process(ctx) {
    const j = ctx.inputs.value("HTTP_REQUEST_PAYLOAD").json ?? {};
    if (j.status !== undefined) throw new HttpError(j.status, j.message ?? "failed", { param: j.param, code: j.code });
    if (j.status_code !== undefined) throw new StatusError(j.status_code, j.message ?? "failed");
    throw new Error(j.message ?? "plain failure");
  }
}

export class InspectCalculator extends Calculator {
  static contract = io;
  process(ctx) {
    const r = ctx.inputs.value("HTTP_REQUEST_PAYLOAD");
    const files = r.multipart?.files.map((f) => ({ field: f.field, filename: f.filename, contentType: f.contentType, text: f.data.toString("utf8") }));
    ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", JSON.stringify({
      method: r.method, uri: r.uri, path: r.path, model: r.model, servable: r.servable, stream: r.stream, requestId: r.requestId,
      json: r.json ?? null, fields: r.multipart?.fields ?? null, files: files ?? null, body: r.body.toString("utf8"),
      contentType: r.headers["content-type"] ?? null, signal: r.signal instanceof AbortSignal, enumerable: Object.keys(r).includes("signal"),
    }));
  }
}

export class RespondCalculator extends Calculator {
  static contract = io;
  process(ctx) {
    const j = ctx.inputs.value("HTTP_REQUEST_PAYLOAD").json ?? {};
    if (j.kind === "object") ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", { status: 202, headers: { "Content-Type": "text/plain", "x-custom": "yes" }, body: "accepted" });
    else if (j.kind === "bytes") ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", new TextEncoder().encode('{"bytes":true}'));
    else if (j.kind === "bad") ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", 42);
    else if (j.kind === "sse") {
      const count = j.count ?? 3;
      ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", {
        events: (async function* () {
          for (let i = 0; i < count; i++) {
            if (i === j.fail_at) throw new HttpError(400, "stream broke", { param: "fail_at" });
            yield { event: "image_generation.partial_image", data: { i } };
          }
          yield { data: "[DONE]" };
        })(),
      });
    }
    // anything else: no packet at all
  }
}
`;

let calculatorsDir: string | undefined;
/** A --calculators_dir holding the test calculators. */
export function testCalculatorsDir(): string {
  if (calculatorsDir === undefined) {
    calculatorsDir = tempDir();
    writeFileSync(join(calculatorsDir, "server-test-calculators.mjs"), CALCULATORS);
  }
  return calculatorsDir;
}

interface Gate {
  entered(): void;
  aborted(payloadSignalAborted: boolean): void;
  opened: Promise<void>;
}

/** An in-process gate for GateCalculator requests with `"gate": name`. */
export function gate(name: string): { entered: Promise<void>; aborted: Promise<boolean>; open(): void } {
  const gates = ((globalThis as { __graphserveGates?: Map<string, Gate> }).__graphserveGates ??= new Map());
  let entered!: () => void;
  let aborted!: (b: boolean) => void;
  let open!: () => void;
  const g = {
    entered: new Promise<void>((r) => (entered = r)),
    aborted: new Promise<boolean>((r) => (aborted = r)),
    opened: new Promise<void>((r) => (open = r)),
  };
  gates.set(name, { entered, aborted, opened: g.opened });
  return { entered: g.entered, aborted: g.aborted, open };
}

export interface TestServer extends RunningServer {
  /** Every log line so far, parsed. */
  readonly logs: Record<string, unknown>[];
  request(method: string, path: string, init?: { json?: unknown; body?: Body; headers?: Record<string, string> }): Promise<Reply>;
}

export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly body: unknown;
}

export function defaults(over: Partial<ServeOptions> = {}): ServeOptions {
  return {
    restPort: 0,
    restBindAddress: "127.0.0.1",
    pollSeconds: 0,
    logLevel: "DEBUG",
    metricsEnable: false,
    cors: DEFAULT_CORS,
    maxBodyBytes: 64 * 1024 * 1024,
    maxJsonDepth: 100,
    shutdownGraceSeconds: 10,
    ignored: [],
    calculatorsDir: testCalculatorsDir(),
    ...over,
  };
}

/** Starts the real server on an ephemeral loopback port, once its servables are loaded; closed when the test file ends. */
export async function start(over: Partial<StartOptions> = {}): Promise<TestServer> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n")) if (line !== "") logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = pino({ level: "debug" }, sink);
  const server = await startServer({ ...defaults(), logger, ...over });
  servers.push(server);
  // Servables load in the background (ready is 503 meanwhile): tests start from a loaded server.
  await server.manager.whenInitialized();
  return Object.assign(server, { logs, request: (method: string, path: string, init?: Parameters<TestServer["request"]>[2]) => call(server.url, method, path, init) });
}

export async function call(base: string, method: string, path: string, init: { json?: unknown; body?: Body; headers?: Record<string, string> } = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...init.headers };
  let body = init.body;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** POSTs a JSON body with chunked transfer encoding (no Content-Length), one write per piece; resolves with the status. */
export function postChunked(url: string, pieces: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", headers: { "content-type": "application/json", "transfer-encoding": "chunked" } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on("error", reject);
    for (const piece of pieces) req.write(piece);
    req.end();
  });
}

/** Polls `check` every 20 ms until it holds (generous deadline: these are state changes, not races). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The OpenAI error object of a reply. */
export function errorOf(r: Reply): { message: string; type: string; param: string | null; code: string | null } {
  const e = (r.body as { error?: { message: string; type: string; param: string | null; code: string | null } } | undefined)?.error;
  if (e === undefined) throw new Error(`not an OpenAI error body (status ${r.status}): ${r.text}`);
  return e;
}

export interface CliServer {
  readonly proc: ChildProcess;
  /** The URL the server logged it listens on. */
  readonly url: string;
  /** The exit code once it exits. */
  readonly exit: Promise<number | null>;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
}

/**
 * Runs the real CLI as a child process with `args` and resolves once it logs
 * the URL it listens on; killed (SIGKILL) when the test ends if still running.
 * `command` starts it some other way (say, `npx graphserve`).
 */
export async function spawnCli(t: TestContext, args: readonly string[], env: NodeJS.ProcessEnv = {}, command: readonly string[] = [process.execPath, CLI]): Promise<CliServer> {
  const [file, ...pre] = command;
  const proc = spawn(file, [...pre, ...args], { cwd: ROOT, env: { ...process.env, API_KEY: "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  });
  const exit = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(line);
      if (m) resolve(m[1]);
    });
    void exit.then((code) => reject(new Error(`exited (${code}) before listening: ${stderr}`)));
  });
  return { proc, url, exit, stderr: () => stderr };
}

/** A servable frozen in one state (the real manager passes through some too quickly to catch); failed ones give `reason`. */
export class FrozenServable implements Servable {
  readonly basePath = "/nowhere";
  readonly graphPath = "/nowhere/graph.pbtxt";
  constructor(
    readonly name: string,
    private readonly state: ServableState,
    private readonly code: ServableErrorCode = "OK",
    private readonly reason = "broken",
  ) {}
  status() {
    return { state: this.state, errorCode: this.code, errorMessage: this.code === "OK" ? "OK" : this.reason };
  }
  inFlight() {
    return 0;
  }
  acquire() {
    return undefined;
  }
  overloaded() {
    return undefined;
  }
  served() {
    return undefined;
  }
}
