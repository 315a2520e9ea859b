/**
 * NodeStatsCollector fed by the engine: every way a `process` call can run
 * (synchronous, async, several in flight, synchronous results queued behind
 * a running call, failures, cancellations) is counted exactly once, and
 * nothing stays active once a run is done. A call that fails because its run
 * was told to stop is cancelled, not an error.
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { Calculator, type CalculatorContext, type CalculatorContract } from "../src/index.js";
import type { CalculatorRegistry } from "../src/engine/registry.js";
import { GraphRun } from "../src/engine/graph-run.js";
import { GraphPool } from "../src/engine/graph-pool.js";
import { NodeStatsCollector } from "../src/engine/node-stats.js";
import { testRegistry } from "./helpers/calculators.js";
import { buildGraph } from "./helpers/graph.js";

const ONE_IN_ONE_OUT: CalculatorContract = { inputs: { "": {} }, outputs: { "": {} } };

/** Works until its run's signal aborts, then rejects with the reason, as a calculator honouring `ctx.signal` does. */
class UntilAbortCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(ctx: CalculatorContext): Promise<void> {
    return new Promise<void>((_resolve, reject) => {
      const signal = ctx.signal;
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  }
}

let registry: CalculatorRegistry;
before(async () => {
  registry = await testRegistry();
  registry.register(UntilAbortCalculator, import.meta.url);
});

const read = (stats: NodeStatsCollector, id = 0) => {
  const n = stats.read(id);
  return { processed: n.processed, active: n.active, errors: n.errors, cancelled: n.cancelled };
};

const chain = (calculator: string, extra = "") => `
  input_stream: "in"
  output_stream: "out"
  node { calculator: "${calculator}" input_stream: "in" output_stream: "out" ${extra} }
`;

/** Feeds `count` packets at timestamps 0… into a fresh run of `text`; returns the stats and how many calls were active at most right after feeding. */
async function feed(text: string, count: number): Promise<{ stats: NodeStatsCollector; activeAfterFeeding: number; error: unknown }> {
  const graph = buildGraph(text, registry);
  const stats = new NodeStatsCollector(graph.nodes.length);
  const run = new GraphRun(graph, { stats });
  run.start();
  let error: unknown;
  try {
    for (let ts = 0; ts < count; ts++) run.addPacket("in", ts, ts);
  } catch (e) {
    error = e; // a failed run refuses further input
  }
  const activeAfterFeeding = stats.read(0).active;
  run.closeAllInputStreams();
  await run.waitUntilDone().catch((e: unknown) => (error ??= e));
  return { stats, activeAfterFeeding, error };
}

test("synchronous calls: counted and timed; none active after", async () => {
  const { stats, activeAfterFeeding } = await feed(chain("DoubleCalculator"), 50);
  const n = stats.read(0);
  assert.equal(activeAfterFeeding, 0, "a synchronous call is over when it returns");
  assert.equal(n.processed, 50);
  assert.equal(n.errors, 0);
  assert.ok(n.meanMs !== null && n.meanMs >= 0 && n.lastMs !== null);
});

test("async calls, three in flight: active while running, each counted once", async () => {
  const { stats, activeAfterFeeding } = await feed(chain("ReverseDelayCalculator", "max_in_flight: 3"), 8);
  assert.equal(activeAfterFeeding, 3);
  const n = stats.read(0);
  assert.equal(n.processed, 8);
  assert.equal(n.active, 0);
  assert.ok(n.meanMs! > 0);
});

test("synchronous results queued behind a running call are not counted twice", async () => {
  const { stats } = await feed(chain("MixedSyncAsyncCalculator", "max_in_flight: 2"), 10);
  assert.deepEqual({ ...stats.read(0), meanMs: null, lastMs: null }, { processed: 10, active: 0, errors: 0, cancelled: 0, meanMs: null, lastMs: null });
});

test("a throwing call and a rejecting one are errors (and finished calls), not cancellations", async () => {
  for (const calc of ["FailProcessCalculator", "AsyncFailProcessCalculator"]) {
    const { stats, error } = await feed(chain(calc), 1);
    assert.ok(error instanceof Error, calc);
    assert.deepEqual(read(stats), { processed: 1, active: 0, errors: 1, cancelled: 0 }, calc);
  }
});

test("a request cancelled while its call runs: the call rejects with the abort and is cancelled, not an error", async () => {
  for (const size of [0, 2]) {
    const graph = buildGraph(chain("UntilAbortCalculator"), registry);
    const stats = new NodeStatsCollector(graph.nodes.length);
    const runner = new GraphPool(graph, { graphQueueSize: size, stats });
    const client = new AbortController();
    const answer = runner.run({ in: 1 }, { signal: client.signal });
    assert.deepEqual(read(stats), { processed: 0, active: 1, errors: 0, cancelled: 0 }, `size ${size}: running`);
    client.abort(new DOMException("The client closed the connection.", "AbortError"));
    await assert.rejects(answer, { name: "AbortError" });
    assert.deepEqual(read(stats), { processed: 1, active: 0, errors: 0, cancelled: 1 }, `size ${size}`);
    await runner.close();
  }
});

test("a call stopped because another node failed is cancelled; the failing node's call is the error", async () => {
  const text = `
    input_stream: "in"
    output_stream: "a"
    output_stream: "b"
    node { calculator: "UntilAbortCalculator" input_stream: "in" output_stream: "a" }
    node { calculator: "AsyncFailProcessCalculator" input_stream: "in" output_stream: "b" }
  `;
  const graph = buildGraph(text, registry);
  const stats = new NodeStatsCollector(graph.nodes.length);
  const run = new GraphRun(graph, { stats });
  run.start();
  run.addPacket("in", 1, 0);
  run.closeAllInputStreams();
  await assert.rejects(run.waitUntilDone(), /async boom at 0/);
  const byName = (name: string) => read(stats, graph.nodes.findIndex((n) => n.calculatorName === name));
  assert.deepEqual(byName("AsyncFailProcessCalculator"), { processed: 1, active: 0, errors: 1, cancelled: 0 });
  assert.deepEqual(byName("UntilAbortCalculator"), { processed: 1, active: 0, errors: 0, cancelled: 1 });
});

test("a call that returns normally after its run was cancelled is finished, not cancelled: only a failure is a cancellation", async () => {
  const graph = buildGraph(chain("AbortWaitCalculator"), registry);
  const stats = new NodeStatsCollector(graph.nodes.length);
  const run = new GraphRun(graph, { stats });
  run.start();
  run.addPacket("in", 1, 0);
  run.cancel();
  await assert.rejects(run.waitUntilDone(), { name: "AbortError" });
  assert.deepEqual(read(stats), { processed: 1, active: 0, errors: 0, cancelled: 0 });
});

test("a GraphPool hands its collector to every run: per-request runs and persistent instances sum up", async () => {
  for (const size of [0, 3]) {
    const graph = buildGraph(chain("AsyncDoubleCalculator"), registry);
    const stats = new NodeStatsCollector(graph.nodes.length);
    const runner = new GraphPool(graph, { graphQueueSize: size, stats });
    const pending = Array.from({ length: 12 }, (_, i) => runner.run({ in: i }));
    assert.ok(stats.read(0).active >= 1, `size ${size}: calls running`);
    await Promise.all(pending);
    assert.deepEqual([stats.read(0).processed, stats.read(0).active], [12, 0], `size ${size}`);
    // The runner does not count requests: its caller (a servable's leases) does.
    assert.deepEqual(stats.runs, { active: 0, finished: 0 });
    stats.runStarted();
    stats.runFinished();
    assert.deepEqual(stats.runs, { active: 0, finished: 1 });
    await runner.close();
  }
});
