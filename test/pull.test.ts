/**
 * Pull mode end to end against a loopback Hugging Face Hub stand-in:
 * pullModel (resumable, verified, atomic downloads) and the real CLI
 * (`--source_model`, `--pull`, `--configure`, serving a pulled model).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, request as httpRequest } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { hostname } from "node:os";
import { backendUnavailable } from "../src/backends/formats.js";
import { loadBackend } from "../src/backends/index.js";
import { makeTinyModel } from "../src/backends/onnx/tiny/make-tiny-model.js";
import { CalculatorRegistry } from "../src/engine/registry.js";
import { parseGraphText } from "../src/graph/load.js";
import { PullError, pullModel, STAGING_SUFFIX, type PullOptions } from "../src/servables/pull/pull.js";
import { PARTS_DIR } from "../src/servables/pull/download.js";
import { runProcess, type ProcessResult } from "./helpers/run-process.js";
import { startForwardProxy, startHubStandIn, type HubRequestRecord, type HubStandIn } from "./helpers/hub-stand-in.js";
import { CLI, ROOT, call, eventually, spawnCli, tempDir } from "./server-helpers.js";

// The environment of this process must not leak into the pulls (tokens, endpoints, proxies).
for (const k of ["HF_TOKEN", "HF_ENDPOINT", "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "OVMS_MODEL_REPOSITORY_PATH"]) delete process.env[k];

const MB = 1024 * 1024;
const BIG = "unet/extra.bin";
const BIG_SIZE = 3 * MB;

// Source folders, built once: the tiny SD model, and the same with a 3 MB LFS file to interrupt.
let sources: Promise<{ small: string; big: string }> | undefined;
function src(): Promise<{ small: string; big: string }> {
  sources ??= (async () => {
    const small = tempDir();
    await makeTinyModel(small, { family: "sd", seed: 7 });
    const big = tempDir();
    cpSync(small, big, { recursive: true });
    writeFileSync(join(big, BIG), randomBytes(BIG_SIZE));
    return { small, big };
  })();
  return sources;
}

/** A fresh stand-in per test: its own request log and faults. */
async function standIn(t: TestContext): Promise<HubStandIn> {
  const hub = await startHubStandIn();
  t.after(() => hub.close());
  return hub;
}

/** Relative paths of every regular file under `dir` (hidden ones included). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** Every file of `source` is in `dir`, byte for byte (and `dir` holds nothing else but `extra`). */
function assertSameFiles(dir: string, source: string, extra: string[] = []): void {
  const want = filesUnder(source);
  assert.deepEqual(filesUnder(dir).filter((f) => !extra.includes(f)), want);
  for (const f of want) assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(source, f))), `${f} is byte-identical`);
}

function mtimes(paths: string[]): Record<string, number> {
  return Object.fromEntries(paths.map((p) => [p, statSync(p).mtimeMs]));
}

const fileParam = (r: HubRequestRecord) => new URL(r.url, "http://x").searchParams.get("path");
/** CDN (LFS bytes) requests for `path`. */
const cdnRequests = (reqs: HubRequestRecord[]) => reqs.filter((r) => r.url.startsWith("/cdn/"));
const cdnFor = (reqs: HubRequestRecord[], path: string) => reqs.filter((r) => r.url.startsWith("/cdn/") && fileParam(r) === path);
/** Resolve requests for `path` (any repo). */
const resolveFor = (reqs: HubRequestRecord[], path: string) => reqs.filter((r) => r.url.includes("/resolve/") && r.url.split("/resolve/")[1].replace(/^[^/]+\//, "") === path);
const contentRequests = (reqs: HubRequestRecord[]) => reqs.filter((r) => r.url.includes("/resolve/") || r.url.startsWith("/cdn/"));

const staging = (repo: string, org: string, name: string) => join(repo, org, `.${name}${STAGING_SUFFIX}`);

/** A new repository folder where `owner` holds the pull lock of org/tiny: the folder and the lock file. */
function repoLockedBy(owner: { host: string; pid: number }): { repo: string; file: string } {
  const repo = tempDir();
  mkdirSync(join(repo, "org"), { recursive: true });
  const file = `${staging(repo, "org", "tiny")}.lock`;
  writeFileSync(file, JSON.stringify(owner));
  return { repo, file };
}

function pull(hub: HubStandIn, repo: string, sourceModel: string, log: string[], over: Partial<PullOptions> = {}) {
  return pullModel({ sourceModel, repositoryPath: repo, endpoint: hub.url, retryDelayMs: () => 10, log: (l) => log.push(l), ...over });
}

async function rejectsWith(p: Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  let message = "";
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PullError, `a PullError, got ${String(e)}`);
    message = e.message;
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
  return message;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ProcessResult> {
  return runProcess(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, API_KEY: "", ...env }, maxBuffer: 64 * MB });
}

/** The `graphserve: …` lines of stderr: exactly one, one line. */
function oneReason(r: ProcessResult): string {
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("graphserve: "));
  assert.equal(lines.length, 1, `one graphserve: line in ${JSON.stringify(r.stderr)}`);
  return lines[0];
}

let registry: CalculatorRegistry | undefined;


/** Where the downloader keeps a file's partial bytes inside a staging folder. */
function partFile(stage: string, path: string): string {
  return join(stage, PARTS_DIR, createHash("sha1").update(path).digest("hex"));
}

