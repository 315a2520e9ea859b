/** DefaultInputStreamHandler: one sync set of all inputs. */
import type { Packet } from "../calculator.js";
import type { PacketQueue } from "../packet-queue.js";
import type { InputHandler, InputStreamHandlerType } from "./handler.js";
import { allInputs, fillSet, setReadiness } from "./sync-sets.js";

export class DefaultHandler implements InputHandler {
  constructor(protected readonly all: Int32Array) {}
  readiness(queues: readonly PacketQueue[], bounds: Float64Array, streamOf: Int32Array): number {
    return setReadiness(this.all, queues, bounds, streamOf);
  }
  fill(ts: number, queues: readonly PacketQueue[], _b: Float64Array, _s: Int32Array, current: (Packet | undefined)[]): void {
    fillSet(this.all, ts, queues, current);
  }
}

export const defaultHandler: InputStreamHandlerType<{ readonly kind: "default" }> = {
  name: "DefaultInputStreamHandler",
  kind: "default",
  configure: () => ({ kind: "default" }),
  create: (_spec, numInputs) => new DefaultHandler(allInputs(numInputs)),
};
