import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { basisCommands, clipToBox, layoutGraph, type Box, type Layout, type Measure } from "../src/graph-layout.js";
import { buildGraphModel, type GraphModel } from "../src/graph-model.js";
import { flowLimited, graph, pipeline } from "./graph-fixtures.js";

/** A deterministic stand-in for canvas text measurement. */
const measure: Measure = (text, style) => text.length * (style === "title" ? 8 : 6.5);

function overlaps(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function assertNoOverlaps(layout: Layout): void {
  const boxes = [
    ...layout.vertices.map((v) => ({ what: v.vertex.key, box: v.box })),
    ...layout.edges.map((e) => ({ what: `label of ${e.edge.key}`, box: e.label.box })),
  ];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      assert.ok(!overlaps(boxes[i]!.box, boxes[j]!.box), `${boxes[i]!.what} overlaps ${boxes[j]!.what}`);
    }
  }
}

function assertInside(layout: Layout): void {
  for (const b of [...layout.vertices.map((v) => v.box), ...layout.edges.map((e) => e.label.box)]) {
    assert.ok(b.x >= 0 && b.y >= 0 && b.x + b.width <= layout.width && b.y + b.height <= layout.height, `box ${JSON.stringify(b)} outside ${layout.width}x${layout.height}`);
  }
}

const centreY = (l: Layout, key: string): number => {
  const b = l.vertices.find((v) => v.vertex.key === key)!.box;
  return b.y + b.height / 2;
};

/** The numbers of an SVG path, as [x, y] pairs. */
function pathPoints(d: string): [number, number][] {
  const nums = d.match(/-?\d+(\.\d+)?/g)!.map(Number);
  const out: [number, number][] = [];
  for (let i = 0; i < nums.length; i += 2) out.push([nums[i]!, nums[i + 1]!]);
  return out;
}