test("full pull: byte-identical files, no staging left; then the CLI --pull writes graph.pbtxt and config.json", async (t) => {
  const { small } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/tiny", small);
  const repo = tempDir();
  const log: string[] = [];
  const r = await pull(hub, repo, "org/tiny", log);
  assert.equal(r.downloaded, true);
  assert.equal(r.dir, join(repo, "org", "tiny"));
  const want = filesUnder(small);
  assert.equal(r.files, want.length);
  assert.equal(r.bytes, want.reduce((n, f) => n + statSync(join(small, f)).size, 0));
  assertSameFiles(r.dir, small);
  assert.ok(!existsSync(staging(repo, "org", "tiny")), "no staging folder left");
  assert.deepEqual(filesUnder(repo).filter((f) => f.includes(PARTS_DIR)), [], "no part files left");
  assert.deepEqual(readdirSync(join(repo, "org")), ["tiny"], "nothing beside the model");
  assert.ok(log.some((l) => /complete/.test(l)), "logged the completion");

  const repo2 = tempDir();
  const c = await cli(["--source_model", "org/tiny", "--model_repository_path", repo2, "--pull", "--default_resolution", "64x64", "--max_num_inference_steps", "8"], { HF_ENDPOINT: hub.url });
  assert.equal(c.code, 0, c.stderr);
  const dir = join(repo2, "org", "tiny");
  assertSameFiles(dir, small, ["graph.pbtxt"]);
  const graph = readFileSync(join(dir, "graph.pbtxt"), "utf8");
  assert.match(graph, /calculator: "ImageGenCalculator"/);
  assert.match(graph, /default_resolution: "64x64"/);
  assert.match(graph, /max_num_inference_steps: 8\b/);
  registry ??= await CalculatorRegistry.withBuiltins();
  const doc = parseGraphText(graph, "graph.pbtxt", registry.schema);
  assert.deepEqual(doc.warnings, [], "graph.pbtxt parses cleanly");
  const config = JSON.parse(readFileSync(join(repo2, "config.json"), "utf8")) as { model_config_list: { config: { name: string; base_path: string } }[] };
  assert.deepEqual(config.model_config_list.map((e) => e.config), [{ name: "org/tiny", base_path: "org/tiny" }]);
});

test("one command: --source_model pulls, serves and answers /v3/images/generations; SIGTERM exits 0", async (t) => {
  const { small } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/tiny", small);
  const repo = tempDir();
  const { proc, url, exit, stderr } = await spawnCli(
    t,
    ["--rest_port", "0", "--rest_bind_address", "127.0.0.1", "--model_repository_path", repo, "--source_model", "org/tiny", "--task", "image_generation"],
    { HF_ENDPOINT: hub.url },
  );
  await eventually(async () => (await call(url, "GET", "/v2/health/ready")).status === 200, "the pulled model to load", 30_000);
  const r = await call(url, "POST", "/v3/images/generations", { json: { model: "org/tiny", prompt: "x", num_inference_steps: 1, size: "64x64" } });
  assert.equal(r.status, 200, r.text);
  const png = Buffer.from((r.body as { data: { b64_json: string }[] }).data[0].b64_json, "base64");
  assert.ok(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), "a PNG");
  assert.equal(png.readUInt32BE(16), 64, "width");
  assert.equal(png.readUInt32BE(20), 64, "height");
  assert.ok(existsSync(join(repo, "org", "tiny", "graph.pbtxt")));
  assert.ok(existsSync(join(repo, "config.json")));
  proc.kill("SIGTERM");
  assert.equal(await exit, 0, stderr());
});

/**
 * A front for the Hub stand-in whose /resolve/ answers send their headers and
 * then stall (a slow transfer); everything else is passed through.
 */
