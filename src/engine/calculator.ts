/**
 * The public contract between the engine and a calculator. Built-in
 * calculators in `calculators/` use nothing but what this module exports, and
 * so must a user's.
 */
import type { MemoryCheckOptions } from "../backends/host-memory.js";
import type { Registry as MetricsRegistry } from "prom-client";
import type { Timestamp } from "./timestamp.js";

/** A value travelling on a stream, stamped with the timestamp it belongs to. */
export interface Packet<T = unknown> {
  readonly value: T;
  readonly timestamp: Timestamp;
}

/**
 * Names a port of the node: a tag (`"IMAGE"`, index 0), `"TAG:i"` for a
 * later index of a tag, or a number for the i-th untagged port.
 */
export type PortKey = string | number;

/** One declared port of a node, as the graph wired it. */
export interface Port {
  readonly tag: string;
  readonly index: number;
  /** The stream or side-packet name it is connected to. */
  readonly name: string;
  /** The canonical key: `"TAG"`, `"TAG:i"`, or the untagged index as a number. */
  readonly key: PortKey;
}

/** What a calculator accepts on one tag. */
export interface PortSpec {
  /** The node may leave this tag unconnected. */
  readonly optional?: boolean;
  /** The tag may appear with indexes 0..n-1 rather than once. */
  readonly multiple?: boolean;
  /**
   * A label for the packet type. When both ends of a stream declare one they
   * must be equal; leave it out to accept anything.
   */
  readonly type?: string;
}

/** Ports by tag (`""` is the untagged ports), or `"any"` for any tags at all. */
export type PortSpecs = Readonly<Record<string, PortSpec>> | "any";

/** The shape of a node as written in the graph, handed to `contract.validate`. */
export interface NodeShape<Options = unknown> {
  readonly name: string;
  /** The node's options of the contract's type (defaults when it gives none). */
  readonly options: Options;
  readonly inputs: readonly Port[];
  readonly outputs: readonly Port[];
  readonly inputSidePackets: readonly Port[];
  readonly outputSidePackets: readonly Port[];
}

/** A registered input stream handler's name (the built-in ones listed; hosts may register more). */
export type InputStreamHandlerName =
  | "DefaultInputStreamHandler"
  | "ImmediateInputStreamHandler"
  | "SyncSetInputStreamHandler"
  | "FixedSizeInputStreamHandler"
  | (string & {});

/** What a calculator declares about itself; checked when a graph loads. */
export interface CalculatorContract {
  readonly inputs?: PortSpecs;
  readonly outputs?: PortSpecs;
  readonly inputSidePackets?: PortSpecs;
  readonly outputSidePackets?: PortSpecs;
  /** Fully qualified protobuf type of the node options, e.g. `mediapipe.FlowLimiterCalculatorOptions`. */
  readonly options?: string;
  /** Loading fails when the node carries no options of the declared type. */
  readonly optionsRequired?: boolean;
  /**
   * Where `process` prefers to run when the node names no executor:
   * `"main"` (the default) on the event loop, `"worker"` on the engine's
   * worker pool (for CPU-bound work; see the README for the rules).
   */
  readonly executor?: "main" | "worker";
  /** The handler the node gets when the graph names none for it (MediaPipe's SetInputStreamHandler): a handler set on the node, or graph-wide, wins. */
  readonly inputStreamHandler?: InputStreamHandlerName;
  /**
   * MediaPipe's SetOffset: output bounds follow input bounds shifted by this
   * much, so downstream nodes are not held up when no packet is sent.
   */
  readonly timestampOffset?: number;
  /**
   * Extra load-time checks on how a node is wired and configured; return an
   * error message or nothing. Runs for `graph check` too, so a bad option is
   * reported before any request arrives.
   */
  validate?(node: NodeShape): string | undefined;
  /**
   * What every run of the node shares (a loaded model, a pipeline), built
   * once when the servable loads, before it reports ready, and disposed when
   * the servable retires. Read it with {@link nodeResources}.
   */
  readonly resources?: ResourceSpec;
}

