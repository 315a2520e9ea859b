/**
 * graphserve's public entry: what calculator authors import (built-in
 * calculators use nothing but this module). Hosts embedding the engine
 * import `graphserve/engine` (src/engine/index.ts), which re-exports this.
 */
export {
  Calculator,
  STOP,
  calculatorNameOf,
  nodeResources,
  parsePortKey,
  portKey,
  type CalculatorClass,
  type CalculatorContext,
  type CalculatorContract,
  type CalculatorLogger,
  type NodeResourceMap,
  type NodeResources,
  type ResourceLoadContext,
  type ResourceSpec,
  type InputPorts,
  type InputStreamHandlerName,
  type NodeShape,
  type OutputPorts,
  type Packet,
  type Port,
  type PortKey,
  type PortSpec,
  type PortSpecs,
  type ProcessResult,
  type SidePacketReader,
  type SidePacketWriter,
} from "./engine/calculator.js";
export { Timestamp } from "./engine/timestamp.js";
export type { AvailableMemory, MemoryCheckOptions, MemoryFigure } from "./backends/host-memory.js";
export { StatusError, type StatusCode } from "./engine/run-errors.js";
export { HttpError, type HttpErrorOptions, type OpenAIErrorBody } from "./server/errors.js";
export type {
  HttpRequestPayload,
  HttpResponseObject,
  HttpResponsePayload,
  HttpSseResponse,
  MultipartBody,
  MultipartFile,
  SseEvent,
} from "./server/payload.js";
