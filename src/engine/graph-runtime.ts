/**
 * One graph's runtime: its plan, the executors (worker pools) its runs use,
 * its per-node statistics, and which values others may hold (for buffers
 * moving to workers). Shared by every run of the graph and owned by one
 * party, which calls dispose() once when the graph is retired: a servable
 * generation, a GraphPool given a bare graph, or a GraphRun given one.
 */
import { BufferOwnership } from "./buffer-ownership.js";
import { executorType, type Executor, type ExecutorDefaults } from "./executors/index.js";
import { GraphPlan } from "./graph-plan.js";
import type { NodeStatsCollector } from "./node-stats.js";
import type { WorkerNodeInit } from "./worker-protocol.js";
import type { ValidatedGraph } from "../graph/validated.js";

let nextRuntimeId = 0;

export interface GraphRuntimeOptions {
  /** Collects per-node `process` statistics of every run. */
  readonly stats?: NodeStatsCollector;
  /** What executors that set no size of their own get (the server's --rest_workers). */
  readonly executors?: ExecutorDefaults;
}

export class GraphRuntime {
  /** Tells this runtime's nodes apart on worker threads (which key their instances by it). */
  readonly id: string;
  readonly graph: ValidatedGraph;
  readonly plan: GraphPlan;
  readonly stats: NodeStatsCollector | undefined;
  /** Which values someone besides the engine may hold; only for graphs with worker nodes. */
  readonly ownership: BufferOwnership | undefined;
  private readonly executorDefaults: ExecutorDefaults;
  private readonly executors = new Map<string, Executor>();
  private readonly workerInits = new Map<number, Omit<WorkerNodeInit, "sidePackets" | "sidePresent">>();
  private disposed: Promise<void> | undefined;

  constructor(graph: ValidatedGraph, opts: GraphRuntimeOptions = {}) {
    if (opts.executors?.threads !== undefined && !(Number.isInteger(opts.executors.threads) && opts.executors.threads > 0)) {
      throw new Error(`worker thread count must be a positive integer, got ${opts.executors.threads}`);
    }
    this.id = `${process.pid}.${nextRuntimeId++}`;
    this.graph = graph;
    this.plan = new GraphPlan(graph);
    this.stats = opts.stats;
    this.executorDefaults = opts.executors ?? {};
    this.ownership = this.plan.hasWorkers ? new BufferOwnership() : undefined;
  }

  /** A declared executor of the graph (by name), created on first use. */
  executor(name: string): Executor {
    if (this.disposed !== undefined) throw new Error("The graph runtime has been disposed.");
    let executor = this.executors.get(name);
    if (executor === undefined) {
      const spec = this.graph.executors.get(name)!;
      executor = executorType(spec.type)!.create(spec, this.executorDefaults);
      this.executors.set(name, executor);
    }
    return executor;
  }

  /** The run-independent part of what a worker needs to open a node. */
  workerInit(id: number): Omit<WorkerNodeInit, "sidePackets" | "sidePresent"> {
    let init = this.workerInits.get(id);
    if (init === undefined) {
      const node = this.plan.nodes[id];
      const moduleUrl = node.spec.moduleUrl;
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
        schemaFiles: this.graph.schemaFiles,
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

  /** Ends the executors (closing their calculator instances). Idempotent; rejects when a `close` failed. */
  dispose(): Promise<void> {
    this.disposed ??= (async () => {
      const executors = [...this.executors.values()];
      this.executors.clear();
      this.workerInits.clear();
      const results = await Promise.allSettled(executors.map((p) => p.destroy()));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
    })();
    return this.disposed;
  }
}