/** A pino-compatible logger subset, bound to the servable being loaded. */
export interface CalculatorLogger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

/** What `contract.resources.load` sees. */
export interface ResourceLoadContext<Options = unknown> {
  readonly node: NodeShape<Options>;
  /** The graph file's folder: relative paths in options resolve against it (as OVMS's models_path). */
  readonly graphDir: string;
  /** The servable being loaded. */
  readonly servable: string;
  readonly logger: CalculatorLogger;
  /** Aborted when the load is abandoned (the server shuts down meanwhile). */
  readonly signal: AbortSignal;
  /** The host's memory policy for loads of large models (the server's --skip_memory_check; tests inject the memory there is). */
  readonly memoryCheck?: MemoryCheckOptions;
  /** The host's Prometheus registry: a node's own metrics go here (the server exports it at /metrics when enabled). */
  readonly metrics: MetricsRegistry;
}

/** Loaded node resources; `dispose` runs once the servable's last request is done. */
export interface NodeResources {
  /**
   * Requests the node can hold at once, running plus waiting. The server
   * counts a servable's requests against the smallest capacity of its
   * nodes and answers 429 with Retry-After beyond it.
   */
  readonly capacity?: number;
  /** Seconds a refused client should wait before retrying (the Retry-After header, rounded up to whole seconds from 1 to 600); default 1. */
  retryAfterSeconds?(): number;
  dispose?(): void | Promise<void>;
}

export interface ResourceSpec {
  /**
   * The input side packet tag the host fills (OVMS: IMAGE_GEN_NODE_RESOURCES).
   * Its value is a map from node name to that node's resources, so several
   * nodes may share one side packet name, as OVMS graphs do.
   */
  readonly sidePacket: string;
  load(ctx: ResourceLoadContext): NodeResources | Promise<NodeResources>;
}

/** The side packet value a host supplies for `ResourceSpec.sidePacket`. */
export type NodeResourceMap = ReadonlyMap<string, NodeResources>;

/**
 * This node's resources from the side packet tagged `tag`; throws when the
 * host supplied none (the graph runs outside a servable that loads them).
 */
export function nodeResources<R extends NodeResources>(ctx: Pick<CalculatorContext, "nodeName" | "inputSidePackets">, tag: string): R {
  const map = ctx.inputSidePackets.get<NodeResourceMap>(tag);
  const r = map instanceof Map ? map.get(ctx.nodeName) : undefined;
  if (r === undefined) throw new Error(`Node "${ctx.nodeName}" has no resources on side packet ${tag}: they are loaded when a servable loads the graph.`);
  return r as R;
}

/** The input packets of one invocation. */
export interface InputPorts {
  readonly ports: readonly Port[];
  /** Number of ports with this tag (`""` for untagged). */
  count(tag?: string): number;
  /** Whether the node has this port at all. */
  has(key: PortKey): boolean;
  /** The packet at the input timestamp, or undefined when the stream has none. */
  packet<T = unknown>(key: PortKey): Packet<T> | undefined;
  /** Shorthand for `packet(key)?.value`. */
  value<T = unknown>(key: PortKey): T | undefined;
  /** The stream will carry no more packets. */
  isDone(key: PortKey): boolean;
}

/** Where a calculator sends its results. */
export interface OutputPorts {
  readonly ports: readonly Port[];
  count(tag?: string): number;
  has(key: PortKey): boolean;
  /** Sends a packet; the timestamp defaults to the input timestamp. */
  add(key: PortKey, value: unknown, timestamp?: Timestamp): void;
  /** Promises no packet below `timestamp` on this stream. */
  setNextTimestampBound(key: PortKey, timestamp: Timestamp): void;
  /** Promises no more packets on this stream. */
  close(key: PortKey): void;
}

export interface SidePacketReader {
  readonly ports: readonly Port[];
  has(key: PortKey): boolean;
  get<T = unknown>(key: PortKey): T | undefined;
}

