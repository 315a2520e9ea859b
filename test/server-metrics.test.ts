/**
 * /metrics: OVMS's families and labels moving with real requests, family
 * selection, enabling from config.json, process metrics.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { serveOptionsFrom } from "../src/server/flags.js";
import { PROCESSING_TIME_BUCKETS } from "../src/server/metrics.js";
import { ECHO_GRAPH_DIR, gate, oneNodeGraph, start, tempDir, writeServable, type TestServer } from "./server-helpers.js";

/** The value of one sample, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

const labels = (name: string, method = "Unary") => ({ api: "V3", interface: "REST", method, name });
const scrape = async (srv: TestServer) => (await srv.request("GET", "/metrics")).text;

async function configServer(extra: object = {}, flags: Partial<Parameters<typeof start>[0]> = {}): Promise<TestServer> {
  const dir = tempDir();
  writeServable(dir, "fail", oneNodeGraph("FailCalculator"));
  writeServable(dir, "gate", oneNodeGraph("GateCalculator"));
  writeServable(dir, "respond", oneNodeGraph("RespondCalculator"));
  writeServable(dir, "broken", oneNodeGraph("NoSuchCalculator"));
  const config = {
    model_config_list: ["fail", "gate", "respond", "broken"].map((n) => ({ config: { name: n, base_path: n } })).concat([{ config: { name: "echo", base_path: ECHO_GRAPH_DIR } }]),
    ...extra,
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const srv = await start({ configPath: join(dir, "config.json"), ...flags });
  await srv.manager.whenInitialized();
  return srv;
}

test("metrics off: /metrics is 404", async () => {
  const srv = await start({ single: { name: "echo", path: ECHO_GRAPH_DIR } });
  const r = await srv.request("GET", "/metrics");
  assert.equal(r.status, 404);
  assert.match(r.text, /--metrics_enable/);
});

test("counters, gauge and histogram move under OVMS's names and labels", async () => {
  const srv = await configServer({}, { metricsEnable: true });
  for (let i = 0; i < 3; i++) assert.equal((await srv.request("POST", "/v3/x", { json: { model: "echo" } })).status, 200);
  for (let i = 0; i < 2; i++) assert.equal((await srv.request("POST", "/v3/x", { json: { model: "fail" } })).status, 400);
  assert.equal((await srv.request("POST", "/v3/x", { json: { model: "broken" } })).status, 503);
  assert.equal((await srv.request("POST", "/v3/x", { json: { model: "respond", kind: "sse", count: 2, stream: true } })).status, 200);

  const g = gate("metrics-in-flight");
  const pending = srv.request("POST", "/v3/x", { json: { model: "gate", gate: "metrics-in-flight" } });
  await g.entered;
  const during = await srv.request("GET", "/metrics");
  assert.equal(during.status, 200);
  assert.match(during.headers.get("content-type")!, /^text\/plain/);
  assert.equal(sample(during.text, "ovms_current_graphs", { name: "gate" }), 1);
  g.open();
  assert.equal((await pending).status, 200);

  const text = await scrape(srv);
  assert.equal(sample(text, "ovms_current_graphs", { name: "gate" }), 0);
  assert.equal(sample(text, "ovms_requests_accepted", labels("echo")), 3);
  assert.equal(sample(text, "ovms_responses", labels("echo")), 3);
  assert.equal(sample(text, "ovms_graph_error", labels("echo")), undefined);
  assert.equal(sample(text, "ovms_requests_accepted", labels("fail")), 2);
  assert.equal(sample(text, "ovms_graph_error", labels("fail")), 2);
  assert.equal(sample(text, "ovms_requests_rejected", labels("broken")), 1);
  assert.equal(sample(text, "ovms_requests_accepted", labels("broken")), undefined);
  // A stream request: method Stream, one response per event (2 + [DONE]).
  assert.equal(sample(text, "ovms_requests_accepted", labels("respond", "Stream")), 1);
  assert.equal(sample(text, "ovms_responses", labels("respond", "Stream")), 3);
  assert.equal(sample(text, "ovms_graph_processing_time_us_count", labels("echo")), 3);
  assert.equal(sample(text, "ovms_graph_processing_time_us_count", labels("fail")), 2);
  // OVMS's 33 buckets, floor(10·1.8^i) µs, plus +Inf.
  const les = [...text.matchAll(/^ovms_graph_processing_time_us_bucket\{le="([^"]+)",api="V3",interface="REST",method="Unary",name="echo"\}/gm)].map((m) => m[1]);
  assert.deepEqual(les, [...PROCESSING_TIME_BUCKETS.map(String), "+Inf"]);
  assert.equal(PROCESSING_TIME_BUCKETS.length, 33);
  assert.equal(PROCESSING_TIME_BUCKETS[32], Math.floor(10 * 1.8 ** 32));
  assert.doesNotMatch(text, /ovms_graph_request_latency_us/, "not in OVMS's default set");
  // Node's process metrics come along.
  assert.match(text, /^process_cpu_user_seconds_total \d/m);
  assert.match(text, /^nodejs_heap_size_used_bytes \d/m);
});

test("--metrics_list keeps only the named families", async () => {
  const srv = await configServer({}, { metricsEnable: true, metricsList: ["ovms_requests_accepted", "ovms_graph_request_latency_us"] });
  await srv.request("POST", "/v3/x", { json: { model: "echo" } });
  const text = await scrape(srv);
  assert.equal(sample(text, "ovms_requests_accepted", labels("echo")), 1);
  assert.equal(sample(text, "ovms_graph_request_latency_us_count", labels("echo")), 1);
  for (const f of ["ovms_responses", "ovms_graph_error", "ovms_current_graphs", "ovms_graph_processing_time_us", "ovms_requests_rejected"]) {
    assert.doesNotMatch(text, new RegExp(`^# TYPE ${f} `, "m"), f);
  }
});

test("config.json's monitoring.metrics enables metrics and picks families", async () => {
  const srv = await configServer({ monitoring: { metrics: { enable: true, metrics_list: ["ovms_responses"] } } });
  await srv.request("POST", "/v3/x", { json: { model: "echo" } });
  const text = await scrape(srv);
  assert.equal(sample(text, "ovms_responses", labels("echo")), 1);
  assert.doesNotMatch(text, /^# TYPE ovms_requests_accepted /m);
});

test("an unknown family in --metrics_list is a flag error", () => {
  assert.throws(
    () => serveOptionsFrom({ rest_port: "0", model_name: "e", model_path: ECHO_GRAPH_DIR, metrics_enable: true, metrics_list: "ovms_responses,ovms_bogus" }, {}),
    /--metrics_list: unknown metric family ovms_bogus/,
  );
});
