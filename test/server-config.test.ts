/**
 * Config mode over real HTTP: both config.json formats, reloads (changed,
 * unchanged, broken), polling, a servable removed while a request is in
 * flight, readiness before the initial load, and the alias hook.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { createApp } from "../src/server/app.js";
import type { Servables } from "../src/servables/types.js";
import { call, ECHO_GRAPH_DIR, errorOf, eventually, FrozenServable, gate, oneNodeGraph, start, tempDir, writeServable } from "./server-helpers.js";

function writeConfig(dir: string, config: unknown): string {
  const path = join(dir, "config.json");
  writeFileSync(path, typeof config === "string" ? config : JSON.stringify(config));
  return path;
}

const entry = (name: string, base_path: string) => ({ config: { name, base_path } });

test("both config formats: model_config_list and the deprecated mediapipe_config_list (base_path defaults to <config dir>/<name>)", async () => {
  const dir = tempDir();
  writeServable(dir, "legacy", oneNodeGraph("InspectCalculator"));
  writeServable(dir, "custom-place", oneNodeGraph("InspectCalculator"));
  const path = writeConfig(dir, {
    model_config_list: [],
    mediapipe_config_list: [{ name: "legacy" }, { name: "placed", base_path: "custom-place", graph_path: "graph.pbtxt" }],
  });
  const srv = await start({ configPath: path });
  await srv.manager.whenInitialized();
  for (const model of ["legacy", "placed"]) {
    const r = await srv.request("POST", "/v3/images/generations", { json: { model } });
    assert.equal(r.status, 200, model);
    assert.equal((r.body as { servable: string }).servable, model);
  }
  const modern = await start({ configPath: writeConfig(tempDir(), { model_config_list: [entry("echo", ECHO_GRAPH_DIR)] }) });
  await modern.manager.whenInitialized();
  assert.deepEqual((await modern.request("POST", "/v3/x", { json: { model: "echo", ok: true } })).body, { model: "echo", ok: true });
});

test("reload: a changed config answers 201 and serves the change; unchanged 200; a removed servable is retired", async () => {
  const dir = tempDir();
  writeServable(dir, "a", oneNodeGraph("InspectCalculator"));
  writeServable(dir, "b", oneNodeGraph("InspectCalculator"));
  const path = writeConfig(dir, { model_config_list: [entry("a", "a")] });
  const srv = await start({ configPath: path });
  await srv.manager.whenInitialized();
  assert.equal((await srv.request("POST", "/v3/x", { json: { model: "b" } })).status, 404);

  writeConfig(dir, { model_config_list: [entry("a", "a"), entry("b", "b")] });
  const added = await srv.request("POST", "/v1/config/reload");
  assert.equal(added.status, 201);
  assert.deepEqual(Object.keys(added.body as object), ["a", "b"]);
  assert.equal((await srv.request("POST", "/v3/x", { json: { model: "b" } })).status, 200);
  assert.equal((await srv.request("POST", "/v1/config/reload")).status, 200, "nothing changed the second time");

  writeConfig(dir, { model_config_list: [entry("b", "b")] });
  assert.equal((await srv.request("POST", "/v1/config/reload")).status, 201);
  const gone = await srv.request("POST", "/v3/x", { json: { model: "a" } });
  assert.equal(gone.status, 404);
  assert.equal(errorOf(gone).message, "Mediapipe is retired");
  await eventually(async () => {
    const cfg = (await srv.request("GET", "/v1/config")).body as Record<string, { model_version_status: { state: string }[] }>;
    return cfg.a?.model_version_status[0].state === "END";
  }, "a to reach END");
  assert.deepEqual(((await srv.request("GET", "/v3/models")).body as { data: { id: string }[] }).data.map((m) => m.id), ["b"]);
});

test("reload of a broken config: 500 with the reason, the running servables keep serving", async () => {
  const dir = tempDir();
  const path = writeConfig(dir, { model_config_list: [entry("echo", ECHO_GRAPH_DIR)] });
  const srv = await start({ configPath: path });
  await srv.manager.whenInitialized();
  for (const broken of ["{ not json", JSON.stringify({ model_config_list: [{ config: { base_path: "x" } }] })]) {
    writeConfig(dir, broken);
    const before = srv.logs.length;
    const r = await srv.request("POST", "/v1/config/reload");
    assert.equal(r.status, 500);
    // Logged once by the manager, with the reason: no second copy from the route, no stack of the 500 itself.
    assert.equal(srv.logs.slice(before).filter((l) => /config reload failed/.test(String(l.msg))).length, 1);
    assert.ok(srv.logs.slice(before).every((l) => l.err === undefined), JSON.stringify(srv.logs.slice(before)));
    const e = errorOf(r);
    assert.equal(e.type, "server_error");
    assert.match(e.message, /^Config reload failed: .*config\.json/s);
    assert.match(e.message, /The servables already loaded keep serving\.$/);
    assert.equal((await srv.request("POST", "/v3/x", { json: { model: "echo" } })).status, 200);
  }
  const status = (await srv.request("GET", "/v1/config")).body as Record<string, { model_version_status: { state: string }[] }>;
  assert.equal(status.echo.model_version_status[0].state, "AVAILABLE");
});

test("polling: an edited config.json is applied without a reload request", async () => {
  const dir = tempDir();
  writeServable(dir, "late", oneNodeGraph("InspectCalculator"));
  const path = writeConfig(dir, { model_config_list: [] });
  const srv = await start({ configPath: path, pollSeconds: 0.05 });
  await srv.manager.whenInitialized();
  writeConfig(dir, { model_config_list: [entry("late", "late")] });
  await eventually(async () => (await srv.request("POST", "/v3/x", { json: { model: "late" } })).status === 200, "the polled servable");
});

test("a servable removed while a request is in flight: the request completes, new ones get 404 retired", async () => {
  const dir = tempDir();
  writeServable(dir, "gate", oneNodeGraph("GateCalculator"));
  const path = writeConfig(dir, { model_config_list: [entry("gate", "gate")] });
  const srv = await start({ configPath: path });
  await srv.manager.whenInitialized();
  const g = gate("removed-in-flight");
  const inFlight = srv.request("POST", "/v3/images/generations", { json: { model: "gate", gate: "removed-in-flight" } });
  await g.entered;

  writeConfig(dir, { model_config_list: [] });
  assert.equal((await srv.request("POST", "/v1/config/reload")).status, 201);
  const status = (await srv.request("GET", "/v1/config")).body as Record<string, { model_version_status: { state: string }[] }>;
  assert.equal(status.gate.model_version_status[0].state, "UNLOADING", "retiring waits for the request");
  const refused = await srv.request("POST", "/v3/images/generations", { json: { model: "gate" } });
  assert.equal(refused.status, 404);
  assert.equal(errorOf(refused).message, "Mediapipe is retired");

  g.open();
  const done = await inFlight;
  assert.equal(done.status, 200);
  assert.deepEqual(done.body, { gate: "removed-in-flight", file: null });
  await eventually(async () => {
    const s = (await srv.request("GET", "/v1/config")).body as Record<string, { model_version_status: { state: string }[] }>;
    return s.gate.model_version_status[0].state === "END";
  }, "the servable to reach END");
});

test("the alias hook: a name that is not a servable runs its servable's graph and is listed", async () => {
  const dir = tempDir();
  writeServable(dir, "base", oneNodeGraph("InspectCalculator"));
  const srv = await start({
    configPath: writeConfig(dir, { model_config_list: [entry("base", "base")] }),
    aliases: { resolve: (n) => (n === "base-lora" ? "base" : undefined), list: () => [{ alias: "base-lora", servable: "base" }] },
  });
  await srv.manager.whenInitialized();
  const r = await srv.request("POST", "/v3/images/generations", { json: { model: "base-lora" } });
  assert.equal(r.status, 200);
  assert.equal((r.body as { model: string }).model, "base-lora");
  assert.equal((r.body as { servable: string }).servable, "base");
  assert.deepEqual(((await srv.request("GET", "/v3/models")).body as { data: { id: string }[] }).data.map((m) => m.id), ["base", "base-lora"]);
  assert.equal((await srv.request("GET", "/v3/models/base-lora")).status, 200);
});


test("before the initial load: live 200, ready 503 'Server is not ready', a loading servable 503 with Retry-After", async () => {
  const servables = [new FrozenServable("loading", "LOADING"), new FrozenServable("starting", "START"), new FrozenServable("unloading", "UNLOADING")];
  const registry: Servables = {
    get: (n) => servables.find((s) => s.name === n),
    list: () => servables,
    initialized: () => false,
    reload: () => Promise.resolve({ changed: false }),
    close: () => Promise.resolve(),
  };
  const { app } = createApp({ servables: registry, logger: pino({ level: "silent" }) });
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    assert.equal((await call(base, "GET", "/v2/health/live")).status, 200);
    const ready = await call(base, "GET", "/v2/health/ready");
    assert.equal(ready.status, 503);
    assert.deepEqual(errorOf(ready), { message: "Server is not ready", type: "server_error", param: null, code: null });
    for (const model of ["loading", "starting"]) {
      const r = await call(base, "POST", "/v3/images/generations", { json: { model } });
      assert.equal(r.status, 503, model);
      assert.equal(errorOf(r).message, "Mediapipe is not loaded yet");
      assert.equal(r.headers.get("retry-after"), "1");
    }
    const unloading = await call(base, "POST", "/v3/images/generations", { json: { model: "unloading" } });
    assert.equal(unloading.status, 404);
    assert.equal(errorOf(unloading).message, "Mediapipe is retired");
    assert.deepEqual((await call(base, "GET", "/v3/models")).body, { data: [], object: "list" });
    const cfg = (await call(base, "GET", "/v1/config")).body as Record<string, { model_version_status: { state: string }[] }>;
    assert.deepEqual(Object.keys(cfg), ["loading", "starting", "unloading"]);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("a servable that cannot load (no graph.pbtxt, a mistyped base_path): a failure in /v1/config, the log and its answers; the others serve", async () => {
  const dir = tempDir();
  writeServable(dir, "ok", oneNodeGraph("InspectCalculator"));
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(dir, "empty"));
  const srv = await start({ configPath: writeConfig(dir, { model_config_list: [entry("ok", "ok"), entry("empty", "empty"), entry("typo", "no-such-folder")] }) });
  await srv.manager.whenInitialized();
  const cfg = (await srv.request("GET", "/v1/config")).body as Record<string, { model_version_status: { state: string; status: { error_code: string; error_message: string } }[] }>;
  // OVMS's own mapping of a failed load: state LOADING with error_code FAILED_PRECONDITION, never LOADING/OK.
  assert.deepEqual(cfg.empty.model_version_status[0], { version: "1", state: "LOADING", status: { error_code: "FAILED_PRECONDITION", error_message: `graph file "${join(dir, "empty/graph.pbtxt")}" not found` } });
  assert.equal(cfg.typo.model_version_status[0].status.error_code, "FAILED_PRECONDITION");
  assert.match(cfg.typo.model_version_status[0].status.error_message, /no-such-folder" does not exist$/);
  // Readiness as OVMS: the server is ready once the initial load is over; the failed servables are not.
  assert.equal((await srv.request("GET", "/v2/health/ready")).status, 200);
  assert.equal((await srv.request("GET", "/v2/models/ok/ready")).status, 200);
  assert.equal((await srv.request("GET", "/v2/models/empty/ready")).status, 404);
  const r = await srv.request("POST", "/v3/images/generations", { json: { model: "typo" } });
  assert.equal(r.status, 503);
  assert.equal(errorOf(r).code, "model_failed");
  assert.equal(r.headers.get("retry-after"), null);
  const summary = srv.logs.find((l) => String(l.msg).startsWith("servables initialized"));
  assert.deepEqual([summary?.level, summary?.msg], [40, "servables initialized: 3 configured, 2 failed to load: empty, typo"]);
});
