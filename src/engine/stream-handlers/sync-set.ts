/**
 * SyncSetInputStreamHandler: the configured sync sets plus one for the
 * inputs in none; only the earliest ready set is filled, the others
 * contribute bounds. A node is ready for close when all its sets are done.
 */
import type { Packet } from "../calculator.js";
import type { PacketQueue } from "../packet-queue.js";
import { parseTagIndex } from "../../graph/names.js";
import { NOT_READY, READY_FOR_CLOSE, type HandlerConfigContext, type InputHandler, type InputStreamHandlerType } from "./handler.js";
import { fillSet, setReadiness } from "./sync-sets.js";

export interface SyncSetSpec {
  readonly kind: "sync_set";
  /** Each set lists flat input indexes (never empty); inputs in no set form one more set. */
  readonly sets: readonly (readonly number[])[];
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

function configure({ nodeName, inputs, options, at, fail }: HandlerConfigContext): SyncSetSpec {
  const placed = new Set<number>();
  const sets: number[][] = [];
  for (const set of (options?.sync_set ?? []) as { tag_index: string[] }[]) {
    const flat: number[] = [];
    set.tag_index.forEach((tagIndex, j) => {
      const where = at(set, "tag_index", j);
      let ref: { tag: string; index: number };
      try {
        ref = parseTagIndex(tagIndex);
      } catch (e) {
        fail((e as Error).message, where);
        return;
      }
      const k = inputs.findIndex((p) => p.tag === ref.tag && p.index === ref.index);
      // MediaPipe crashes at run start on these two; a load error is kinder.
      if (k < 0) fail(`SyncSetInputStreamHandler of node "${nodeName}": tag_index "${tagIndex}" is not an input stream of the node.`, where);
      else if (placed.has(k)) fail(`SyncSetInputStreamHandler of node "${nodeName}": tag_index "${tagIndex}" is listed more than once in its sync sets.`, where);
      else {
        placed.add(k);
        flat.push(k);
      }
    });
    if (flat.length > 0) sets.push(flat);
  }
  return { kind: "sync_set", sets };
}

export const syncSetHandler: InputStreamHandlerType<SyncSetSpec> = {
  name: "SyncSetInputStreamHandler",
  kind: "sync_set",
  optionsExtension: ".mediapipe.SyncSetInputStreamHandlerOptions.ext",
  configure,
  create(spec, numInputs) {
    const listed = new Set(spec.sets.flat());
    const rest: number[] = [];
    for (let i = 0; i < numInputs; i++) if (!listed.has(i)) rest.push(i);
    const sets = spec.sets.map((s) => Int32Array.from(s));
    if (rest.length > 0) sets.push(Int32Array.from(rest));
    return new SyncSetHandler(sets);
  },
};
