/**
 * What the web UI reads about a servable's graph: its structure
 * (`GET /graphserve/v1/graphs/{name}`) and its live per-node statistics
 * (`GET /graphserve/v1/graphs/{name}/stats`). Plain JSON, shared by the
 * server and the browser bundle, so the two cannot drift apart.
 */

/** A stream or side packet as a node or the graph names it: `TAG:index:name`. */
export interface PortView {
  readonly tag: string;
  readonly index: number;
  /** The stream's or side packet's name. */
  readonly name: string;
}

/** A node input: where its packets come from, and whether it closes a cycle. */
export interface InputPortView extends PortView {
  /** The producing node's id, or "graph" for a graph input stream / a host side packet. */
  readonly producer: number | "graph";
  readonly backEdge: boolean;
}

export interface NodeView {
  /** Topological index, as in the stats. */
  readonly id: number;
  readonly name: string;
  readonly calculator: string;
  /** "" for the main thread. */
  readonly executor: string;
  readonly inputStreamHandler: string;
  readonly inputs: readonly InputPortView[];
  readonly outputs: readonly PortView[];
  readonly inputSidePackets: readonly InputPortView[];
  readonly outputSidePackets: readonly PortView[];
  /** The options message's full type name (e.g. `mediapipe.ImageGenCalculatorOptions`), when the node has one. */
  readonly optionsType: string | null;
  /** The decoded options as JSON (proto field names), defaults included; null when none. */
  readonly options: Readonly<Record<string, unknown>> | null;
}

export interface ExecutorView {
  readonly name: string;
  /** "" (main thread) or "ThreadPoolExecutor". */
  readonly type: string;
  readonly numThreads: number | null;
}

export interface GraphView {
  /** The servable's name. */
  readonly name: string;
  /** The servable's state as `/v1/config` reports it (e.g. "AVAILABLE"). */
  readonly state: string;
  /** graph.pbtxt as loaded. */
  readonly pbtxt: string;
  readonly inputStreams: readonly PortView[];
  readonly outputStreams: readonly PortView[];
  /** Side packets the server supplies to every run. */
  readonly hostSidePackets: readonly string[];
  readonly executors: readonly ExecutorView[];
  /** In topological order: `nodes[i].id === i`. */
  readonly nodes: readonly NodeView[];
}

/**
 * One node's `process` calls since the servable loaded, over every instance
 * of its graph. A call runs from the moment the engine invokes `process`
 * until it returns or settles, or, if it handed work off
 * (`ctx.continueUntil`, e.g. a streamed answer), until that work settled.
 * Time a call spends waiting inside the node (for a generation slot behind
 * other requests) is part of it: it is in process, so it counts as active
 * and in the times. Every finished call is one of ok, `errors` or `cancelled`.
 */
export interface NodeStats {
  readonly id: number;
  readonly name: string;
  /** Calls finished: succeeded, failed and cancelled alike. */
  readonly processed: number;
  /** Calls in process now, including those waiting inside the node for capacity and those whose handed-off work still runs. */
  readonly active: number;
  /** Calls that failed: threw or rejected while their run went on, or whose handed-off work rejected. */
  readonly errors: number;
  /**
   * Calls that were cancelled, not failed: they threw or rejected after
   * their run was told to stop (the client went away, or another node
   * failed), or their handed-off work ended after its cancellation (a
   * client leaving a stream). Not counted in `errors`.
   */
  readonly cancelled: number;
  /** Mean wall time of a finished call (whatever its outcome), ms; null before the first. */
  readonly meanMs: number | null;
  /** Wall time of the latest finished call, ms; null before the first. */
  readonly lastMs: number | null;
}

export interface GraphStats {
  readonly name: string;
  /** Server clock when the numbers were read (ms since the epoch). */
  readonly time: number;
  /** Graph runs (requests) in progress now, and finished since the servable loaded. */
  readonly runs: { readonly active: number; readonly finished: number };
  readonly nodes: readonly NodeStats[];
}
