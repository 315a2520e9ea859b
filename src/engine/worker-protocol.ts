/**
 * What the main thread and the worker threads of a ThreadPoolExecutor say to
 * each other (see worker-pool.ts for the semantics). Which buffers may move
 * across is buffer-ownership.ts.
 */
import type { Port } from "./calculator.js";

/** Everything a worker thread needs to build and open its own instance of a node. */
export interface WorkerNodeInit {
  /** Identifies (graph, node) across threads. */
  readonly key: string;
  readonly moduleUrl: string;
  readonly calculatorName: string;
  readonly nodeName: string;
  /** The options message as a plain object (set fields only) and its type, rebuilt against the schema files. */
  readonly optionsType: string | undefined;
  readonly options: Record<string, unknown> | undefined;
  readonly schemaFiles: readonly string[];
  readonly inputs: readonly Port[];
  readonly outputs: readonly Port[];
  readonly inputSidePackets: readonly Port[];
  readonly outputSidePackets: readonly Port[];
  /** Int32Array[1]: how many threads hold an opened instance (the main side stops sending `init` at the pool size). */
  readonly openedCount: SharedArrayBuffer;
  /** The run's input side packets by flat index (structured clones). */
  readonly sidePackets: readonly unknown[];
  readonly sidePresent: readonly boolean[];
}

export interface WorkerProcessTask {
  readonly kind: "process";
  readonly key: string;
  /** Sent until every thread has opened the node; a thread without an instance and no init answers `needInit`. */
  readonly init: WorkerNodeInit | undefined;
  /** Timestamp.Unset for a source. */
  readonly ts: number;
  /** Per flat input: the packet value at `ts` (present[i] false = empty packet). */
  readonly values: readonly unknown[];
  readonly present: readonly boolean[];
  readonly done: readonly boolean[];
  /** Int32Array[1], non-zero once the run is cancelled or failed: the context's signal reflects it. */
  readonly cancel: SharedArrayBuffer;
}

export interface WorkerCloseTask {
  readonly kind: "closeAll";
  /** Int32Array[1] barrier: every thread takes exactly one close task. */
  readonly barrier: SharedArrayBuffer;
  readonly parties: number;
  /** Give up waiting for the other threads after this long (a thread stuck in a task). */
  readonly waitMs: number;
}

export type WorkerTask = WorkerProcessTask | WorkerCloseTask;

/** A Process call's recorded outputs, in the OutputBuffer layout. */
export interface WorkerProcessResult {
  readonly kinds: number[];
  readonly portsAt: number[];
  readonly values: unknown[];
  readonly stamps: number[];
  readonly length: number;
  readonly side: { port: number; value: unknown }[];
  readonly stop: boolean;
  readonly needInit?: boolean;
  readonly failed?: "Open" | "Process";
  readonly error?: unknown;
}

export interface WorkerCloseResult {
  readonly errors: { node: string; error: unknown }[];
}
