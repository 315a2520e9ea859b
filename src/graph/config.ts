/**
 * Typed views of the messages in proto/mediapipe/framework/calculator.proto.
 * Field names are the proto's (snake_case): the schema is loaded with
 * keepCase so a graph file, this interface and MediaPipe's docs all agree.
 * Values are protobufjs message instances, so unset proto2 fields read as
 * their defaults and `Object.hasOwn` tells presence.
 */
import type { SourceLocation } from "./diagnostics.js";

/** A decoded options message of some type (fields depend on the type). */
export type OptionsMessage = Record<string, unknown>;

export interface InputStreamInfo {
  tag_index: string;
  back_edge: boolean;
}

/** MediaPipeOptions / CalculatorOptions: extension messages keyed by extension field name. */
export type ExtensionContainer = Record<string, unknown>;

export interface ExecutorConfig {
  name: string;
  type: string;
  options?: ExtensionContainer | null;
}

export interface InputStreamHandlerConfig {
  input_stream_handler: string;
  options?: ExtensionContainer | null;
}

export interface OutputStreamHandlerConfig {
  output_stream_handler: string;
  input_side_packet: string[];
  options?: ExtensionContainer | null;
}

export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

export interface NodeConfig {
  name: string;
  calculator: string;
  input_stream: string[];
  output_stream: string[];
  input_side_packet: string[];
  output_side_packet: string[];
  options?: ExtensionContainer | null;
  node_options: AnyMessage[];
  source_layer: number;
  buffer_size_hint: number;
  input_stream_handler?: InputStreamHandlerConfig | null;
  output_stream_handler?: OutputStreamHandlerConfig | null;
  input_stream_info: InputStreamInfo[];
  executor: string;
  max_in_flight: number;
  option_value: string[];
  external_input: string[];
}

export interface CalculatorGraphConfig {
  node: NodeConfig[];
  packet_factory: unknown[];
  packet_generator: unknown[];
  num_threads: number;
  status_handler: unknown[];
  input_stream: string[];
  output_stream: string[];
  input_side_packet: string[];
  output_side_packet: string[];
  max_queue_size: number;
  report_deadlock: boolean;
  input_stream_handler?: InputStreamHandlerConfig | null;
  output_stream_handler?: OutputStreamHandlerConfig | null;
  executor: ExecutorConfig[];
  package: string;
  type: string;
  options?: ExtensionContainer | null;
  graph_options: AnyMessage[];
}

/**
 * One options payload attached to a node, from `options { [X.ext] {…} }` or
 * `node_options { [type.googleapis.com/X] {…} }`.
 */
export interface NodeOptionsEntry {
  /** Fully qualified message type, e.g. `mediapipe.ImageGenCalculatorOptions`. */
  readonly typeName: string;
  readonly via: "options" | "node_options";
  /** The decoded message, or undefined when the schema does not know the type. */
  readonly message?: OptionsMessage;
  /** The payload's source text, kept when the type is unknown. */
  readonly rawText?: string;
  readonly location: SourceLocation;
}

/** What the `# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO|N` header comment asked for. */
export interface GraphDirectives {
  /** "AUTO", a count, or undefined when the header has no such line. */
  readonly graphQueueMaxSize?: "AUTO" | number;
}

/** A parsed graph file: the config plus what the engine needs beside it. */
export interface GraphDocument {
  readonly file: string;
  readonly config: CalculatorGraphConfig;
  readonly directives: GraphDirectives;
  /** Comment lines before the first field, without the leading `#`. */
  readonly headerComments: readonly string[];
  /** Option payloads per node, in node order. */
  readonly nodeOptions: readonly (readonly NodeOptionsEntry[])[];
  /** Non-fatal findings, such as option payloads of unknown types. */
  readonly warnings: readonly import("./diagnostics.js").Diagnostic[];
  /**
   * Where a field of a message in `config` was written: `locate(node,
   * "input_stream", 2)` is the third input_stream entry of that node. Falls
   * back to the message's own position when the field is absent.
   */
  locate(message: object, field?: string, index?: number): SourceLocation | undefined;
}
