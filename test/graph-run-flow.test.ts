/**
 * The graph run loop: back edges with FlowLimiterCalculator, sources and STOP,
 * queue throttling and its deadlock handling, cancellation.
 */
import { before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { CalculatorRegistry } from "../src/engine/registry.js";
import { GraphRun } from "../src/engine/graph-run.js";
import { GraphRunError, StatusError } from "../src/engine/run-errors.js";
import type { Packet } from "../src/index.js";
import { AsyncSourceCalculator, events, flags, held, SlowSinkCalculator, testRegistry } from "./helpers/calculators.js";
import { buildGraph } from "./helpers/graph.js";

let registry: CalculatorRegistry;
before(async () => {
  registry = await testRegistry();
});
beforeEach(() => {
  events.length = 0;
  held.length = 0;
});

async function started(text: string, outputs: string[], sidePackets: Record<string, unknown> = {}) {
  const run = new GraphRun(buildGraph(text, registry));
  const got: Record<string, Packet[]> = {};
  for (const o of outputs) {
    got[o] = [];
    run.observe(o, (p) => got[o].push(p));
  }
  run.start(sidePackets);
  return { run, got };
}

const pairs = (ps: Packet[]) => ps.map((p) => [p.timestamp, p.value]);

/** Event-loop turns until `cond` holds (no clocks involved). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

/** Releases held calls, oldest first, including those the releases cause, until the graph is idle. */
async function releaseHeld(run: GraphRun): Promise<void> {
  while (held.length > 0) {
    held.shift()!.release();
    await until(() => run.idle || held.length > 0);
  }
}

describe("back edges: FlowLimiterCalculator", () => {
  const limited = (limiterOptions: string, section = "HeldCalculator") => `
    input_stream: "in"
    output_stream: "out"
    output_stream: "allowed"
    node {
      calculator: "FlowLimiterCalculator"
      input_stream: "in"
      input_stream: "FINISHED:out"
      input_stream_info: { tag_index: "FINISHED" back_edge: true }
      output_stream: "gated"
      output_stream: "ALLOW:allowed"
      node_options: { [type.googleapis.com/mediapipe.FlowLimiterCalculatorOptions] { ${limiterOptions} } }
    }
    node { calculator: "${section}" input_stream: "gated" output_stream: "out" }
  `;

  test("drops what arrives while a timestamp is in flight; FINISHED from downstream frees it", async () => {
    const { run, got } = await started(limited("max_in_flight: 1 max_in_queue: 0"), ["out", "allowed"]);
    for (let ts = 0; ts < 5; ts++) run.addPacket("in", `frame${ts}`, ts);
    assert.deepEqual(held.map((h) => h.ts), [0], "only the first timestamp entered the section");
    await releaseHeld(run); // out@0 comes back as FINISHED@0
    run.addPacket("in", "frame5", 5);
    assert.deepEqual(held.map((h) => h.ts), [5]);
    await releaseHeld(run);
    run.closeAllInputStreams();
    await run.waitUntilDone(); // the loop is closed once everything is idle
    assert.deepEqual(pairs(got.out), [[0, "frame0"], [5, "frame5"]]);
    assert.deepEqual(pairs(got.allowed), [[0, true], [1, false], [2, false], [3, false], [4, false], [5, true]]);
  });

  test("max_in_queue keeps the newest waiting input and drops the older ones", async () => {
    const { run, got } = await started(limited("max_in_flight: 1 max_in_queue: 1"), ["out", "allowed"]);
    for (let ts = 0; ts < 5; ts++) run.addPacket("in", ts, ts);
    held.shift()!.release(); // frees 0, which lets the queued 4 in
    await until(() => held.length > 0);
    assert.deepEqual(pairs(got.allowed), [[0, true], [1, false], [2, false], [3, false], [4, true]]);
    run.closeAllInputStreams();
    await releaseHeld(run);
    await run.waitUntilDone();
    assert.deepEqual(pairs(got.out), [[0, 0], [4, 4]]);
  });

  test("max_in_flight 2 lets two timestamps through", async () => {
    const { run, got } = await started(limited("max_in_flight: 2"), ["out", "allowed"]);
    for (let ts = 0; ts < 4; ts++) run.addPacket("in", ts, ts);
    assert.deepEqual(pairs(got.allowed), [[0, true], [1, true], [2, false], [3, false]]);
    run.closeAllInputStreams();
    await releaseHeld(run);
    await run.waitUntilDone();
  });

  test("in_flight_timeout frees a slot whose FINISHED never comes", async () => {
    const { run, got } = await started(limited("max_in_flight: 1 in_flight_timeout: 3", "SwallowCalculator"), ["allowed"]);
    for (let ts = 0; ts < 6; ts++) run.addPacket("in", ts, ts);
    run.closeAllInputStreams();
    await run.waitUntilDone();
    // 4 - 0 > 3: timestamp 0 is abandoned when 4 arrives.
    assert.deepEqual(pairs(got.allowed), [[0, true], [1, false], [2, false], [3, false], [4, true], [5, false]]);
  });

  test("the optional MAX_IN_FLIGHT side packet may be left out", async () => {
    const text = limited("max_in_flight: 2").replace('output_stream: "gated"', 'output_stream: "gated"\n input_side_packet: "MAX_IN_FLIGHT:limit"');
    const g = buildGraph(text, registry);
    assert.deepEqual(g.requiredSidePackets, []);
    const { run, got } = await started(text, ["allowed"]);
    for (let ts = 0; ts < 3; ts++) run.addPacket("in", ts, ts);
    assert.deepEqual(pairs(got.allowed), [[0, true], [1, true], [2, false]], "the option applies");
    run.closeAllInputStreams();
    await releaseHeld(run);
    await run.waitUntilDone();
  });

  test("the MAX_IN_FLIGHT side packet overrides the option", async () => {
    const text = limited("max_in_flight: 1").replace('output_stream: "gated"', 'output_stream: "gated"\n input_side_packet: "MAX_IN_FLIGHT:limit"');
    const { run, got } = await started(text, ["allowed"], { limit: 3 });
    for (let ts = 0; ts < 4; ts++) run.addPacket("in", ts, ts);
    assert.deepEqual(pairs(got.allowed), [[0, true], [1, true], [2, true], [3, false]]);
    run.closeAllInputStreams();
    await releaseHeld(run);
    await run.waitUntilDone();
  });
});

describe("sources", () => {
  test("a source runs until it returns STOP, then closes", async () => {
    const { run, got } = await started(
      `
      output_stream: "out"
      node { name: "count" calculator: "CountSourceCalculator" input_side_packet: "COUNT:n" output_stream: "nums" }
      node { calculator: "PassThroughCalculator" input_stream: "nums" output_stream: "out" }
    `,
      ["out"],
      { n: 500 },
    );
    await run.waitUntilDone();
    assert.equal(got.out.length, 500);
    assert.deepEqual(got.out.slice(0, 3).map((p) => p.value), [0, 1, 2]);
    assert.deepEqual(events, ["close:count"]);
  });

  test("a source never starves the event loop", async () => {
    flags.stopSource = false;
    const { run, got } = await started(
      `
      output_stream: "out"
      node { calculator: "UntilFlagSourceCalculator" output_stream: "out" }
    `,
      ["out"],
    );
    // Only the event loop can stop this source: if it never yielded, this would hang.
    setImmediate(() => (flags.stopSource = true));
    await run.waitUntilDone();
    assert.ok(got.out.length > 0);
  });

  test("after a graceful STOP a source with calls in flight is called no more", async () => {
    flags.graphStopped = false;
    AsyncSourceCalculator.callsAfterStop = 0;
    const { run, got } = await started(
      `
      output_stream: "out"
      node { calculator: "AsyncSourceCalculator" output_stream: "nums" max_in_flight: 2 }
      node { calculator: "StopNowCalculator" input_stream: "nums" output_stream: "out" }
    `,
      ["out"],
    );
    await run.waitUntilDone();
    assert.ok(flags.graphStopped);
    assert.equal(AsyncSourceCalculator.callsAfterStop, 0);
    // The call in flight at the STOP still delivers (the graph drains), nothing after it.
    assert.deepEqual(pairs(got.out), [[0, 0], [1, 1]]);
  });

  test("STOP from a non-source closes the graph inputs and lets the rest drain", async () => {
    const { run, got } = await started(
      `
      input_stream: "in"
      output_stream: "out"
      node { calculator: "StopAtTwoCalculator" input_stream: "in" output_stream: "mid" }
      node { calculator: "LogPassCalculator" name: "after" input_stream: "mid" output_stream: "out" }
    `,
      ["out"],
    );
    for (let ts = 0; ts < 3; ts++) run.addPacket("in", ts, ts);
    assert.throws(() => run.addPacket("in", 3, 3), /is closed|is done/);
    await run.waitUntilDone();
    assert.deepEqual(pairs(got.out), [[0, 0], [1, 1], [2, 2]]);
    assert.deepEqual(events, ["open:after", "close:after"]);
  });
});

describe("throttling (max_queue_size)", () => {
  const slow = (queue: number) => `
    max_queue_size: ${queue}
    output_stream: "out"
    node { calculator: "TrackedSourceCalculator" input_side_packet: "COUNT:n" output_stream: "nums" }
    node { calculator: "SlowSinkCalculator" input_stream: "nums" output_stream: "out" }
  `;

  for (const [queue, check] of [
    [2, (max: number) => assert.ok(max <= 3, `the source ran ${max} packets ahead of a queue of 2`)],
    [-1, (max: number) => assert.ok(max > 10, `unthrottled, the source should run far ahead (was ${max})`)],
  ] as const) {
    test(`a full queue throttles the source feeding it (max_queue_size ${queue})`, async () => {
      SlowSinkCalculator.backlog = [];
      SlowSinkCalculator.emitted = 0;
      const { run, got } = await started(slow(queue), ["out"], { n: 40 });
      await run.waitUntilDone();
      assert.equal(got.out.length, 40);
      check(Math.max(...SlowSinkCalculator.backlog));
    });
  }

  const stuck = (reportDeadlock: boolean) => `
    max_queue_size: 2
    report_deadlock: ${reportDeadlock}
    input_stream: "other"
    output_stream: "joined"
    node { calculator: "CountSourceCalculator" input_side_packet: "COUNT:n" output_stream: "nums" }
    node { calculator: "JoinCalculator" input_stream: "A:nums" input_stream: "B:other" output_stream: "joined" }
  `;

  test("a throttling deadlock fails the run with UNAVAILABLE when report_deadlock is set", async () => {
    const { run } = await started(stuck(true), ["joined"], { n: 20 });
    const e = await run.waitUntilDone().then(
      () => assert.fail("expected a deadlock"),
      (err: unknown) => err,
    );
    assert.ok(e instanceof GraphRunError);
    assert.match(e.message, /^CalculatorGraph::Run\(\) failed: \nDetected a deadlock due to input throttling for: "nums"/);
    const cause = e.errors[0].cause;
    assert.ok(cause instanceof StatusError);
    assert.equal(cause.code, "UNAVAILABLE");
  });

  test("deadlock relief still yields to the event loop: an endless source cannot hang the process", async () => {
    flags.stopSource = false;
    const { run, got } = await started(
      `
      max_queue_size: 10
      input_stream: "other"
      output_stream: "joined"
      node { calculator: "UntilFlagSourceCalculator" output_stream: "nums" }
      node { calculator: "JoinCalculator" input_stream: "A:nums" input_stream: "B:other" output_stream: "joined" }
    `,
      ["joined"],
    ); // returned: start() did not loop on relief forever
    // Only the event loop can stop the source, and relief keeps making room for it.
    setImmediate(() => (flags.stopSource = true));
    await run.waitUntilIdle();
    assert.equal(got.joined.length, 0, "the join still waits for the other input");
    run.closeAllInputStreams();
    await run.waitUntilDone();
    assert.ok(got.joined.length > 10, `relief let the source run past the queue limit (${got.joined.length} packets)`);
  });

  test("otherwise the full queue grows until the graph can move again", async () => {
    const { run, got } = await started(stuck(false), ["joined"], { n: 20 });
    await run.waitUntilIdle();
    assert.equal(got.joined.length, 0, "the join still waits for the other input");
    run.closeAllInputStreams();
    await run.waitUntilDone();
    assert.equal(got.joined.length, 20);
  });
});

describe("cancel", () => {
  test("aborts the signal, stops scheduling, closes opened nodes; waitUntilDone rejects with the reason", async () => {
    const { run } = await started(
      `
      input_stream: "in"
      output_stream: "out"
      node { name: "wait" calculator: "AbortWaitCalculator" input_stream: "in" output_stream: "mid" }
      node { name: "after" calculator: "LogPassCalculator" input_stream: "mid" output_stream: "out" }
    `,
      ["out"],
    );
    run.addPacket("in", 1, 0);
    await new Promise((r) => setImmediate(r));
    const reason = new Error("client went away");
    run.cancel(reason);
    await assert.rejects(run.waitUntilDone(), (e) => e === reason);
    // "after" had nothing in flight and closed at once; "wait" closed when its call returned.
    assert.deepEqual(events, ["open:after", "waiting:wait", "aborted(client went away):wait", "close:after", "close:wait"]);
    assert.throws(() => run.addPacket("in", 2, 1), { message: "The graph run was cancelled." });
  });

  test("cancel before start", async () => {
    const run = new GraphRun(buildGraph('input_stream: "in"\nnode { calculator: "PassThroughCalculator" input_stream: "in" output_stream: "o" }', registry));
    run.cancel(new Error("never mind"));
    await assert.rejects(run.waitUntilDone(), { message: "never mind" });
  });
});
