/**
 * FixedSizeInputStreamHandler: the default handler that drops old packets so
 * queues stay short (real-time graphs that prefer the newest input to all
 * input). Options (FixedSizeInputStreamHandlerOptions, MediaPipe's
 * defaults):
 *
 * - `trigger_queue_size` (2): once a queue holds this many packets, it is cut
 *   back to the newest `target_queue_size` (1); below it, up to
 *   trigger - 1 packets wait.
 * - `fixed_min_size` (false): cut only when every queue reached the trigger,
 *   down to the oldest of each queue's newest `target_queue_size` packets.
 *   Otherwise any queue over its size moves a run-wide "kept" timestamp
 *   forward, and every queue drops what is older; forming an input set never
 *   drops past the least current stream's bound, so one input set survives.
 *
 * Surplus is dropped when a packet joins a queue (so queues stay short
 * while the node is busy), when readiness is checked, and right before an
 * input set is taken. The kept timestamp is per run.
 */
import type { Packet } from "../calculator.js";
import type { PacketQueue } from "../packet-queue.js";
import { Timestamp } from "../timestamp.js";
import { DefaultHandler } from "./default.js";
import { NOT_READY, READY_FOR_CLOSE, type HandlerConfigContext, type InputHandler, type InputStreamHandlerType } from "./handler.js";
import { allInputs } from "./sync-sets.js";

export interface FixedSizeSpec {
  readonly kind: "fixed_size";
  readonly triggerQueueSize: number;
  readonly targetQueueSize: number;
  readonly fixedMinSize: boolean;
}

/** The oldest timestamp among a queue's newest `n` packets (Unset when it is empty). */
function oldestOfNewest(q: PacketQueue, n: number): number {
  if (q.size === 0) return Timestamp.Unset;
  return q.at(Math.max(0, q.size - n)).timestamp;
}

/** The timestamp just before a bound (special values stay as they are). */
function previousAllowed(bound: number): number {
  return Timestamp.isRangeValue(bound) ? bound - 1 : bound;
}

class FixedSizeHandler extends DefaultHandler {
  /** Packets below this are surplus (MediaPipe's kept_timestamp_); only moves forward, except to keep one input set. */
  private kept = Timestamp.Unset;

  constructor(
    all: Int32Array,
    private readonly spec: FixedSizeSpec,
  ) {
    super(all);
  }

  forRun(): InputHandler {
    return new FixedSizeHandler(this.all, this.spec);
  }

  packetAdded(queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array): void {
    this.dropSurplus(queues, bounds, streamOf, false);
  }

  override readiness(queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array): number {
    this.dropSurplus(queues, bounds, streamOf, false);
    const r = super.readiness(queues, bounds, streamOf);
    if (r === NOT_READY || r === READY_FOR_CLOSE || r >= this.kept) return r;
    // A packet below the kept timestamp arrived meanwhile: drop it and look again.
    this.dropSurplus(queues, bounds, streamOf, false);
    return super.readiness(queues, bounds, streamOf);
  }

  override fill(ts: number, queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array, current: (Packet | undefined)[]): void {
    // readiness() ran just before on the same queues, so `ts` is still the
    // earliest settled timestamp once the surplus (keeping one set) is gone.
    this.dropSurplus(queues, bounds, streamOf, true);
    super.fill(ts, queues, bounds, streamOf, current);
  }

  private dropSurplus(queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array, keepOne: boolean): void {
    const { triggerQueueSize: trigger, targetQueueSize: target } = this.spec;
    if (this.spec.fixedMinSize) {
      let cut = Infinity;
      for (let i = 0; i < queues.length; i++) {
        const q = queues[i];
        if (q.size < trigger) return;
        cut = Math.min(cut, oldestOfNewest(q, target));
      }
      for (let i = 0; i < queues.length; i++) queues[i].dropBefore(cut);
      return;
    }
    let kept = this.kept;
    for (let i = 0; i < queues.length; i++) {
      const q = queues[i];
      const keep = q.size >= trigger ? target : trigger - 1;
      if (q.size > keep) kept = Math.max(kept, Timestamp.nextAllowedInStream(oldestOfNewest(q, keep + 1)));
    }
    if (keepOne) {
      // Never drop past the least current stream: one input set must survive.
      let minBound = Timestamp.Done;
      for (let i = 0; i < queues.length; i++) {
        const q = queues[i];
        const b = q.size > 0 ? Timestamp.nextAllowedInStream(q.at(q.size - 1).timestamp) : bounds[streamOf[i]];
        if (b < minBound) minBound = b;
      }
      kept = Math.min(kept, previousAllowed(minBound));
    }
    this.kept = kept;
    for (let i = 0; i < queues.length; i++) queues[i].dropBefore(kept);
  }
}

function configure({ nodeName, options, at, fail, location }: HandlerConfigContext): FixedSizeSpec {
  const spec: FixedSizeSpec = {
    kind: "fixed_size",
    triggerQueueSize: Number(options?.trigger_queue_size ?? 2),
    targetQueueSize: Number(options?.target_queue_size ?? 1),
    fixedMinSize: options?.fixed_min_size === true,
  };
  for (const [field, value] of [
    ["trigger_queue_size", spec.triggerQueueSize],
    ["target_queue_size", spec.targetQueueSize],
  ] as const) {
    if (!(Number.isInteger(value) && value >= 1)) {
      fail(`FixedSizeInputStreamHandler of node "${nodeName}": ${field} must be at least 1, got ${value}.`, options ? at(options, field) : location);
    }
  }
  return spec;
}

export const fixedSizeHandler: InputStreamHandlerType<FixedSizeSpec> = {
  name: "FixedSizeInputStreamHandler",
  kind: "fixed_size",
  optionsExtension: ".mediapipe.FixedSizeInputStreamHandlerOptions.ext",
  configure,
  create: (spec, numInputs) => new FixedSizeHandler(allInputs(numInputs), spec),
};
