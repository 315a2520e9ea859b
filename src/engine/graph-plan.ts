/**
 * Everything the scheduler needs about a graph, computed once per
 * ValidatedGraph and shared by all its runs: streams and side packets as
 * dense indexes, consumer lists as typed arrays, port-key indexes, input
 * handlers, priorities, throttling ancestry, and the graph's worker pools.
 * A run then only allocates its own mutable state.
 */
import type { CalculatorClass, InputStreamHandlerName } from "./calculator.js";
import { portIndexes, type PortIndexes } from "./context.js";
import { createInputHandler, type HandlerSpec, type InputHandler } from "./input-handlers.js";
import { WorkerPool } from "./worker-pool.js";
import type { WorkerNodeInit } from "./worker-protocol.js";
import type { Schema } from "../graph/schema.js";
import { WORKER_POOL_EXECUTOR, type ValidatedGraph, type ValidatedNode } from "../graph/validated.js";

/**
 * What the engine needs from the calculator registry: the module a
 * calculator class came from (worker threads import it) and the schema its
 * options were decoded with. CalculatorRegistry satisfies it.
 */
export interface EngineRegistry {
  readonly schema: Schema;
  moduleUrlOf(calculatorName: string): string | undefined;
}

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
  /** Per flat input: this node is the stream's only reader, so its buffers may move to a worker. */
  readonly soleConsumer: readonly boolean[];
  /** Per flat input: the source nodes feeding that stream (throttled when its queue is full). */
  readonly throttles: readonly Int32Array[];
}

export interface StreamPlan {
  readonly name: string;
  readonly consumerNode: Int32Array;
  readonly consumerPort: Int32Array;
  readonly graphInput: boolean;
  readonly graphOutput: boolean;
}

export interface SidePacketPlan {
  readonly name: string;
  readonly fromGraph: boolean;
  /** Consuming node per consuming port (a node reading it twice appears twice). */
  readonly consumers: Int32Array;
}

const HANDLER_KINDS: Record<InputStreamHandlerName, HandlerSpec["kind"]> = {
  DefaultInputStreamHandler: "default",
  ImmediateInputStreamHandler: "immediate",
  SyncSetInputStreamHandler: "sync_set",
};

let nextPlanId = 0;
const plans = new WeakMap<ValidatedGraph, GraphPlan>();

export class GraphPlan {
  readonly id: string;
  readonly graph: ValidatedGraph;
  readonly nodes: readonly NodePlan[];
  readonly streams: readonly StreamPlan[];
  readonly streamIndex: ReadonlyMap<string, number>;
  readonly sidePackets: readonly SidePacketPlan[];
  readonly sideIndex: ReadonlyMap<string, number>;
  readonly graphInputs: Int32Array;
  readonly graphOutputs: Int32Array;
  readonly queueLimit: number;
  readonly hasWorkers: boolean;
  private readonly registry: EngineRegistry | undefined;
  private readonly pools = new Map<string, WorkerPool>();
  private readonly workerInits = new Map<number, Omit<WorkerNodeInit, "sidePackets" | "sidePresent">>();

  /** The shared plan of a graph (built on first use). */
  static of(graph: ValidatedGraph, registry?: EngineRegistry): GraphPlan {
    let plan = plans.get(graph);
    if (plan === undefined) {
      plan = new GraphPlan(graph, registry);
      plans.set(graph, plan);
    }
    return plan;
  }

