/**
 * GET /graphserve/v1/graphs/{name} and /stats on a real server: the
 * structure of the echo, flow-limited (back edge) and both image graphs,
 * live statistics counting real requests across pooled instances and
 * per-request runs, and the errors (404, 503, 401, 405), names with slashes.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { GraphStats, GraphView, NodeView } from "../src/server/graph-view-types.js";
import { ECHO_GRAPH_DIR, ROOT, errorOf, eventually, gate, oneNodeGraph, start, tempDir, writeServable, type TestServer } from "./server-helpers.js";
import { startImageServer, tinyModel } from "./image-server.js";

/** graphs/flow-limited-echo with its graph streams tagged for HTTP, as a servable's must be. */
const flowServable = (dir: string) =>
  writeServable(dir, "flow", readFileSync(join(ROOT, "graphs/flow-limited-echo/graph.pbtxt"), "utf8")
    .replace(/^input_stream: "in"$/m, 'input_stream: "HTTP_REQUEST_PAYLOAD:in"')
    .replace(/^output_stream: "out"$/m, 'output_stream: "HTTP_RESPONSE_PAYLOAD:out"'));
const view = (srv: TestServer, name: string) => srv.request("GET", `/graphserve/v1/graphs/${name}`);
const stats = async (srv: TestServer, name: string): Promise<GraphStats> => {
  const r = await srv.request("GET", `/graphserve/v1/graphs/${name}/stats`);
  assert.equal(r.status, 200, r.text);
  return r.body as GraphStats;
};
const node = (g: GraphView, name: string): NodeView => {
  const n = g.nodes.find((x) => x.name === name);
  assert.ok(n, `node ${name} in ${g.nodes.map((x) => x.name).join(", ")}`);
  return n;
};

