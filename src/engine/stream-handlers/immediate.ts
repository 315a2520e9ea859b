/**
 * ImmediateInputStreamHandler: each input its own sync set; every set ready
 * at the earliest timestamp is filled together.
 */
import type { PacketQueue } from "../packet-queue.js";
import { Timestamp } from "../timestamp.js";
import { DefaultHandler } from "./default.js";
import { NOT_READY, READY_FOR_CLOSE, type InputStreamHandlerType } from "./handler.js";
import { allInputs } from "./sync-sets.js";

const DONE = Timestamp.Done;

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

export const immediateHandler: InputStreamHandlerType<{ readonly kind: "immediate" }> = {
  name: "ImmediateInputStreamHandler",
  kind: "immediate",
  configure: () => ({ kind: "immediate" }),
  create: (_spec, numInputs) => new ImmediateHandler(allInputs(numInputs)),
};