  private constructor(graph: ValidatedGraph, registry: EngineRegistry | undefined) {
    this.id = `${process.pid}.${nextPlanId++}`;
    this.graph = graph;
    this.registry = registry;
    this.queueLimit = graph.maxQueueSize < 0 ? Infinity : graph.maxQueueSize;

    const streamNames = [...graph.streams.keys()];
    for (const p of graph.inputStreams) if (!graph.streams.has(p.name)) streamNames.push(p.name);
    const streamIndex = new Map(streamNames.map((n, i) => [n, i]));
    const graphInputNames = new Set(graph.inputStreams.map((p) => p.name));
    const graphOutputNames = new Set(graph.outputStreams.map((p) => p.name));
    this.streamIndex = streamIndex;
    this.streams = streamNames.map((name) => {
      const consumers = graph.streams.get(name)?.consumers ?? [];
      return {
        name,
        consumerNode: Int32Array.from(consumers, (c) => c.node),
        consumerPort: Int32Array.from(consumers, (c) => c.port),
        graphInput: graphInputNames.has(name),
        graphOutput: graphOutputNames.has(name) || graph.streams.get(name)?.graphOutput === true,
      };
    });
    this.graphInputs = Int32Array.from(graph.inputStreams, (p) => streamIndex.get(p.name)!);
    this.graphOutputs = Int32Array.from(graph.outputStreams, (p) => streamIndex.get(p.name)!);

    const sideNames = [...graph.sidePackets.keys()];
    for (const n of graph.requiredSidePackets) if (!graph.sidePackets.has(n)) sideNames.push(n);
    const sideIndex = new Map(sideNames.map((n, i) => [n, i]));
    this.sideIndex = sideIndex;
    this.sidePackets = sideNames.map((name) => {
      const info = graph.sidePackets.get(name);
      return {
        name,
        fromGraph: info === undefined || info.producer === "graph",
        consumers: Int32Array.from(info?.consumers ?? [], (c) => c.node),
      };
    });

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
        const producer = graph.streams.get(p.name)?.producer;
        if (producer === undefined || producer === "graph") return new Int32Array(0);
        const up = sourcesOf[producer.node] ?? new Set<number>();
        if (!node.backEdge[i]) for (const s of up) feeding.add(s);
        return Int32Array.from(up);
      });
      sourcesOf[node.id] = feeding;
      const isSource = node.inputs.length === 0;
      const contract = node.calculator.contract;
      // The contract's handler (MediaPipe's SetInputStreamHandler) applies
      // unless validation already resolved a non-default one for the node.
      let handlerSpec: HandlerSpec = node.inputStreamHandler;
      if (handlerSpec.kind === "default" && contract.inputStreamHandler !== undefined) {
        const kind = HANDLER_KINDS[contract.inputStreamHandler];
        handlerSpec = kind === "sync_set" ? { kind, sets: [] } : { kind };
      }
      const executor = node.executor === "" && contract.executor === "worker" ? WORKER_POOL_EXECUTOR : node.executor;
      const isWorker = executor === WORKER_POOL_EXECUTOR || graph.executors.get(executor)?.type === "ThreadPoolExecutor";
      return {
        id: node.id,
        name: node.name,
        calculatorName: node.calculatorName,
        cls: node.calculator,
        spec: node,
        indexes: portIndexes(node),
        handler: createInputHandler(handlerSpec, node.inputs.length),
        inStream,
        outStream: Int32Array.from(node.outputs, (p) => streamIndex.get(p.name)!),
        inSide: Int32Array.from(node.inputSidePackets, (p) => sideIndex.get(p.name)!),
        outSide: Int32Array.from(node.outputSidePackets, (p) => sideIndex.get(p.name)!),
        isSource,
        // Non-sources: n + id (downstream first). Sources: below zero, lower
        // source_layer first, then lower id.
        priority: isSource ? -(node.sourceLayer * n + node.id) - 1 : n + node.id,
        offset: node.timestampOffset ?? contract.timestampOffset,
        maxInFlight: Math.max(1, node.maxInFlight || 1),
        workerExecutor: isWorker ? executor : undefined,
        soleConsumer: node.inputs.map((p) => {
          const s = this.streams[streamIndex.get(p.name)!];
          return s.consumerNode.length === 1 && !s.graphOutput;
        }),
        throttles,
      } satisfies NodePlan;
    });
    this.hasWorkers = this.nodes.some((node) => node.workerExecutor !== undefined);
  }

  /** The worker pool of an executor, created on first use. */
  pool(executor: string): WorkerPool {
    let pool = this.pools.get(executor);
    if (pool === undefined) {
      pool = new WorkerPool(executor, this.graph.executors.get(executor)?.numThreads);
      this.pools.set(executor, pool);
    }
    return pool;
  }

  /** The run-independent part of what a worker needs to open a node. */
  workerInit(id: number): Omit<WorkerNodeInit, "sidePackets" | "sidePresent"> {
    let init = this.workerInits.get(id);
    if (init === undefined) {
      const node = this.nodes[id];
      const moduleUrl = this.registry?.moduleUrlOf(node.calculatorName);
      if (moduleUrl === undefined) {
        throw new Error(
          `Calculator "${node.calculatorName}" cannot run on executor "${node.workerExecutor}": its module URL is unknown (register it with registry.register(cls, import.meta.url)).`,
        );
      }
      const options = node.spec.options as (Record<string, unknown> & { $type?: { toObject(m: object): Record<string, unknown>; fullName: string } }) | undefined;
      const type = options?.$type;
      init = {
        key: `${this.id}/${id}`,
        moduleUrl,
        calculatorName: node.calculatorName,
        nodeName: node.name,
        optionsType: type?.fullName.replace(/^\./, "") ?? node.cls.contract.options,
        options: options === undefined ? undefined : type ? type.toObject(options) : { ...options },
        schemaFiles: this.registry?.schema.files ?? [],
        inputs: node.spec.inputs,
        outputs: node.spec.outputs,
        inputSidePackets: node.spec.inputSidePackets,
        outputSidePackets: node.spec.outputSidePackets,
        openedCount: new SharedArrayBuffer(4),
      };
      this.workerInits.set(id, init);
    }
    return init;
  }

  /** Ends the graph's worker pools (closing their calculator instances). Runs may start new ones later. */
  async dispose(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    this.workerInits.clear();
    const results = await Promise.allSettled(pools.map((p) => p.destroy()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
  }
}

/** Ends the worker pools a graph's runs started; call when the graph is retired. */
export function disposeGraph(graph: ValidatedGraph): Promise<void> {
  return plans.get(graph)?.dispose() ?? Promise.resolve();
}