async function stallingFront(t: TestContext, hubUrl: string): Promise<string> {
  const hub = new URL(hubUrl);
  const server = createServer((req, res) => {
    const upstream = httpRequest({ host: hub.hostname, port: hub.port, path: req.url, method: req.method, headers: { ...req.headers, host: hub.host } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (req.url?.includes("/resolve/") && (up.statusCode ?? 0) < 300) res.flushHeaders();
      else up.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

test("SIGTERM during `--pull` (PID 1 in an init container): transfers stop, one line, exit 143, lock released, nothing revealed; the next run resumes", async (t) => {
  const { small } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/tiny", small);
  const repo = tempDir();
  const front = await stallingFront(t, hub.url);
  const args = [CLI, "--pull", "--source_model", "org/tiny", "--model_repository_path", repo, "--task", "image_generation"];
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, HF_ENDPOINT: front }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  await eventually(async () => stderr.includes("downloading org/tiny"), "the download to start", 20_000);
  await new Promise((r) => setTimeout(r, 300));
  const stopped = performance.now();
  proc.kill("SIGTERM");
  assert.equal(await exit, 143, stderr);
  assert.ok(performance.now() - stopped < 5000, "stopped promptly");
  const reasons = stderr.split("\n").filter((l) => l.startsWith("graphserve: "));
  assert.deepEqual(reasons.length, 1, stderr);
  assert.match(reasons[0], /^graphserve: SIGTERM: pull of org\/tiny stopped; what was downloaded is kept and the next run resumes it$/);
  assert.ok(!existsSync(`${staging(repo, "org", "tiny")}.lock`), "the lock is released");
  assert.ok(!existsSync(join(repo, "org", "tiny")), "nothing revealed");
  assert.ok(existsSync(staging(repo, "org", "tiny")), "what was fetched is kept");

  const seen = hub.requests.length;
  const rerun = await cli(["--pull", "--source_model", "org/tiny", "--model_repository_path", repo, "--task", "image_generation"], { HF_ENDPOINT: hub.url });
  assert.equal(rerun.code, 0, rerun.stderr);
  assertSameFiles(join(repo, "org", "tiny"), small, ["graph.pbtxt"]);
  // Files complete before SIGTERM are not fetched again; one cut short resumes with a Range.
  const before = new Set(cdnRequests(hub.requests.slice(0, seen)).filter((r) => r.status === 200).map(fileParam));
  assert.ok(before.size > 0, "some files were complete before SIGTERM");
  const again = cdnRequests(hub.requests.slice(seen)).filter((r) => before.has(fileParam(r)) && r.range === undefined);
  assert.deepEqual(again.map(fileParam), [], "nothing complete was fetched again");
});

test("interrupted pull: gives up naming the file, keeps the .part; the next pull resumes with Range", async (t) => {
  const { big } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/big", big);
  const repo = tempDir();
  const dir = join(repo, "org", "big");
  // 3 attempts (retries: 2), each cut after 512 KiB.
  hub.fault({ path: BIG, kind: "cut", afterBytes: 512 * 1024, times: 3 });
  const log: string[] = [];
  await rejectsWith(pull(hub, repo, "org/big", log, { retries: 2 }), new RegExp(BIG.replace(".", "\\.")), /gave up/);
  assert.ok(!existsSync(dir), "no model folder after a failed pull");
  const part = partFile(staging(repo, "org", "big"), BIG);
  assert.ok(existsSync(part), "the staging folder keeps the .part");
  const partSize = statSync(part).size;
  const firstRun = cdnFor(hub.requests, BIG);
  assert.equal(firstRun.length, 3, "3 attempts");
  const received = firstRun.reduce((n, r) => n + r.bytes, 0);
  // The socket is destroyed right after the last write, so a few of the bytes sent may never arrive; none is invented.
  assert.ok(partSize > 0 && partSize <= received, `the part file holds what arrived (${partSize} of ${received} bytes sent)`);
  assert.ok(partSize > 0 && partSize < BIG_SIZE);
  assert.equal(log.filter((l) => l.startsWith(`${BIG}:`) && /retry \d/.test(l)).length, 2, "two retries logged");

  const seen = hub.requests.length;
  const progress: string[] = [];
  const r = await pull(hub, repo, "org/big", log, { progress: { tty: false, write: (s) => progress.push(s), everySeconds: 0 } });
  assert.equal(r.downloaded, true);
  assertSameFiles(dir, big);
  assert.ok(!existsSync(staging(repo, "org", "big")));
  const second = cdnFor(hub.requests.slice(seen), BIG);
  assert.equal(second.length, 1);
  assert.equal(second[0].range, `bytes=${partSize}-`, "resumed where the .part ended");
  assert.equal(second[0].status, 206);
  const total = cdnFor(hub.requests, BIG).reduce((n, x) => n + x.bytes, 0);
  // Once in all, not twice: only bytes lost in the cut connections are sent again.
  assert.ok(total >= BIG_SIZE && total <= BIG_SIZE + (received - partSize), `${total} bytes sent for a ${BIG_SIZE}-byte file`);
  const last = progress.at(-1)!;
  assert.match(last, /100% /);
  const m = /([\d.]+)\/([\d.]+) MB/.exec(last);
  assert.ok(m && m[1] === m[2], `final progress counts the resumed bytes once: ${last}`);
});

test("a transient cut inside one pull is retried and resumed transparently", async (t) => {
  const { big } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/big", big);
  const repo = tempDir();
  hub.fault({ path: BIG, kind: "cut", afterBytes: MB, times: 1 });
  const log: string[] = [];
  const r = await pull(hub, repo, "org/big", log);
  assert.equal(r.downloaded, true);
  assertSameFiles(r.dir, big);
  assert.ok(log.some((l) => l.startsWith(`${BIG}:`) && /retry 1/.test(l)), log.join("\n"));
  const reqs = cdnFor(hub.requests, BIG);
  assert.equal(reqs.length, 2);
  assert.equal(reqs[0].range, undefined);
  // Resumed where the first transfer broke: at most the bytes it sent (a cut may lose a few in flight).
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(reqs[1].range ?? "")?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= MB, `resumed at ${reqs[1].range}`);
  assert.equal(reqs[1].bytes, BIG_SIZE - resumedAt);
});

test("corrupted bytes are detected (sha256 for LFS, git oid otherwise) and fetched again", async (t) => {
  const { small } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/tiny", small);
  const LFS = "text_encoder/model.onnx";
  const PLAIN = "model_index.json";

  await t.test("an LFS file", async () => {
    const repo = tempDir();
    const before = hub.requests.length;
    hub.fault({ path: LFS, kind: "corrupt", times: 1 });
    const log: string[] = [];
    const r = await pull(hub, repo, "org/tiny", log);
    assertSameFiles(r.dir, small);
    assert.ok(log.some((l) => l.startsWith(`${LFS}:`) && /checksum/.test(l) && /retry 1/.test(l)), log.join("\n"));
    const reqs = cdnFor(hub.requests.slice(before), LFS);
    assert.equal(reqs.length, 2, "fetched twice");
    assert.ok(reqs.every((x) => x.range === undefined), "the second fetch starts over");
  });

  await t.test("a plain (non-LFS) file", async () => {
    const repo = tempDir();
    const before = hub.requests.length;
    hub.fault({ path: PLAIN, kind: "corrupt", times: 1 });
    const log: string[] = [];
    const r = await pull(hub, repo, "org/tiny", log);
    assertSameFiles(r.dir, small);
    assert.ok(log.some((l) => l.startsWith(`${PLAIN}:`) && /checksum/.test(l)), log.join("\n"));
    assert.equal(resolveFor(hub.requests.slice(before), PLAIN).length, 2, "fetched twice");
  });

  await t.test("a corrupt .part left by an earlier run", async () => {
    const repo = tempDir();
    const stage = staging(repo, "org", "tiny");
    mkdirSync(join(stage, "text_encoder"), { recursive: true });
    mkdirSync(dirname(partFile(stage, LFS)), { recursive: true });
    writeFileSync(partFile(stage, LFS), randomBytes(1000));
    const before = hub.requests.length;
    const log: string[] = [];
    const r = await pull(hub, repo, "org/tiny", log);
    assertSameFiles(r.dir, small);
    assert.ok(log.some((l) => l.startsWith(`${LFS}:`) && /checksum/.test(l)), log.join("\n"));
    const reqs = cdnFor(hub.requests.slice(before), LFS);
    assert.deepEqual(reqs.map((x) => x.range), ["bytes=1000-", undefined], "resumed, found corrupt, fetched whole");
    assert.ok(!existsSync(stage));
  });
});

test("gated repositories: no token, a refused token, the right token; the CLI says it in one line, exit 1", async (t) => {
  const { small } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/gated", small, { gated: { token: "hf_good" } });
  await hub.addRepoFromFolder("org/private", small, { gated: { token: "hf_good", listing: true } });
  const repo = tempDir();
  const dir = join(repo, "org", "gated");

  await rejectsWith(pull(hub, repo, "org/gated", []), /gated/, /HF_TOKEN/);
  assert.ok(!existsSync(dir), "no model folder");
  assert.deepEqual(filesUnder(staging(repo, "org", "gated")), [], "no file downloaded");
  const refused = await rejectsWith(pull(hub, repo, "org/gated", [], { token: "hf_bad" }), /refused the token/);
  assert.doesNotMatch(refused, /hf_bad/, "the token itself is not printed");
  assert.ok(!existsSync(dir));
  await rejectsWith(pull(hub, repo, "org/private", []), /gated or private/, /HF_TOKEN/);
  await rejectsWith(pull(hub, repo, "org/private", [], { token: "hf_bad" }), /refused the token/);

  const before = hub.requests.length;
  const r = await pull(hub, repo, "org/gated", [], { token: "hf_good" });
  assert.equal(r.downloaded, true);
  assertSameFiles(dir, small);
  const content = contentRequests(hub.requests.slice(before)).filter((x) => x.url.includes("/resolve/"));
  assert.ok(content.length > 0 && content.every((x) => x.auth === "Bearer hf_good"), "the token is sent");

  const repo2 = tempDir();
  const c = await cli(["--source_model", "org/gated", "--model_repository_path", repo2, "--pull"], { HF_ENDPOINT: hub.url });
  assert.equal(c.code, 1, c.stderr);
  assert.match(oneReason(c), /^graphserve: .*gated.*HF_TOKEN/);
  assert.ok(!existsSync(join(repo2, "org", "gated")));
  const bad = await cli(["--source_model", "org/gated", "--model_repository_path", repo2, "--pull"], { HF_ENDPOINT: hub.url, HF_TOKEN: "hf_bad" });
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(oneReason(bad), /^graphserve: .*refused the token/);
  const good = await cli(["--source_model", "org/gated", "--model_repository_path", repo2, "--pull"], { HF_ENDPOINT: hub.url, HF_TOKEN: "hf_good" });
  assert.equal(good.code, 0, good.stderr);
  assertSameFiles(join(repo2, "org", "gated"), small, ["graph.pbtxt"]);
});

test("a missing repository: PullError 'not found' (404); the CLI exits 1", async (t) => {
  const hub = await standIn(t);
  const repo = tempDir();
  await rejectsWith(pull(hub, repo, "org/nope", []), /not found/, /404/);
  assert.ok(!existsSync(join(repo, "org", "nope")));
  const c = await cli(["--source_model", "org/nope", "--model_repository_path", repo, "--pull"], { HF_ENDPOINT: hub.url });
  assert.equal(c.code, 1, c.stderr);
  assert.match(oneReason(c), /not found.*404/);
});

test("repositories graphserve cannot serve are refused before any download", async (t) => {
  const hub = await standIn(t);
  hub.addRepo("org/llm", { files: { "config.json": "{}", "model.safetensors": randomBytes(2000), "tokenizer.json": "{}" } });
  hub.addRepo("org/torch", {
    files: {
      "model_index.json": JSON.stringify({ _class_name: "StableDiffusionPipeline" }),
      "unet/config.json": "{}",
      "unet/diffusion_pytorch_model.safetensors": randomBytes(2000),
      "vae/diffusion_pytorch_model.safetensors": randomBytes(2000),
    },
  });
  const repo = tempDir();
  await rejectsWith(pull(hub, repo, "org/llm", []), /not an image-generation model/);
  await rejectsWith(pull(hub, repo, "org/torch", []), /optimum-cli/);
  assert.deepEqual(contentRequests(hub.requests), [], "no file was requested");
  assert.deepEqual(filesUnder(repo), []);
  const c = await cli(["--source_model", "org/llm", "--model_repository_path", repo, "--pull"], { HF_ENDPOINT: hub.url });
  assert.equal(c.code, 1, c.stderr);
  assert.match(oneReason(c), /not an image-generation model/);
});

test("an OpenVINO repository on a machine that cannot run OpenVINO is refused before any download", async (t) => {
  const hub = await standIn(t);
  const ir = {
    "model_index.json": JSON.stringify({ _class_name: "StableDiffusionPipeline" }),
    "unet/openvino_model.xml": "<net/>",
    "unet/openvino_model.bin": randomBytes(4000),
    "text_encoder/openvino_model.xml": "<net/>",
    "text_encoder/openvino_model.bin": randomBytes(2000),
  };
  hub.addRepo("OpenVINO/sd-ov", { files: ir });
  const repo = tempDir();
  const asked: string[] = [];
  const unavailable = async (kind: string) => (asked.push(kind), "The OpenVINO backend needs the npm package \"openvino-genai-node\", which could not be loaded.");
  await rejectsWith(pull(hub, repo, "OpenVINO/sd-ov", [], { backendUnavailable: unavailable }), /^OpenVINO\/sd-ov holds OpenVINO IR \(openvino_model\.xml\), which this machine cannot run, so nothing was downloaded\. The OpenVINO backend needs .*optimum-cli export onnx/s);
  assert.deepEqual(asked, ["openvino"]);
  assert.deepEqual(contentRequests(hub.requests), [], "no file was requested");
  assert.deepEqual(filesUnder(repo), []);
  // Where OpenVINO runs, the same repository downloads.
  const r = await pull(hub, repo, "OpenVINO/sd-ov", [], { backendUnavailable: async () => undefined });
  assert.equal(r.downloaded, true);
  assert.ok(existsSync(join(r.dir, "unet/openvino_model.xml")));
  // The real check, through the CLI: this machine has no openvino-genai-node unless someone installed it.
  if ((await backendUnavailable("openvino")) !== undefined) {
    const other = tempDir();
    const c = await cli(["--source_model", "OpenVINO/sd-ov", "--model_repository_path", other, "--pull"], { HF_ENDPOINT: hub.url });
    assert.equal(c.code, 1, c.stderr);
    assert.match(oneReason(c), /OpenVINO\/sd-ov holds OpenVINO IR .* cannot run.*openvino-genai-node/);
    assert.deepEqual(filesUnder(other), []);
  }
});

test("a repository with ONNX files beside its OpenVINO IR downloads where OpenVINO cannot run, and loads on ONNX Runtime there", async (t) => {
  const hub = await standIn(t);
  const { small } = await src();
  const both = tempDir();
  cpSync(small, both, { recursive: true });
  writeFileSync(join(both, "unet/openvino_model.xml"), "<net/>");
  writeFileSync(join(both, "unet/openvino_model.bin"), randomBytes(1000));
  await hub.addRepoFromFolder("someone/sd-both", both);
  const repo = tempDir();
  const r = await pull(hub, repo, "someone/sd-both", [], { backendUnavailable: async () => "The OpenVINO backend needs openvino-genai-node." });
  assert.equal(r.downloaded, true);
  assert.ok(existsSync(join(r.dir, "unet/model.onnx")) && existsSync(join(r.dir, "unet/openvino_model.xml")));
  if ((await backendUnavailable("openvino")) !== undefined) {
    const backend = await loadBackend(r.dir);
    try {
      assert.equal(backend.capabilities().backend, "onnxruntime");
    } finally {
      await backend.dispose();
    }
  }
});

test("already downloaded: nothing requested, nothing touched; --overwrite_models downloads again", async (t) => {
  const { small } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/tiny", small);
  const repo = tempDir();
  const dir = join(repo, "org", "tiny");
  const flags = ["--source_model", "org/tiny", "--model_repository_path", repo, "--pull", "--default_resolution", "64x64", "--max_num_inference_steps", "8"];
  const env = { HF_ENDPOINT: hub.url };
  const first = await cli(flags, env);
  assert.equal(first.code, 0, first.stderr);
  const paths = [...filesUnder(dir).map((f) => join(dir, f)), join(repo, "config.json")];
  const before = mtimes(paths);
  const configText = readFileSync(join(repo, "config.json"), "utf8");
  const seen = hub.requests.length;

  const log: string[] = [];
  const again = await pull(hub, repo, "org/tiny", log);
  assert.equal(again.downloaded, false);
  assert.equal(again.dir, dir);
  assert.ok(log.some((l) => /already/.test(l)));
  const second = await cli(flags, env);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(hub.requests.length, seen, "no request to the Hub at all");
  assert.deepEqual(mtimes(paths), before, "no file changed");
  assert.deepEqual(filesUnder(dir).map((f) => join(dir, f)).concat(join(repo, "config.json")), paths, "no file added");

  const third = await cli([...flags, "--overwrite_models"], env);
  assert.equal(third.code, 0, third.stderr);
  assert.ok(contentRequests(hub.requests.slice(seen)).length > 0, "downloaded again");
  assertSameFiles(dir, small, ["graph.pbtxt"]);
  assert.match(readFileSync(join(dir, "graph.pbtxt"), "utf8"), /max_num_inference_steps: 8\b/);
  assert.equal(readFileSync(join(repo, "config.json"), "utf8"), configText);
  assert.deepEqual(readdirSync(join(repo, "org")), ["tiny"], "no staging or .old folder left");
  assert.ok(statSync(join(dir, "model_index.json")).mtimeMs >= before[join(dir, "model_index.json")], "files are new copies");
});

test("--overwrite_models after a crash that left the old copy aside (.old) still replaces the model", async (t) => {
  const { small } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/tiny", small);
  const repo = tempDir();
  const r = await pull(hub, repo, "org/tiny", []);
  const old = `${staging(repo, "org", "tiny")}.old`;
  mkdirSync(join(old, "unet"), { recursive: true });
  writeFileSync(join(old, "unet", "model.onnx"), "left by an interrupted replace");
  const again = await pull(hub, repo, "org/tiny", [], { overwrite: true });
  assert.equal(again.downloaded, true);
  assertSameFiles(r.dir, small);
  assert.deepEqual(readdirSync(join(repo, "org")), ["tiny"]);
});

test("HTTP 5xx answers are retried; a file the Hub lists but cannot serve (404) fails the pull at once", async (t) => {
  const { small } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/tiny", small);
  const LFS = "unet/model.onnx";
  hub.fault({ path: LFS, kind: "status", status: 503, times: 2 });
  const log: string[] = [];
  const r = await pull(hub, tempDir(), "org/tiny", log);
  assertSameFiles(r.dir, small);
  assert.equal(log.filter((l) => l.startsWith(`${LFS}: HTTP 503; retry`)).length, 2, log.join("\n"));

  hub.fault({ path: LFS, kind: "status", status: 404, times: 10 });
  const repo = tempDir();
  await rejectsWith(pull(hub, repo, "org/tiny", []), new RegExp(LFS.replace(".", "\\.") + ": 404"));
  assert.equal(cdnFor(hub.requests, LFS).filter((x) => x.status === 404).length, 1, "not retried");
  assert.ok(!existsSync(join(repo, "org", "tiny")));
});

test("not enough disk space: refused before downloading", async (t) => {
  const { small } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/tiny", small);
  const repo = tempDir();
  await rejectsWith(pull(hub, repo, "org/tiny", [], { freeBytes: async () => 10 }), /not enough disk space/);
  assert.deepEqual(contentRequests(hub.requests), []);
  assert.deepEqual(filesUnder(repo), []);
  assert.ok(!existsSync(join(repo, "org", "tiny")));
});

test("the CLI pulls through $https_proxy / $http_proxy", async (t) => {
  const { small } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/tiny", small);
  const proxy = await startForwardProxy();
  t.after(() => proxy.close());
  const repo = tempDir();
  const c = await cli(["--source_model", "org/tiny", "--model_repository_path", repo, "--pull"], { HF_ENDPOINT: hub.url, https_proxy: proxy.url, http_proxy: proxy.url });
  assert.equal(c.code, 0, c.stderr);
  assertSameFiles(join(repo, "org", "tiny"), small, ["graph.pbtxt"]);
  const host = new URL(hub.url).host;
  assert.ok(proxy.tunnels.includes(host) || proxy.seen.some((u) => u.startsWith(hub.url)), `the proxy carried the traffic: ${JSON.stringify({ tunnels: proxy.tunnels, seen: proxy.seen.length })}`);
});

test("--configure rewrites only graph.pbtxt; a folder without model_index.json exits 2", async () => {
  const { small } = await src();
  const dir = tempDir();
  cpSync(small, dir, { recursive: true });
  const files = filesUnder(dir).map((f) => join(dir, f));
  const before = mtimes(files);
  const c = await cli(["--configure", "--model_path", dir, "--resolution", "512x512"]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(readFileSync(join(dir, "graph.pbtxt"), "utf8"), /resolution: "512x512"/);
  assert.deepEqual(mtimes(files), before, "nothing else touched");
  assert.deepEqual(filesUnder(dir), [...filesUnder(small), "graph.pbtxt"].sort());

  const empty = tempDir();
  writeFileSync(join(empty, "config.json"), "{}");
  const bad = await cli(["--configure", "--model_path", empty, "--resolution", "512x512"]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(oneReason(bad), /model_index\.json/);
  assert.ok(!existsSync(join(empty, "graph.pbtxt")));
});

test("progress on a non-TTY stderr: periodic lines with % and files, ending at 100%", async (t) => {
  const { big } = await src();
  const hub = await standIn(t);
  await hub.addRepoFromFolder("org/big", big);
  // Three cuts: the CLI's own retry delays (1 s, 2 s, 4 s) stretch the pull past the 5 s line interval.
  hub.fault({ path: BIG, kind: "cut", afterBytes: 256 * 1024, times: 3 });
  const repo = tempDir();
  const c = await cli(["--source_model", "org/big", "--model_repository_path", repo, "--pull"], { HF_ENDPOINT: hub.url });
  assert.equal(c.code, 0, c.stderr);
  const lines = c.stderr.split("\n").filter((l) => /%/.test(l) && /files\)/.test(l));
  assert.ok(lines.length >= 3, `periodic lines: ${JSON.stringify(lines)}`);
  assert.ok(lines.every((l) => l.startsWith("org/big: ") && !l.includes("\r")));
  const n = filesUnder(big).length;
  assert.match(lines.at(-1)!, new RegExp(`^org/big: 100% .*\\(${n}/${n} files\\)$`));
  assert.ok(lines.slice(0, -1).some((l) => !/^org\/big: 100%/.test(l)), "earlier lines show partial progress");
  assertSameFiles(join(repo, "org", "big"), big, ["graph.pbtxt"]);
});

test("odd repositories: paginated listings, names that need URL encoding, an empty file", async (t) => {
  const { small } = await src();
  const hub = await standIn(t);
  hub.pageSize = 3;
  const files: Record<string, Uint8Array | string> = {};
  for (const f of filesUnder(small)) files[f] = readFileSync(join(small, f));
  files["tokenizer/added tokens+1%.json"] = "{}";
  files["tokenizer/ünïcode.txt"] = "x";
  hub.addRepo("org/odd", { files });

  const repo = tempDir();
  const r = await pull(hub, repo, "org/odd", []);
  assert.equal(r.files, Object.keys(files).length, "every page of the listing was read");
  for (const [f, data] of Object.entries(files)) assert.ok(readFileSync(join(r.dir, f)).equals(Buffer.from(data)), f);

  await t.test("an empty file", async () => {
    hub.addRepo("org/empty", { files: { ...files, "unet/.gitkeep": "" } });
    const repo2 = tempDir();
    const r2 = await pull(hub, repo2, "org/empty", []);
    assert.equal(readFileSync(join(r2.dir, "unet/.gitkeep")).length, 0);
  });
});

test("review regressions: unsafe listing paths, colliding part names, one pull per model, fatal errors stop the rest, leftovers", async (t) => {
  const { small } = await src();

  await t.test("a listing path that would escape the model folder is refused before anything is written", async () => {
    const { createServer } = await import("node:http");
    const victim = join(tempDir(), "victim.txt");
    writeFileSync(victim, "keep me");
    const server = createServer((req, res) => {
      if (req.url?.startsWith("/api/models/org/evil/tree/")) {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify([
          { type: "file", path: "model_index.json", size: 2, oid: "x" },
          { type: "file", path: "unet/model.onnx", size: 2, oid: "x" },
          { type: "file", path: `../../../../../../../../..${victim}`, size: 5, oid: "x" },
        ]));
      } else res.writeHead(500).end("no");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    t.after(() => server.close());
    const repo = tempDir();
    await rejectsWith(pullModel({ sourceModel: "org/evil", repositoryPath: repo, endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}` }), /unsafe path/);
    assert.equal(readFileSync(victim, "utf8"), "keep me");
    assert.deepEqual(filesUnder(repo), []);
  });

  await t.test("a repository holding both x.bin and x.bin.part gets both", async () => {
    const hub = await standIn(t);
    hub.addRepo("org/parts", { files: { "model_index.json": "{}", "unet/model.onnx": "onnx", "x.bin": randomBytes(5000), "x.bin.part": randomBytes(3000) } });
    const repo = tempDir();
    const r = await pull(hub, repo, "org/parts", []);
    assert.deepEqual(filesUnder(r.dir), ["model_index.json", "unet/model.onnx", "x.bin", "x.bin.part"]);
  });

  await t.test("a second pull of the same model at the same time waits for the first, then finds the model there and downloads nothing", async () => {
    const hub = await standIn(t);
    await hub.addRepoFromFolder("org/tiny", small);
    const repo = tempDir();
    const logs: string[][] = [[], []];
    const [a, b] = await Promise.all(logs.map((log) => pull(hub, repo, "org/tiny", log)));
    assert.deepEqual([a.downloaded, b.downloaded].sort(), [false, true]);
    const waited = logs[a.downloaded ? 1 : 0];
    assert.ok(waited.some((l) => /is being pulled by another process \(pid \d+\); waiting/.test(l)), waited.join("\n"));
    assert.ok(!waited.some((l) => l.startsWith("downloading")), "the waiting pull downloaded nothing");
    assertSameFiles(join(repo, "org", "tiny"), small);
    assert.ok(!existsSync(`${staging(repo, "org", "tiny")}.lock`), "the lock is released");
  });

  await t.test("a pull that waited re-checks under the lock: it asks the Hub nothing and leaves the folder the first one revealed alone", async () => {
    const hub = await standIn(t);
    await hub.addRepoFromFolder("org/tiny", small);
    const repo = tempDir();
    // A is slow (a big model): it holds the lock while B arrives.
    const slow: typeof fetch = async (input, init) => {
      await new Promise((r) => setTimeout(r, 100));
      return fetch(input, init);
    };
    let requestsB = 0;
    const counting: typeof fetch = async (input, init) => (requestsB++, fetch(input, init));
    const logB: string[] = [];
    const pA = pull(hub, repo, "org/tiny", [], { fetch: slow, concurrency: 1 });
    await eventually(async () => existsSync(`${staging(repo, "org", "tiny")}.lock`), "A to take the lock", 5000);
    const b = await pull(hub, repo, "org/tiny", logB, { fetch: counting });
    const a = await pA;
    assert.deepEqual([a.downloaded, b.downloaded], [true, false]);
    assert.match(logB.join("\n"), /being pulled by another process \(pid \d+\); waiting/);
    assert.equal(requestsB, 0, "B asked the Hub nothing");
    assertSameFiles(join(repo, "org", "tiny"), small);
  });

  await t.test("a lock left by a killed pull is taken over: same host with our pid (a container's pid 1) or a dead one, another host's gone quiet", async () => {
    const hub = await standIn(t);
    await hub.addRepoFromFolder("org/tiny", small);
    const stale = [
      { host: hostname(), pid: process.pid, age: 0 },
      { host: hostname(), pid: 2 ** 22 + 17, age: 0 },
      { host: "other-pod", pid: 1, age: 120_000 },
    ];
    for (const owner of stale) {
      const { repo, file } = repoLockedBy({ host: owner.host, pid: owner.pid });
      const then = new Date(Date.now() - owner.age);
      utimesSync(file, then, then);
      await pull(hub, repo, "org/tiny", []);
      assertSameFiles(join(repo, "org", "tiny"), small);
      assert.ok(!existsSync(file), "the lock is released");
      assert.deepEqual(readdirSync(join(repo, "org")).filter((f) => f.includes(".lock")), [], "no lock left aside");
    }
  });

  await t.test("a stale lock met by several pulls at once is taken over by exactly one: the others wait and download nothing", async () => {
    const hub = await standIn(t);
    await hub.addRepoFromFolder("org/tiny", small);
    for (let round = 0; round < 8; round++) {
      const { repo } = repoLockedBy({ host: hostname(), pid: 2 ** 22 + 17 });
      const results = await Promise.all([0, 1, 2].map(() => pull(hub, repo, "org/tiny", [])));
      assert.equal(results.filter((r) => r.downloaded).length, 1, `round ${round}: one download`);
      assertSameFiles(join(repo, "org", "tiny"), small);
    }
  });

  await t.test("a live lock from another host (a replica on a shared volume) is waited for, naming the host, up to lockWaitSeconds", async () => {
    const hub = await standIn(t);
    await hub.addRepoFromFolder("org/tiny", small);
    const { repo, file } = repoLockedBy({ host: "other-pod", pid: 1 });
    const log: string[] = [];
    const started = performance.now();
    await rejectsWith(pull(hub, repo, "org/tiny", log, { lockWaitSeconds: 1 }), /still being pulled by another process \(pid 1 on other-pod\) after waiting 1 s/);
    assert.ok(performance.now() - started >= 1000);
    assert.match(log.join("\n"), /being pulled by another process \(pid 1 on other-pod\); waiting for it to finish/);
    assert.ok(!existsSync(join(repo, "org", "tiny")));
    assert.ok(existsSync(file), "another host's live lock is left alone");

    // Released while we wait: the pull goes ahead.
    const waiting = pull(hub, repo, "org/tiny", [], { lockWaitSeconds: 30 });
    setTimeout(() => rmSync(file), 300);
    assert.equal((await waiting).downloaded, true);
    assertSameFiles(join(repo, "org", "tiny"), small);
  });

  await t.test("an abort while waiting for a lock or downloading rejects with its reason and releases our lock", async () => {
    const hub = await standIn(t);
    await hub.addRepoFromFolder("org/tiny", small);
    const { repo, file } = repoLockedBy({ host: "other-pod", pid: 1 });
    const stop = new AbortController();
    setTimeout(() => stop.abort(new Error("stopped")), 200);
    await assert.rejects(pull(hub, repo, "org/tiny", [], { signal: stop.signal }), /stopped/);
    assert.ok(existsSync(file), "the other host's lock stays");
    rmSync(file);

    const stalled = new AbortController();
    const hanging: typeof fetch = async (input, init) => (String(input).includes("/resolve/") ? new Promise<Response>((_r, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason))) : fetch(input, init));
    setTimeout(() => stalled.abort(new Error("stopped")), 300);
    await assert.rejects(pull(hub, repo, "org/tiny", [], { signal: stalled.signal, fetch: hanging }), /stopped/);
    assert.ok(!existsSync(file), "our lock is released");
    assert.ok(!existsSync(join(repo, "org", "tiny")), "nothing revealed");
  });

  await t.test("a fatal error (404) stops the other transfers instead of waiting out their retries", async () => {
    const hub = await standIn(t);
    hub.addRepo("org/half", { files: { "model_index.json": "{}", "unet/model.onnx": "onnx", "a.bin": randomBytes(2000), "b.bin": randomBytes(2000) } });
    hub.fault({ path: "a.bin", kind: "status", status: 404, times: 99 });
    hub.fault({ path: "b.bin", kind: "status", status: 503, times: 99 });
    const started = performance.now();
    await rejectsWith(pull(hub, tempDir(), "org/half", [], { retryDelayMs: () => 5000, concurrency: 4 }), /a\.bin: 404/);
    assert.ok(performance.now() - started < 3000, `took ${Math.round(performance.now() - started)} ms`);
  });

  await t.test("files an earlier run fetched that the repository no longer lists stay out of the model", async () => {
    const hub = await standIn(t);
    await hub.addRepoFromFolder("org/tiny", small);
    const repo = tempDir();
    const stage = staging(repo, "org", "tiny");
    mkdirSync(stage, { recursive: true });
    writeFileSync(join(stage, "removed-upstream.bin"), "old");
    const r = await pull(hub, repo, "org/tiny", []);
    assertSameFiles(r.dir, small);
  });

  await t.test("a model already there wins over an unfinished replacement, without asking the Hub", async () => {
    const hub = await standIn(t);
    await hub.addRepoFromFolder("org/tiny", small);
    const repo = tempDir();
    await pull(hub, repo, "org/tiny", []);
    mkdirSync(staging(repo, "org", "tiny"), { recursive: true });
    const log: string[] = [];
    const r = await pullModel({ sourceModel: "org/tiny", repositoryPath: repo, endpoint: "http://127.0.0.1:9", log: (l) => log.push(l) });
    assert.equal(r.downloaded, false);
    assert.match(log.join("\n"), /unfinished replacement is kept/);
  });

  await t.test("a replace killed between its renames: the previous copy is put back", async () => {
    const hub = await standIn(t);
    await hub.addRepoFromFolder("org/tiny", small);
    const repo = tempDir();
    const r = await pull(hub, repo, "org/tiny", []);
    const { renameSync } = await import("node:fs");
    renameSync(r.dir, `${staging(repo, "org", "tiny")}.old`);
    const again = await pullModel({ sourceModel: "org/tiny", repositoryPath: repo, endpoint: "http://127.0.0.1:9" });
    assert.equal(again.downloaded, false);
    assertSameFiles(r.dir, small);
  });
});
