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

const SCAN_ITEMS = 64;

/**
 * Adds the ArrayBuffers in `value` that can be moved rather than copied: a
 * bare ArrayBuffer, or a typed array / DataView covering its whole buffer (a
 * view into a larger buffer, like Node's pooled Buffers, must not detach its
 * neighbours). Looks two levels into plain objects and arrays, so
 * `{ data: Uint8Array, width, height }` moves its pixels.
 */
export function collectTransferables(value: unknown, out: Set<ArrayBuffer>, depth = 2): void {
  if (value === null || typeof value !== "object") return;
  if (value instanceof ArrayBuffer) {
    if (value.byteLength > 0) out.add(value);
    return;
  }
  if (ArrayBuffer.isView(value)) {
    const b = value.buffer;
    if (b instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === b.byteLength && b.byteLength > 0) out.add(b);
    return;
  }
  if (depth === 0) return;
  if (Array.isArray(value)) {
    const n = Math.min(value.length, SCAN_ITEMS);
    for (let i = 0; i < n; i++) collectTransferables(value[i], out, depth - 1);
    return;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return;
  let seen = 0;
  for (const k in value) {
    collectTransferables((value as Record<string, unknown>)[k], out, depth - 1);
    if (++seen >= SCAN_ITEMS) break;
  }
}
