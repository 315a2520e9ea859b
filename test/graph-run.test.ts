/**
 * The graph run loop: data flow, timestamps and bounds, side packets, the
 * calculator lifecycle and errors. Graphs come from pbtxt text.
 */
import { before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { CalculatorRegistry } from "../src/engine/registry.js";
import { GraphRun } from "../src/engine/graph-run.js";
import { GraphRunError } from "../src/engine/run-errors.js";
import { GraphPool } from "../src/engine/graph-pool.js";
import type { Packet } from "../src/index.js";
import { PacketQueue } from "../src/engine/packet-queue.js";
import { createInputHandler } from "../src/engine/stream-handlers/index.js";
import { PortIndex } from "../src/engine/port-index.js";
import { events, held, ReverseDelayCalculator, SyncProbeCalculator, testRegistry } from "./helpers/calculators.js";
import { buildGraph } from "./helpers/graph.js";

let registry: CalculatorRegistry;
before(async () => {
  registry = await testRegistry();
});
beforeEach(() => {
  events.length = 0;
});

const graph = (text: string) => buildGraph(text, registry);

/** Starts a run observing `outputs`; returns the run and the observed packets by stream. */
async function started(text: string, outputs: string[], sidePackets: Record<string, unknown> = {}) {
  const run = new GraphRun(graph(text));
  const got: Record<string, Packet[]> = {};
  for (const o of outputs) {
    got[o] = [];
    run.observe(o, (p) => got[o].push(p));
  }
  run.start(sidePackets);
  return { run, got };
}

const values = (ps: Packet[]) => ps.map((p) => p.value);
const stamps = (ps: Packet[]) => ps.map((p) => p.timestamp);

/** Asserts `promise` rejects with a GraphRunError carrying exactly `message`. */
async function failsWith(promise: Promise<unknown>, message: string): Promise<GraphRunError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail("expected the run to fail"),
    (e: unknown) => (caught = e),
  );
  assert.ok(caught instanceof GraphRunError, `not a GraphRunError: ${String(caught)}`);
  assert.equal(caught.message, message);
  return caught;
}

