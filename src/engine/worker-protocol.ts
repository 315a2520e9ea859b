/**
 * What the main thread and the worker threads of a ThreadPoolExecutor say to
 * each other (see worker-pool.ts for the semantics), plus the transfer-list
 * helper both sides use.
 */
import type { Port } from "./calculator.js";

/** Everything a worker thread needs to build and open its own instance of a node. */
export interface WorkerNodeInit {
  /** Identifies (graph, node) across threads. */
  readonly key: string;
  readonly moduleUrl: string;
  readonly calculatorName: string;
  readonly nodeName: string;
  /** The options message as a plain object (set fields only) and its type, rebuilt against the schema files. */
  readonly optionsType: string | undefined;
  readonly options: Record<string, unknown> | undefined;
  readonly schemaFiles: readonly string[];
  readonly inputs: readonly Port[];
  readonly outputs: readonly Port[];
  readonly inputSidePackets: readonly Port[];
  readonly outputSidePackets: readonly Port[];
  /** Int32Array[1]: how many threads hold an opened instance (the main side stops sending `init` at the pool size). */
  readonly openedCount: SharedArrayBuffer;
  /** The run's input side packets by flat index (structured clones). */
  readonly sidePackets: readonly unknown[];
  readonly sidePresent: readonly boolean[];
}

export interface WorkerProcessTask {
  readonly kind: "process";
  readonly key: string;
  /** Sent until every thread has opened the node; a thread without an instance and no init answers `needInit`. */
  readonly init: WorkerNodeInit | undefined;
  /** Timestamp.Unset for a source. */
  readonly ts: number;
  /** Per flat input: the packet value at `ts` (present[i] false = empty packet). */
  readonly values: readonly unknown[];
  readonly present: readonly boolean[];
  readonly done: readonly boolean[];
  /** Int32Array[1], non-zero once the run is cancelled or failed: the context's signal reflects it. */
  readonly cancel: SharedArrayBuffer;
}

export interface WorkerCloseTask {
  readonly kind: "closeAll";
  /** Int32Array[1] barrier: every thread takes exactly one close task. */
  readonly barrier: SharedArrayBuffer;
  readonly parties: number;
  /** Give up waiting for the other threads after this long (a thread stuck in a task). */
  readonly waitMs: number;
}

export type WorkerTask = WorkerProcessTask | WorkerCloseTask;

/** A Process call's recorded outputs, in the OutputBuffer layout. */
export interface WorkerProcessResult {
  readonly kinds: number[];
  readonly portsAt: number[];
  readonly values: unknown[];
  readonly stamps: number[];
  readonly length: number;
  readonly side: { port: number; value: unknown }[];
  readonly stop: boolean;
  readonly needInit?: boolean;
  readonly failed?: "Open" | "Process";
  readonly error?: unknown;
}

export interface WorkerCloseResult {
  readonly errors: { node: string; error: unknown }[];
}

/**
 * An error crossing the thread boundary. Structured cloning keeps only the
 * message of an Error subclass, so its name, stack and own fields (an
 * HttpError's status and param, say) travel as a plain object.
 */
export interface SerializedError {
  readonly serializedError: true;
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  readonly fields: Record<string, unknown>;
}

export function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    try {
      structuredClone(value);
      fields[key] = value;
    } catch {
      // a field that cannot cross threads is dropped, not fatal
    }
  }
  return { serializedError: true, name: error.name, message: error.message, stack: error.stack, fields } satisfies SerializedError;
}

/** Rebuilds what serializeError sent: an Error with the original name, stack and fields. */
export function deserializeError(value: unknown): unknown {
  const s = value as SerializedError | undefined;
  if (typeof s !== "object" || s === null || s.serializedError !== true) return value;
  const error = Object.assign(new Error(s.message), s.fields);
  error.name = s.name;
  if (s.stack !== undefined) error.stack = s.stack;
  return error;
}

const SCAN_ITEMS = 64;

/** Whether `value` is an object collectTransferables / markShared look into. */
function isScanned(value: object): boolean {
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Adds the ArrayBuffers in `value` that can be moved rather than copied: a
 * bare ArrayBuffer, or a typed array / DataView covering its whole buffer (a
 * view into a larger buffer, like Node's pooled Buffers, must not detach its
 * neighbours). Looks two levels into plain objects and arrays, so
 * `{ data: Uint8Array, width, height }` moves its pixels. Anything in
 * `shared` (an object, a view, or a view's buffer) is left alone, and so is
 * everything inside a shared object.
 */
export function collectTransferables(value: unknown, out: Set<ArrayBuffer>, shared?: WeakSet<object>, depth = 2): void {
  if (value === null || typeof value !== "object") return;
  if (shared !== undefined && shared.has(value)) return;
  if (value instanceof ArrayBuffer) {
    if (value.byteLength > 0) out.add(value);
    return;
  }
  if (ArrayBuffer.isView(value)) {
    const b = value.buffer;
    if (b instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === b.byteLength && b.byteLength > 0 && !shared?.has(b)) out.add(b);
    return;
  }
  if (depth === 0 || !isScanned(value)) return;
  if (Array.isArray(value)) {
    const n = Math.min(value.length, SCAN_ITEMS);
    for (let i = 0; i < n; i++) collectTransferables(value[i], out, shared, depth - 1);
    return;
  }
  let seen = 0;
  for (const k in value) {
    collectTransferables((value as Record<string, unknown>)[k], out, shared, depth - 1);
    if (++seen >= SCAN_ITEMS) break;
  }
}

/**
 * How deep markShared looks: one level deeper than collectTransferables, so
 * a part a calculator takes out of a shared value and sends on is still
 * known to be shared.
 */
const MARK_DEPTH = 3;
/** At most this many objects are marked per value. */
const MARK_BUDGET = 1024;

/**
 * Calls `visit` for `value` and for what lies inside it, as far as the
 * engine tracks ownership: arrays and plain objects (MARK_DEPTH levels, up to
 * SCAN_ITEMS entries each), typed arrays, DataViews and every view's buffer
 * (a partial view too: moving its buffer would detach it). At most
 * MARK_BUDGET objects.
 */
export function visitHeld(value: unknown, visit: (held: object) => void): void {
  if (value === null || typeof value !== "object") return;
  walk(value, visit, MARK_DEPTH, { left: MARK_BUDGET });
}

function walk(value: object, visit: (held: object) => void, depth: number, budget: { left: number }): void {
  if (budget.left-- <= 0) return;
  visit(value);
  if (ArrayBuffer.isView(value)) {
    visit(value.buffer);
    return;
  }
  if (value instanceof ArrayBuffer || depth === 0 || !isScanned(value)) return;
  let seen = 0;
  const next = (v: unknown): boolean => {
    if (v !== null && typeof v === "object") walk(v, visit, depth - 1, budget);
    return ++seen < SCAN_ITEMS && budget.left > 0;
  };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!next(value[i])) return;
    return;
  }
  for (const k in value) if (!next((value as Record<string, unknown>)[k])) return;
}

/**
 * Records that `value` may be held outside the engine's control (by the
 * caller, an observer, or another consumer): it and everything visitHeld
 * reaches go into `shared`, so collectTransferables never moves them.
 */
export function markShared(value: unknown, shared: WeakSet<object>): void {
  visitHeld(value, (held) => shared.add(held));
}
