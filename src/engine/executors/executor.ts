/**
 * What an executor type is. A graph's ExecutorConfig names a type
 * ("ThreadPoolExecutor"); validation asks the registered type to read the
 * config's options, and a graph runtime creates one Executor per declared
 * executor its nodes use. Nodes on the default executor ("") run on the
 * event loop and never reach an Executor. Registered by type in ./index.ts.
 */
import type { WorkerProcessResult, WorkerProcessTask } from "../worker-protocol.js";
import type { ExecutorSpec } from "../../graph/validated.js";

/** Runs a node's calls off the event loop (the worker protocol of worker-protocol.ts). */
export interface Executor {
  readonly name: string;
  /** Threads serving calls: each opens its own instance of a node the first time it serves it. */
  readonly threads: number;
  /** Runs one call; `transferList` holds the input buffers that move rather than copy. */
  run(task: WorkerProcessTask, transferList: ArrayBuffer[]): Promise<WorkerProcessResult>;
  /** Closes every node instance it opened and ends its threads; rejects when a `close` failed. */
  destroy(): Promise<void>;
}

/** What the host decides for every executor that does not set its own size. */
export interface ExecutorDefaults {
  /** Threads of a pool whose config names no count (the server's --rest_workers); undefined: one per core. */
  readonly threads?: number;
}

export interface ExecutorType {
  /** ExecutorConfig.type as graphs write it. */
  readonly type: string;
  /** The full name of the MediaPipeOptions extension holding its options, if it takes any. */
  readonly optionsExtension?: string;
  /** Reads the config's options: the thread count it asks for (undefined: the host's default). */
  configure(options: Record<string, unknown> | undefined): { readonly numThreads: number | undefined };
  create(spec: ExecutorSpec, defaults: ExecutorDefaults): Executor;
}
