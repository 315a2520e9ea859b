/**
 * How a graph run fails: one RunFailure per error (a node's Open, Process or
 * Close, or the graph itself), combined into a GraphRunError with
 * MediaPipe's message; StatusError carries an absl-style status code.
 */

export type RunPhase = "Open" | "Process" | "Close";

/** One failure of a run: a calculator phase of a node, or the graph itself (node undefined). */
export interface RunFailure {
  readonly node: string | undefined;
  readonly phase: RunPhase | "Graph";
  readonly cause: unknown;
}

/**
 * A failed run, with MediaPipe's combined message:
 * `CalculatorGraph::Run() failed: \nCalculator::Process() for node "X" failed: …`,
 * one line per error.
 */
export class GraphRunError extends Error {
  readonly errors: readonly RunFailure[];
  constructor(errors: readonly RunFailure[]) {
    super(`CalculatorGraph::Run() failed: \n${errors.map(describeFailure).join("\n")}`);
    this.name = "GraphRunError";
    this.errors = errors;
  }
}

/** absl status codes (MediaPipe's absl::StatusCode names). */
export type StatusCode =
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

/**
 * An error with an absl-style status code: what a calculator throws to say
 * how a call failed (a host maps the code, e.g. the server to an HTTP
 * status), and what the engine reports for a throttling deadlock
 * (UNAVAILABLE).
 */
export class StatusError extends Error {
  readonly code: StatusCode;
  constructor(code: StatusCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StatusError";
    this.code = code;
  }
}

export function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

export function describeFailure(f: RunFailure): string {
  return f.phase === "Graph" ? messageOf(f.cause) : `Calculator::${f.phase}() for node "${f.node}" failed: ${messageOf(f.cause)}`;
}
