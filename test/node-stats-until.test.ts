/**
 * `ctx.continueUntil`: a call that hands work off stays active in the node's
 * statistics, and is timed, until that work settles, on every main-thread
 * path (synchronous, async, several in flight); scheduling never waits for
 * it; a rejection counts as an error, a resolution after the work's signal
 * aborted as a cancellation; misuse is refused; on a worker executor it is
 * a no-op. The ImageGen cases over HTTP (streams, and cancelled requests
 * running or queued for a slot) are at the end.
 */
import { Registry } from "prom-client";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Calculator, type CalculatorContext, type CalculatorContract } from "../src/index.js";
import type { CalculatorRegistry } from "../src/engine/registry.js";
import { GraphRun } from "../src/engine/graph-run.js";
import { NodeStatsCollector } from "../src/engine/node-stats.js";
import { loadNodeResources } from "../src/engine/node-resources.js";
import { GraphPool } from "../src/engine/graph-pool.js";
import { HttpRequest, isSseResponse, type HttpSseResponse } from "../src/server/payload.js";
import type { GraphStats } from "../src/server/graph-view-types.js";
import { testRegistry } from "./helpers/calculators.js";
import { buildGraph } from "./helpers/graph.js";
import { eventually, type TestServer } from "./server-helpers.js";
import { imageServable, startImageServer } from "./image-server.js";
import { HANDOFF_FIXTURE_URL, WorkerHandoffCalculator } from "./fixtures/calculators/handoff-calcs.js";

/** The work each call hands off, by input value: the test settles it. */
const work = new Map<number, { resolve(): void; reject(e: unknown): void }[]>();
/** The signal that cancels the work of an input value, when the test gives one (else the run's). */
const workSignals = new Map<number, AbortSignal>();
const handOff = (ctx: CalculatorContext, v: number): void => {
  ctx.continueUntil(
    new Promise<void>((resolve, reject) => {
      const list = work.get(v) ?? [];
      list.push({ resolve, reject });
      work.set(v, list);
    }),
    workSignals.get(v),
  );
};
const settle = (v: number, how: "resolve" | "reject" = "resolve"): void => {
  for (const w of work.get(v)!) (how === "resolve" ? w.resolve() : w.reject(new Error(`work ${v} failed`)));
  work.delete(v);
};

const ONE_IN_ONE_OUT: CalculatorContract = { inputs: { "": {} }, outputs: { "": {} } };

/** Sends its input on and hands off one piece of work; a second one for negative inputs. */
class SyncHandoffCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(ctx: CalculatorContext): void {
    const v = ctx.inputs.value<number>(0)!;
    handOff(ctx, v);
    if (v < 0) handOff(ctx, v);
    ctx.outputs.add(0, v);
  }
}

/** The same after an await; a value of 13 fails process itself after handing off. */
class AsyncHandoffCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override async process(ctx: CalculatorContext): Promise<void> {
    const v = ctx.inputs.value<number>(0)!;
    await new Promise((r) => setImmediate(r));
    handOff(ctx, v);
    if (v === 13) throw new Error("process failed");
    ctx.outputs.add(0, v);
  }
}

/** Misuse: continueUntil from open, with a non-promise, and after its call returned. */
class MisuseCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  static seen: string[] = [];
  override open(ctx: CalculatorContext): void {
    try {
      ctx.continueUntil(Promise.resolve());
    } catch (e) {
      MisuseCalculator.seen.push(`open: ${(e as Error).message}`);
    }
  }
  override process(ctx: CalculatorContext): void {
    const v = ctx.inputs.value<number>(0)!;
    try {
      ctx.continueUntil(v as unknown as PromiseLike<unknown>);
    } catch (e) {
      MisuseCalculator.seen.push(`${(e as Error).name}: ${(e as Error).message}`);
    }
    queueMicrotask(() => {
      try {
        ctx.continueUntil(Promise.resolve());
      } catch (e) {
        MisuseCalculator.seen.push(`after return: ${(e as Error).message}`);
      }
    });
    ctx.outputs.add(0, v);
  }
}

