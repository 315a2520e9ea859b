/**
 * The calculator API's node resources (`contract.resources`): loaded once
 * when a servable loads and before it is AVAILABLE, handed to every run
 * through the side packet, bounded by their capacity, disposed when the
 * graph retires, and never leaked when a load fails halfway.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { Calculator, nodeResources, type CalculatorContext, type CalculatorContract, type NodeResources, type ResourceLoadContext } from "../src/index.js";
import { MAX_RETRY_AFTER_SECONDS } from "../src/engine/node-resources.js";
import { CalculatorRegistry } from "../src/engine/registry.js";
import { ServableManager } from "../src/servables/manager.js";
import type { Servable } from "../src/servables/types.js";

interface Model extends NodeResources {
  readonly id: number;
  readonly node: string;
  readonly graphDir: string;
  readonly servable: string;
  readonly capacity?: number;
  disposed: boolean;
}

/** What the test controls and observes, by node name. */
const behaviour = new Map<string, { fail?: string; capacity?: number; retryAfter?: number; hold?: Promise<void> }>();
const loaded: Model[] = [];
/** Load attempts by node name, failed ones included. */
const attempts = new Map<string, number>();
let nextId = 1;
const gates: (() => void)[] = [];

class ModelCalculator extends Calculator {
  static override readonly contract: CalculatorContract = {
    inputs: { "": {} },
    outputs: { "": {} },
    inputSidePackets: { MODEL: {} },
    resources: {
      sidePacket: "MODEL",
      async load(ctx: ResourceLoadContext): Promise<Model> {
        const b = behaviour.get(ctx.node.name) ?? {};
        attempts.set(ctx.node.name, (attempts.get(ctx.node.name) ?? 0) + 1);
        await b.hold;
        if (b.fail !== undefined) throw new Error(b.fail);
        const m: Model = {
          id: nextId++,
          node: ctx.node.name,
          graphDir: ctx.graphDir,
          servable: ctx.servable,
          disposed: false,
          ...(b.capacity !== undefined ? { capacity: b.capacity, retryAfterSeconds: () => b.retryAfter ?? 7 } : {}),
          dispose() {
            m.disposed = true;
          },
        };
        loaded.push(m);
        return m;
      },
    },
  };

  override async process(ctx: CalculatorContext): Promise<void> {
    const model = nodeResources<Model>(ctx, "MODEL");
    if (ctx.inputs.value(0) === "hold") await new Promise<void>((resolve) => gates.push(resolve));
    ctx.outputs.add(0, model.id);
  }
}

const graph = (...nodes: string[]) =>
  `input_stream: "HTTP_REQUEST_PAYLOAD:in"\noutput_stream: "HTTP_RESPONSE_PAYLOAD:out"\n` +
  nodes.map((name, i) => `node { name: "${name}" calculator: "ModelCalculator" input_stream: "${i === 0 ? "in" : `s${i}`}" output_stream: "${i === nodes.length - 1 ? "out" : `s${i + 1}`}" input_side_packet: "MODEL:models" }\n`).join("");

let registry: CalculatorRegistry;
const tmp = mkdtempSync(join(tmpdir(), "graphserve-resources-"));
const managers: ServableManager[] = [];
before(async () => {
  registry = await CalculatorRegistry.withBuiltins();
  registry.register(ModelCalculator, import.meta.url);
});
after(async () => {
  gates.splice(0).forEach((g) => g());
  await Promise.all(managers.map((m) => m.close(100)));
  rmSync(tmp, { recursive: true, force: true });
});

