/**
 * The server under abuse (issue 14): a body that ends inside a file part, an
 * error escaping a request, UTF-8 form names, nosniff on errors, body limits
 * checked before reading (per JSON body, and over all requests), clients
 * that stop reading, and clients that half-close after sending.
 */
import { Registry } from "prom-client";
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { loadNodeResources } from "../src/engine/node-resources.js";
import { GraphPool } from "../src/engine/graph-pool.js";
import { NodeStatsCollector } from "../src/engine/node-stats.js";
import { HttpRequest, isSseResponse, type SseEvent } from "../src/server/payload.js";
import { testRegistry } from "./helpers/calculators.js";
import { buildGraph } from "./helpers/graph.js";
import { imageServable } from "./image-server.js";
import { MAX_PROMPT_CHARS } from "../calculators/image-gen/request.js";
import { FlagError } from "../src/cli/flags.js";
import { serveOptionsFrom, SERVER_USAGE } from "../src/server/flags.js";
import { ECHO_GRAPH_DIR, errorOf, eventually, gate, oneNodeGraph, postChunked, spawnCli, start, tempDir, testCalculatorsDir, writeServable, type TestServer } from "./server-helpers.js";

const INDEX_URL = new URL("../src/index.js", import.meta.url).href;

/** Calculators of this file: an error that escapes its request, and an endless stream for a client that does not read. */
const CALCULATORS = `
import { Calculator } from ${JSON.stringify(INDEX_URL)};
const io = { inputs: { HTTP_REQUEST_PAYLOAD: {} }, outputs: { HTTP_RESPONSE_PAYLOAD: {} } };
const streams = (globalThis.__hardeningStreams ??= { returned: 0 });

export class EscapeCalculator extends Calculator {
  static contract = io;
  async process(ctx) {
    // A timer's throw escapes every handler: only the process-level guard sees it.
    await new Promise(() => setTimeout(() => { throw new Error("escaped the request"); }, 1));
  }
}

export class FloodCalculator extends Calculator {
  static contract = io;
  process(ctx) {
    const j = ctx.inputs.value("HTTP_REQUEST_PAYLOAD").json ?? {};
    const chunk = "x".repeat(1024 * 1024);
    if (!j.stream) return ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", chunk.repeat(j.mb));
    ctx.outputs.add("HTTP_RESPONSE_PAYLOAD", {
      events: {
        [Symbol.asyncIterator]() {
          return {
            next: async () => ({ value: { data: chunk }, done: false }),
            return: async () => { streams.returned++; return { value: undefined, done: true }; },
          };
        },
      },
    });
  }
}
`;

let srv: TestServer;
let dir: string;

before(async () => {
  dir = tempDir();
  writeFileSync(join(testCalculatorsDir(), "hardening-calculators.mjs"), CALCULATORS);
  for (const c of ["Gate", "Inspect", "Escape", "Flood"]) writeServable(dir, c.toLowerCase(), oneNodeGraph(`${c}Calculator`));
  const config = { model_config_list: [{ config: { name: "echo", base_path: ECHO_GRAPH_DIR } }, ...["gate", "inspect", "escape", "flood"].map((name) => ({ config: { name, base_path: name } }))] };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  srv = await start({ configPath: join(dir, "config.json") });
});

/** Sends raw bytes, returns everything the server answers until it closes (or `idleMs` of silence). */
function raw(url: string, bytes: string | Buffer, opts: { halfClose?: boolean; idleMs?: number } = {}): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), "127.0.0.1", () => {
      s.write(bytes);
      if (opts.halfClose) s.end();
    });
    let got = "";
    s.setTimeout(opts.idleMs ?? 5000, () => s.destroy());
    s.on("data", (d: Buffer) => (got += d.toString("utf8")));
    s.on("close", () => resolve(got));
    s.on("error", reject);
  });
}

test("a multipart body that ends inside a file part is a 400, and the server stays up", async () => {
  const body = '--B\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\nabc';
  const r = await srv.request("POST", "/v1/anything", { body, headers: { "content-type": "multipart/form-data; boundary=B" } });
  assert.equal(r.status, 400);
  assert.match(errorOf(r).message, /^Request of multipart type but failed to parse: Unexpected end of form/);
  assert.equal((await srv.request("GET", "/v2/health/live")).status, 200);
});