let registry: CalculatorRegistry;
before(async () => {
  registry = await testRegistry();
  for (const cls of [SyncHandoffCalculator, AsyncHandoffCalculator, MisuseCalculator]) registry.register(cls, import.meta.url);
  registry.register(WorkerHandoffCalculator, HANDOFF_FIXTURE_URL);
});

const chain = (calculator: string, extra = "") => `
  input_stream: "in"
  output_stream: "out"
  node { calculator: "${calculator}" input_stream: "in" output_stream: "out" ${extra} }
`;

/** Runs `values` through a fresh run of `text` to the end; the handed-off work is still pending. */
async function runToEnd(text: string, values: readonly number[], stats: NodeStatsCollector | undefined = undefined) {
  const graph = buildGraph(text, registry);
  stats ??= new NodeStatsCollector(graph.nodes.length);
  const run = new GraphRun(graph, { stats });
  const out: unknown[] = [];
  run.observe("out", (p) => void out.push(p.value));
  run.start();
  values.forEach((v, ts) => run.addPacket("in", v, ts));
  run.closeAllInputStreams();
  let error: unknown;
  await run.waitUntilDone().catch((e: unknown) => (error = e));
  return { stats, out, error, graph };
}

const counts = (s: NodeStatsCollector) => {
  const n = s.read(0);
  return { processed: n.processed, active: n.active, errors: n.errors, cancelled: n.cancelled };
};
const tick = () => new Promise((r) => setTimeout(r, 25));

