/**
 * Which packet buffers the engine may move to a worker thread instead of
 * copying them (semantics in worker-pool.ts): a BufferOwnership per graph
 * remembers every value someone besides the engine may hold, and
 * collectTransferables lists the whole buffers of a value nobody else holds.
 */
import { OP_ADD } from "./context.js";

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
 * Packet values (and the objects, typed arrays and buffers inside them) that
 * someone besides the engine may hold: the caller (graph inputs, side
 * packets, graph outputs), an observer, or more than one node. Their buffers
 * are copied to worker threads, never moved. One per graph runtime, shared
 * by its runs, and only for graphs with worker nodes (the others never move
 * anything, so they record nothing).
 */
export class BufferOwnership {
  private readonly shared = new WeakSet<object>();
  private readonly add = (held: object): void => {
    this.shared.add(held);
  };

  /**
   * Records that `value` may be held outside the engine's control: it and
   * everything visitHeld reaches, so movable() never moves them.
   */
  markShared(value: unknown): void {
    visitHeld(value, this.add);
  }

  /** Adds the buffers of `value` that may move (collectTransferables, minus what is shared). */
  movable(value: unknown, out: Set<ArrayBuffer>): void {
    collectTransferables(value, out, this.shared);
  }

  /** One call emitting the same object (or buffer) in several packets hands it to several readers. */
  markRepeated(ops: { readonly kinds: readonly number[]; readonly values: readonly unknown[]; readonly length: number }): void {
    const owner = new Map<object, number>(); // what lies in which packet
    for (let k = 0; k < ops.length; k++) {
      const v = ops.values[k];
      if (ops.kinds[k] !== OP_ADD || v === null || typeof v !== "object") continue;
      let clash = -1;
      visitHeld(v, (held) => {
        const prev = owner.get(held);
        if (prev === undefined) owner.set(held, k);
        else if (prev !== k) clash = prev;
      });
      if (clash >= 0) {
        this.markShared(v);
        this.markShared(ops.values[clash]);
      }
    }
  }
}
