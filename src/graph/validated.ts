/**
 * A graph that passed validation: every name resolved, every node bound to a
 * calculator class, nodes in topological order. The scheduler runs this shape
 * and never re-checks what validation established.
 */
import type { CalculatorClass, Port } from "../engine/calculator.js";
import type { GraphDocument, OptionsMessage } from "./config.js";
import type { SourceLocation } from "./diagnostics.js";

/** A node endpoint: the node's topological id and a flat port index. */
export interface Endpoint {
  readonly node: number;
  readonly port: number;
}

/**
 * A node's input stream handler as validation configured it: the registered
 * handler's kind ("default", "sync_set"…) and whatever its `configure` read
 * from the options (engine/stream-handlers/).
 */
export interface InputStreamHandlerSpec {
  readonly kind: string;
}

export interface ValidatedNode {
  /** Topological index (back edges ignored); also the node's scheduling priority. */
  readonly id: number;
  /** Canonical name: `name`, or the calculator name, suffixed `_1`, `_2` … when repeated. */
  readonly name: string;
  readonly calculatorName: string;
  readonly calculator: CalculatorClass<unknown>;
  /** The module the calculator class was registered from (worker threads import it), if the registry knows it. */
  readonly moduleUrl: string | undefined;
  /**
   * Ports in MediaPipe's flat order: tags sorted ("" first), then by index.
   * A port's position in the array is its flat index.
   */
  readonly inputs: readonly Port[];
  readonly outputs: readonly Port[];
  readonly inputSidePackets: readonly Port[];
  readonly outputSidePackets: readonly Port[];
  /** Per flat input index: the input is a back edge. */
  readonly backEdge: readonly boolean[];
  /** The decoded options message of the contract's type (defaults when the node gives none). */
  readonly options: OptionsMessage | undefined;
  /** Executor name: "" for the main-thread default. */
  readonly executor: string;
  readonly inputStreamHandler: InputStreamHandlerSpec;
  readonly maxInFlight: number;
  readonly sourceLayer: number;
  /** Output bounds follow input bounds by this offset (contract's timestampOffset). */
  readonly timestampOffset: number | undefined;
  readonly location: SourceLocation | undefined;
}

export interface StreamInfo {
  readonly name: string;
  /** The producing node output, or "graph" for a graph input stream. */
  readonly producer: Endpoint | "graph";
  /** Node inputs that read the stream. */
  readonly consumers: readonly Endpoint[];
  /** The stream is a graph output stream. */
  readonly graphOutput: boolean;
}

export interface SidePacketInfo {
  readonly name: string;
  /** The producing node's output side packet, or "graph" when the host supplies it. */
  readonly producer: Endpoint | "graph";
  readonly consumers: readonly Endpoint[];
}

export interface ExecutorSpec {
  readonly name: string;
  /** "" (the event loop) or a registered executor type, e.g. "ThreadPoolExecutor" (engine/executors/). */
  readonly type: string;
  /** Worker count for a ThreadPoolExecutor; undefined means the engine's default. */
  readonly numThreads: number | undefined;
}

export interface ValidatedGraph {
  readonly document: GraphDocument;
  /** In topological order: `nodes[i].id === i`. */
  readonly nodes: readonly ValidatedNode[];
  /** Graph `input_stream` entries, parsed. */
  readonly inputStreams: readonly Port[];
  /** Graph `output_stream` entries, parsed. */
  readonly outputStreams: readonly Port[];
  /**
   * Side packets the host must supply at the start of a run: consumed by a
   * port that is not optional, and produced by no node. An optional one the
   * host leaves out reads as undefined.
   */
  readonly requiredSidePackets: readonly string[];
  readonly streams: ReadonlyMap<string, StreamInfo>;
  readonly sidePackets: ReadonlyMap<string, SidePacketInfo>;
  /** Declared executors by name, plus "" (main thread) and "__workers" (the engine pool). */
  readonly executors: ReadonlyMap<string, ExecutorSpec>;
  /** Per-stream input queue limit; -1 means unlimited. Default 100. */
  readonly maxQueueSize: number;
  readonly reportDeadlock: boolean;
  /**
   * Graph instances to keep ready and reuse, from the header directive
   * (AUTO = available parallelism); undefined builds a graph per request.
   */
  readonly graphQueueSize: number | undefined;
  /** The .proto files the node options were read against, in load order (worker threads reload them). */
  readonly schemaFiles: readonly string[];
}

/** The executor a node gets when it names none but its calculator prefers workers. */
export const WORKER_POOL_EXECUTOR = "__workers";
