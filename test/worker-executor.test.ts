/**
 * Nodes on a ThreadPoolExecutor (piscina workers): process runs on another
 * thread, buffers move only when nobody else can hold them, side packets
 * and options reach the worker, errors and cancellation come back.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { threadId } from "node:worker_threads";
import { CalculatorRegistry } from "../src/engine/registry.js";
import { GraphRuntime } from "../src/engine/graph-runtime.js";
import { GraphRun } from "../src/engine/graph-run.js";
import { GraphRunError } from "../src/engine/run-errors.js";
import { GraphPool } from "../src/engine/graph-pool.js";
import type { ValidatedGraph } from "../src/graph/validated.js";
import { FIXTURE_URL, MakeBytesCalculator, WORKER_CALCULATORS } from "./fixtures/calculators/worker-calcs.js";
import { buildGraph } from "./helpers/graph.js";

let registry: CalculatorRegistry;
before(async () => {
  registry = await CalculatorRegistry.withBuiltins();
  for (const cls of WORKER_CALCULATORS) registry.register(cls, FIXTURE_URL);
});
// Pools live as long as their runtime: a GraphRun or GraphPool given a bare graph owns one and ends it.
function graph(text: string): ValidatedGraph {
  return buildGraph(text, registry);
}

const POOL = `executor { name: "pool" type: "ThreadPoolExecutor" options { [mediapipe.ThreadPoolExecutorOptions.ext] { num_threads: 2 } } }`;

describe("worker executor", () => {
  test("process runs on a worker thread of the declared pool", async (t) => {
    const runner = new GraphPool(
      graph(`${POOL}
        input_stream: "in"
        output_stream: "out"
        node { calculator: "ThreadIdCalculator" executor: "pool" input_stream: "in" output_stream: "out" }`),
    );
    t.after(() => runner.close());
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => runner.run({ in: i })));
    results.forEach((r, i) => {
      const v = r.out[0].value as { threadId: number; value: number };
      assert.equal(v.value, i);
      assert.notEqual(v.threadId, threadId, "not the main thread");
    });
  });

  test('a calculator preferring "worker" runs on the engine pool without naming an executor', async (t) => {
    const runner = new GraphPool(
      graph(`input_stream: "in"
        output_stream: "out"
        node { calculator: "ThreadIdCalculator" input_stream: "in" output_stream: "out" }`),
    );
    t.after(() => runner.close());
    const r = await runner.run({ in: "x" });
    assert.notEqual((r.out[0].value as { threadId: number }).threadId, threadId);
  });

  test("a buffer a node produced and only the worker node reads is transferred (detached here); outputs come back", async (t) => {
    MakeBytesCalculator.made = [];
    const runner = new GraphPool(
      graph(`${POOL}
        input_stream: "n"
        output_stream: "sum"
        output_stream: "pixels"
        node { calculator: "MakeBytesCalculator" input_stream: "n" output_stream: "bytes" }
        node { calculator: "BufferSumCalculator" executor: "pool" input_stream: "bytes" output_stream: "sum" output_stream: "PIXELS:pixels" }`),
    );
    t.after(() => runner.close());
    const r = await runner.run({ n: { length: 4096, fill: 1 } });
    assert.equal(MakeBytesCalculator.made.length, 1);
    assert.equal(MakeBytesCalculator.made[0].byteLength, 0, "moved to the worker, not copied");
    const sum = r.sum[0].value as { sum: number; threadId: number; length: number };
    assert.deepEqual([sum.sum, sum.length], [4096, 4096]);
    assert.notEqual(sum.threadId, threadId);
    const pixels = r.pixels[0].value as { data: Float32Array; width: number };
    assert.ok(pixels.data instanceof Float32Array);
    assert.deepEqual([...pixels.data], [4096, 1, 2]);
  });

  test("a buffer passed in on a graph input stream is never moved: the caller still holds it", async (t) => {
    const runner = new GraphPool(
      graph(`${POOL}
        input_stream: "bytes"
        output_stream: "sum"
        node { calculator: "BufferSumCalculator" executor: "pool" input_stream: "bytes" output_stream: "sum" }`),
    );
    t.after(() => runner.close());
    const bytes = new Uint8Array(4096).fill(1);
    const r = await runner.run({ bytes });
    assert.equal(bytes.byteLength, 4096);
    assert.equal((r.sum[0].value as { sum: number }).sum, 4096);
  });

  test("a value forwarded to a graph output and on to a worker node stays intact in both places", async (t) => {
    const runner = new GraphPool(
      graph(`${POOL}
        input_stream: "n"
        output_stream: "copy"
        output_stream: "sum"
        node { calculator: "MakeBytesCalculator" input_stream: "n" output_stream: "made" }
        node { calculator: "PassThroughCalculator" input_stream: "made" output_stream: "copy" }
        node { calculator: "PassThroughCalculator" input_stream: "copy" output_stream: "mid" }
        node { calculator: "BufferSumCalculator" executor: "pool" input_stream: "mid" output_stream: "sum" }`),
      { graphQueueSize: 0 },
    );
    t.after(() => runner.close());
    const r = await runner.run({ n: { length: 3, fill: 1 } });
    assert.equal((r.sum[0].value as { length: number }).length, 3);
    assert.equal((r.copy[0].value as Uint8Array).byteLength, 3, "the caller's copy was not detached");
  });

  test("the same value emitted on two streams by one call is copied, not moved", async (t) => {
    const runner = new GraphPool(
      graph(`${POOL}
        input_stream: "n"
        output_stream: "sum"
        output_stream: "copy"
        node { calculator: "MakeBytesCalculator" input_stream: "n" output_stream: "made" }
        node { calculator: "TeeCalculator" input_stream: "made" output_stream: "A:a" output_stream: "B:b" }
        node { calculator: "PassThroughCalculator" input_stream: "b" output_stream: "copy" }
        node { calculator: "BufferSumCalculator" executor: "pool" input_stream: "a" output_stream: "sum" }`),
    );
    t.after(() => runner.close());
    const r = await runner.run({ n: { length: 16, fill: 3 } });
    assert.equal((r.sum[0].value as { sum: number }).sum, 48);
    assert.equal((r.copy[0].value as Uint8Array).byteLength, 16);
  });

  test("an input other nodes also read is copied and stays intact", async (t) => {
    const runner = new GraphPool(
      graph(`${POOL}
        input_stream: "bytes"
        output_stream: "sum"
        output_stream: "copy"
        node { calculator: "BufferSumCalculator" executor: "pool" input_stream: "bytes" output_stream: "sum" }
        node { calculator: "PassThroughCalculator" input_stream: "bytes" output_stream: "copy" }`),
    );
    t.after(() => runner.close());
    const bytes = new Uint8Array(1000).fill(2);
    const r = await runner.run({ bytes });
    assert.equal(bytes.byteLength, 1000);
    assert.equal((r.sum[0].value as { sum: number }).sum, 2000);
    assert.equal(r.copy[0].value, bytes);
  });

  test("side packets reach the worker instance; instances are opened once per thread and closed when the pool ends", async () => {
    const g = graph(`${POOL}
      input_stream: "in"
      output_stream: "out"
      node { calculator: "WorkerScaleCalculator" executor: "pool" input_stream: "in" input_side_packet: "MODEL:model" output_stream: "out" }`);
    const counters = new Int32Array(new SharedArrayBuffer(8));
    const runner = new GraphPool(g, { sidePackets: { model: { counters, factor: 3 } } });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => runner.run({ in: i })));
    assert.deepEqual(results.map((r) => r.out[0].value), Array.from({ length: 12 }, (_, i) => i * 3));
    const opens = Atomics.load(counters, 0);
    assert.ok(opens >= 1 && opens <= 2, `one instance per thread that served the node, got ${opens}`);
    assert.equal(Atomics.load(counters, 1), 0, "instances outlive runs");
    await runner.close(); // ends the pools
    assert.equal(Atomics.load(counters, 1), opens, "every instance closed with the pool");
  });

  test("options are rebuilt on the worker from the schema, presence included", async (t) => {
    const runner = new GraphPool(
      graph(`input_stream: "in"
        output_stream: "out"
        node {
          name: "opts" calculator: "WorkerOptionsCalculator" input_stream: "in" output_stream: "out"
          node_options { [type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions] { max_in_flight: 7 } }
        }`),
    );
    t.after(() => runner.close());
    const r = await runner.run({ in: 0 });
    assert.deepEqual(r.out[0].value, { maxInFlight: 7, maxInQueueSet: false, maxInQueue: 0, timeout: 1_000_000, node: "opts" });
  });

  test("a side packet that cannot cross threads fails the run naming it", async () => {
    const run = new GraphRun(
      graph(`${POOL}
        input_stream: "in"
        node { name: "scale" calculator: "WorkerScaleCalculator" executor: "pool" input_stream: "in" input_side_packet: "MODEL:model" output_stream: "out" }`),
    );
    run.start({ model: { factor: 2, counters: new Int32Array(2), callback: () => 1 } });
    run.addPacket("in", 1, 0);
    const e = await run.waitUntilDone().then(
      () => assert.fail("expected a failure"),
      (err: unknown) => err,
    );
    assert.ok(e instanceof GraphRunError);
    assert.match(e.message, /^CalculatorGraph::Run\(\) failed: \nCalculator::Process\(\) for node "scale" failed: Side packet "model" cannot be sent to a worker thread/);
  });

  test("outputs from open() on a worker are refused with an error naming the node", async () => {
    const g = graph(`${POOL}
      input_stream: "in"
      output_stream: "out"
      node { name: "opener" calculator: "WorkerOpenEmitsCalculator" executor: "pool" input_stream: "in" output_stream: "out" output_side_packet: "INFO:info" }`);
    for (let i = 0; i < 2; i++) {
      const run = new GraphRun(g);
      run.start();
      run.addPacket("in", i, 0);
      run.closeAllInputStreams();
      const e = await run.waitUntilDone().then(
        () => assert.fail("expected a failure"),
        (err: unknown) => err,
      );
      assert.ok(e instanceof GraphRunError);
      assert.match(
        e.message,
        /^CalculatorGraph::Run\(\) failed: \nCalculator::Open\(\) for node "opener" failed: Node "opener" \(WorkerOpenEmitsCalculator\) emitted output side packets from open\(\), which a worker executor does not support/,
      );
    }
  });

  test("the plan of a graph does not depend on which registry its first run was given", async (t) => {
    const g = graph(`${POOL}
      input_stream: "in"
      output_stream: "out"
      node { calculator: "ThreadIdCalculator" executor: "pool" input_stream: "in" output_stream: "out" }`);
    assert.equal(g.nodes[0].moduleUrl, FIXTURE_URL);
    new GraphRun(g); // e.g. an inspection path that has no registry at hand
    const runner = new GraphPool(g);
    t.after(() => runner.close());
    const r = await runner.run({ in: 5 });
    assert.equal((r.out[0].value as { value: number }).value, 5);
  });

  test("an error thrown on the worker fails the run with MediaPipe's message", async () => {
    const run = new GraphRun(
      graph(`${POOL}
        input_stream: "in"
        node { name: "w" calculator: "WorkerFailCalculator" executor: "pool" input_stream: "in" output_stream: "out" }`),
    );
    run.start();
    run.addPacket("in", 1, 7);
    const e = await run.waitUntilDone().then(
      () => assert.fail("expected a failure"),
      (err: unknown) => err,
    );
    assert.ok(e instanceof GraphRunError);
    assert.match(e.message, /^CalculatorGraph::Run\(\) failed: \nCalculator::Process\(\) for node "w" failed: failed on thread \d+ at 7$/);
    const cause = e.errors[0].cause as Error & { status?: number; param?: string };
    assert.ok(cause instanceof Error);
    assert.equal(cause.name, "HttpError", "the error's name crosses the thread boundary");
    assert.equal(cause.status, 422, "and so do its own fields");
    assert.equal(cause.param, "prompt");
    assert.match(cause.stack ?? "", /worker-calcs/, "with the worker's stack");
  });

  test("cancellation is cooperative: the worker's signal sees it, the thread stays usable", async (t) => {
    const g = graph(`executor { name: "one" type: "ThreadPoolExecutor" options { [mediapipe.ThreadPoolExecutorOptions.ext] { num_threads: 1 } } }
      input_stream: "in"
      output_stream: "out"
      node { calculator: "BusyUntilCancelledCalculator" executor: "one" input_stream: "in" output_stream: "out" }`);
    const runner = new GraphPool(g);
    t.after(() => runner.close());
    const ac = new AbortController();
    const pending = runner.run({ in: "spin" }, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error("stop spinning")), 50);
    await assert.rejects(pending, { message: "stop spinning" });
    // The pool's only thread served the cancelled call and serves the next one: it was not terminated.
    const next = await runner.run({ in: "echo" });
    assert.notEqual((next.out[0].value as { threadId: number }).threadId, threadId);
  });
});

test("--rest_workers (the runtime's executor defaults) sizes pools whose executor sets no thread count", async (t) => {
  const g = graph(`
    executor { name: "sized" type: "ThreadPoolExecutor" }
    executor { name: "explicit" type: "ThreadPoolExecutor" options { [mediapipe.ThreadPoolExecutorOptions.ext] { num_threads: 1 } } }
    input_stream: "in"
    node { calculator: "ThreadIdCalculator" executor: "sized" input_stream: "in" output_stream: "a" }
    node { calculator: "ThreadIdCalculator" executor: "explicit" input_stream: "in" output_stream: "b" }`);
  const runtime = new GraphRuntime(g, { executors: { threads: 3 } });
  t.after(() => runtime.dispose());
  assert.equal(runtime.executor("sized").threads, 3);
  assert.equal(runtime.executor("explicit").threads, 1, "a declared num_threads wins");
  assert.throws(() => new GraphRuntime(g, { executors: { threads: 0 } }), /positive integer/);
});
