/**
 * A servable's graph as the web UI reads it (graph-view-types.ts): its
 * structure, built once per loaded graph from the ValidatedGraph and cached,
 * and its live per-node statistics, read from the graph's NodeStatsCollector
 * on every poll.
 */
import type { Port } from "../engine/calculator.js";
import type { NodeStatsCollector } from "../engine/node-stats.js";
import type { OptionsMessage } from "../graph/config.js";
import { WORKER_POOL_EXECUTOR, type Endpoint, type ValidatedGraph, type ValidatedNode } from "../graph/validated.js";
import type { ExecutorView, GraphStats, GraphView, InputPortView, NodeStats, NodeView, PortView } from "./graph-view-types.js";

/** What does not change while a graph serves: everything but the servable's name and state. */
export type GraphStructure = Omit<GraphView, "name" | "state">;

const structures = new WeakMap<ValidatedGraph, GraphStructure>();

/** The structure of `graph` with its text; built on first use and kept as long as the graph lives. */
export function graphStructure(graph: ValidatedGraph, pbtxt: string): GraphStructure {
  let s = structures.get(graph);
  if (s === undefined) {
    s = buildStructure(graph, pbtxt);
    structures.set(graph, s);
  }
  return s;
}

/** The statistics of every node of `graph`, read now. */
export function graphStats(name: string, graph: ValidatedGraph, stats: NodeStatsCollector): GraphStats {
  const nodes: NodeStats[] = new Array(graph.nodes.length);
  for (let id = 0; id < nodes.length; id++) nodes[id] = { id, name: graph.nodes[id].name, ...stats.read(id) };
  return { name, time: Date.now(), runs: stats.runs, nodes };
}

function buildStructure(graph: ValidatedGraph, pbtxt: string): GraphStructure {
  const producerOf = (where: ReadonlyMap<string, { readonly producer: Endpoint | "graph" }>, name: string): number | "graph" => {
    const p = where.get(name)?.producer;
    return p === undefined || p === "graph" ? "graph" : p.node;
  };
  const nodes = graph.nodes.map(
    (n): NodeView => ({
      id: n.id,
      name: n.name,
      calculator: n.calculatorName,
      executor: n.executor,
      inputStreamHandler: n.inputStreamHandler.kind,
      inputs: n.inputs.map((p, i): InputPortView => ({ ...port(p), producer: producerOf(graph.streams, p.name), backEdge: n.backEdge[i] === true })),
      outputs: n.outputs.map(port),
      inputSidePackets: n.inputSidePackets.map((p): InputPortView => ({ ...port(p), producer: producerOf(graph.sidePackets, p.name), backEdge: false })),
      outputSidePackets: n.outputSidePackets.map(port),
      optionsType: optionsTypeOf(n),
      options: n.options === undefined ? null : optionsJson(n.options),
    }),
  );
  const hostSidePackets = [...graph.sidePackets.values()].filter((sp) => sp.producer === "graph").map((sp) => sp.name);
  return { pbtxt, inputStreams: graph.inputStreams.map(port), outputStreams: graph.outputStreams.map(port), hostSidePackets, executors: executorsOf(graph), nodes };
}

function port(p: Port): PortView {
  return { tag: p.tag, index: p.index, name: p.name };
}

/**
 * The executors worth showing: those the graph declares, plus the engine's
 * own pool when a node runs there (its calculator prefers workers). The main
 * thread ("") is implied.
 */
function executorsOf(graph: ValidatedGraph): ExecutorView[] {
  const used = new Set(graph.nodes.map((n) => n.executor));
  const out: ExecutorView[] = [];
  for (const spec of graph.executors.values()) {
    if (spec.name === "" || (spec.name === WORKER_POOL_EXECUTOR && !used.has(spec.name))) continue;
    out.push({ name: spec.name, type: spec.type, numThreads: spec.numThreads ?? null });
  }
  return out;
}

/** A decoded options message: a protobufjs instance, which knows its type. */
type TypedMessage = OptionsMessage & {
  readonly $type?: { readonly fullName: string; toObject(m: object, o: Record<string, unknown>): Record<string, unknown> };
};

function optionsTypeOf(n: ValidatedNode): string | null {
  const type = (n.options as TypedMessage | undefined)?.$type;
  if (type !== undefined) return type.fullName.replace(/^\./, "");
  return n.calculator.contract.options?.replace(/^\./, "") ?? null;
}

/** Proto field names, defaults filled in, enums by name, 64-bit integers as numbers, NaN/Infinity as strings. */
function optionsJson(options: OptionsMessage): Record<string, unknown> {
  const type = (options as TypedMessage).$type;
  if (type === undefined) return JSON.parse(JSON.stringify(options)) as Record<string, unknown>;
  return type.toObject(options, { defaults: true, enums: String, longs: Number, bytes: String, json: true });
}
