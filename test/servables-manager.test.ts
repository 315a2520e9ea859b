/**
 * ServableManager and ManagedServable: initial load, reloads (config and
 * graph edits), retirement with requests in flight, polling, status, close.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino, type Logger } from "pino";
import { Calculator, type CalculatorContext, type CalculatorContract } from "../src/engine/calculator.js";
import { CalculatorRegistry } from "../src/engine/registry.js";
import { ConfigError } from "../src/servables/config.js";
import { ServableManager, type ServableManagerOptions } from "../src/servables/manager.js";
import type { Servable } from "../src/servables/types.js";

/** Pending HoldCalculator calls: a test releases them to finish the request. */
const gates: (() => void)[] = [];
const openGates = () => gates.splice(0).forEach((g) => g());

/** Holds each packet until the test opens its gate: a request kept in flight. */
class HoldCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { inputs: { "": {} }, outputs: { "": {} } };
  override async process(ctx: CalculatorContext): Promise<void> {
    const v = ctx.inputs.value(0);
    await new Promise<void>((resolve) => gates.push(resolve));
    ctx.outputs.add(0, v);
  }
}

// Graph streams tagged for HTTP, as a servable's must be; the node reads and writes them by name.
const graph = (calculator: string, stream = "in", out = "out") =>
  `input_stream: "HTTP_REQUEST_PAYLOAD:${stream}"\noutput_stream: "HTTP_RESPONSE_PAYLOAD:${out}"\nnode { calculator: "${calculator}" input_stream: "${stream}" output_stream: "${out}" }\n`;
const PASS = graph("PassThroughCalculator");
const HOLD = graph("HoldCalculator");
const BROKEN = graph("NoSuchCalculator");

let registry: CalculatorRegistry;
const tmp = mkdtempSync(join(tmpdir(), "graphserve-servables-"));
before(async () => {
  registry = await CalculatorRegistry.withBuiltins();
  registry.register(HoldCalculator, import.meta.url);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

let dirs = 0;
/** A fresh folder with files (paths may have sub-folders). */
function folder(files: Record<string, string> = {}): string {
  const dir = join(tmp, `w${dirs++}`);
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) write(join(dir, name), text);
  return dir;
}
function write(path: string, text: string): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
}
const config = (...entries: (string | [name: string, base: string, graph?: string])[]) =>
  JSON.stringify({
    model_config_list: entries.map((e) =>
      typeof e === "string" ? { config: { name: e, base_path: e } } : { config: { name: e[0], base_path: e[1], ...(e[2] ? { graph_path: e[2] } : {}) } },
    ),
  });

/** A logger whose lines the test can read. */
function capture(): { logger: Logger; messages: string[] } {
  const messages: string[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void messages.push(JSON.parse(line).msg as string) });
  return { logger, messages };
}

const managers: ServableManager[] = [];
after(async () => {
  openGates();
  await Promise.all(managers.map((m) => m.close(100)));
});
async function start(opts: Partial<ServableManagerOptions>): Promise<ServableManager> {
  const m = await ServableManager.start({ calculators: registry, logger: capture().logger, pollSeconds: 0, ...opts });
  managers.push(m);
  return m;
}

