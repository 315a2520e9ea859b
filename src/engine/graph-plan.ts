/**
 * Everything a graph run needs about its graph, computed once per graph
 * runtime (graph-runtime.ts) and shared by its runs: streams and side
 * packets as dense indexes, consumer lists as typed arrays, port-key
 * indexes, input handlers, priorities, throttling ancestry. Immutable and
 * owning nothing; a run then only allocates its own mutable state.
 */
import type { CalculatorClass } from "./calculator.js";
import { portIndexes, type PortIndexes } from "./context.js";
import { createInputHandler, type InputHandler } from "./stream-handlers/index.js";
import { executorType } from "./executors/index.js";
import type { ValidatedGraph, ValidatedNode } from "../graph/validated.js";

export interface NodePlan {
  readonly id: number;
  readonly name: string;
  readonly calculatorName: string;
  readonly cls: CalculatorClass;
  readonly spec: ValidatedNode;
  readonly indexes: PortIndexes;
  readonly handler: InputHandler;
  /** Stream index per flat input / output. */
  readonly inStream: Int32Array;
  readonly outStream: Int32Array;
  /** Side packet index per flat input / output side packet. */
  readonly inSide: Int32Array;
  readonly outSide: Int32Array;
  readonly isSource: boolean;
  /** Heap key: higher runs first (non-sources above sources, downstream first). */
  readonly priority: number;
  readonly offset: number | undefined;
  readonly maxInFlight: number;
  /** Worker executor name, or undefined for the event loop. */
  readonly workerExecutor: string | undefined;
  /** Per flat input: the source nodes feeding that stream (throttled when its queue is full). */
  readonly throttles: readonly Int32Array[];
}

export interface StreamPlan {
  readonly name: string;
  readonly consumerNode: Int32Array;
  readonly consumerPort: Int32Array;
  readonly graphInput: boolean;
  /** Packets on it reach more than one reader: several node inputs, or the caller (a graph output). */
  readonly manyReaders: boolean;
}

export interface SidePacketPlan {
  readonly name: string;
  readonly fromGraph: boolean;
  /** Consuming node per consuming port (a node reading it twice appears twice). */
  readonly consumers: Int32Array;
}

export class GraphPlan {
  readonly graph: ValidatedGraph;
  readonly nodes: readonly NodePlan[];
  readonly streams: readonly StreamPlan[];
  readonly streamIndex: ReadonlyMap<string, number>;
  readonly sidePackets: readonly SidePacketPlan[];
  readonly sideIndex: ReadonlyMap<string, number>;
  readonly graphInputs: Int32Array;
  readonly queueLimit: number;
  /** Some node runs on a worker executor (so runs track which buffers may move there). */
  readonly hasWorkers: boolean;

  constructor(graph: ValidatedGraph) {
    this.graph = graph;
    this.queueLimit = graph.maxQueueSize < 0 ? Infinity : graph.maxQueueSize;

    // Validation lists every stream, graph inputs included, and every side packet.
    const streamIndex = new Map([...graph.streams.keys()].map((n, i) => [n, i]));
    this.streamIndex = streamIndex;
    this.streams = [...graph.streams.values()].map((info) => ({
      name: info.name,
      consumerNode: Int32Array.from(info.consumers, (c) => c.node),
      consumerPort: Int32Array.from(info.consumers, (c) => c.port),
      graphInput: info.producer === "graph",
      manyReaders: info.graphOutput || info.consumers.length > 1,
    }));
    this.graphInputs = Int32Array.from(graph.inputStreams, (p) => streamIndex.get(p.name)!);

    const sideIndex = new Map([...graph.sidePackets.keys()].map((n, i) => [n, i]));
    this.sideIndex = sideIndex;
    this.sidePackets = [...graph.sidePackets.values()].map((info) => ({
      name: info.name,
      fromGraph: info.producer === "graph",
      consumers: Int32Array.from(info.consumers, (c) => c.node),
    }));

    // Sources feeding each node's outputs, for throttling: a full queue
    // throttles the sources upstream of its stream (back edges excluded,
    // nodes are in topological order without them).
    const sourcesOf: Set<number>[] = [];
    const n = graph.nodes.length;
    this.nodes = graph.nodes.map((node) => {
      const inStream = Int32Array.from(node.inputs, (p) => streamIndex.get(p.name)!);
      const feeding = new Set<number>();
      if (node.inputs.length === 0) feeding.add(node.id);
      const throttles = node.inputs.map((p, i) => {
        const producer = graph.streams.get(p.name)!.producer;
        if (producer === "graph") return new Int32Array(0);
        // A back edge's producer comes later in the order: it throttles nothing here.
        const up = sourcesOf[producer.node] ?? new Set<number>();
        if (!node.backEdge[i]) for (const s of up) feeding.add(s);
        return Int32Array.from(up);
      });
      sourcesOf[node.id] = feeding;
      const isSource = node.inputs.length === 0;
      // Validation resolved the executor (the worker pool for a calculator preferring it).
      const spec = graph.executors.get(node.executor);
      const isWorker = spec !== undefined && executorType(spec.type) !== undefined;
      return {
        id: node.id,
        name: node.name,
        calculatorName: node.calculatorName,
        cls: node.calculator,
        spec: node,
        indexes: portIndexes(node),
        handler: createInputHandler(node.inputStreamHandler, node.inputs.length),
        inStream,
        outStream: Int32Array.from(node.outputs, (p) => streamIndex.get(p.name)!),
        inSide: Int32Array.from(node.inputSidePackets, (p) => sideIndex.get(p.name)!),
        outSide: Int32Array.from(node.outputSidePackets, (p) => sideIndex.get(p.name)!),
        isSource,
        // Non-sources: n + id (downstream first). Sources: below zero, lower
        // source_layer first, then lower id.
        priority: isSource ? -(node.sourceLayer * n + node.id) - 1 : n + node.id,
        offset: node.timestampOffset,
        maxInFlight: node.maxInFlight,
        workerExecutor: isWorker ? node.executor : undefined,
        throttles,
      } satisfies NodePlan;
    });
    this.hasWorkers = this.nodes.some((node) => node.workerExecutor !== undefined);
  }
}
