/**
 * Input stream handlers by name. Adding one: a module exporting an
 * InputStreamHandlerType (handler.ts), and one line here; hosts embedding
 * the engine may also call registerInputStreamHandler before loading graphs.
 */
import { defaultHandler } from "./default.js";
import { fixedSizeHandler } from "./fixed-size.js";
import type { InputHandler, InputStreamHandlerType } from "./handler.js";
import { immediateHandler } from "./immediate.js";
import { syncSetHandler } from "./sync-set.js";
import type { InputStreamHandlerSpec } from "../../graph/validated.js";

export { NOT_READY, READY_FOR_CLOSE, type HandlerConfigContext, type InputHandler, type InputStreamHandlerType } from "./handler.js";

const byName = new Map<string, InputStreamHandlerType>();
const byKind = new Map<string, InputStreamHandlerType>();

/** Makes a handler available to graphs by its name (and its kind). */
export function registerInputStreamHandler<S extends InputStreamHandlerSpec>(type: InputStreamHandlerType<S>): void {
  if (byName.has(type.name) || byKind.has(type.kind)) throw new Error(`An input stream handler named "${type.name}" (kind "${type.kind}") is already registered.`);
  // The registry hands each type back only the specs its own configure made.
  const erased = type as unknown as InputStreamHandlerType;
  byName.set(type.name, erased);
  byKind.set(type.kind, erased);
}

registerInputStreamHandler(defaultHandler);
registerInputStreamHandler(immediateHandler);
registerInputStreamHandler(syncSetHandler);
registerInputStreamHandler(fixedSizeHandler);

/** The handler a graph names, or undefined. */
export function inputStreamHandlerNamed(name: string): InputStreamHandlerType | undefined {
  return byName.get(name);
}

export function inputStreamHandlerNames(): string[] {
  return [...byName.keys()];
}

/** The run-time handler for a validated node's spec. */
export function createInputHandler(spec: InputStreamHandlerSpec, numInputs: number): InputHandler {
  const type = byKind.get(spec.kind);
  if (type === undefined) throw new Error(`No input stream handler of kind "${spec.kind}" is registered.`);
  return type.create(spec, numInputs);
}