describe("structure and stats of HTTP graphs", () => {
  let srv: TestServer;

  before(async () => {
    const dir = tempDir();
    flowServable(dir);
    writeServable(dir, "gate2", oneNodeGraph("GateCalculator", "# OVMS_GRAPH_QUEUE_MAX_SIZE: 2\n"));
    writeServable(dir, "gate", oneNodeGraph("GateCalculator"));
    writeServable(dir, "fail", oneNodeGraph("FailCalculator"));
    writeServable(dir, "broken", oneNodeGraph("NoSuchCalculator"));
    const config = {
      model_config_list: [
        { config: { name: "echo", base_path: ECHO_GRAPH_DIR } },
        { config: { name: "flow", base_path: "flow" } },
        { config: { name: "team/gate2", base_path: "gate2" } },
        { config: { name: "gate", base_path: "gate" } },
        { config: { name: "fail", base_path: "fail" } },
        { config: { name: "broken", base_path: "broken" } },
      ],
    };
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    srv = await start({ configPath: join(dir, "config.json") });
  });

  test("echo: every node, its ports and producers, the graph's streams, and graph.pbtxt as loaded", async () => {
    const r = await view(srv, "echo");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
    const g = r.body as GraphView;
    assert.equal(g.name, "echo");
    assert.equal(g.state, "AVAILABLE");
    assert.equal(g.pbtxt, readFileSync(join(ECHO_GRAPH_DIR, "graph.pbtxt"), "utf8"));
    assert.deepEqual(g.inputStreams, [{ tag: "HTTP_REQUEST_PAYLOAD", index: 0, name: "input" }]);
    assert.deepEqual(g.outputStreams, [{ tag: "HTTP_RESPONSE_PAYLOAD", index: 0, name: "output" }]);
    assert.deepEqual(g.hostSidePackets, []);
    assert.deepEqual(g.executors, []);
    assert.deepEqual(g.nodes, [
      {
        id: 0,
        name: "HttpInput",
        calculator: "HttpInputCalculator",
        executor: "",
        inputStreamHandler: "default",
        inputs: [{ tag: "HTTP_REQUEST_PAYLOAD", index: 0, name: "input", producer: "graph", backEdge: false }],
        outputs: [{ tag: "JSON", index: 0, name: "json" }],
        inputSidePackets: [],
        outputSidePackets: [],
        optionsType: null,
        options: null,
      },
      {
        id: 1,
        name: "JsonResponse",
        calculator: "HttpJsonResponseCalculator",
        executor: "",
        inputStreamHandler: "default",
        inputs: [{ tag: "JSON", index: 0, name: "json", producer: 0, backEdge: false }],
        outputs: [{ tag: "HTTP_RESPONSE_PAYLOAD", index: 0, name: "output" }],
        inputSidePackets: [],
        outputSidePackets: [],
        optionsType: null,
        options: null,
      },
    ]);
  });

  test("a back edge is marked on the input that closes the cycle; options come with their defaults", async () => {
    const g = (await view(srv, "flow")).body as GraphView;
    const limiter = node(g, "FlowLimiterCalculator");
    const pass = node(g, "PassThroughCalculator");
    assert.deepEqual(limiter.inputs, [
      { tag: "", index: 0, name: "in", producer: "graph", backEdge: false },
      { tag: "FINISHED", index: 0, name: "out", producer: pass.id, backEdge: true },
    ]);
    assert.deepEqual(pass.inputs, [{ tag: "", index: 0, name: "gated", producer: limiter.id, backEdge: false }]);
    assert.equal(limiter.inputStreamHandler, "immediate");
    assert.equal(limiter.optionsType, "mediapipe.FlowLimiterCalculatorOptions");
    // Given in the graph…
    assert.equal(limiter.options?.max_in_flight, 1);
    assert.equal(limiter.options?.max_in_queue, 0);
    // …and every other field at its default, by its proto name.
    const fields = Object.keys(limiter.options ?? {});
    assert.ok(fields.length > 2, `defaults filled in: ${fields.join(", ")}`);
    assert.ok(fields.every((f) => /^[a-z0-9_]+$/.test(f)), `proto field names: ${fields.join(", ")}`);
    assert.deepEqual(g.outputStreams.map((p) => p.name).sort(), ["allowed", "out"]);
    assert.equal(g.nodes.every((n, i) => n.id === i), true, "nodes in id (topological) order");
  });

  test("echo stats count real requests: processed per node, runs finished, nothing active after", async () => {
    const before = await stats(srv, "echo");
    assert.equal(before.name, "echo");
    assert.deepEqual(before.nodes.map((n) => [n.id, n.name]), [
      [0, "HttpInput"],
      [1, "JsonResponse"],
    ]);
    const N = 5;
    for (let i = 0; i < N; i++) assert.equal((await srv.request("POST", "/v3/echo", { json: { model: "echo", i } })).status, 200);
    const t0 = Date.now();
    const after = await stats(srv, "echo");
    assert.ok(Math.abs(after.time - t0) < 5_000, "time is the server clock in ms");
    for (const [i, n] of after.nodes.entries()) {
      assert.equal(n.processed - before.nodes[i].processed, N, n.name);
      assert.equal(n.active, 0);
      assert.equal(n.errors, 0);
      assert.ok(n.meanMs !== null && n.meanMs >= 0 && n.lastMs !== null && n.lastMs >= 0, JSON.stringify(n));
    }
    assert.deepEqual(after.runs, { active: 0, finished: before.runs.finished + N });
  });

  test("a pooled graph sums its instances: two gated calls active at once, a third request waiting for an instance", async () => {
    // The header asks for 3 instances; validation caps it at the machine's parallelism (2 on CI), so use 2.
    const gates = ["p1", "p2", "p3"].map((name) => ({ name, g: gate(name) }));
    const replies = gates.map(({ name }) => srv.request("POST", "/v3/x", { json: { model: "team/gate2", gate: name } }));
    await eventually(async () => (await stats(srv, "team/gate2")).nodes[0].active === 2, "two instances busy");
    const during = await stats(srv, "team/gate2");
    assert.equal(during.nodes[0].processed, 0);
    assert.equal(during.nodes[0].meanMs, null);
    assert.deepEqual(during.runs, { active: 3, finished: 0 }, "the waiting request is a run in progress too");
    for (const { g } of gates) g.open();
    for (const r of await Promise.all(replies)) assert.equal(r.status, 200);
    const after = await stats(srv, "team/gate2");
    assert.equal(after.nodes[0].processed, 3);
    assert.equal(after.nodes[0].active, 0);
    assert.ok(after.nodes[0].meanMs! > 0);
    assert.deepEqual(after.runs, { active: 0, finished: 3 });
  });

  test("a graph per request: concurrent runs are summed the same way", async () => {
    const a = gate("q1");
    const b = gate("q2");
    const replies = [srv.request("POST", "/v3/x", { json: { model: "gate", gate: "q1" } }), srv.request("POST", "/v3/x", { json: { model: "gate", gate: "q2" } })];
    await Promise.all([a.entered, b.entered]);
    const during = await stats(srv, "gate");
    assert.equal(during.nodes[0].active, 2);
    assert.equal(during.runs.active, 2);
    a.open();
    b.open();
    await Promise.all(replies);
    await eventually(async () => (await stats(srv, "gate")).runs.active === 0, "runs to finish");
    const after = await stats(srv, "gate");
    assert.equal(after.nodes[0].processed, 2);
    assert.equal(after.runs.finished, 2);
  });

  test("failed process calls are counted as errors (and as finished calls), not as cancelled", async () => {
    for (let i = 0; i < 2; i++) assert.equal((await srv.request("POST", "/v3/x", { json: { model: "fail", status: 400 } })).status, 400);
    const s = await stats(srv, "fail");
    assert.equal(s.nodes[0].errors, 2);
    assert.equal(s.nodes[0].cancelled, 0);
    assert.equal(s.nodes[0].processed, 2);
    assert.equal(s.nodes[0].active, 0);
    assert.deepEqual(s.runs, { active: 0, finished: 2 });
  });

  test("names with slashes: raw or %2F-escaped, view and stats", async () => {
    for (const path of ["team/gate2", "team%2Fgate2"]) {
      const r = await view(srv, path);
      assert.equal(r.status, 200, path);
      assert.equal((r.body as GraphView).name, "team/gate2");
      assert.equal((await stats(srv, path)).name, "team/gate2");
    }
  });

  test("unknown servable 404; failed to load 503 saying why, as inference does, in OpenAI's error shape", async () => {
    for (const path of ["/graphserve/v1/graphs/nope", "/graphserve/v1/graphs/nope/stats", "/graphserve/v1/graphs/team"]) {
      const r = await srv.request("GET", path);
      assert.equal(r.status, 404, path);
      assert.equal(errorOf(r).code, "model_not_found");
      assert.equal(errorOf(r).message, "Mediapipe graph definition with requested name is not found");
    }
    const empty = await srv.request("GET", "/graphserve/v1/graphs/");
    assert.equal(empty.status, 404);
    // The reason is the one /v1/config reports: here, the graph names a calculator nobody registered.
    const config = (await srv.request("GET", "/v1/config")).body as Record<string, { model_version_status: { state: string; status: { error_code: string; error_message: string } }[] }>;
    const status = config.broken.model_version_status[0];
    assert.deepEqual([status.state, status.status.error_code], ["LOADING", "FAILED_PRECONDITION"]);
    assert.match(status.status.error_message, /NoSuchCalculator/);
    const inference = await srv.request("POST", "/v3/images/generations", { json: { model: "broken", prompt: "a" } });
    for (const [what, r] of [
      ["view", await srv.request("GET", "/graphserve/v1/graphs/broken")],
      ["stats", await srv.request("GET", "/graphserve/v1/graphs/broken/stats")],
      ["inference", inference],
    ] as const) {
      assert.equal(r.status, 503, what);
      assert.deepEqual(errorOf(r), {
        message: `Mediapipe is not loaded yet - servable "broken" failed to load: ${status.status.error_message}`,
        type: "server_error",
        param: null,
        code: "model_failed",
      }, what);
      assert.equal(r.headers.get("x-should-retry"), "false", what);
      assert.equal(r.headers.get("retry-after"), null, `${what}: retrying cannot help until the config is fixed`);
    }
    const bad = await srv.request("GET", "/graphserve/v1/graphs/%E0%A4%A");
    assert.equal(bad.status, 400, "a malformed escape");
  });

  test("never cached; the once-a-second stats polls log at debug, the view at info", async () => {
    const v = await view(srv, "echo");
    const s = await srv.request("GET", "/graphserve/v1/graphs/echo/stats");
    for (const r of [v, s]) assert.equal(r.headers.get("cache-control"), "no-store");
    const levelOf = (requestId: string | null) => srv.logs.find((l) => l.msg === "request" && l.requestId === requestId)?.level;
    await eventually(() => levelOf(s.headers.get("x-request-id")) !== undefined, "the log line");
    assert.equal(levelOf(s.headers.get("x-request-id")), 20);
    assert.equal(levelOf(v.headers.get("x-request-id")), 30);
  });

  test("wrong methods are 405 with Allow; HEAD answers headers only", async () => {
    for (const method of ["POST", "PUT", "DELETE"]) {
      const r = await srv.request(method, "/graphserve/v1/graphs/echo/stats");
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.get("allow"), "GET, HEAD, OPTIONS");
      assert.equal(errorOf(r).code, "method_not_allowed");
    }
    const head = await srv.request("HEAD", "/graphserve/v1/graphs/echo");
    assert.equal(head.status, 200);
    assert.equal(head.text, "");
    const options = await srv.request("OPTIONS", "/graphserve/v1/graphs/echo");
    assert.equal(options.status, 204);
    assert.equal(options.headers.get("allow"), "GET, HEAD, OPTIONS");
  });
});