async function until(cond: () => boolean, what = "condition", ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const ticks = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** One request through a servable, lease released afterwards. */
async function serve(s: Servable | undefined, value: unknown, stream = "in"): Promise<unknown> {
  const lease = s?.acquire();
  assert.ok(lease, `servable ${s?.name} is not available`);
  try {
    const out = await lease.runner.run({ [stream]: value });
    return Object.values(out)[0][0].value;
  } finally {
    lease.release();
  }
}

const stateOf = (m: ServableManager, name: string) => m.get(name)?.status().state;

describe("ServableManager", () => {
  test("start returns while loading; a broken servable fails alone, with the located error", async () => {
    const dir = folder({
      "a/graph.pbtxt": PASS,
      "b/graph.pbtxt": BROKEN,
      "c/1/model.xml": "",
      "d/graph.pbtxt": PASS,
      "config.json": JSON.stringify({
        model_config_list: [{ config: { name: "a", base_path: "a" } }, { config: { name: "b", base_path: "b" } }, { config: { name: "c", base_path: "c" } }],
        mediapipe_config_list: [{ name: "d" }],
      }),
    });
    const m = await start({ configPath: join(dir, "config.json") });
    assert.equal(m.initialized(), false);
    assert.ok(["START", "LOADING"].includes(stateOf(m, "a")!));
    await m.whenInitialized();
    assert.equal(m.initialized(), true);
    assert.deepEqual(
      m.list().map((s) => s.name),
      ["a", "b", "c", "d"],
    );
    const status = m.configStatus();
    const ok = { model_version_status: [{ version: "1", state: "AVAILABLE", status: { error_code: "OK", error_message: "OK" } }] };
    assert.deepEqual(status.a, ok);
    assert.deepEqual(status.d, ok);
    const b = status.b.model_version_status[0];
    assert.deepEqual([b.state, b.status.error_code], ["LOADING", "FAILED_PRECONDITION"]);
    assert.equal(b.status.error_message, `ValidatedGraphConfig Initialization failed.\n${join(dir, "b/graph.pbtxt")}:3:8: Unable to find Calculator "NoSuchCalculator"`);
    const c = status.c.model_version_status[0];
    assert.deepEqual([c.state, c.status.error_code], ["LOADING", "FAILED_PRECONDITION"]);
    assert.equal(
      c.status.error_message,
      `graph file "${join(dir, "c/graph.pbtxt")}" not found: base_path "${join(dir, "c")}" holds numbered version folders (1), i.e. a classic OVMS model; graphserve serves MediaPipe graphs only`,
    );
    assert.equal(m.get("b")!.acquire(), undefined);
    assert.equal(await serve(m.get("a"), 42), 42);
    assert.equal(m.get("zzz"), undefined);
    assert.equal(m.get("a")!.graphPath, join(dir, "a/graph.pbtxt"));
    assert.equal(m.get("a")!.basePath, join(dir, "a"));
  });

  test("an empty config reports {}; missing and remote base paths fail per servable", async () => {
    const empty = await start({ configPath: join(folder({ "config.json": "{}" }), "config.json") });
    await empty.whenInitialized();
    assert.deepEqual(empty.configStatus(), {});

    const dir = folder({ "config.json": config("nope", ["remote", "gs://bucket/m"]) });
    const m = await start({ configPath: join(dir, "config.json") });
    await m.whenInitialized();
    assert.deepEqual(m.get("nope")!.status(), {
      state: "LOADING",
      errorCode: "FAILED_PRECONDITION",
      errorMessage: `graph file "${join(dir, "nope/graph.pbtxt")}" not found: base_path "${join(dir, "nope")}" does not exist`,
    });
    assert.equal(m.get("remote")!.status().errorMessage, `"gs://bucket/m/graph.pbtxt" is a remote URL: graphserve loads graphs from local folders only`);
  });

  test("start refuses an invalid initial config and bad options", async () => {
    const dir = folder({ "config.json": '{"model_config_list": [{"config": {"name": 1}}]}' });
    await assert.rejects(ServableManager.start({ configPath: join(dir, "config.json"), calculators: registry, logger: capture().logger }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /model_config_list\[0\]\.config\.name must be a string/);
      return true;
    });
    await assert.rejects(ServableManager.start({ configPath: join(dir, "missing.json"), calculators: registry, logger: capture().logger }), ConfigError);
    await assert.rejects(ServableManager.start({ calculators: registry, logger: capture().logger }), /either a config path or a single servable/);
    await assert.rejects(
      ServableManager.start({ configPath: "x", single: { name: "n", path: "p" }, calculators: registry, logger: capture().logger }),
      /either a config path or a single servable/,
    );
    await assert.rejects(ServableManager.start({ configPath: "x", pollSeconds: -1, calculators: registry, logger: capture().logger }), /non-negative/);
  });

  test("reload adds, removes and reloads changed servables; nothing changed → changed: false", async () => {
    const dir = folder({ "a/graph.pbtxt": PASS, "a/other.pbtxt": graph("PassThroughCalculator", "x", "y"), "b/graph.pbtxt": PASS, "c/graph.pbtxt": PASS });
    const cfg = join(dir, "config.json");
    write(cfg, config("a", "b"));
    const m = await start({ configPath: cfg });
    await m.whenInitialized();
    assert.deepEqual(await m.reload(), { changed: false });

    const oldA = m.get("a")!.acquire()!;
    oldA.release();
    write(cfg, config(["a", "a", "other.pbtxt"], "c"));
    assert.deepEqual(await m.reload(), { changed: true });
    assert.deepEqual(
      m.list().map((s) => [s.name, s.status().state]),
      [
        ["a", "AVAILABLE"],
        ["c", "AVAILABLE"],
      ],
    );
    assert.equal(m.get("a")!.graphPath, join(dir, "a/other.pbtxt"));
    assert.equal(await serve(m.get("a"), 7, "x"), 7, "a runs its new graph");
    await until(() => stateOf(m, "b") === "END", "b retired");
    assert.deepEqual(Object.keys(m.configStatus()), ["a", "c", "b"], "retired servables are reported after the configured ones");
    assert.deepEqual(m.configStatus().b.model_version_status[0], { version: "1", state: "END", status: { error_code: "OK", error_message: "OK" } });
    assert.equal(m.get("b")!.acquire(), undefined);
    assert.deepEqual(await m.reload(), { changed: false });

    // Only the graph file changed: a reload picks it up.
    write(join(dir, "c/graph.pbtxt"), graph("PassThroughCalculator", "p", "q"));
    assert.deepEqual(await m.reload(), { changed: true });
    assert.equal(await serve(m.get("c"), "hi", "p"), "hi");

    // A retired name comes back as a fresh servable.
    write(cfg, config(["a", "a", "other.pbtxt"], "c", "b"));
    assert.deepEqual(await m.reload(), { changed: true });
    assert.equal(stateOf(m, "b"), "AVAILABLE");
    assert.equal(await serve(m.get("b"), 1), 1);
  });

  test("a config that cannot be read or validated keeps the running servables", async () => {
    const dir = folder({ "a/graph.pbtxt": PASS });
    const cfg = join(dir, "config.json");
    write(cfg, config("a"));
    const { logger, messages } = capture();
    const m = await start({ configPath: cfg, logger });
    await m.whenInitialized();

    write(cfg, '{"model_config_list": [');
    const r1 = await m.reload();
    assert.equal(r1.changed, false);
    assert.match(r1.error!, /^.*config\.json: not valid JSON: /);
    assert.equal(m.lastConfigError(), r1.error);
    assert.ok(messages.some((l) => l.includes(r1.error!)), "the error is logged");

    write(cfg, JSON.stringify({ model_config_list: [{ config: { name: "a" } }] }));
    assert.deepEqual(await m.reload(), { changed: false, error: `${cfg}: model_config_list[0].config.base_path is required` });

    rmSync(cfg);
    assert.deepEqual(await m.reload(), { changed: false, error: `cannot read config file "${cfg}": no such file` });

    assert.equal(stateOf(m, "a"), "AVAILABLE");
    assert.equal(await serve(m.get("a"), "still"), "still");

    write(cfg, config("a"));
    assert.deepEqual(await m.reload(), { changed: false });
    assert.equal(m.lastConfigError(), undefined);
  });

  test("a broken new graph never takes a working servable down", async () => {
    const dir = folder({ "a/graph.pbtxt": PASS });
    const cfg = join(dir, "config.json");
    write(cfg, config("a"));
    const m = await start({ configPath: cfg });
    await m.whenInitialized();
    const a = m.get("a")!;

    write(join(dir, "a/graph.pbtxt"), BROKEN);
    assert.deepEqual(await m.reload(), { changed: true });
    assert.deepEqual(a.status(), {
      state: "AVAILABLE",
      errorCode: "FAILED_PRECONDITION",
      errorMessage: `reload failed, still serving the previous graph: ValidatedGraphConfig Initialization failed.\n${join(dir, "a/graph.pbtxt")}:3:8: Unable to find Calculator "NoSuchCalculator"`,
    });
    assert.equal(await serve(a, 1), 1, "the previous graph serves");
    assert.deepEqual(await m.reload(), { changed: false }, "the same broken bytes are not retried");

    // A new graph path that does not exist: same, and the paths stay those of the serving graph.
    write(cfg, config(["a", "a", "missing.pbtxt"]));
    assert.deepEqual(await m.reload(), { changed: true });
    assert.equal(a.status().errorMessage, `reload failed, still serving the previous graph: graph file "${join(dir, "a/missing.pbtxt")}" not found`);
    assert.equal(a.graphPath, join(dir, "a/graph.pbtxt"));

    write(join(dir, "a/missing.pbtxt"), graph("PassThroughCalculator", "z", "w"));
    assert.deepEqual(await m.reload(), { changed: true });
    assert.deepEqual(a.status(), { state: "AVAILABLE", errorCode: "OK", errorMessage: "OK" });
    assert.equal(await serve(a, 2, "z"), 2);
  });

  test("a reloaded graph: requests in flight finish on the old runner, new leases get the new one", async () => {
    const dir = folder({ "h/graph.pbtxt": HOLD });
    const cfg = join(dir, "config.json");
    write(cfg, config("h"));
    const m = await start({ configPath: cfg });
    await m.whenInitialized();
    const h = m.get("h")!;

    const old = h.acquire()!;
    const pending = old.runner.run({ in: "old" });
    await until(() => gates.length === 1, "the request to be held");
    write(join(dir, "h/graph.pbtxt"), PASS);
    assert.deepEqual(await m.reload(), { changed: true });
    const fresh = h.acquire()!;
    assert.notEqual(fresh.runner, old.runner);
    assert.equal(h.inFlight(), 2);
    assert.equal((await fresh.runner.run({ in: "new" })).out[0].value, "new");
    fresh.release();

    openGates();
    assert.equal((await pending).out[0].value, "old");
    await ticks();
    assert.equal(h.inFlight(), 1, "the old lease is still out");
    old.release();
    old.release(); // a second release is ignored
    assert.equal(h.inFlight(), 0);
    await ticks();
    await assert.rejects(old.runner.run({ in: 1 }), /closed/, "the old runner closes once its lease is released");
    assert.equal(h.status().state, "AVAILABLE");
  });

  test("a servable removed while a request is in flight serves it, then ends", async () => {
    const dir = folder({ "h/graph.pbtxt": HOLD, "a/graph.pbtxt": PASS });
    const cfg = join(dir, "config.json");
    write(cfg, config("h", "a"));
    const m = await start({ configPath: cfg });
    await m.whenInitialized();
    const h = m.get("h")!;

    const lease = h.acquire()!;
    const pending = lease.runner.run({ in: 5 });
    await until(() => gates.length === 1, "the request to be held");
    write(cfg, config("a"));
    assert.deepEqual(await m.reload(), { changed: true });
    assert.equal(h.status().state, "UNLOADING");
    assert.equal(h.acquire(), undefined, "no new leases while retiring");
    assert.equal(h.inFlight(), 1);
    assert.deepEqual(m.configStatus().h.model_version_status[0].state, "UNLOADING");
    assert.deepEqual(
      m.list().map((s) => s.name),
      ["a"],
    );

    openGates();
    assert.equal((await pending).out[0].value, 5, "the request in flight is still served");
    await ticks();
    assert.equal(h.status().state, "UNLOADING", "until its lease is released");
    lease.release();
    await until(() => h.status().state === "END", "h retired");
    assert.deepEqual(h.status(), { state: "END", errorCode: "OK", errorMessage: "OK" });
    assert.equal(m.get("h"), h);
  });

  test("polling reloads when config.json's content changes, and logs errors without throwing", async () => {
    const dir = folder({ "a/graph.pbtxt": PASS, "b/graph.pbtxt": PASS });
    const cfg = join(dir, "config.json");
    const first = config("a");
    write(cfg, first);
    const { logger, messages } = capture();
    const m = await start({ configPath: cfg, logger, pollSeconds: 0.02 });
    await m.whenInitialized();

    write(cfg, config("a", "b"));
    await until(() => stateOf(m, "b") === "AVAILABLE", "polling to add b");
    const reloads = () => messages.filter((l) => l === "config file changed; reloading").length;
    assert.equal(reloads(), 1);

    write(cfg, config("a", "b")); // same bytes, new mtime: no reload
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(reloads(), 1);

    write(cfg, "{ broken");
    await until(() => m.lastConfigError() !== undefined, "the broken config to be seen");
    assert.equal(stateOf(m, "b"), "AVAILABLE");

    rmSync(cfg);
    await until(() => messages.some((l) => l.startsWith("config poll: cannot read config file")), "the poll error to be logged");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(messages.filter((l) => l.startsWith("config poll:")).length, 1, "a repeated poll error is logged once");

    write(cfg, first);
    await until(() => stateOf(m, "b") === "END", "polling to remove b");
    assert.equal(m.lastConfigError(), undefined);
  });

  test("single-servable mode: a folder or a graph file; reload picks up graph edits", async () => {
    const dir = folder({ "graph.pbtxt": PASS, "custom.pbtxt": graph("PassThroughCalculator", "u", "v") });
    const m = await start({ single: { name: "sd", path: dir } });
    await m.whenInitialized();
    assert.deepEqual(Object.keys(m.configStatus()), ["sd"]);
    assert.equal(await serve(m.get("sd"), 3), 3);
    assert.deepEqual(m.metrics(), { enable: false });
    assert.deepEqual(await m.reload(), { changed: false });
    write(join(dir, "graph.pbtxt"), graph("PassThroughCalculator", "i", "o"));
    assert.deepEqual(await m.reload(), { changed: true });
    assert.equal(await serve(m.get("sd"), 4, "i"), 4);

    const file = await start({ single: { name: "f", path: join(dir, "custom.pbtxt") } });
    await file.whenInitialized();
    assert.equal(await serve(file.get("f"), 5, "u"), 5);

    const missing = await start({ single: { name: "m", path: join(dir, "nope") } });
    await missing.whenInitialized();
    assert.equal(missing.get("m")!.status().errorCode, "FAILED_PRECONDITION");
  });

  test("metrics settings come from config.json", async () => {
    const dir = folder({ "config.json": JSON.stringify({ model_config_list: [], monitoring: { metrics: { enable: true, metrics_list: ["ovms_requests_success"] } } }) });
    const m = await start({ configPath: join(dir, "config.json") });
    assert.deepEqual(m.metrics(), { enable: true, metricsList: ["ovms_requests_success"] });
  });

  test("close() waits for requests in flight, then ends everything", async () => {
    const dir = folder({ "h/graph.pbtxt": HOLD, "a/graph.pbtxt": PASS });
    write(join(dir, "config.json"), config("h", "a"));
    const m = await start({ configPath: join(dir, "config.json") });
    await m.whenInitialized();
    const lease = m.get("h")!.acquire()!;
    const pending = lease.runner.run({ in: 9 });
    await until(() => gates.length === 1, "the request to be held");

    let closed = false;
    const closing = m.close(5000).then(() => (closed = true));
    await ticks();
    assert.equal(closed, false);
    assert.equal(stateOf(m, "h"), "UNLOADING");
    assert.equal(stateOf(m, "a"), "END");
    openGates();
    assert.equal((await pending).out[0].value, 9);
    lease.release();
    await closing;
    assert.deepEqual(
      Object.values(m.configStatus()).map((s) => s.model_version_status[0].state),
      ["END", "END"],
    );
    assert.deepEqual(await m.reload(), { changed: false, error: "the server is shutting down" });
  });

  test("close() stops waiting after graceMs", async () => {
    const dir = folder({ "h/graph.pbtxt": HOLD });
    write(join(dir, "config.json"), config("h"));
    const { logger, messages } = capture();
    const m = await start({ configPath: join(dir, "config.json"), logger });
    await m.whenInitialized();
    const lease = m.get("h")!.acquire()!;
    const pending = lease.runner.run({ in: 1 });
    await until(() => gates.length === 1, "the request to be held");
    const t0 = Date.now();
    await m.close(50);
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(stateOf(m, "h"), "END");
    assert.ok(messages.includes("closing servables with 1 request(s) still in flight after 50 ms"));
    openGates();
    await pending.catch(() => undefined);
    lease.release();
  });
});
