/**
 * MediaPipe's sync-set algorithm, which every built-in handler runs over
 * some partition of the node's inputs:
 *
 * - every input stream reports its oldest queued packet, or its bound when
 *   the queue is empty;
 * - a sync set is ready at `min_packet` once `min_bound > min_packet` (that
 *   timestamp is settled on every stream of the set); it is done when every
 *   stream is empty and bounded at Done;
 * - the input set takes, from each stream of a chosen set, the packet at
 *   exactly that timestamp; every other input gets an empty packet.
 */
import type { Packet } from "../calculator.js";
import type { PacketQueue } from "../packet-queue.js";
import { Timestamp } from "../timestamp.js";
import { NOT_READY, READY_FOR_CLOSE } from "./handler.js";

const DONE = Timestamp.Done;

/** Readiness of one sync set (flat input indexes). */
export function setReadiness(set: Int32Array, queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array): number {
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

/** Takes each stream's packet at exactly `ts` (the others get an empty packet). */
export function fillSet(set: Int32Array, ts: number, queues: readonly PacketQueue[], current: (Packet | undefined)[]): void {
  for (let k = 0; k < set.length; k++) {
    const i = set[k];
    const q = queues[i];
    current[i] = q.size > 0 && q.peek().timestamp === ts ? q.shift() : undefined;
  }
}

/** Every flat input index of a node. */
export function allInputs(numInputs: number): Int32Array {
  return Int32Array.from({ length: numInputs }, (_, i) => i);
}
