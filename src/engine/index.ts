/**
 * `graphserve/engine`: the graph engine for hosts that embed it without the
 * server. Load a graph (parse + validate against a CalculatorRegistry), then
 * run it: GraphRun is one MediaPipe-style run (observers, addPacket,
 * waitUntilDone), GraphPool answers requests (a run per request, or a pool
 * of persistent runs). Calculators are written against the root entry
 * (`graphserve`); the extension points (input stream handlers, executor
 * types) are registered by name here.
 */
export * from "../index.js";
export { CalculatorRegistry } from "./registry.js";
export { loadGraphFile, parseGraphText } from "../graph/load.js";
export { validateGraph } from "../graph/validate.js";
export { GraphError, type Diagnostic, type SourceLocation } from "../graph/diagnostics.js";
export type { ValidatedGraph, ValidatedNode, InputStreamHandlerSpec, ExecutorSpec } from "../graph/validated.js";
export { GraphRun, type BoundObserver, type GraphRunOptions, type PacketObserver } from "./graph-run.js";
export { GraphPool, type GraphPoolOptions, type RunOutputs, type RunRequestOptions } from "./graph-pool.js";
export { NodeStatsCollector } from "./node-stats.js";
export { loadNodeResources, type LoadedResources, type ResourceLoadOptions } from "./node-resources.js";
export {
  registerInputStreamHandler,
  NOT_READY,
  READY_FOR_CLOSE,
  type HandlerConfigContext,
  type InputHandler,
  type InputStreamHandlerType,
} from "./stream-handlers/index.js";
export { registerExecutorType, type Executor, type ExecutorDefaults, type ExecutorType } from "./executors/index.js";
export type { PacketQueue } from "./packet-queue.js";