export interface SidePacketWriter {
  readonly ports: readonly Port[];
  set(key: PortKey, value: unknown): void;
}

/** Everything a calculator sees during `open`, `process` or `close`. */
export interface CalculatorContext<Options = unknown> {
  readonly nodeName: string;
  readonly calculatorName: string;
  /**
   * The node's options message of the declared type. Unset fields read as
   * their defaults; `Object.hasOwn(options, field)` tells whether one was set.
   */
  readonly options: Options;
  /** The timestamp being processed; `Timestamp.Unstarted` in open, `Timestamp.Done` in close. */
  readonly inputTimestamp: Timestamp;
  readonly inputs: InputPorts;
  readonly outputs: OutputPorts;
  readonly inputSidePackets: SidePacketReader;
  readonly outputSidePackets: SidePacketWriter;
  /**
   * Aborted when the run fails or is cancelled: long work should stop. A
   * `process` call that throws or rejects once it aborted counts in the
   * node's statistics as cancelled, not failed.
   */
  readonly signal: AbortSignal;
  /**
   * Work this `process` call hands off (an event stream it emitted, a
   * background job) goes on until `done` settles: the node's live statistics
   * count the call as active, and time it, until then. Statistics only: the
   * engine still considers the call finished when `process` returns. Call it
   * during `process`, as often as needed (the call ends when all settled).
   * A rejected `done` counts the call as failed, so resolve it when the work
   * was merely cancelled: resolving after `signal` aborted counts the call
   * as cancelled. `signal` is what cancels the work, `ctx.signal` (the
   * run's) by default; pass the work's own when it outlives the run (a
   * stream answered after the run ended, cancelled when its client leaves).
   * The engine observes `done`: its rejection is never unhandled. On a
   * worker executor it only does that (a promise cannot cross threads): the
   * call is timed until its result reaches the main thread.
   */
  continueUntil(done: PromiseLike<unknown>, signal?: AbortSignal): void;
}

/** Returned from `process` by a source (or any node) to say it is finished. */
export const STOP: unique symbol = Symbol.for("graphserve.calculator.stop");
export type ProcessResult = void | typeof STOP;

/**
 * Base class of every calculator. The engine creates one instance per graph
 * run, calls `open` once, `process` once per input set, and `close` once if
 * `open` succeeded, even when the run fails.
 */
export abstract class Calculator<Options = unknown> {
  /** Subclasses declare their contract as a static field. */
  static readonly contract: CalculatorContract = {};
  /** The name graphs use; defaults to the class name. */
  static readonly calculatorName?: string;

  open?(ctx: CalculatorContext<Options>): void | Promise<void>;
  abstract process(ctx: CalculatorContext<Options>): ProcessResult | Promise<ProcessResult>;
  close?(ctx: CalculatorContext<Options>): void | Promise<void>;
}

/** A calculator class as the registry holds it. */
export interface CalculatorClass<Options = unknown> {
  new (): Calculator<Options>;
  readonly contract: CalculatorContract;
  readonly calculatorName?: string;
  readonly name: string;
}

/** The name a graph refers to a calculator class by. */
export function calculatorNameOf(cls: CalculatorClass<unknown>): string {
  return cls.calculatorName ?? cls.name;
}

/**
 * Parses a port key into tag and index: `"TAG"` → (TAG, 0), `"TAG:2"` →
 * (TAG, 2), `3` → ("", 3).
 */
export function parsePortKey(key: PortKey): { tag: string; index: number } {
  if (typeof key === "number") return { tag: "", index: key };
  const colon = key.indexOf(":");
  if (colon < 0) return { tag: key, index: 0 };
  return { tag: key.slice(0, colon), index: Number(key.slice(colon + 1)) };
}

/** The canonical key of a (tag, index) pair; see {@link PortKey}. */
export function portKey(tag: string, index: number): PortKey {
  if (tag === "") return index;
  return index === 0 ? tag : `${tag}:${index}`;
}