describe("data flow", () => {
  test("fan-out: one input stream read by two nodes", async () => {
    const runner = new GraphPool(
      graph(`
        input_stream: "in"
        output_stream: "same"
        output_stream: "twice"
        node { calculator: "PassThroughCalculator" input_stream: "in" output_stream: "same" }
        node { calculator: "DoubleCalculator" input_stream: "in" output_stream: "twice" }
      `),
    );
    const out = await runner.run({ in: 21 });
    assert.deepEqual(values(out.same), [21]);
    assert.deepEqual(values(out.twice), [42]);
    assert.deepEqual(stamps(out.twice), [0]);
  });

  test("a chain keeps timestamps and order", async () => {
    const { run, got } = await started(
      `
      input_stream: "in"
      output_stream: "out"
      node { calculator: "PassThroughCalculator" input_stream: "in" output_stream: "a" }
      node { calculator: "DoubleCalculator" input_stream: "a" output_stream: "b" }
      node { calculator: "PassThroughCalculator" input_stream: "b" output_stream: "out" }
    `,
      ["out"],
    );
    for (const [v, ts] of [[1, 0], [2, 7], [3, 8], [4, 100]]) run.addPacket("in", v, ts);
    run.closeAllInputStreams();
    await run.waitUntilDone();
    assert.deepEqual(values(got.out), [2, 4, 6, 8]);
    assert.deepEqual(stamps(got.out), [0, 7, 8, 100]);
  });

  test("PassThroughCalculator mirrors several tagged and untagged streams", async () => {
    const runner = new GraphPool(
      graph(`
        input_stream: "x"
        input_stream: "y"
        input_stream: "z"
        output_stream: "x2"
        output_stream: "y2"
        output_stream: "z2"
        node {
          calculator: "PassThroughCalculator"
          input_stream: "x" input_stream: "IMAGE:y" input_stream: "IMAGE:1:z"
          output_stream: "x2" output_stream: "IMAGE:y2" output_stream: "IMAGE:1:z2"
        }
      `),
    );
    const out = await runner.run({ x: "X", y: "Y", z: "Z" });
    assert.deepEqual([values(out.x2), values(out.y2), values(out.z2)], [["X"], ["Y"], ["Z"]]);
  });

  for (const [gate, how] of [
    ["EvenGateCalculator", "the gate's timestamp offset"],
    ["BoundGateCalculator", "an explicit setNextTimestampBound"],
  ] as const) {
    test(`fan-in: a branch that sends nothing at a timestamp is settled by ${how}`, async () => {
      const { run, got } = await started(
        `
        input_stream: "in"
        output_stream: "joined"
        node { calculator: "${gate}" input_stream: "in" output_stream: "evens" }
        node { calculator: "JoinCalculator" input_stream: "A:in" input_stream: "B:evens" output_stream: "joined" }
      `,
        ["joined"],
      );
      for (let ts = 0; ts < 4; ts++) {
        run.addPacket("in", ts * 10, ts);
        // Settled at once: the join does not wait for the next packet.
        assert.equal(got.joined.length, ts + 1, `joined after ts ${ts}`);
      }
      run.closeAllInputStreams();
      await run.waitUntilDone();
      assert.deepEqual(values(got.joined), [
        { ts: 0, a: 0, b: 0 },
        { ts: 1, a: 10, b: null },
        { ts: 2, a: 20, b: 20 },
        { ts: 3, a: 30, b: null },
      ]);
    });
  }

  test("fan-in without bounds: the join waits until the branch's next packet settles the timestamp", async () => {
    const { run, got } = await started(
      `
      input_stream: "in"
      output_stream: "joined"
      node { calculator: "SilentGateCalculator" input_stream: "in" output_stream: "evens" }
      node { calculator: "JoinCalculator" input_stream: "A:in" input_stream: "B:evens" output_stream: "joined" }
    `,
      ["joined"],
    );
    run.addPacket("in", 0, 0);
    run.addPacket("in", 10, 1);
    assert.equal(got.joined.length, 1, "ts 1 is not settled on the gated branch");
    run.addPacket("in", 20, 2);
    assert.equal(got.joined.length, 3);
    run.closeAllInputStreams();
    await run.waitUntilDone();
    assert.deepEqual(values(got.joined)[1], { ts: 1, a: 10, b: null });
  });

  test("ImmediateInputStreamHandler runs on each input as it arrives", async () => {
    const { run, got } = await started(
      `
      input_stream: "a"
      input_stream: "b"
      output_stream: "joined"
      node {
        calculator: "JoinCalculator" input_stream: "A:a" input_stream: "B:b" output_stream: "joined"
        input_stream_handler { input_stream_handler: "ImmediateInputStreamHandler" }
      }
    `,
      ["joined"],
    );
    run.addPacket("a", "a0", 0);
    assert.deepEqual(values(got.joined), [{ ts: 0, a: "a0", b: null }]);
    // B runs ahead: processed at once, without waiting for A to reach 5.
    run.addPacket("b", "b5", 5);
    assert.deepEqual(values(got.joined)[1], { ts: 5, a: null, b: "b5" });
    run.addPacket("a", "a7", 7);
    run.closeAllInputStreams();
    await run.waitUntilDone();
    assert.deepEqual(values(got.joined)[2], { ts: 7, a: "a7", b: null });
  });

  test("SyncSetInputStreamHandler: each sync set is aligned on its own", async () => {
    SyncProbeCalculator.calls = [];
    const { run } = await started(
      `
      input_stream: "a"
      input_stream: "b"
      input_stream: "c"
      node {
        calculator: "SyncProbeCalculator" input_stream: "A:a" input_stream: "B:b" input_stream: "C:c"
        input_stream_handler {
          input_stream_handler: "SyncSetInputStreamHandler"
          options { [mediapipe.SyncSetInputStreamHandlerOptions.ext] { sync_set { tag_index: "A" tag_index: "B" } } }
        }
      }
    `,
      [],
    );
    run.addPacket("a", 1, 0);
    run.addPacket("c", 1, 0); // C is a set of its own (the inputs in no listed set): ready at once
    assert.deepEqual(SyncProbeCalculator.calls, ["C@0"]);
    run.addPacket("b", 1, 0); // now {A, B} is settled at 0
    assert.deepEqual(SyncProbeCalculator.calls, ["C@0", "A,B@0"]);
    run.closeAllInputStreams();
    await run.waitUntilDone();
  });

  describe("FixedSizeInputStreamHandler", () => {
    const fixed = (options: string) => `
      input_stream: "in"
      output_stream: "out"
      node {
        calculator: "HeldCalculator" input_stream: "in" output_stream: "out"
        input_stream_handler {
          input_stream_handler: "FixedSizeInputStreamHandler"
          ${options}
        }
      }
    `;
    /** Feeds 0..last while the first call is held, then lets everything through; returns what came out. */
    async function feedWhileBusy(text: string, last: number): Promise<{ out: number[]; queued: number[] }> {
      held.length = 0;
      const { run, got } = await started(text, ["out"]);
      for (let ts = 0; ts <= last; ts++) run.addPacket("in", ts, ts);
      const queued = run.nodes[0].queues[0].size;
      run.closeAllInputStreams();
      while (held.length > 0) {
        held.shift()!.release();
        await new Promise((r) => setImmediate(r));
      }
      await run.waitUntilDone();
      return { out: stamps(got.out), queued: [queued] };
    }

    test("defaults (trigger 2, target 1): a busy node gets only the newest packet next", async () => {
      const { out, queued } = await feedWhileBusy(fixed(""), 5);
      assert.deepEqual(out, [0, 5]);
      assert.deepEqual(queued, [1], "surplus is dropped as packets arrive, not when the node is next ready");
    });

    test("trigger_queue_size 4, target_queue_size 2: up to 3 wait, then the 2 newest are kept", async () => {
      const opts = "options { [mediapipe.FixedSizeInputStreamHandlerOptions.ext] { trigger_queue_size: 4 target_queue_size: 2 } }";
      assert.deepEqual(await feedWhileBusy(fixed(opts), 3), { out: [0, 1, 2, 3], queued: [3] });
      assert.deepEqual(await feedWhileBusy(fixed(opts), 4), { out: [0, 3, 4], queued: [2] });
    });

    test("fixed_min_size: cuts only once every input reached the trigger; otherwise any queue over its size cuts all", () => {
      const queues = (a: number[], b: number[]) =>
        [a, b].map((ts) => {
          const q = new PacketQueue(100);
          for (const t of ts) q.push({ value: t, timestamp: t });
          return q;
        });
      const contents = (qs: PacketQueue[]) => qs.map((q) => Array.from({ length: q.size }, (_, i) => q.at(i).timestamp));
      const bounds = Float64Array.from([3, 2]);
      const streams = Int32Array.from([0, 1]);
      const spec = (fixedMinSize: boolean) => ({ kind: "fixed_size", triggerQueueSize: 2, targetQueueSize: 1, fixedMinSize });

      const minSize = createInputHandler(spec(true), 2).forRun!();
      const qs = queues([0, 1, 2], [1]);
      minSize.packetAdded!(qs, bounds, streams);
      assert.deepEqual(contents(qs), [[0, 1, 2], [1]], "B is below the trigger: nothing is cut");
      qs[1].push({ value: 2, timestamp: 2 });
      bounds[1] = 3;
      minSize.packetAdded!(qs, bounds, streams);
      assert.deepEqual(contents(qs), [[2], [2]], "both reached it: each keeps its newest");
      assert.equal(minSize.readiness(qs, bounds, streams), 2);

      const any = createInputHandler(spec(false), 2).forRun!();
      const qa = queues([0, 1, 2], [1]);
      bounds[1] = 2;
      any.packetAdded!(qa, bounds, streams);
      assert.deepEqual(contents(qa), [[2], []], "A over the trigger moves the kept timestamp for every input");
    });

    test("bad options are load errors", () => {
      assert.throws(
        () => graph(fixed("options { [mediapipe.FixedSizeInputStreamHandlerOptions.ext] { target_queue_size: 0 } }")),
        /FixedSizeInputStreamHandler of node "HeldCalculator": target_queue_size must be at least 1, got 0\./,
      );
    });
  });

  test("max_in_flight > 1: calls overlap, outputs are released in timestamp order", async () => {
    ReverseDelayCalculator.finishOrder = [];
    ReverseDelayCalculator.maxConcurrent = 0;
    const { run, got } = await started(
      `
      input_stream: "in"
      output_stream: "out"
      node { calculator: "ReverseDelayCalculator" input_stream: "in" output_stream: "out" max_in_flight: 4 }
    `,
      ["out"],
    );
    for (let ts = 0; ts < 8; ts++) run.addPacket("in", ts, ts);
    run.closeAllInputStreams();
    await run.waitUntilDone();
    assert.equal(ReverseDelayCalculator.maxConcurrent, 4);
    assert.notDeepEqual(ReverseDelayCalculator.finishOrder, [0, 1, 2, 3, 4, 5, 6, 7], "later calls finished first");
    assert.deepEqual(stamps(got.out), [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test("max_in_flight > 1: a synchronous result waits for an earlier call still running", async () => {
    const { run, got } = await started(
      `
      input_stream: "in"
      output_stream: "out"
      node { calculator: "MixedSyncAsyncCalculator" input_stream: "in" output_stream: "out" max_in_flight: 2 }
    `,
      ["out"],
    );
    for (let ts = 0; ts < 6; ts++) run.addPacket("in", `v${ts}`, ts);
    assert.deepEqual(stamps(got.out), [], "timestamp 1 answered at once, but 0 is still running");
    run.closeAllInputStreams();
    await run.waitUntilDone();
    assert.deepEqual(stamps(got.out), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(values(got.out), ["v0", "v1", "v2", "v3", "v4", "v5"]);
  });

  test("many runs of one graph at once do not share state", async () => {
    const g = graph(`
      input_stream: "in"
      output_stream: "out"
      node { calculator: "AsyncDoubleCalculator" input_stream: "in" output_stream: "mid" }
      node { calculator: "DoubleCalculator" input_stream: "mid" output_stream: "out" }
    `);
    const runs = Array.from({ length: 50 }, (_, i) => {
      const run = new GraphRun(g);
      const got: number[] = [];
      run.observe("out", (p) => got.push(p.value as number));
      run.start();
      for (let ts = 0; ts < 5; ts++) run.addPacket("in", i * 100 + ts, ts);
      run.closeAllInputStreams();
      return run.waitUntilDone().then(() => got);
    });
    const results = await Promise.all(runs);
    results.forEach((got, i) => assert.deepEqual(got, [0, 1, 2, 3, 4].map((ts) => (i * 100 + ts) * 4)));
  });
});

describe("timestamps", () => {
  const PASS = `
    input_stream: "in"
    output_stream: "out"
    node { calculator: "PassThroughCalculator" input_stream: "in" output_stream: "out" }
  `;

  test("a graph input packet below the stream's bound is refused with MediaPipe's message", async () => {
    const { run } = await started(PASS, ["out"]);
    run.addPacket("in", "a", 5);
    assert.throws(() => run.addPacket("in", "b", 5), {
      message: 'Packet timestamp mismatch on a calculator receiving from stream "in". Current minimum expected timestamp is 6 but received 5.',
    });
    run.closeAllInputStreams();
    await run.waitUntilDone();
  });

  test("a calculator output below its stream's bound fails the node's Process", async () => {
    const { run } = await started(
      `
      input_stream: "in"
      output_stream: "out"
      node { name: "clock" calculator: "StuckClockCalculator" input_stream: "in" output_stream: "out" }
    `,
      ["out"],
    );
    run.addPacket("in", "a", 3);
    run.addPacket("in", "b", 4);
    await failsWith(
      run.waitUntilDone(),
      'CalculatorGraph::Run() failed: \nCalculator::Process() for node "clock" failed: Packet timestamp mismatch on a calculator receiving from stream "out". Current minimum expected timestamp is 1 but received 0.',
    );
  });

  test("closed and unknown input streams", async () => {
    const { run } = await started(
      `
      input_stream: "a"
      input_stream: "b"
      output_stream: "joined"
      node { calculator: "JoinCalculator" input_stream: "A:a" input_stream: "B:b" output_stream: "joined" }
    `,
      ["joined"],
    );
    run.closeInputStream("a");
    assert.throws(() => run.addPacket("a", 1, 1), { message: 'Graph input stream "a" is closed.' });
    assert.throws(() => run.addPacket("nope", 1, 1), { message: '"nope" is not an input stream of the graph.' });
    assert.throws(() => run.addPacket("b", 1, 1.5), { message: 'In stream "b", timestamp not specified or set to illegal value: 1.5' });
    run.closeInputStream("b");
    await run.waitUntilDone();
    assert.equal(run.done, true);
    assert.throws(() => run.addPacket("b", 1, 2), { message: "The graph run is done." });
  });

  test("setInputStreamBound checks its argument", async () => {
    const { run } = await started(PASS, ["out"]);
    run.addPacket("in", "a", 5);
    for (const bad of [Number.NaN, 7.5, Infinity]) {
      assert.throws(() => run.setInputStreamBound("in", bad), { message: `setInputStreamBound("in", ${bad}): a timestamp bound must be an integer.` });
    }
    assert.throws(() => run.setInputStreamBound("in", "9" as unknown as number), { message: 'setInputStreamBound("in", 9): a timestamp bound must be an integer.' });
    assert.throws(() => run.setInputStreamBound("in", 3), {
      message: `setInputStreamBound("in", 3): the stream's bound is already 6, and a bound cannot move back.`,
    });
    run.setInputStreamBound("in", 6); // where it is: nothing happens
    run.setInputStreamBound("in", 10);
    assert.equal(run.streamBound("out"), 10, "PassThrough's timestamp offset carries the bound on");
    assert.throws(() => run.addPacket("in", "b", 9), /Current minimum expected timestamp is 10 but received 9/);
    run.setInputStreamBound("in", Number.MAX_SAFE_INTEGER); // Done: closes the stream, and the run ends
    await run.waitUntilDone();
    const join = await started(
      `
      input_stream: "a"
      input_stream: "b"
      node { calculator: "JoinCalculator" input_stream: "A:a" input_stream: "B:b" output_stream: "joined" }
    `,
      [],
    );
    join.run.setInputStreamBound("a", Number.MAX_SAFE_INTEGER);
    assert.throws(() => join.run.setInputStreamBound("a", 20), { message: 'Graph input stream "a" is closed.' });
    join.run.closeAllInputStreams();
    await join.run.waitUntilDone();
  });

  test("bounds reach graph outputs: Done after close", async () => {
    const { run } = await started(PASS, ["out"]);
    run.addPacket("in", 1, 41);
    assert.equal(run.streamBound("out"), 42);
    run.closeAllInputStreams();
    await run.waitUntilDone();
    assert.equal(run.streamBound("out"), Number.MAX_SAFE_INTEGER);
  });
});

describe("side packets", () => {
  const SIDE = `
    input_stream: "in"
    output_stream: "out"
    node { calculator: "SideMakerCalculator" input_side_packet: "BASE:base" output_side_packet: "FACTOR:factor" }
    node { calculator: "ScaleCalculator" input_stream: "in" input_side_packet: "FACTOR:factor" output_stream: "out" }
  `;

  test("a node opens once the side packet another node outputs exists", async () => {
    const runner = new GraphPool(graph(SIDE));
    const out = await runner.run({ in: 2 }, { sidePackets: { base: 3 } });
    assert.deepEqual(values(out.out), [60]);
  });

  test("a missing side packet fails start with MediaPipe's message", async () => {
    const g = graph(SIDE);
    assert.throws(() => new GraphRun(g).start({}), { message: 'Side packet "base" is required but was not provided.' });
    await assert.rejects(new GraphPool(g).run({ in: 1 }), { message: 'Side packet "base" is required but was not provided.' });
  });

  test("PassThroughCalculator passes side packets; output side packets are readable from the run", async () => {
    const { run } = await started(
      `
      node { calculator: "PassThroughCalculator" input_side_packet: "MODEL:m" output_side_packet: "MODEL:copy" }
    `,
      [],
      { m: { weights: [1, 2] } },
    );
    assert.deepEqual(run.sidePacket("copy"), { weights: [1, 2] });
  });
});

describe("lifecycle and errors", () => {
  const chain = (middle: string) => `
    input_stream: "in"
    output_stream: "out"
    node { name: "first" calculator: "LogPassCalculator" input_stream: "in" output_stream: "a" }
    node { name: "bad" calculator: "${middle}" input_stream: "a" output_stream: "b" }
    node { name: "last" calculator: "LogPassCalculator" input_stream: "b" output_stream: "out" }
  `;

  test("open, process and close happen once per node, in order", async () => {
    const { run, got } = await started(chain("LogPassCalculator"), ["out"]);
    run.addPacket("in", 1, 0);
    run.closeAllInputStreams();
    await run.waitUntilDone();
    assert.deepEqual(values(got.out), [1]);
    assert.deepEqual(events, ["open:first", "open:bad", "open:last", "close:first", "close:bad", "close:last"]);
  });

  test("an error in Open: MediaPipe's message; nodes that opened are closed, the failed one is not", async () => {
    const run = new GraphRun(graph(chain("FailOpenCalculator")));
    run.start();
    const e = await failsWith(run.waitUntilDone(), 'CalculatorGraph::Run() failed: \nCalculator::Open() for node "bad" failed: cannot open');
    assert.equal(e.errors[0].phase, "Open");
    assert.equal(e.errors[0].node, "bad");
    assert.equal((e.errors[0].cause as Error).message, "cannot open");
    assert.deepEqual(events, ["open:first", "open-failed:bad", "close:first"]);
  });

  for (const [calculator, detail] of [
    ["FailProcessCalculator", "boom at 0"],
    ["AsyncFailProcessCalculator", "async boom at 0"],
  ]) {
    test(`an error in Process (${calculator}): every opened node is closed`, async () => {
      const { run } = await started(chain(calculator), ["out"]);
      run.addPacket("in", 1, 0);
      await failsWith(run.waitUntilDone(), `CalculatorGraph::Run() failed: \nCalculator::Process() for node "bad" failed: ${detail}`);
      assert.deepEqual(events.filter((e) => e.startsWith("close")).sort(), ["close:bad", "close:first", "close:last"]);
      assert.ok(run.halted && run.done);
      assert.throws(() => run.addPacket("in", 2, 1), /^Error: Graph has errors: Calculator::Process\(\) for node "bad" failed/);
    });
  }

  test("an error in Close", async () => {
    const { run } = await started(chain("FailCloseCalculator"), ["out"]);
    run.addPacket("in", 1, 0);
    run.closeAllInputStreams();
    await failsWith(run.waitUntilDone(), 'CalculatorGraph::Run() failed: \nCalculator::Close() for node "bad" failed: cannot close');
    assert.deepEqual(events.filter((e) => e.startsWith("close")), ["close:first", "close:bad", "close:last"]);
  });

  test("several errors are reported together, one per line", async () => {
    const { run } = await started(chain("FailTwiceCalculator"), ["out"]);
    run.addPacket("in", 1, 0);
    const e = await failsWith(
      run.waitUntilDone(),
      'CalculatorGraph::Run() failed: \nCalculator::Process() for node "bad" failed: boom at 0\nCalculator::Close() for node "bad" failed: cannot close either',
    );
    assert.deepEqual(
      e.errors.map((x) => x.phase),
      ["Process", "Close"],
    );
  });

  for (const [calculator, phase] of [
    ["BadThenableProcessCalculator", "Process"],
    ["BadThenableCloseCalculator", "Close"],
  ] as const) {
    test(`a thenable whose then() throws fails the run and lets it finish (${phase})`, async () => {
      const { run } = await started(
        `
        input_stream: "in"
        node { name: "bad" calculator: "${calculator}" input_stream: "in" output_stream: "out" }
      `,
        [],
      );
      run.addPacket("in", 1, 0);
      run.closeAllInputStreams();
      await failsWith(
        run.waitUntilDone(),
        `CalculatorGraph::Run() failed: \nCalculator::${phase}() for node "bad" failed: broken thenable from ${phase.toLowerCase()}`,
      );
      assert.ok(run.done);
    });
  }

  test("GraphPool rejects with the run's error", async () => {
    const runner = new GraphPool(graph(chain("FailProcessCalculator")));
    await failsWith(runner.run({ in: 1 }), 'CalculatorGraph::Run() failed: \nCalculator::Process() for node "bad" failed: boom at 0');
  });
});

describe("building blocks", () => {
  test("PacketQueue keeps FIFO order across growth and wrap-around", () => {
    const q = new PacketQueue(Infinity);
    const out: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < (round % 7) + 1; i++) q.push({ value: next, timestamp: next++ });
      for (let i = 0; i < (round % 5) + 1 && q.size > 0; i++) out.push(q.shift().value as number);
    }
    while (q.size > 0) out.push(q.shift().value as number);
    assert.deepEqual(out, Array.from({ length: next }, (_, i) => i));
  });

  test("PortIndex resolves tags, TAG:i, untagged indexes, and counts", () => {
    const ix = new PortIndex([
      { tag: "", index: 0, name: "a", key: 0 },
      { tag: "", index: 1, name: "b", key: 1 },
      { tag: "IMAGE", index: 0, name: "c", key: "IMAGE" },
      { tag: "IMAGE", index: 1, name: "d", key: "IMAGE:1" },
      { tag: "MASK", index: 0, name: "e", key: "MASK" },
    ]);
    assert.deepEqual(
      [0, 1, 2, "IMAGE", "IMAGE:0", "IMAGE:1", "IMAGE:2", "MASK", "NOPE"].map((k) => ix.resolve(k)),
      [0, 1, -1, 2, 2, 3, -1, 4, -1],
    );
    assert.deepEqual([ix.count(), ix.count("IMAGE"), ix.count("MASK"), ix.count("X")], [2, 2, 1, 0]);
  });
});