describe("continueUntil on the main thread", () => {
  for (const [name, text] of [
    ["synchronous process", chain("SyncHandoffCalculator")],
    ["async process", chain("AsyncHandoffCalculator")],
    ["async process, three in flight", chain("AsyncHandoffCalculator", "max_in_flight: 3")],
    ["synchronous process, three in flight", chain("SyncHandoffCalculator", "max_in_flight: 3")],
  ] as const) {
    test(`${name}: the run finishes without waiting; the calls stay active until their work settles, timed to then`, async () => {
      const { stats, out, error } = await runToEnd(text, [1, 2, 3]);
      assert.equal(error, undefined);
      assert.deepEqual(out, [1, 2, 3], "outputs and the run's end do not wait for handed-off work");
      assert.deepEqual(counts(stats), { processed: 0, active: 3, errors: 0, cancelled: 0 });
      await tick();
      settle(2);
      await eventually(() => stats.read(0).active === 2, "call 2 to end");
      assert.deepEqual(counts(stats), { processed: 1, active: 2, errors: 0, cancelled: 0 });
      assert.ok(stats.read(0).lastMs! >= 20, `timed until its work settled: ${stats.read(0).lastMs} ms`);
      settle(1);
      settle(3, "reject");
      await eventually(() => stats.read(0).active === 0, "every call to end");
      assert.deepEqual(counts(stats), { processed: 3, active: 0, errors: 1, cancelled: 0 }, "a rejected handoff is a failed call");
      assert.ok(stats.read(0).meanMs! >= 20);
    });
  }

  test("several handoffs in one call: it ends when all settled, failed if one rejected", async () => {
    const { stats } = await runToEnd(chain("SyncHandoffCalculator"), [-1]);
    const [first, second] = work.get(-1)!;
    first.resolve();
    await tick();
    assert.deepEqual(counts(stats), { processed: 0, active: 1, errors: 0, cancelled: 0 }, "one still pending");
    second.reject(new Error("late failure"));
    work.delete(-1);
    await eventually(() => stats.read(0).active === 0, "the call to end");
    assert.deepEqual(counts(stats), { processed: 1, active: 0, errors: 1, cancelled: 0 });
  });

  test("the work's own signal: resolved after it aborted is cancelled; resolved before is a finished call; rejected is an error either way", async () => {
    const cancels = new Map<number, AbortController>();
    for (const v of [21, 22, 23]) {
      cancels.set(v, new AbortController());
      workSignals.set(v, cancels.get(v)!.signal);
    }
    try {
      const { stats, error } = await runToEnd(chain("SyncHandoffCalculator"), [21, 22, 23]);
      assert.equal(error, undefined);
      settle(21); // finished before any cancel
      await eventually(() => stats.read(0).active === 2, "work 21 to end");
      assert.deepEqual(counts(stats), { processed: 1, active: 2, errors: 0, cancelled: 0 });
      cancels.get(22)!.abort();
      settle(22); // the work stopped at its cancel, and resolved as calculators are told to
      cancels.get(23)!.abort();
      settle(23, "reject"); // a failure is a failure even once cancelled
      await eventually(() => stats.read(0).active === 0, "every call to end");
      assert.deepEqual(counts(stats), { processed: 3, active: 0, errors: 1, cancelled: 1 });
    } finally {
      workSignals.clear();
    }
  });

  test("by default the run's signal: work resolved after its run was cancelled is cancelled", async () => {
    const graph = buildGraph(chain("SyncHandoffCalculator"), registry);
    const stats = new NodeStatsCollector(graph.nodes.length);
    const run = new GraphRun(graph, { stats });
    run.start();
    run.addPacket("in", 31, 0); // the run keeps taking input, so a cancel reaches it
    assert.deepEqual(counts(stats), { processed: 0, active: 1, errors: 0, cancelled: 0 });
    run.cancel();
    await assert.rejects(run.waitUntilDone(), { name: "AbortError" });
    settle(31);
    await eventually(() => stats.read(0).active === 0, "the call to end");
    assert.deepEqual(counts(stats), { processed: 1, active: 0, errors: 0, cancelled: 1 });
  });

  test("a signal that is not an AbortSignal is refused, naming the node", async () => {
    class BadSignalCalculator extends Calculator {
      static override readonly contract = ONE_IN_ONE_OUT;
      override process(ctx: CalculatorContext): void {
        ctx.continueUntil(Promise.resolve(), { aborted: false } as unknown as AbortSignal);
      }
    }
    registry.register(BadSignalCalculator, import.meta.url);
    const { stats, error } = await runToEnd(chain("BadSignalCalculator"), [1]);
    assert.match(String(error), /Node "[^"]+" \(BadSignalCalculator\) passed object as continueUntil's signal, which must be an AbortSignal\./);
    assert.deepEqual(counts(stats), { processed: 1, active: 0, errors: 1, cancelled: 0 });
  });

  test("a failing process that handed work off is one error, counted when the work settles", async () => {
    const { stats, error } = await runToEnd(chain("AsyncHandoffCalculator"), [13]);
    assert.match(String(error), /process failed/);
    assert.deepEqual(counts(stats), { processed: 0, active: 1, errors: 0, cancelled: 0 });
    settle(13);
    await eventually(() => stats.read(0).active === 0, "the call to end");
    assert.deepEqual(counts(stats), { processed: 1, active: 0, errors: 1, cancelled: 0 });
  });

  test("without a collector it is accepted, and a rejection is never unhandled", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => void unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const graph = buildGraph(chain("SyncHandoffCalculator"), registry);
      const run = new GraphRun(graph);
      run.start();
      run.addPacket("in", 7, 0);
      run.closeAllInputStreams();
      await run.waitUntilDone();
      settle(7, "reject");
      await tick();
      assert.deepEqual(unhandled, []);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  test("refused outside process and for a non-promise, with errors naming the node", async () => {
    MisuseCalculator.seen = [];
    const { stats, error } = await runToEnd(chain("MisuseCalculator"), [1, 2]);
    await tick();
    assert.equal(error, undefined);
    const node = 'Node "misusecalculator" (MisuseCalculator)';
    const seen = MisuseCalculator.seen.map((s) => s.replace(/Node "[^"]+"/, 'Node "misusecalculator"'));
    assert.ok(seen.includes(`open: ${node} called continueUntil outside process(): it extends a running process call, so call it before that call returns or settles.`), seen.join("\n"));
    assert.equal(seen.filter((s) => s === `TypeError: ${node} passed number to continueUntil, which takes a promise.`).length, 2);
    assert.ok(seen.some((s) => s.startsWith("after return: ")), "after the call returned");
    assert.deepEqual(counts(stats), { processed: 2, active: 0, errors: 0, cancelled: 0 }, "nothing was handed off");
  });
});

describe("continueUntil on a worker executor", () => {
  test("is a no-op: the call ends when its result reaches the main thread; a rejection does not escape", async () => {
    const text = `
      input_stream: "in"
      output_stream: "out"
      node { calculator: "WorkerHandoffCalculator" executor: "pool" input_stream: "in" output_stream: "out" }
      executor { name: "pool" type: "ThreadPoolExecutor" options { [mediapipe.ThreadPoolExecutorOptions.ext] { num_threads: 1 } } }
    `;
    const { stats, out, error, graph } = await runToEnd(text, [5, 6]);
    // The run made its own runtime: its pool ended when it finished.
    assert.equal(error, undefined);
    assert.deepEqual(out, [5, 6]);
    assert.deepEqual(counts(stats), { processed: 2, active: 0, errors: 0, cancelled: 0 }, "the never-settling and rejected handoffs are ignored");
  });
});

// ---- ImageGenCalculator's streams

const STREAM_BODY = { model: "tiny", prompt: "slow", size: "512x512", stream: true, stream_progress: true, num_inference_steps: 300 };

describe("a streamed generation keeps the ImageGen node active", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startImageServer("tiny");
  });
  after(() => srv?.close());

  const statsOf = async (): Promise<GraphStats> => (await srv.request("GET", "/graphserve/v1/graphs/tiny/stats")).body as GraphStats;
  /** The one-node graph's ImageGen node. */
  const imageGen = (s: GraphStats) => s.nodes[0];

  async function openStream(body: object, signal?: AbortSignal) {
    const res = await fetch(`${srv.url}/v3/images/generations`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const readUntil = async (what: string | null): Promise<string> => {
      while (what === null || !text.includes(what)) {
        const { value, done } = await reader.read();
        if (done) return text;
        text += decoder.decode(value, { stream: true });
      }
      return text;
    };
    return { reader, readUntil };
  }

  test("active 1 while the stream runs; active 0 after, with a mean covering the stream", async () => {
    const before = imageGen(await statsOf());
    assert.equal(before.active, 0);
    const started = performance.now();
    const stream = await openStream(STREAM_BODY);
    await stream.readUntil("image_generation.progress");
    const during = imageGen(await statsOf());
    assert.equal(during.active, 1, "generating behind the returned stream");
    assert.equal(during.processed, before.processed, "not finished yet");
    assert.match(await stream.readUntil(null), /image_generation\.completed/);
    const streamMs = performance.now() - started;
    await eventually(async () => imageGen(await statsOf()).active === 0, "the call to end");
    const afterwards = imageGen(await statsOf());
    assert.equal(afterwards.processed, before.processed + 1);
    assert.equal(afterwards.errors, before.errors);
    assert.equal(afterwards.cancelled, before.cancelled);
    assert.ok(afterwards.lastMs! > streamMs / 2, `the call's time (${afterwards.lastMs} ms) covers the stream (${Math.round(streamMs)} ms seen by the client)`);
  });

  test("a client leaving mid-stream brings active back to 0 promptly, as a cancelled call, not an error", async () => {
    const before = imageGen(await statsOf());
    const ac = new AbortController();
    const stream = await openStream({ ...STREAM_BODY, num_inference_steps: 900 }, ac.signal);
    await stream.readUntil("image_generation.progress");
    assert.equal(imageGen(await statsOf()).active, 1);
    ac.abort();
    const left = performance.now();
    await eventually(async () => imageGen(await statsOf()).active === 0, "the call to end after the client left", 5000);
    const afterwards = imageGen(await statsOf());
    assert.ok(performance.now() - left < 5000);
    assert.deepEqual([afterwards.processed, afterwards.errors, afterwards.cancelled], [before.processed + 1, before.errors, before.cancelled + 1]);
  });

  test("a unary request is unchanged: over when the call returns", async () => {
    const before = imageGen(await statsOf());
    const r = await srv.request("POST", "/v3/images/generations", { json: { model: "tiny", prompt: "a fox", size: "64x64", num_inference_steps: 2 } });
    assert.equal(r.status, 200);
    const afterwards = imageGen(await statsOf());
    assert.deepEqual([afterwards.processed, afterwards.active, afterwards.errors, afterwards.cancelled], [before.processed + 1, 0, before.errors, before.cancelled]);
  });

  test("unary requests cancelled while generating and while queued for the slot are cancelled calls, not errors; a refused one is an error", async () => {
    const before = imageGen(await statsOf());
    const ac = new AbortController();
    const post = (body: object, signal?: AbortSignal) =>
      fetch(`${srv.url}/v3/images/generations`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal });
    const slow = { model: "tiny", prompt: "slow", size: "512x512", num_inference_steps: 900 };
    const running = post(slow, ac.signal).catch((e: unknown) => e);
    await eventually(async () => imageGen(await statsOf()).active === 1, "the first request to take the slot");
    const queued = post(slow, ac.signal).catch((e: unknown) => e);
    // Waiting for the slot inside the node is part of the call: active.
    await eventually(async () => imageGen(await statsOf()).active === 2, "the second request to wait for the slot");
    ac.abort();
    for (const r of await Promise.all([running, queued])) assert.equal((r as Error).name, "AbortError");
    await eventually(async () => imageGen(await statsOf()).active === 0, "both calls to end", 5000);
    const cancelled = imageGen(await statsOf());
    assert.deepEqual([cancelled.processed, cancelled.errors, cancelled.cancelled], [before.processed + 2, before.errors, before.cancelled + 2]);
    // A real failure (the model's pipeline refuses the size) is still an error.
    const refused = await post({ model: "tiny", prompt: "odd", size: "100x100", num_inference_steps: 2 });
    assert.equal(refused.status, 400, await refused.text());
    const afterwards = imageGen(await statsOf());
    assert.deepEqual([afterwards.processed, afterwards.errors, afterwards.cancelled], [cancelled.processed + 1, cancelled.errors + 1, cancelled.cancelled]);
  });
});