describe("layoutGraph", () => {
  it("stacks the pipeline top to bottom without overlaps", () => {
    const l = layoutGraph(buildGraphModel(pipeline), measure);
    const order = ["in:input", "node:0", "node:1", "node:2", "out:output"].map((k) => centreY(l, k));
    assert.deepEqual([...order].sort((a, b) => a - b), order);
    assertNoOverlaps(l);
    assertInside(l);
    for (const e of l.edges) assert.match(e.path, /^M[\d.]+,[\d.]+ /);
  });

  it("sizes node boxes for their text, including the widest stats line", () => {
    const l = layoutGraph(buildGraphModel(pipeline), measure);
    const node = l.vertices.find((v) => v.vertex.key === "node:1")!;
    assert.ok(node.box.width >= "888,888 done · 88,888 ms · 88 active".length * 6.5);
    // Name, calculator and stats: three baselines, increasing.
    assert.equal(node.baselines.length, 3);
    assert.ok(node.baselines[0]! < node.baselines[1]! && node.baselines[1]! < node.baselines[2]!);
    assert.ok(node.baselines[2]! < node.box.height);
  });

  it("ranks a graph with a back edge as if the back edge were not there", () => {
    const model = buildGraphModel(flowLimited);
    const withBack = layoutGraph(model, measure);
    const without = layoutGraph({ ...model, backEdges: [] } satisfies GraphModel, measure);
    assert.ok(centreY(withBack, "node:0") < centreY(withBack, "node:1"), "the limiter stays above the section it guards");
    for (const v of without.vertices) {
      assert.equal(centreY(withBack, v.vertex.key), centreY(without, v.vertex.key), v.vertex.key);
    }
    assertNoOverlaps(withBack);
    assertInside(withBack);
  });

  it("keeps a back edge out of the ranking even when it closes no cycle", () => {
    // B reads A's output through a needlessly marked back edge: ranked with it, A would sit above B.
    const model = buildGraphModel(
      graph({
        in: ["x", "y"],
        nodes: [
          { name: "A", calculator: "ACalculator", in: ["x"], out: ["a"] },
          { name: "B", calculator: "BCalculator", in: ["y", "!LOOP:a"], out: ["b"] },
        ],
      }),
    );
    const l = layoutGraph(model, measure);
    assert.equal(centreY(l, "node:0"), centreY(l, "node:1"));
    assertNoOverlaps(l);
  });

  it("routes a back edge from the producer's side to the consumer's side, drawn last", () => {
    const l = layoutGraph(buildGraphModel(flowLimited), measure);
    const back = l.edges[l.edges.length - 1]!;
    assert.equal(back.edge.kind, "back");
    const pts = pathPoints(back.path);
    const producer = l.vertices.find((v) => v.vertex.key === "node:1")!.box;
    const consumer = l.vertices.find((v) => v.vertex.key === "node:0")!.box;
    const [sx, sy] = pts[0]!;
    const [ex, ey] = pts[pts.length - 1]!;
    assert.ok(sx === producer.x || Math.abs(sx - (producer.x + producer.width)) < 0.11, "starts on a side of the producer");
    assert.ok(sy > producer.y && sy < producer.y + producer.height);
    assert.ok(ex === consumer.x || Math.abs(ex - (consumer.x + consumer.width)) < 0.11, "ends on a side of the consumer");
    assert.ok(ey > consumer.y && ey < consumer.y + consumer.height);
    // The lane runs outside both boxes.
    const laneX = pts[2]![0];
    assert.ok(laneX > Math.max(producer.x + producer.width, consumer.x + consumer.width) || laneX < Math.min(producer.x, consumer.x));
  });

  it("keeps a node's loop onto itself beside it", () => {
    const l = layoutGraph(
      buildGraphModel(
        graph({
          in: ["x"],
          nodes: [
            { name: "Loop", calculator: "LoopCalculator", in: ["x", "!LOOP:y"], out: ["y"] },
            { name: "Sibling", calculator: "SiblingCalculator", in: ["x"] },
          ],
        }),
      ),
      measure,
    );
    const loop = l.edges.find((e) => e.edge.kind === "back")!;
    const box = l.vertices.find((v) => v.vertex.key === "node:0")!.box;
    const pts = pathPoints(loop.path);
    const right = box.x + box.width;
    assert.ok(Math.abs(pts[0]![0] - right) < 0.11 && Math.abs(pts[pts.length - 1]![0] - right) < 0.11, "leaves and re-enters the right side");
    assert.ok(pts.every(([x]) => x >= right - 0.11 && x <= right + 40), "stays close beside the box");
    // The edge from the graph input still meets the box itself, not the room kept for the loop.
    const [ex, ey] = pathPoints(l.edges.find((e) => e.edge.to === "node:0" && e.edge.kind === "stream")!.path).at(-1)!;
    assert.ok(ex >= box.x && ex <= right && Math.abs(ey - box.y) < 0.11);
    assertNoOverlaps(l);
    assertInside(l);
  });

  it("lays out fifteen nodes with side packets and back edges without overlaps", () => {
    const nodes = Array.from({ length: 15 }, (_, i) => ({
      name: `Stage${i}`,
      calculator: `Stage${i}Calculator`,
      executor: i % 4 === 0 ? "pool" : "",
      in: [i === 0 ? "IN:src" : `IN:s${i - 1}`, ...(i % 5 === 2 ? [`!LOOP:s${i + 2}`] : [])],
      out: [`OUT:s${i}`],
      sideIn: i % 3 === 0 ? ["RES:res"] : [],
    }));
    const l = layoutGraph(buildGraphModel(graph({ in: ["IN:src"], out: ["OUT:s14"], host: ["res"], nodes })), measure);
    assertNoOverlaps(l);
    assertInside(l);
    assert.equal(l.edges.filter((e) => e.edge.kind === "back").length, 3);
  });

  it("copes with an empty graph", () => {
    const l = layoutGraph(buildGraphModel(graph({ nodes: [] })), measure);
    assert.deepEqual(l.vertices, []);
    assert.ok(l.width > 0 && l.height > 0);
  });
});

describe("clipToBox", () => {
  const box = { x: 0, y: 0, width: 100, height: 40 };
  it("meets the top or bottom for steep lines and the sides for shallow ones", () => {
    assert.deepEqual(clipToBox(box, { x: 50, y: -100 }), { x: 50, y: 0 });
    assert.deepEqual(clipToBox(box, { x: 70, y: 120 }), { x: 54, y: 40 });
    assert.deepEqual(clipToBox(box, { x: 250, y: 20 }), { x: 100, y: 20 });
  });
});

describe("basisCommands", () => {
  it("starts and ends exactly at the first and last points", () => {
    const pts = [{ x: 0, y: 0 }, { x: 10, y: 30 }, { x: 40, y: 60 }, { x: 40, y: 100 }];
    const cmds = basisCommands(pts);
    assert.deepEqual(cmds[0], { op: "M", points: [pts[0]] });
    assert.deepEqual(cmds[cmds.length - 1], { op: "L", points: [pts[3]] });
    assert.equal(cmds.filter((c) => c.op === "C").length, pts.length - 1);
  });
  it("draws two points as a straight line", () => {
    assert.deepEqual(basisCommands([{ x: 1, y: 2 }, { x: 3, y: 4 }]).map((c) => c.op), ["M", "L"]);
  });
});
