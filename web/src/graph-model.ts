/**
 * What the graph drawing contains, derived from a `GraphView` without any DOM
 * or layout: the boxes (graph inputs/outputs, calculator nodes, the host's side
 * packets), the connections between them with their labels, and which of those
 * connections are back edges that must stay out of the layered ranking.
 * Also the number formatting of the live statistics.
 */
import type { GraphView, InputPortView, NodeStats, PortView } from "../../src/server/graph-view-types.js";

export type VertexKind = "input" | "output" | "node" | "host";

export interface Vertex {
  /** Unique within the drawing: `in:<stream>`, `out:<stream>`, `node:<id>`, `host`. */
  readonly key: string;
  readonly kind: VertexKind;
  /** The node's id for kind "node". */
  readonly nodeId: number | null;
  /** Text lines drawn inside the box, first one emphasised. */
  readonly lines: readonly string[];
}

export type EdgeKind = "stream" | "sidePacket" | "back";

/** One stream or side packet on a connection: its name and the consumer's `TAG:index`. */
export interface EdgeLabelLine {
  readonly name: string;
  readonly tagIndex: string;
}

/**
 * A connection between two boxes. Parallel streams of the same kind between the
 * same two boxes share one edge (one line per stream in its label), so a node
 * that takes four streams from its neighbour gets one readable arrow, not four.
 */
export interface Edge {
  /** Unique within the drawing. */
  readonly key: string;
  readonly kind: EdgeKind;
  readonly from: string;
  readonly to: string;
  readonly label: readonly EdgeLabelLine[];
}

export interface GraphModel {
  readonly vertices: readonly Vertex[];
  /** Edges that take part in the layered ranking. */
  readonly edges: readonly Edge[];
  /** Back edges: left out of the ranking, drawn afterwards. */
  readonly backEdges: readonly Edge[];
}

export const HOST_KEY = "host";

/** The engine's own worker pool's internal executor name (src/graph/validated.ts). */
export const WORKER_POOL = "__workers";

/** An executor as a person reads it: "" is the main thread, the engine's pool is "worker pool", others by name. */
export function executorLabel(executor: string): string {
  if (executor === "") return "main thread";
  return executor === WORKER_POOL ? "worker pool" : executor;
}

export function nodeKey(id: number): string {
  return `node:${id}`;
}

/** `TAG:index` as MediaPipe writes a tag_index; an untagged port is `:index`. */
export function formatTagIndex(port: Pick<PortView, "tag" | "index">): string {
  return `${port.tag}:${port.index}`;
}

/** The accessible name of a node's button, fixed by the UI contract. */
export function nodeLabel(node: { readonly name: string; readonly calculator: string }): string {
  return `${node.name} (${node.calculator})`;
}

export function buildGraphModel(view: GraphView): GraphModel {
  const vertices: Vertex[] = [];
  const inputKey = new Map<string, string>();
  for (const s of view.inputStreams) {
    const key = `in:${s.name}`;
    inputKey.set(s.name, key);
    vertices.push({ key, kind: "input", nodeId: null, lines: [s.name, tagLine("input", s)] });
  }
  const needsHost = view.nodes.some((n) => n.inputSidePackets.some((p) => p.producer === "graph"));
  if (needsHost) {
    vertices.push({ key: HOST_KEY, kind: "host", nodeId: null, lines: ["host side packets", "supplied by the server"] });
  }
  for (const n of view.nodes) {
    const lines = [n.name, n.calculator];
    if (n.executor !== "") lines.push(`executor: ${executorLabel(n.executor)}`);
    vertices.push({ key: nodeKey(n.id), kind: "node", nodeId: n.id, lines });
  }
  for (const s of view.outputStreams) {
    vertices.push({ key: `out:${s.name}`, kind: "output", nodeId: null, lines: [s.name, tagLine("output", s)] });
  }

  const edges = new EdgeCollector();
  for (const n of view.nodes) {
    const to = nodeKey(n.id);
    for (const p of n.inputs) {
      const from = p.producer === "graph" ? inputKey.get(p.name) : nodeKey(p.producer);
      // A "graph" input that is not a declared graph input stream has nowhere to come from;
      // the server's validation rejects such graphs, so there is nothing to draw.
      if (from === undefined) continue;
      edges.add(p.backEdge ? "back" : "stream", from, to, p);
    }
    for (const p of n.inputSidePackets) {
      edges.add("sidePacket", p.producer === "graph" ? HOST_KEY : nodeKey(p.producer), to, p);
    }
  }
  const producerOf = new Map<string, number>();
  for (const n of view.nodes) for (const o of n.outputs) producerOf.set(o.name, n.id);
  for (const s of view.outputStreams) {
    const producer = producerOf.get(s.name);
    // A graph output may pass a graph input straight through.
    const from = producer === undefined ? inputKey.get(s.name) : nodeKey(producer);
    if (from !== undefined) edges.add("stream", from, `out:${s.name}`, s);
  }
  const all = edges.list();
  return {
    vertices,
    edges: all.filter((e) => e.kind !== "back"),
    backEdges: all.filter((e) => e.kind === "back"),
  };
}

function tagLine(kind: "input" | "output", s: PortView): string {
  return s.tag === "" ? `graph ${kind}` : `graph ${kind} · ${formatTagIndex(s)}`;
}

class EdgeCollector {
  readonly #byKey = new Map<string, { kind: EdgeKind; from: string; to: string; label: EdgeLabelLine[] }>();

  add(kind: EdgeKind, from: string, to: string, port: PortView | InputPortView): void {
    const key = `${kind}|${from}|${to}`;
    let edge = this.#byKey.get(key);
    if (edge === undefined) {
      edge = { kind, from, to, label: [] };
      this.#byKey.set(key, edge);
    }
    edge.label.push({ name: port.name, tagIndex: formatTagIndex(port) });
  }

  list(): Edge[] {
    return [...this.#byKey].map(([key, e]) => ({ key, ...e }));
  }
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** Milliseconds with precision that suits the magnitude: 0.042, 3.4, 27, 1,204. */
export function formatMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return "–";
  if (ms < 1) return ms.toFixed(ms < 0.01 ? 3 : 2).replace(/0+$/, "").replace(/\.$/, "") || "0";
  if (ms < 10) return ms.toFixed(1);
  return integer.format(ms);
}

export function formatCount(n: number): string {
  return integer.format(n);
}

/** The live line under each node, fixed by the UI contract: "<processed> done · <mean> ms · <active> active". */
export function formatNodeStats(s: Pick<NodeStats, "processed" | "meanMs" | "active">): string {
  return `${formatCount(s.processed)} done · ${formatMs(s.meanMs)} ms · ${formatCount(s.active)} active`;
}

/**
 * The widest stats line a node is likely to show, so boxes are sized once and
 * the layout does not jump while the numbers grow.
 */
export const WIDEST_NODE_STATS = formatNodeStats({ processed: 888_888, meanMs: 88_888, active: 88 });

/**
 * Whether stats belong to this structure; a servable reloaded with a different
 * graph answers stats for other nodes, and the structure must be fetched again.
 */
export function statsMatch(view: GraphView, stats: readonly NodeStats[]): boolean {
  return (
    stats.length === view.nodes.length &&
    stats.every((s, i) => s.id === i && s.name === view.nodes[i]!.name)
  );
}
