/**
 * GraphPool: a graph per request and persistent instances (graph queue),
 * many requests at once, failures and cancellation.
 */
import { before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { CalculatorRegistry } from "../src/engine/registry.js";
import { GraphRunError } from "../src/engine/run-errors.js";
import { GraphPool, type RunOutputs } from "../src/engine/graph-pool.js";
import { loadGraphFile } from "../src/graph/load.js";
import { validateGraph } from "../src/graph/validate.js";
import { events, flags, testRegistry } from "./helpers/calculators.js";
import { buildGraph } from "./helpers/graph.js";

let registry: CalculatorRegistry;
before(async () => {
  registry = await testRegistry();
});
beforeEach(() => {
  events.length = 0;
  flags.opens = 0;
});

const ASYNC_CHAIN = `
  input_stream: "in"
  output_stream: "out"
  node { calculator: "AsyncDoubleCalculator" input_stream: "in" output_stream: "mid" }
  node { calculator: "DoubleCalculator" input_stream: "mid" output_stream: "out" }
`;

describe("GraphPool", () => {
  for (const [mode, size] of [
    ["a graph per request", 0],
    ["4 persistent instances", 4],
  ] as const) {
    test(`200 concurrent requests, ${mode}: each gets its own result`, async (t) => {
      const runner = new GraphPool(buildGraph(ASYNC_CHAIN, registry), { graphQueueSize: size });
      t.after(() => runner.close());
      const inputs = Array.from({ length: 200 }, (_, i) => i * 7);
      const results = await Promise.all(inputs.map((v) => runner.run({ in: v })));
      results.forEach((r, i) => {
        assert.equal(r.out.length, 1);
        assert.equal(r.out[0].value, inputs[i] * 4);
      });
    });
  }

  test("persistent instances stay open across requests, each request at the instance's next timestamp", async (t) => {
    const g = buildGraph(
      `# OVMS_GRAPH_QUEUE_MAX_SIZE: 2
      input_stream: "in"
      output_stream: "out"
      node { calculator: "StatefulCalculator" input_stream: "in" output_stream: "out" }`,
      registry,
    );
    const runner = new GraphPool(g);
    t.after(() => runner.close());
    assert.equal(runner.queueSize, 2);
    const results = await Promise.all(Array.from({ length: 10 }, (_, v) => runner.run({ in: v })));
    assert.equal(flags.opens, 2, "two instances, each opened once");
    results.forEach((r, v) => assert.equal((r.out[0].value as { v: number }).v, v));
    // Each instance numbers its calls 1, 2, … and its timestamps 0, 1, …: call n ran at timestamp n-1.
    const calls = results.map((r) => (r.out[0].value as { calls: number }).calls);
    assert.equal(calls.filter((c) => c === 1).length, 2);
    results.forEach((r) => assert.equal(r.out[0].timestamp, (r.out[0].value as { calls: number }).calls - 1));
  });

  test("thousands of requests queued on one synchronous instance", async (t) => {
    const runner = new GraphPool(
      buildGraph(
        `input_stream: "in"
        output_stream: "out"
        node { calculator: "PassThroughCalculator" input_stream: "in" output_stream: "out" }`,
        registry,
      ),
      { graphQueueSize: 1 },
    );
    t.after(() => runner.close());
    const results = await Promise.all(Array.from({ length: 20_000 }, (_, i) => runner.run({ in: i })));
    results.forEach((r, i) => assert.deepEqual([r.out[0].value, r.out[0].timestamp], [i, i]));
  });

  test("the example graph graphs/flow-limited-echo runs on its persistent instance", async (t) => {
    const file = fileURLToPath(new URL("../../graphs/flow-limited-echo/graph.pbtxt", import.meta.url));
    const runner = new GraphPool(validateGraph(await loadGraphFile(file, registry.schema), registry));
    t.after(() => runner.close());
    assert.equal(runner.queueSize, 1);
    const results = await Promise.all(["a", "b", "c"].map((v) => runner.run({ in: v })));
    assert.deepEqual(
      results.map((r) => [r.out[0].value, r.out[0].timestamp, r.allowed[0].value]),
      [["a", 0, true], ["b", 1, true], ["c", 2, true]],
    );
  });

  test("persistent instances refuse per-request side packets, as OVMS does", async (t) => {
    const runner = new GraphPool(buildGraph(ASYNC_CHAIN, registry), { graphQueueSize: 1 });
    t.after(() => runner.close());
    await assert.rejects(runner.run({ in: 1 }, { sidePackets: { x: 1 } }), /Per-request side packets are not accepted/);
  });

  test("an instance whose run failed is replaced", async (t) => {
    const runner = new GraphPool(
      buildGraph(
        `input_stream: "in"
        output_stream: "out"
        node { name: "picky" calculator: "PickyCalculator" input_stream: "in" output_stream: "out" }`,
        registry,
      ),
      { graphQueueSize: 1 },
    );
    t.after(() => runner.close());
    assert.equal((await runner.run({ in: "a" })).out[0].value, "a");
    const [bad, good] = await Promise.allSettled([runner.run({ in: "bad" }), runner.run({ in: "b" })]);
    assert.equal(bad.status, "rejected");
    assert.ok(bad.reason instanceof GraphRunError);
    assert.equal(bad.reason.message, 'CalculatorGraph::Run() failed: \nCalculator::Process() for node "picky" failed: bad input');
    assert.equal(good.status, "fulfilled");
    assert.equal(good.value.out[0].value, "b");
    assert.equal(good.value.out[0].timestamp, 0, "a fresh instance starts at timestamp 0");
  });

  test("persistent instance: a request completed on idle never gets a later request's packets, nor they its late ones", async (t) => {
    // The gate lets even timestamps through and says nothing about odd ones,
    // so the join cannot settle an odd timestamp until the next even packet.
    const runner = new GraphPool(
      buildGraph(
        `input_stream: "in"
        output_stream: "out"
        node { calculator: "SilentGateCalculator" input_stream: "in" output_stream: "gated" }
        node { calculator: "JoinCalculator" input_stream: "A:in" input_stream: "B:gated" output_stream: "out" }`,
        registry,
      ),
      { graphQueueSize: 1 },
    );
    t.after(() => runner.close());
    const outs: RunOutputs[] = [];
    for (let i = 0; i < 4; i++) outs.push(await runner.run({ in: `req${i}` }));
    assert.deepEqual(
      outs.map((o) => o.out.map((p) => [p.timestamp, p.value])),
      [
        [[0, { ts: 0, a: "req0", b: "req0" }]],
        [], // the graph went idle unable to answer timestamp 1
        [[2, { ts: 2, a: "req2", b: "req2" }]], // not the late answer for timestamp 1
        [],
      ],
    );
  });

  test("persistent instance: after a node's STOP, queued requests go to a fresh instance", async (t) => {
    const runner = new GraphPool(
      buildGraph(
        `input_stream: "in"
        output_stream: "out"
        node { calculator: "StopAtTwoCalculator" input_stream: "in" output_stream: "out" }`,
        registry,
      ),
      { graphQueueSize: 1 },
    );
    t.after(() => runner.close());
    const results = await Promise.allSettled(Array.from({ length: 7 }, (_, i) => runner.run({ in: i })));
    assert.deepEqual(
      results.map((r) => (r.status === "fulfilled" ? r.value.out.map((p) => [p.timestamp, p.value]) : String(r.reason))),
      [[[0, 0]], [[1, 1]], [[2, 2]], [[0, 3]], [[1, 4]], [[2, 5]], [[0, 6]]],
    );
  });

  for (const size of [0, 1]) {
    test(`an output stream named __proto__ is an ordinary key of the result (graph queue ${size})`, async (t) => {
      const runner = new GraphPool(
        buildGraph(
          `input_stream: "in"
          output_stream: "__proto__"
          node { calculator: "PassThroughCalculator" input_stream: "in" output_stream: "__proto__" }`,
          registry,
        ),
        { graphQueueSize: size },
      );
      t.after(() => runner.close());
      const out = await runner.run({ in: 42 });
      assert.deepEqual(Object.keys(out), ["__proto__"]);
      assert.ok(Object.hasOwn(out, "__proto__"));
      assert.deepEqual(out["__proto__"].map((p) => p.value), [42]);
      assert.equal(JSON.stringify(out), '{"__proto__":[{"value":42,"timestamp":0}]}');
    });
  }

  test("inputs must match the graph's input streams", async () => {
    const runner = new GraphPool(buildGraph(ASYNC_CHAIN, registry));
    await assert.rejects(runner.run({}), { message: 'Input stream "in" was not provided.' });
    await assert.rejects(runner.run({ in: 1, extra: 2 }), { message: 'The graph has no input stream "extra".' });
  });

  for (const size of [0, 1]) {
    test(`a request's signal cancels it (graph queue ${size})`, async () => {
      const runner = new GraphPool(
        buildGraph(
          `input_stream: "in"
          output_stream: "out"
          node { name: "wait" calculator: "AbortWaitCalculator" input_stream: "in" output_stream: "out" }`,
          registry,
        ),
        { graphQueueSize: size },
      );
      const first = new AbortController();
      const second = new AbortController();
      const p1 = runner.run({ in: 1 }, { signal: first.signal });
      const p2 = runner.run({ in: 2 }, { signal: second.signal }); // with one instance, this one waits
      await new Promise((r) => setImmediate(r));
      second.abort(new Error("second gone"));
      first.abort(new Error("first gone"));
      await assert.rejects(p1, { message: "first gone" });
      await assert.rejects(p2, { message: "second gone" });
      assert.ok(events.includes("aborted(first gone):wait"));
      await runner.close();
      assert.ok(events.filter((e) => e === "close:wait").length >= 1);
    });
  }

  test("close() waits for accepted requests, then refuses new ones", async () => {
    const runner = new GraphPool(buildGraph(ASYNC_CHAIN, registry), { graphQueueSize: 1 });
    const pending = [runner.run({ in: 1 }), runner.run({ in: 2 })];
    const closed = runner.close();
    await assert.rejects(runner.run({ in: 3 }), /closed/);
    assert.deepEqual((await Promise.all(pending)).map((r) => r.out[0].value), [4, 8]);
    await closed;
  });
});
