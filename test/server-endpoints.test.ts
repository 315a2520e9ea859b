/**
 * Every endpoint over real HTTP, on a real server in config mode and in
 * single-servable mode: health, model lists, config, routing into graphs,
 * body handling and limits, error mapping, SSE, client disconnects, logs.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ECHO_GRAPH_DIR, errorOf, gate, oneNodeGraph, postChunked, start, tempDir, writeServable, eventually, type TestServer } from "./server-helpers.js";

let srv: TestServer;

before(async () => {
  const dir = tempDir();
  for (const c of ["Gate", "Fail", "Inspect", "Respond"]) writeServable(dir, c.toLowerCase(), oneNodeGraph(`${c}Calculator`));
  writeServable(dir, "broken", oneNodeGraph("NoSuchCalculator"));
  const config = {
    model_config_list: [
      { config: { name: "echo", base_path: ECHO_GRAPH_DIR } },
      ...["gate", "fail", "inspect", "respond", "broken"].map((name) => ({ config: { name, base_path: name } })),
      // URI routing: an empty model on /v3/images/generations runs this one.
      { config: { name: "images/generations", base_path: "inspect" } },
    ],
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  srv = await start({ configPath: join(dir, "config.json") });
  await srv.manager.whenInitialized();
});

test("health: live 200 empty, ready 200 once initialized (a failed servable does not block it)", async () => {
  const live = await srv.request("GET", "/v2/health/live");
  assert.equal(live.status, 200);
  assert.equal(live.text, "");
  const ready = await srv.request("GET", "/v2/health/ready");
  assert.equal(ready.status, 200);
  assert.equal(ready.text, "");
});

test("model ready: 200 empty when available, versions ignored; 404 when not loaded or unknown", async () => {
  for (const path of ["/v2/models/echo/ready", "/v2/models/echo/versions/1/ready", "/v2/models/images%2Fgenerations/ready", "/v2/models/images/generations/ready"]) {
    const r = await srv.request("GET", path);
    assert.equal(r.status, 200, path);
    assert.equal(r.text, "");
  }
  const broken = await srv.request("GET", "/v2/models/broken/ready");
  assert.equal(broken.status, 404);
  assert.equal(errorOf(broken).message, "Model with requested version is not loaded yet");
  const unknown = await srv.request("GET", "/v2/models/nope/ready");
  assert.equal(unknown.status, 404);
  assert.equal(errorOf(unknown).message, "Model with requested name is not found");
});

test("model list and retrieve in OpenAI's shape, under /v3, /v1 and /v3/v1", async () => {
  const before = Math.floor(Date.now() / 1000);
  for (const prefix of ["/v3", "/v1", "/v3/v1"]) {
    const list = await srv.request("GET", `${prefix}/models`);
    assert.equal(list.status, 200);
    const body = list.body as { object: string; data: { id: string; object: string; created: number; owned_by: string }[] };
    assert.equal(body.object, "list");
    // Available servables only, in config order: "broken" failed to load.
    assert.deepEqual(body.data.map((m) => m.id), ["echo", "gate", "fail", "inspect", "respond", "images/generations"]);
    for (const m of body.data) {
      assert.equal(m.object, "model");
      assert.equal(m.owned_by, "OVMS");
      assert.ok(m.created >= before && m.created <= Math.floor(Date.now() / 1000) + 1, "created is the request time");
    }
    const one = await srv.request("GET", `${prefix}/models/images/generations`);
    assert.equal(one.status, 200);
    assert.equal((one.body as { id: string }).id, "images/generations");
  }
  const missing = await srv.request("GET", "/v3/models/nope");
  assert.equal(missing.status, 404);
  assert.deepEqual(errorOf(missing), { message: "Model with requested name is not found", type: "invalid_request_error", param: "model", code: "model_not_found" });
  assert.equal((await srv.request("GET", "/v3/models/broken")).status, 404, "a servable that is not available is not listed");
});

test("GET /v1/config reports OVMS's version status, load failures included", async () => {
  const r = await srv.request("GET", "/v1/config");
  assert.equal(r.status, 200);
  const body = r.body as Record<string, { model_version_status: { version: string; state: string; status: { error_code: string; error_message: string } }[] }>;
  assert.deepEqual(body.echo, { model_version_status: [{ version: "1", state: "AVAILABLE", status: { error_code: "OK", error_message: "OK" } }] });
  const broken = body.broken.model_version_status[0];
  assert.equal(broken.state, "LOADING");
  assert.equal(broken.status.error_code, "FAILED_PRECONDITION");
  assert.match(broken.status.error_message, /NoSuchCalculator/);
});

test("POST /v1/config/reload with nothing changed answers 200 with the status", async () => {
  const r = await srv.request("POST", "/v1/config/reload");
  assert.equal(r.status, 200);
  assert.ok((r.body as Record<string, unknown>).echo);
});

test("echo: a JSON POST comes back unchanged, on /v3 and /v1, with persistent graph instances", async () => {
  const payload = { model: "echo", prompt: "a cat", n: 2, nested: { list: [1, 2.5, "x", null, true], "ü": "\u00e9" } };
  for (const path of ["/v3/images/generations", "/v1/chat/completions", "/v3/anything/at/all"]) {
    const r = await srv.request("POST", path, { json: payload });
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get("content-type")!, /^application\/json/);
    assert.deepEqual(r.body, payload);
  }
  const many = await Promise.all(Array.from({ length: 50 }, (_, i) => srv.request("POST", "/v3/x", { json: { model: "echo", i } })));
  assert.deepEqual(many.map((r) => (r.body as { i: number }).i), Array.from({ length: 50 }, (_, i) => i));
});

test("the request packet: method, uri, path, headers, body, model, servable, stream; the signal stays off the clone", async () => {
  const r = await srv.request("POST", "/v3/images/generations?x=1", { json: { model: "inspect", stream: true, a: 1 }, headers: { "x-request-id": "req-42" } });
  assert.equal(r.status, 200);
  const p = r.body as Record<string, unknown>;
  assert.equal(p.method, "POST");
  assert.equal(p.uri, "/v3/images/generations?x=1");
  assert.equal(p.path, "/v3/images/generations");
  assert.equal(p.model, "inspect");
  assert.equal(p.servable, "inspect");
  assert.equal(p.stream, true);
  assert.equal(p.requestId, "req-42");
  assert.equal(r.headers.get("x-request-id"), "req-42");
  assert.deepEqual(p.json, { model: "inspect", stream: true, a: 1 });
  assert.equal(p.body, JSON.stringify({ model: "inspect", stream: true, a: 1 }));
  assert.equal(p.signal, true);
  assert.equal(p.enumerable, false, "structured cloning to a worker must not meet the AbortSignal");
  const generated = await srv.request("POST", "/v3/x", { json: { model: "inspect" } });
  assert.match(generated.headers.get("x-request-id")!, /^[0-9a-f-]{36}$/);
  assert.equal((generated.body as { requestId: string }).requestId, generated.headers.get("x-request-id"));
});

test("an empty model routes by URI, as OVMS: /v3/images/generations runs the servable named images/generations", async () => {
  const json = await srv.request("POST", "/v3/images/generations", { json: { model: "", prompt: "p" } });
  assert.equal(json.status, 200);
  assert.equal((json.body as { servable: string }).servable, "images/generations");
  assert.equal((json.body as { model: string }).model, "images/generations");
  // No Content-Type at all (fetch sends none for bytes): URI routing with the raw body.
  const raw = await srv.request("POST", "/v1/images/generations", { body: new TextEncoder().encode("raw bytes") });
  assert.equal(raw.status, 200);
  assert.equal((raw.body as { body: string }).body, "raw bytes");
  assert.equal((raw.body as { json: unknown }).json, null);
  const none = await srv.request("POST", "/v3/no/such/route", { json: { model: "" } });
  assert.equal(none.status, 404);
  assert.equal(errorOf(none).message, "Mediapipe graph definition with requested name is not found");
});

test("multipart: fields and files reach the graph, model from the form field, repeated names kept", async () => {
  const form = new FormData();
  form.append("model", "inspect");
  form.append("prompt", "a dog");
  form.append("n", "2");
  form.append("stream", "true");
  form.append("image[]", new Blob(["one"], { type: "image/png" }), "a.png");
  form.append("image[]", new Blob(["two"]), "b.png");
  form.append("tag", "x");
  form.append("tag", "y");
  const r = await srv.request("POST", "/v3/images/edits", { body: form });
  assert.equal(r.status, 200, r.text);
  const p = r.body as { fields: Record<string, unknown>; files: unknown[]; model: string; stream: boolean; json: unknown };
  assert.equal(p.model, "inspect");
  assert.equal(p.stream, true);
  assert.equal(p.json, null);
  assert.deepEqual(p.fields, { model: "inspect", prompt: "a dog", n: "2", stream: "true", tag: ["x", "y"] });
  assert.deepEqual(p.files, [
    { field: "image[]", filename: "a.png", contentType: "image/png", text: "one" },
    { field: "image[]", filename: "b.png", contentType: "application/octet-stream", text: "two" },
  ]);
  // An empty model field routes by URI.
  const byUri = new FormData();
  byUri.append("model", "");
  const uri = await srv.request("POST", "/v3/images/generations", { body: byUri });
  assert.equal((uri.body as { servable: string }).servable, "images/generations");
  // The echo graph wants JSON: its HttpInputCalculator refuses a form with 415.
  const echo = new FormData();
  echo.append("model", "echo");
  const refused = await srv.request("POST", "/v3/images/edits", { body: echo });
  assert.equal(refused.status, 415);
  assert.match(errorOf(refused).message, /Calculator::Process\(\) for node "HttpInput" failed: \/v3\/images\/edits expects a JSON body/);
  const bad = await srv.request("POST", "/v3/images/edits", { body: "--x\r\nbroken", headers: { "content-type": "multipart/form-data" } });
  assert.equal(bad.status, 400);
  assert.match(errorOf(bad).message, /^Request of multipart type but failed to parse/);
});

test("JSON body errors are 400 with OVMS's texts", async () => {
  const cases: [string, RegExp, string | null][] = [
    ["{not json", /^The file is not valid json - Cannot parse JSON body/, null],
    ["[1,2]", /^The file is not valid json - JSON body must be an object$/, null],
    ['"text"', /^The file is not valid json - JSON body must be an object$/, null],
    ['{"prompt":"no model"}', /^The file is not valid json - model field is missing in JSON body$/, "model"],
    ['{"model":5}', /^The file is not valid json - model field is not a string$/, "model"],
    [`{"model":"echo","deep":${"[".repeat(101)}${"]".repeat(101)}}`, /nesting is deeper than the limit of 100/, null],
  ];
  for (const [body, message, param] of cases) {
    const r = await srv.request("POST", "/v3/images/generations", { body, headers: { "content-type": "application/json; charset=utf-8" } });
    assert.equal(r.status, 400, body);
    const e = errorOf(r);
    assert.match(e.message, message);
    assert.equal(e.type, "invalid_request_error");
    assert.equal(e.param, param);
  }
  // 100 levels is fine, and brackets inside strings do not count.
  const ok = await srv.request("POST", "/v3/x", { body: `{"model":"echo","s":"${"[".repeat(500)}","d":${"[".repeat(99)}${"]".repeat(99)}}`, headers: { "content-type": "application/json" } });
  assert.equal(ok.status, 200);
});

test("unsupported content type 415; unknown model 404; unknown path 404; wrong method 405 with Allow", async () => {
  const form = await srv.request("POST", "/v3/images/generations", { body: "model=echo", headers: { "content-type": "application/x-www-form-urlencoded" } });
  assert.equal(form.status, 415);
  assert.match(errorOf(form).message, /Unsupported Content-Type "application\/x-www-form-urlencoded"/);

  const unknown = await srv.request("POST", "/v3/images/generations", { json: { model: "nope" } });
  assert.equal(unknown.status, 404);
  assert.deepEqual(errorOf(unknown), { message: "Mediapipe graph definition with requested name is not found", type: "invalid_request_error", param: "model", code: "model_not_found" });

  // Not "/": that is the web UI (test/web-ui.test.ts).
  for (const path of ["/v2/health", "/v4/x", "/v3", "/metrics/x"]) {
    const r = await srv.request("GET", path);
    assert.equal(r.status, 404, path);
    assert.match(errorOf(r).message, /^Invalid request URL/);
  }
  const wrong: [string, string, string][] = [
    ["GET", "/v3/images/generations", "POST, OPTIONS"],
    ["POST", "/v3/models", "GET, HEAD, OPTIONS"],
    ["DELETE", "/v1/models/echo", "GET, HEAD, OPTIONS"],
    ["POST", "/v2/health/live", "GET, HEAD, OPTIONS"],
    ["GET", "/v1/config/reload", "POST, OPTIONS"],
    ["PUT", "/v1/config", "GET, HEAD, OPTIONS"],
  ];
  for (const [method, path, allow] of wrong) {
    const r = await srv.request(method, path);
    assert.equal(r.status, 405, `${method} ${path}`);
    assert.equal(r.headers.get("allow"), allow);
    assert.equal(errorOf(r).code, "method_not_allowed");
  }
  const options = await srv.request("OPTIONS", "/v3/images/generations");
  assert.equal(options.status, 204);
  assert.equal(options.headers.get("allow"), "POST, OPTIONS");
});

test("a loading or failed servable is 503 'Mediapipe is not loaded yet' (OVMS: 500), told not to retry when it failed", async () => {
  const r = await srv.request("POST", "/v3/images/generations", { json: { model: "broken" } });
  assert.equal(r.status, 503);
  assert.match(errorOf(r).message, /^Mediapipe is not loaded yet - servable "broken" failed to load: .*NoSuchCalculator/s);
  assert.equal(errorOf(r).type, "server_error");
  assert.equal(errorOf(r).code, "model_failed");
  assert.equal(r.headers.get("x-should-retry"), "false");
});

test("graph failures: HttpError sets status, param and code; other errors are OVMS's 400; the reason on the first line, then OVMS's full text", async () => {
  const http = await srv.request("POST", "/v3/images/generations", { json: { model: "fail", status: 422, message: "size must be WxH", param: "size", code: "invalid_size" } });
  assert.equal(http.status, 422);
  assert.deepEqual(errorOf(http), {
    message: 'size must be WxH\nMediapipe execution failed. MP status - INVALID_ARGUMENT: CalculatorGraph::Run() failed: \nCalculator::Process() for node "Fail" failed: size must be WxH',
    type: "invalid_request_error",
    param: "size",
    code: "invalid_size",
  });
  const pre = await srv.request("POST", "/v3/x", { json: { model: "fail", status: 412, message: "no inpainting pipeline" } });
  assert.equal(pre.status, 412);
  assert.match(errorOf(pre).message, /^no inpainting pipeline\nMediapipe graph precondition failed - FAILED_PRECONDITION: CalculatorGraph::Run\(\) failed: \nCalculator::Process\(\) for node "Fail" failed: no inpainting pipeline$/);
  const unavailable = await srv.request("POST", "/v3/x", { json: { model: "fail", status: 503, message: "busy" } });
  assert.equal(unavailable.status, 503);
  assert.equal(errorOf(unavailable).type, "server_error");
  const plain = await srv.request("POST", "/v3/x", { json: { model: "fail", message: "prompt field is missing in JSON body" } });
  assert.equal(plain.status, 400);
  assert.deepEqual(errorOf(plain), {
    message: 'prompt field is missing in JSON body\nMediapipe execution failed. MP status - INVALID_ARGUMENT: CalculatorGraph::Run() failed: \nCalculator::Process() for node "Fail" failed: prompt field is missing in JSON body',
    type: "invalid_request_error",
    param: null,
    code: null,
  });
});

test("graph failures: a calculator's StatusError picks the HTTP status by its absl code", async () => {
  for (const [code, status] of [["NOT_FOUND", 404], ["RESOURCE_EXHAUSTED", 429], ["UNAVAILABLE", 503], ["INVALID_ARGUMENT", 400], ["FAILED_PRECONDITION", 412]] as const) {
    const r = await srv.request("POST", "/v3/x", { json: { model: "fail", status_code: code, message: "no such adapter" } });
    assert.equal(r.status, status, code);
    assert.equal(errorOf(r).message.split("\n")[0], "no such adapter");
    assert.ok(errorOf(r).message.endsWith(` - ${code}: CalculatorGraph::Run() failed: \nCalculator::Process() for node "Fail" failed: no such adapter`), errorOf(r).message);
  }
});

test("routing: server paths under /v1 and /v3 are never graph requests; other paths there are", async () => {
  const config = await srv.request("POST", "/v1/config/other", { json: { model: "echo" } });
  assert.equal(config.status, 404);
  assert.equal(errorOf(config).message, "Invalid request URL: POST /v1/config/other");
  const models = await srv.request("POST", "/v3/models/echo", { json: { model: "echo" } });
  assert.equal(models.status, 405, "the model object is GET only");
  const get = await srv.request("GET", "/v3/x");
  assert.equal(get.status, 405);
  assert.equal(get.headers.get("allow"), "POST, OPTIONS");
  assert.equal((await srv.request("POST", "/v3/any/path", { json: { model: "echo" } })).status, 200);
});

test("response shapes: {status, headers, body}, bytes, no packet, a wrong value", async () => {
  const obj = await srv.request("POST", "/v3/x", { json: { model: "respond", kind: "object" } });
  assert.equal(obj.status, 202);
  assert.equal(obj.headers.get("content-type"), "text/plain");
  assert.equal(obj.headers.get("x-custom"), "yes");
  assert.equal(obj.text, "accepted");
  const bytes = await srv.request("POST", "/v3/x", { json: { model: "respond", kind: "bytes" } });
  assert.equal(bytes.status, 200);
  assert.deepEqual(bytes.body, { bytes: true });
  const none = await srv.request("POST", "/v3/x", { json: { model: "respond", kind: "nothing" } });
  assert.equal(none.status, 500);
  assert.match(errorOf(none).message, /finished without a packet on its HTTP_RESPONSE_PAYLOAD stream/);
  const bad = await srv.request("POST", "/v3/x", { json: { model: "respond", kind: "bad" } });
  assert.equal(bad.status, 500);
  assert.match(errorOf(bad).message, /unsupported HTTP_RESPONSE_PAYLOAD value/);
});

test("server-sent events: written as they come; an error mid-stream becomes an error event", async () => {
  const r = await srv.request("POST", "/v3/x", { json: { model: "respond", kind: "sse", count: 2, stream: true } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/event-stream");
  assert.equal(r.headers.get("cache-control"), "no-cache");
  assert.equal(r.text, 'event: image_generation.partial_image\ndata: {"i":0}\n\nevent: image_generation.partial_image\ndata: {"i":1}\n\ndata: [DONE]\n\n');
  const broken = await srv.request("POST", "/v3/x", { json: { model: "respond", kind: "sse", count: 3, fail_at: 1 } });
  assert.equal(broken.status, 200);
  const [first, second] = broken.text.split("\n\n");
  assert.equal(first, 'event: image_generation.partial_image\ndata: {"i":0}');
  assert.equal(second, `event: error\ndata: ${JSON.stringify({ error: { message: "stream broke", type: "invalid_request_error", param: "fail_at", code: null } })}`);
});

test("a client that goes away aborts the request's signal and its graph run", async () => {
  const g = gate("disconnect");
  const ac = new AbortController();
  const pending = fetch(`${srv.url}/v3/x`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "gate", gate: "disconnect" }), signal: ac.signal });
  await g.entered;
  ac.abort();
  await assert.rejects(pending);
  assert.equal(await g.aborted, true, "the payload's signal fired");
  await eventually(() => srv.logs.some((l) => l.path === "/v3/x" && l.status === 499 && l.servable === "gate"), "the 499 log line");
  await eventually(() => srv.manager.get("gate")!.inFlight() === 0, "the lease's release");
});

test("body size limit: 413 from Content-Length, and from a chunked body that grows past it", async () => {
  const small = await start({ single: { name: "echo", path: ECHO_GRAPH_DIR }, maxBodyBytes: 1024 });
  const declared = await small.request("POST", "/v3/x", { body: JSON.stringify({ model: "echo", pad: "x".repeat(2000) }), headers: { "content-type": "application/json" } });
  assert.equal(declared.status, 413);
  assert.equal(errorOf(declared).code, "request_too_large");
  assert.match(errorOf(declared).message, /larger than the server's limit of 1024 bytes/);
  const chunked = await postChunked(`${small.url}/v3/x`, ['{"model":"echo","pad":"', ...Array.from({ length: 8 }, () => "y".repeat(256)), '"}']);
  assert.equal(chunked, 413);
  const ok = await small.request("POST", "/v3/x", { json: { model: "echo", pad: "z".repeat(100) } });
  assert.equal(ok.status, 200);
});

test("single-servable mode serves the one graph; one log line per request with id, servable, status and latency", async () => {
  const single = await start({ single: { name: "my-echo", path: ECHO_GRAPH_DIR } });
  await single.manager.whenInitialized();
  const r = await single.request("POST", "/v3/images/generations", { json: { model: "my-echo", x: 1 }, headers: { "x-request-id": "abc-123" } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { model: "my-echo", x: 1 });
  assert.deepEqual(((await single.request("GET", "/v3/models")).body as { data: { id: string }[] }).data.map((m) => m.id), ["my-echo"]);
  assert.equal((await single.request("POST", "/v1/config/reload")).status, 200);
  await eventually(() => single.logs.some((l) => l.requestId === "abc-123"), "the request's log line");
  const lines = single.logs.filter((l) => l.requestId === "abc-123");
  assert.equal(lines.length, 1);
  const line = lines[0];
  assert.equal(line.msg, "request");
  assert.equal(line.level, 30);
  assert.equal(line.servable, "my-echo");
  assert.equal(line.status, 200);
  assert.equal(line.method, "POST");
  assert.equal(typeof line.ms, "number");
  await single.request("GET", "/v2/health/live");
  await eventually(() => single.logs.some((l) => l.path === "/v2/health/live"), "the probe's line");
  assert.equal(single.logs.find((l) => l.path === "/v2/health/live")!.level, 20, "probes log at debug");
});
