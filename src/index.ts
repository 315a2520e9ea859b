/**
 * graphserve's public entry: what calculator authors (and hosts embedding the
 * engine) import. Built-in calculators use nothing but this module.
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