test("an error escaping a request fails that request only: 500 for it, the process serves on", async (t) => {
  const cli = await spawnCli(t, ["--rest_port", "0", "--rest_bind_address", "127.0.0.1", "--config_path", join(dir, "config.json"), "--calculators_dir", testCalculatorsDir()]);
  const ask = (model: string) => fetch(`${cli.url}/v3/x`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model }) });
  await eventually(async () => (await fetch(`${cli.url}/v2/health/ready`)).status === 200, "ready");
  const failed = await ask("escape");
  assert.equal(failed.status, 500);
  assert.match(((await failed.json()) as { error: { message: string } }).error.message, /escaped the request/);
  assert.equal((await ask("echo")).status, 200);
  assert.equal(cli.proc.exitCode, null, "still running");
});

test("multipart field names and filenames are UTF-8", async () => {
  const form = new FormData();
  form.append("model", "inspect");
  form.append("légende", "ok");
  form.append("image", new Blob(["px"], { type: "image/png" }), "chat noir — 猫.png");
  const r = await srv.request("POST", "/v3/images/edits", { body: form });
  assert.equal(r.status, 200, r.text);
  const p = r.body as { fields: Record<string, unknown>; files: { filename: string; field: string }[] };
  assert.equal(p.fields["légende"], "ok");
  assert.equal(p.files[0].filename, "chat noir — 猫.png");
});

test("JSON error bodies say nosniff", async () => {
  const r = await srv.request("GET", "/v4/<script>alert(1)</script>");
  assert.equal(r.status, 404);
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
  assert.equal(r.headers.get("content-type"), "application/json");
});

/** POSTs `body` with Content-Length and `Expect: 100-continue`; resolves with the status and whether the body was ever asked for. */
function postExpecting(url: string, contentType: string, body: Buffer): Promise<{ status: number; sent: boolean; text: string }> {
  return new Promise((resolve, reject) => {
    let sent = false;
    const req = httpRequest(`${url}/v3/images/generations`, { method: "POST", headers: { "content-type": contentType, "content-length": body.length, expect: "100-continue" } }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, sent, text }));
    });
    req.on("continue", () => {
      sent = true;
      req.end(body);
    });
    req.on("error", reject);
  });
}

