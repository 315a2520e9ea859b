/**
 * Input stream handlers: when a node is ready and which packets form its
 * input set. All of them are MediaPipe's sync-set algorithm over different
 * partitions of the inputs:
 *
 * - every input stream reports its oldest queued packet, or its bound when
 *   the queue is empty;
 * - a sync set is ready at `min_packet` once `min_bound > min_packet` (that
 *   timestamp is settled on every stream of the set); it is done when every
 *   stream is empty and bounded at Done;
 * - the input set takes, from each stream of a chosen set, the packet at
 *   exactly that timestamp; every other input gets an empty packet.
 *
 * Default = one set of all inputs; Immediate = each input its own set (all
 * sets ready at the earliest timestamp are filled together); SyncSet = the
 * configured sets plus one for the rest (only the earliest ready set is
 * filled, the others contribute bounds). A node is ready for close when all
 * its sets are done, i.e. every input is empty and Done.
 */
import type { Packet } from "./calculator.js";
import type { PacketQueue } from "./packet-queue.js";
import { Timestamp } from "./timestamp.js";
import type { InputStreamHandlerSpec } from "../graph/validated.js";

/** Readiness result: no input set yet. */
export const NOT_READY = -Infinity;
/** Readiness result: every input is done, the node may close. */
export const READY_FOR_CLOSE = Infinity;

export interface InputHandler {
  /** The timestamp of the next input set, or NOT_READY / READY_FOR_CLOSE. */
  readiness(queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array): number;
  /** Pops the input set at `ts` (from `readiness`) into `current`. */
  fill(ts: number, queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array, current: (Packet | undefined)[]): void;
}

const DONE = Timestamp.Done;

/** Readiness of one sync set (flat input indexes). */
function setReadiness(set: Int32Array, queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array): number {
  let minPacket = Infinity;
  let minBound = Infinity;
  for (let k = 0; k < set.length; k++) {
    const i = set[k];
    const q = queues[i];
    if (q.size > 0) {
      const t = q.peek().timestamp;
      if (t < minPacket) minPacket = t;
    } else {
      const b = bounds[streamOf[i]];
      if (b < minBound) minBound = b;
    }
  }
  if (minPacket === Infinity) return minBound >= DONE ? READY_FOR_CLOSE : NOT_READY;
  return minBound > minPacket ? minPacket : NOT_READY;
}

function fillSet(set: Int32Array, ts: number, queues: readonly PacketQueue[], current: (Packet | undefined)[]): void {
  for (let k = 0; k < set.length; k++) {
    const i = set[k];
    const q = queues[i];
    current[i] = q.size > 0 && q.peek().timestamp === ts ? q.shift() : undefined;
  }
}

class DefaultHandler implements InputHandler {
  constructor(private readonly all: Int32Array) {}
  readiness(queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array): number {
    return setReadiness(this.all, queues, bounds, streamOf);
  }
  fill(ts: number, queues: readonly PacketQueue[], _b: Float64Array, _s: Int32Array, current: (Packet | undefined)[]): void {
    fillSet(this.all, ts, queues, current);
  }
}

class ImmediateHandler extends DefaultHandler {
  override readiness(queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array): number {
    // A single-stream set is ready whenever it has a packet.
    let min = Infinity;
    let allDone = true;
    for (let i = 0; i < queues.length; i++) {
      const q = queues[i];
      if (q.size > 0) {
        const t = q.peek().timestamp;
        if (t < min) min = t;
        allDone = false;
      } else if (bounds[streamOf[i]] < DONE) allDone = false;
    }
    if (min !== Infinity) return min;
    return allDone ? READY_FOR_CLOSE : NOT_READY;
  }
  // fill: every set ready at `ts` is filled, which is the default's fill over all inputs.
}

class SyncSetHandler implements InputHandler {
  constructor(private readonly sets: readonly Int32Array[]) {}
  readiness(queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array): number {
    let best = Infinity;
    let allDone = true;
    for (const set of this.sets) {
      const r = setReadiness(set, queues, bounds, streamOf);
      if (r === READY_FOR_CLOSE) continue;
      allDone = false;
      if (r !== NOT_READY && r < best) best = r;
    }
    if (best !== Infinity) return best;
    return allDone ? READY_FOR_CLOSE : NOT_READY;
  }
  fill(ts: number, queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array, current: (Packet | undefined)[]): void {
    current.fill(undefined);
    // Only the first set ready at `ts`; the others stay queued (they are
    // represented by their bounds, as empty packets).
    for (const set of this.sets) {
      if (setReadiness(set, queues, bounds, streamOf) === ts) {
        fillSet(set, ts, queues, current);
        return;
      }
    }
  }
}

/** The handler validation chose for a node (sync sets are never empty there). */
export function createInputHandler(spec: InputStreamHandlerSpec, numInputs: number): InputHandler {
  const all = Int32Array.from({ length: numInputs }, (_, i) => i);
  switch (spec.kind) {
    case "immediate":
      return new ImmediateHandler(all);
    case "sync_set": {
      const listed = new Set(spec.sets.flat());
      const rest = [...all].filter((i) => !listed.has(i));
      const sets = spec.sets.map((s) => Int32Array.from(s));
      if (rest.length > 0) sets.push(Int32Array.from(rest));
      return new SyncSetHandler(sets);
    }
    default:
      return new DefaultHandler(all);
  }
}