describe("a stream the server never reads still ends the call", () => {
  test("a client gone before the first read; and nobody reading at all", async () => {
    const dir = await imageServable();
    const { readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const graph = buildGraph(readFileSync(join(dir, "graph.pbtxt"), "utf8"), registry, join(dir, "graph.pbtxt"));
    const silent = { debug() {}, info() {}, warn() {}, error() {} };
    const resources = await loadNodeResources(graph, { graphDir: dir, servable: "tiny", logger: silent, metrics: new Registry() });
    const stats = new NodeStatsCollector(graph.nodes.length);
    const runner = new GraphPool(graph, { sidePackets: resources.sidePackets, stats });
    const request = (client: AbortSignal, steps: number) =>
      new HttpRequest(
        {
          method: "POST",
          uri: "/v3/images/generations",
          path: "/v3/images/generations",
          headers: {},
          body: Buffer.alloc(0),
          json: { model: "tiny", prompt: "unread", size: "512x512", stream: true, num_inference_steps: steps },
          model: "tiny",
          servable: "tiny",
          stream: true,
          requestId: "r",
          receivedAt: performance.now(),
        },
        client,
      );
    try {
      const answer = async (client: AbortSignal, steps: number): Promise<HttpSseResponse> => {
        const v = (await runner.run({ input: request(client, steps) })).output[0].value;
        assert.ok(isSseResponse(v));
        return v;
      };
      // The client leaves before the server starts reading: the generation is cancelled, the call ends, no error.
      const client = new AbortController();
      await answer(client.signal, 900);
      assert.equal(stats.read(0).active, 1);
      client.abort();
      await eventually(() => stats.read(0).active === 0, "the abandoned stream's call to end", 5000);
      assert.deepEqual([stats.read(0).processed, stats.read(0).errors, stats.read(0).cancelled], [1, 0, 1]);
      // Nobody ever reads (and nobody leaves): the generation runs to its end, and so does the call.
      await answer(new AbortController().signal, 3);
      await eventually(() => stats.read(0).active === 0, "the unread stream's call to end", 10_000);
      assert.deepEqual([stats.read(0).processed, stats.read(0).errors, stats.read(0).cancelled], [2, 0, 1]);
    } finally {
      await runner.close();
      await resources.dispose();
    }
  });
});
