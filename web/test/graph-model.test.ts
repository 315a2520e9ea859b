import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  buildGraphModel,
  executorLabel,
  formatMs,
  formatNodeStats,
  formatTagIndex,
  HOST_KEY,
  nodeLabel,
  statsMatch,
} from "../src/graph-model.js";
import { flowLimited, graph, pipeline } from "./graph-fixtures.js";

describe("buildGraphModel", () => {
  it("turns the pipeline into inputs, nodes, a host source and outputs", () => {
    const m = buildGraphModel(pipeline);
    assert.deepEqual(
      m.vertices.map((v) => [v.key, v.kind]),
      [
        ["in:input", "input"],
        [HOST_KEY, "host"],
        ["node:0", "node"],
        ["node:1", "node"],
        ["node:2", "node"],
        ["out:output", "output"],
      ],
    );
    assert.deepEqual(m.vertices.find((v) => v.key === "node:2")!.lines, ["Encoder", "Base64EncoderCalculator", "executor: worker pool"]);
    // Main-thread nodes get no executor line.
    assert.deepEqual(m.vertices.find((v) => v.key === "node:0")!.lines, ["RequestParts", "HttpInputCalculator"]);
    assert.deepEqual(m.vertices[0]!.lines, ["input", "graph input · HTTP_REQUEST_PAYLOAD:0"]);
  });

  it("merges parallel streams into one edge labelled with every name and the consumer's TAG:index", () => {
    const m = buildGraphModel(pipeline);
    const e = m.edges.filter((x) => x.from === "node:0" && x.to === "node:1");
    assert.equal(e.length, 1);
    assert.equal(e[0]!.kind, "stream");
    assert.deepEqual(e[0]!.label, [
      { name: "uri", tagIndex: "URI:0" },
      { name: "json", tagIndex: "JSON:0" },
      { name: "fields", tagIndex: "FIELDS:0" },
      { name: "files", tagIndex: "FILES:0" },
    ]);
  });

  it("draws host side packets from the host source and graph streams from their terminals", () => {
    const m = buildGraphModel(pipeline);
    assert.deepEqual(
      m.edges.map((e) => [e.kind, e.from, e.to, e.label.map((l) => `${l.name} ${l.tagIndex}`).join(", ")]),
      [
        ["stream", "in:input", "node:0", "input HTTP_REQUEST_PAYLOAD:0"],
        ["stream", "node:0", "node:1", "uri URI:0, json JSON:0, fields FIELDS:0, files FILES:0"],
        ["sidePacket", HOST_KEY, "node:1", "pipes IMAGE_GEN_NODE_RESOURCES:0"],
        ["stream", "node:1", "node:2", "images IMAGES:0"],
        ["stream", "node:2", "out:output", "output HTTP_RESPONSE_PAYLOAD:0"],
      ],
    );
    assert.deepEqual(m.backEdges, []);
  });

  it("keeps back edges out of the ranked edges", () => {
    const m = buildGraphModel(flowLimited);
    assert.deepEqual(
      m.backEdges.map((e) => [e.kind, e.from, e.to, e.label]),
      [["back", "node:1", "node:0", [{ name: "out", tagIndex: "FINISHED:0" }]]],
    );
    assert.ok(m.edges.every((e) => e.kind !== "back"));
    // The same stream also leaves the graph: that copy is an ordinary edge.
    assert.ok(m.edges.some((e) => e.from === "node:1" && e.to === "out:out"));
    assert.ok(!m.vertices.some((v) => v.kind === "host"), "no host source without host side packets");
    assert.deepEqual(m.edges.find((e) => e.to === "out:allowed")!.label, [{ name: "allowed", tagIndex: ":0" }]);
  });

  it("draws a side packet a node produces from that node, and a pass-through graph output from its input", () => {
    const m = buildGraphModel(
      graph({
        in: ["x"],
        out: ["x", "y"],
        nodes: [
          { name: "Session", calculator: "SessionCalculator", sideOut: ["SESSION:s"] },
          { name: "Use", calculator: "UseCalculator", in: ["x"], sideIn: ["SESSION:s"], out: ["y"] },
        ],
      }),
    );
    assert.deepEqual(
      m.edges.map((e) => [e.kind, e.from, e.to]),
      [
        ["stream", "in:x", "node:1"],
        ["sidePacket", "node:0", "node:1"],
        ["stream", "in:x", "out:x"],
        ["stream", "node:1", "out:y"],
      ],
    );
  });

  it("keeps separate edges for a stream and a side packet between the same nodes", () => {
    const m = buildGraphModel(
      graph({
        nodes: [
          { name: "A", calculator: "ACalculator", out: ["a"], sideOut: ["S:s"] },
          { name: "B", calculator: "BCalculator", in: ["IN:0:a"], sideIn: ["S:s"] },
        ],
      }),
    );
    assert.deepEqual(m.edges.map((e) => e.kind), ["stream", "sidePacket"]);
  });
});

describe("formatting", () => {
  it("writes TAG:index the way MediaPipe spells tag_index", () => {
    assert.equal(formatTagIndex({ tag: "IMAGE", index: 2 }), "IMAGE:2");
    assert.equal(formatTagIndex({ tag: "", index: 1 }), ":1");
  });

  it("names executors for people, not by the engine's internal pool name", () => {
    assert.equal(executorLabel(""), "main thread");
    assert.equal(executorLabel("__workers"), "worker pool");
    assert.equal(executorLabel("gpu_pool"), "gpu_pool");
  });

  it("names node buttons as the UI contract says", () => {
    assert.equal(nodeLabel({ name: "Encoder", calculator: "Base64EncoderCalculator" }), "Encoder (Base64EncoderCalculator)");
  });

  it("formats milliseconds by magnitude", () => {
    assert.equal(formatMs(null), "–");
    assert.equal(formatMs(Number.NaN), "–");
    assert.equal(formatMs(0), "0");
    assert.equal(formatMs(0.004), "0.004");
    assert.equal(formatMs(0.5), "0.5");
    assert.equal(formatMs(0.4249), "0.42");
    assert.equal(formatMs(3.456), "3.5");
    assert.equal(formatMs(27.4), "27");
    assert.equal(formatMs(1204.6), "1,205");
  });

  it("writes the live line exactly as the contract fixes it", () => {
    assert.equal(formatNodeStats({ processed: 12_345, meanMs: 3.21, active: 2 }), "12,345 done · 3.2 ms · 2 active");
    assert.equal(formatNodeStats({ processed: 0, meanMs: null, active: 0 }), "0 done · – ms · 0 active");
  });
});

describe("statsMatch", () => {
  const stat = (id: number, name: string) => ({ id, name, processed: 0, active: 0, errors: 0, cancelled: 0, meanMs: null, lastMs: null });
  it("accepts stats of the same nodes", () => {
    assert.equal(statsMatch(flowLimited, [stat(0, "FlowLimiterCalculator"), stat(1, "PassThroughCalculator")]), true);
  });
  it("rejects stats of a reloaded, different graph", () => {
    assert.equal(statsMatch(flowLimited, [stat(0, "FlowLimiterCalculator")]), false);
    assert.equal(statsMatch(flowLimited, [stat(0, "FlowLimiterCalculator"), stat(1, "Other")]), false);
  });
});