test("JSON bodies have their own limit (2 MiB by default), refused from Content-Length before a byte is sent", async () => {
  const big = Buffer.from(JSON.stringify({ model: "echo", prompt: "cats", image: "A".repeat(2 * 1024 * 1024) }));
  const refused = await postExpecting(srv.url, "application/json", big);
  assert.equal(refused.status, 413);
  assert.equal(refused.sent, false, "the client was never told to send the body");
  const e = (JSON.parse(refused.text) as { error: { message: string; code: string; type: string } }).error;
  assert.equal(e.code, "request_too_large");
  assert.equal(e.type, "invalid_request_error");
  assert.match(e.message, /larger than the server's limit of 2097152 bytes for JSON bodies/);
  // Without Expect the answer is the same, before the body is read.
  const plain = await srv.request("POST", "/v3/x", { body: big, headers: { "content-type": "application/json" } });
  assert.equal(plain.status, 413);
  // The largest valid JSON generation fits: six prompts at the length limit, every character \u-escaped.
  const prompts = Object.fromEntries(["prompt", "prompt_2", "prompt_3", "negative_prompt", "negative_prompt_2", "negative_prompt_3"].map((k) => [k, "猫".repeat(MAX_PROMPT_CHARS)]));
  const escaped = JSON.stringify({ model: "echo", ...prompts }).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  assert.ok(escaped.length > 1024 * 1024, "more than a mebibyte");
  assert.equal((await srv.request("POST", "/v3/x", { body: escaped, headers: { "content-type": "application/json" } })).status, 200);
  // A body within the limit is asked for and served; multipart keeps the larger --max_body_size.
  const small = await postExpecting(srv.url, "application/json", Buffer.from(JSON.stringify({ model: "echo", x: 1 })));
  assert.deepEqual([small.status, small.sent], [200, true]);
  const form = new FormData();
  form.append("model", "inspect");
  form.append("image", new Blob([Buffer.alloc(2 * 1024 * 1024)]), "a.png");
  assert.equal((await srv.request("POST", "/v3/images/edits", { body: form })).status, 200);
});

test("bodies held across requests are bounded: past --max_total_body_size a request is 503 with Retry-After until bytes are freed", async () => {
  const small = await start({ configPath: join(dir, "config.json"), maxTotalBodyBytes: 1000 });
  const g = gate("budget");
  const held = small.request("POST", "/v3/x", { json: { model: "gate", gate: "budget", pad: "p".repeat(700) } });
  await g.entered;
  const busy = await small.request("POST", "/v3/x", { json: { model: "echo", pad: "q".repeat(400) } });
  assert.equal(busy.status, 503);
  assert.equal(busy.headers.get("retry-after"), "1");
  assert.equal(errorOf(busy).code, "server_busy");
  // Chunked (no Content-Length): counted as it arrives.
  const chunked = await postChunked(`${small.url}/v3/x`, ['{"model":"echo","pad":"', ...Array.from({ length: 4 }, () => "y".repeat(100)), '"}']);
  assert.equal(chunked, 503);
  g.open();
  assert.equal((await held).status, 200);
  // A body no budget could ever hold is too large, not busy.
  assert.equal((await small.request("POST", "/v3/x", { json: { model: "echo", pad: "r".repeat(1200) } })).status, 413);
  // The held request's bytes are back.
  assert.equal((await small.request("POST", "/v3/x", { json: { model: "echo", pad: "q".repeat(400) } })).status, 200);
});

test("a client that stops reading is dropped after --send_timeout_seconds: its stream's iterator is returned", async () => {
  const quick = await start({ configPath: join(dir, "config.json"), sendTimeoutSeconds: 0.5 });
  const streams = (globalThis as { __hardeningStreams?: { returned: number } }).__hardeningStreams!;
  const before = streams.returned;
  const body = JSON.stringify({ model: "flood", stream: true });
  const s = connect(Number(new URL(quick.url).port), "127.0.0.1");
  s.on("error", () => undefined);
  s.write(`POST /v3/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  s.pause(); // never read: the kernel's buffers fill, then the server's
  await eventually(() => quick.logs.some((l) => l.path === "/v3/x" && l.servable === "flood" && l.status === 499), "the dropped client's 499");
  assert.equal(streams.returned, before + 1, "the stream was stopped");
  s.destroy();
});

test("a slow client that keeps reading is never dropped, however long the answer takes", async () => {
  // TCP opens a full receive window only once the reader has freed a good part of it: gaps of up to ~0.7 s here.
  const patient = await start({ configPath: join(dir, "config.json"), sendTimeoutSeconds: 2 });
  const body = JSON.stringify({ model: "flood", stream: false, mb: 16 });
  const s = connect(Number(new URL(patient.url).port), "127.0.0.1");
  s.write(`POST /v3/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  s.pause();
  const started = performance.now();
  let received = 0;
  // About 64 KiB every 20 ms: ~3 MB/s, so the 16 MB answer takes longer than the send timeout.
  await new Promise<void>((resolve, reject) => {
    const reader = setInterval(() => {
      for (let taken = 0, chunk: Buffer | null; taken < 65536 && (chunk = s.read() as Buffer | null) !== null; taken += chunk.length) received += chunk.length;
      if (received < 16 * 1024 * 1024) return;
      clearInterval(reader);
      resolve();
    }, 20);
    s.once("close", () => {
      clearInterval(reader);
      reject(new Error(`closed after ${received} bytes`));
    });
  });
  s.destroy();
  assert.ok(performance.now() - started > 2000, "the answer took longer than the send timeout");
  await eventually(() => patient.logs.some((l) => l.servable === "flood" && l.status === 200), "the 200 log line");
});

test("a client that half-closes after sending still gets its answer; one that closes still cancels", async () => {
  const g = gate("half");
  const body = JSON.stringify({ model: "gate", gate: "half" });
  const answer = raw(srv.url, `POST /v3/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`, { halfClose: true });
  await g.entered;
  // Give the server the FIN before the answer is ready.
  await new Promise((r) => setTimeout(r, 200));
  g.open();
  const text = await answer;
  assert.match(text, /HTTP\/1\.1 200 OK/);
  assert.match(text, /\{"gate":"half","file":null\}$/);

  const gone = gate("gone");
  const s = connect(Number(new URL(srv.url).port), "127.0.0.1");
  const goneBody = JSON.stringify({ model: "gate", gate: "gone" });
  s.write(`POST /v3/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${goneBody.length}\r\n\r\n${goneBody}`);
  await gone.entered;
  s.destroy();
  assert.equal(await gone.aborted, true, "the run was cancelled");
});

test("a stream nobody reads holds one partial image, not all of them: later previews are skipped while one waits", async () => {
  const dir = await imageServable({ options: `default_resolution: "64x64"\n      max_resolution: "1024x1024"\n      max_num_inference_steps: 2000` });
  const registry = await testRegistry();
  const graph = buildGraph(readFileSync(join(dir, "graph.pbtxt"), "utf8"), registry, join(dir, "graph.pbtxt"));
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  const resources = await loadNodeResources(graph, { graphDir: dir, servable: "tiny", logger: silent, metrics: new Registry() });
  const stats = new NodeStatsCollector(graph.nodes.length);
  const runner = new GraphPool(graph, { sidePackets: resources.sidePackets, stats });
  try {
    // Three previews spread over a generation of seconds (4 images, 999 steps at 1024×1024: about 7 s on an
    // idle 2-core machine, longer under load): the second comes well past a second after the stream began
    // (at 512×512 an idle machine brought it in under a second and nothing was skipped), the first still waiting.
    const json = { model: "tiny", prompt: "unread", size: "1024x1024", n: 4, stream: true, partial_images: 3, num_inference_steps: 999 };
    const payload = new HttpRequest(
      { method: "POST", uri: "/v3/images/generations", path: "/v3/images/generations", headers: {}, body: Buffer.alloc(0), json, model: "tiny", servable: "tiny", stream: true, requestId: "r", receivedAt: performance.now() },
      new AbortController().signal,
    );
    const v = (await runner.run({ input: payload })).output[0].value;
    assert.ok(isSseResponse(v));
    const types: string[] = [];
    // Read only once the generation is over (the node's call ends with it): everything it kept waits in the stream.
    await eventually(() => stats.read(0).active === 0, "the generation to end", 60_000);
    for await (const e of v.events as AsyncIterable<SseEvent>) types.push((e.data as { type: string }).type);
    // The first preview (all four images) waits; the other two were skipped; the finals are all there.
    assert.deepEqual(types, [...Array<string>(4).fill("image_generation.partial_image"), ...Array<string>(4).fill("image_generation.completed")]);
  } finally {
    await runner.close();
    await resources.dispose();
  }
});

test("the flags: --max_json_body_size, --max_total_body_size, --send_timeout_seconds", () => {
  const base = { rest_port: "1", model_name: "e", model_path: "/e" };
  const o = serveOptionsFrom({ ...base, max_json_body_size: "2M", max_total_body_size: "1G", send_timeout_seconds: "2.5" }, {});
  assert.deepEqual([o.maxJsonBodyBytes, o.maxTotalBodyBytes, o.sendTimeoutSeconds], [2 * 1024 ** 2, 1024 ** 3, 2.5]);
  const defaults = serveOptionsFrom(base, {});
  assert.deepEqual([defaults.maxJsonBodyBytes, defaults.maxTotalBodyBytes, defaults.sendTimeoutSeconds], [undefined, undefined, undefined], "the app's defaults apply");
  assert.throws(() => serveOptionsFrom({ ...base, send_timeout_seconds: "0" }, {}), (e) => e instanceof FlagError && /--send_timeout_seconds must be more than 0 seconds/.test(e.message));
  assert.throws(() => serveOptionsFrom({ ...base, max_json_body_size: "lots" }, {}), FlagError);
  for (const flag of ["--max_json_body_size", "--max_total_body_size", "--send_timeout_seconds"]) assert.ok(SERVER_USAGE.includes(flag), flag);
});