let dirs = 0;
function servableDir(text: string): string {
  const dir = join(tmp, `s${dirs++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, "graph.pbtxt"), text);
  return dir;
}

async function manager(name: string, dir: string): Promise<ServableManager> {
  const m = await ServableManager.start({ calculators: registry, logger: pino({ level: "silent" }), pollSeconds: 0, single: { name, path: dir } });
  managers.push(m);
  return m;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 3000;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function run(s: Servable, value: string): Promise<unknown> {
  const lease = s.acquire();
  assert.ok(lease, `${s.name} is not available`);
  try {
    return (await lease.runner.run({ in: value })).out[0].value;
  } finally {
    lease.release();
  }
}

describe("node resources", () => {
  test("loaded once per servable load, before it is AVAILABLE, and shared by every request; the loader sees the graph folder and servable", async () => {
    let release!: () => void;
    behaviour.set("slow", { hold: new Promise<void>((r) => (release = r)) });
    const dir = servableDir(graph("slow", "second"));
    const m = await manager("shared", dir);
    const s = m.get("shared")!;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(s.status().state, "LOADING", "not available while the model loads");
    assert.equal(s.acquire(), undefined);
    release();
    await until(() => s.status().state === "AVAILABLE", "available");
    const mine = loaded.filter((l) => l.servable === "shared");
    assert.deepEqual(mine.map((l) => [l.node, l.graphDir]), [["slow", dir], ["second", dir]]);
    const last = mine[1].id;
    assert.deepEqual(await Promise.all([run(s, "a"), run(s, "b"), run(s, "c")]), [last, last, last]);
    assert.equal(loaded.filter((l) => l.servable === "shared").length, 2, "no load per request");
  });

  test("a load that fails halfway disposes what was loaded and leaves the servable unavailable with the reason", async () => {
    behaviour.set("broken", { fail: "weights are corrupt" });
    const m = await manager("half", servableDir(graph("fine", "broken")));
    const s = m.get("half")!;
    await until(() => s.status().errorCode === "FAILED_PRECONDITION", "the failure");
    assert.match(s.status().errorMessage, /weights are corrupt/);
    assert.equal(s.acquire(), undefined);
    const fine = loaded.filter((l) => l.servable === "half");
    assert.equal(fine.length, 1);
    assert.equal(fine[0].disposed, true, "the first node's model was disposed");
  });

  test("capacity: the servable is overloaded once its requests reach the smallest capacity, with the node's Retry-After", async () => {
    behaviour.set("cap-a", { capacity: 2 });
    behaviour.set("cap-b", { capacity: 5 });
    const m = await manager("cap", servableDir(graph("cap-a", "cap-b")));
    const s = m.get("cap")!;
    await until(() => s.status().state === "AVAILABLE", "available");
    assert.equal(s.overloaded(), undefined);
    const held = [run(s, "hold"), run(s, "hold")];
    await until(() => gates.length === 2, "two requests held");
    assert.deepEqual(s.overloaded(), { retryAfterSeconds: 7 });
    gates.splice(0).forEach((g) => g());
    await Promise.all(held);
    assert.equal(s.overloaded(), undefined, "room again once they finish");
  });

  test("Retry-After is whole seconds from 1 to MAX_RETRY_AFTER_SECONDS whatever a node answers (NaN, negative, infinite, huge)", async () => {
    const b: { capacity: number; retryAfter?: number } = { capacity: 1 };
    behaviour.set("ra", b);
    const m = await manager("ra", servableDir(graph("ra")));
    const s = m.get("ra")!;
    await until(() => s.status().state === "AVAILABLE", "available");
    const held = run(s, "hold");
    await until(() => gates.length === 1, "the request held");
    const cases: [number, number][] = [[NaN, 1], [-5, 1], [0, 1], [0.2, 1], [12.2, 13], [Infinity, MAX_RETRY_AFTER_SECONDS], [-Infinity, 1], [1e9, MAX_RETRY_AFTER_SECONDS]];
    for (const [asked, given] of cases) {
      b.retryAfter = asked;
      assert.deepEqual(s.overloaded(), { retryAfterSeconds: given }, `a node asking ${asked}`);
    }
    gates.splice(0).forEach((g) => g());
    await held;
  });

  test("reloads asked for at once while models fail to load: one retry runs, one more waits for it, the rest join that one", async () => {
    let release!: () => void;
    behaviour.set("flaky", { fail: "weights missing", hold: new Promise<void>((r) => (release = r)) });
    const m = await manager("flaky", servableDir(graph("flaky")));
    release();
    await m.whenInitialized();
    assert.equal(attempts.get("flaky"), 1);
    // The next retry is held, so every reload below is asked for while it runs.
    behaviour.set("flaky", { fail: "weights missing", hold: new Promise<void>((r) => (release = r)) });
    const first = m.reload();
    await until(() => attempts.get("flaky") === 2, "the first retry to start");
    const rest = Array.from({ length: 20 }, () => m.reload());
    release();
    const results = await Promise.all([first, ...rest]);
    assert.equal(attempts.get("flaky"), 3, "the running retry and one after it, whatever the number of reloads asked for");
    assert.ok(results.every((r) => r.error === undefined));
    assert.match(m.get("flaky")!.status().errorMessage, /weights missing/);
  });

  test("a reload disposes the old graph's resources only after its in-flight request finishes; retiring disposes the rest", async () => {
    const dir = servableDir(graph("first"));
    const m = await manager("reloading", dir);
    const s = m.get("reloading")!;
    await until(() => s.status().state === "AVAILABLE", "available");
    const inFlight = run(s, "hold");
    await until(() => gates.length === 1, "request held");
    writeFileSync(join(dir, "graph.pbtxt"), graph("renamed"));
    await m.reload();
    await until(() => loaded.some((l) => l.node === "renamed"), "the new graph's model");
    const old = loaded.find((l) => l.node === "first")!;
    assert.equal(old.disposed, false, "still serving its request");
    gates.splice(0).forEach((g) => g());
    assert.equal(await inFlight, old.id, "the old request finished on the old model");
    await until(() => old.disposed, "old model disposed");
    await m.close(100);
    assert.equal(loaded.find((l) => l.node === "renamed")!.disposed, true);
  });

  test("shutting down during a slow load does not wait for it; what the load returns later is disposed", { timeout: 10_000 }, async () => {
    let release!: () => void;
    behaviour.set("endless", { hold: new Promise<void>((r) => (release = r)) });
    const m = await manager("endless", servableDir(graph("endless")));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(m.get("endless")!.status().state, "LOADING");
    const t = performance.now();
    await m.close(100);
    assert.ok(performance.now() - t < 1000, `close took ${Math.round(performance.now() - t)} ms`);
    assert.equal(m.get("endless")!.status().state, "END");
    release();
    await until(() => loaded.some((l) => l.node === "endless"), "the late model");
    await until(() => loaded.find((l) => l.node === "endless")!.disposed, "the late model disposed");
  });

  test("nodeResources outside a servable says where resources come from", async () => {
    const ctx = { nodeName: "n", inputSidePackets: { ports: [], has: () => false, get: () => undefined } };
    assert.throws(() => nodeResources(ctx, "MODEL"), /no resources on side packet MODEL: they are loaded when a servable loads the graph/);
  });
});