describe("with an API key", () => {
  let srv: TestServer;
  before(async () => {
    srv = await start({ single: { name: "echo", path: ECHO_GRAPH_DIR }, apiKey: "sesame" });
  });

  test("both endpoints need the key (401 otherwise), like the inference routes", async () => {
    for (const path of ["/graphserve/v1/graphs/echo", "/graphserve/v1/graphs/echo/stats", "/graphserve/v1/graphs/nope"]) {
      for (const headers of [{}, { authorization: "Bearer wrong" }] as Record<string, string>[]) {
        const r = await srv.request("GET", path, { headers });
        assert.equal(r.status, 401, `${path} ${JSON.stringify(headers)}`);
        assert.equal(errorOf(r).code, "invalid_api_key");
      }
      const ok = await srv.request("GET", path, { headers: { authorization: "Bearer sesame" } });
      assert.equal(ok.status, path.endsWith("nope") ? 404 : 200, path);
    }
  });
});

describe("image graphs", () => {
  let one: TestServer;
  let pipe: TestServer;
  before(async () => {
    [one, pipe] = await Promise.all([startImageServer("tiny"), startImageServer("tiny/pipe", { shape: "pipeline" })]);
  });

  test("one-node graph: ImageGen with its host side packet and its decoded options", async () => {
    const g = (await view(one, "tiny")).body as GraphView;
    assert.equal(g.nodes.length, 1);
    const n = g.nodes[0];
    assert.equal(n.calculator, "ImageGenCalculator");
    assert.equal(n.name, "ImageGenExecutor");
    assert.deepEqual(g.hostSidePackets, ["pipes"]);
    assert.deepEqual(n.inputSidePackets, [{ tag: "IMAGE_GEN_NODE_RESOURCES", index: 0, name: "pipes", producer: "graph", backEdge: false }]);
    assert.deepEqual(n.inputs, [{ tag: "HTTP_REQUEST_PAYLOAD", index: 0, name: "input", producer: "graph", backEdge: false }]);
    assert.equal(n.optionsType, "mediapipe.ImageGenCalculatorOptions");
    const o = n.options!;
    assert.equal(o.models_path, await tinyModel());
    assert.equal(o.default_resolution, "64x64");
    assert.equal(o.max_num_inference_steps, 2000);
    // A field the graph leaves out, at its default.
    assert.equal(o.max_queue_size, 16);
    assert.match(g.pbtxt, /ImageGenCalculatorOptions/);
  });

  test("pipeline graph: three nodes wired by tagged streams, the encoder on the engine's worker pool", async () => {
    const g = (await view(pipe, "tiny/pipe")).body as GraphView;
    assert.deepEqual(g.nodes.map((n) => n.calculator), ["HttpInputCalculator", "ImageGenCalculator", "Base64EncoderCalculator"]);
    const [input, gen, enc] = g.nodes;
    assert.deepEqual(input.outputs.map((p) => `${p.tag}:${p.index}:${p.name}`), ["FIELDS:0:fields", "FILES:0:files", "JSON:0:json", "URI:0:uri"]);
    assert.deepEqual(gen.inputs.map((p) => [p.tag, p.producer]), [["FIELDS", 0], ["FILES", 0], ["JSON", 0], ["URI", 0]]);
    assert.deepEqual(enc.inputs, [{ tag: "IMAGES", index: 0, name: "images", producer: gen.id, backEdge: false }]);
    assert.equal(enc.executor, "__workers");
    assert.equal(gen.executor, "");
    assert.deepEqual(g.executors, [{ name: "__workers", type: "ThreadPoolExecutor", numThreads: null }]);
  });

  test("stats after N generations: ImageGen processed N with a positive mean; the worker node timed too", async () => {
    const N = 3;
    for (let i = 0; i < N; i++) {
      for (const [srv, model] of [[one, "tiny"], [pipe, "tiny/pipe"]] as const) {
        const r = await srv.request("POST", "/v3/images/generations", { json: { model, prompt: "x", size: "64x64", num_inference_steps: 2 } });
        assert.equal(r.status, 200, r.text);
      }
    }
    const s1 = await stats(one, "tiny");
    assert.equal(s1.nodes[0].processed, N);
    assert.ok(s1.nodes[0].meanMs! > 0 && s1.nodes[0].lastMs! > 0);
    assert.equal(s1.nodes[0].active, 0);
    assert.deepEqual(s1.runs, { active: 0, finished: N });
    const s2 = await stats(pipe, "tiny/pipe");
    for (const n of s2.nodes) {
      assert.equal(n.processed, N, n.name);
      assert.equal(n.active, 0);
    }
    const encoder = s2.nodes[2];
    assert.ok(encoder.meanMs! > 0, "a worker call is timed from dispatch to result");
  });
});
