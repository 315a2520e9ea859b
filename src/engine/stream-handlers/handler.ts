/**
 * What an input stream handler is: at load, `configure` turns the node's
 * handler config (its options extension, the node's inputs) into a spec
 * (plain data on the validated graph); at run time, `create` builds the
 * InputHandler that decides when the node is ready and which packets form
 * its input set. Handlers are registered by name in ./index.ts.
 */
import type { Packet, Port } from "../calculator.js";
import type { PacketQueue } from "../packet-queue.js";
import type { InputStreamHandlerSpec } from "../../graph/validated.js";
import type { SourceLocation } from "../../graph/diagnostics.js";

/** Readiness result: no input set yet. */
export const NOT_READY = -Infinity;
/** Readiness result: every input is done, the node may close. */
export const READY_FOR_CLOSE = Infinity;

export interface InputHandler {
  /** The timestamp of the next input set, or NOT_READY / READY_FOR_CLOSE. */
  readiness(queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array): number;
  /** Pops the input set at `ts` (from `readiness`) into `current`. */
  fill(ts: number, queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array, current: (Packet | undefined)[]): void;
  /** Called after a packet joined one of the node's queues (FixedSize drops surplus here, as MediaPipe does on add). */
  packetAdded?(queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array): void;
  /**
   * A handler keeping state across calls (FixedSize's kept timestamp) gives
   * each run its own instance; a stateless one is shared by every run.
   */
  forRun?(): InputHandler;
}

/** What `configure` sees of the node whose handler it sets up. */
export interface HandlerConfigContext {
  readonly nodeName: string;
  /** The node's input streams in flat order. */
  readonly inputs: readonly Port[];
  /** The handler's options extension message as loaded (undefined when the config gives none). */
  readonly options: Record<string, unknown> | undefined;
  /** Where a part of the options message is, for a load error. */
  at(message: object, field?: string, index?: number): SourceLocation;
  /** Reports a load error (the graph then fails to load with every error). */
  fail(message: string, location: SourceLocation): void;
  /** The location of the handler config (or of the node when the handler comes from the calculator's contract). */
  readonly location: SourceLocation;
}

export interface InputStreamHandlerType<S extends InputStreamHandlerSpec = InputStreamHandlerSpec> {
  /** MediaPipe's registered name, as graphs write it: "DefaultInputStreamHandler". */
  readonly name: string;
  /** The short kind on the validated graph and in the graph view: "default". */
  readonly kind: S["kind"];
  /** The full name of the MediaPipeOptions extension holding its options, if it takes any. */
  readonly optionsExtension?: string;
  /** Checks the node's config and returns the spec `create` gets. */
  configure(ctx: HandlerConfigContext): S;
  create(spec: S, numInputs: number): InputHandler;
}
