/**
 * MediaPipe's FlowLimiterCalculator: lets at most `max_in_flight` timestamps
 * into the section it guards and drops the rest, keeping only the newest
 * `max_in_queue` waiting. The section's end comes back on the FINISHED back
 * edge; every packet there frees the timestamps up to its own.
 *
 * - Untagged inputs map one-to-one onto untagged outputs. Input 0 decides;
 *   the other inputs follow its decision for the same timestamp.
 * - ALLOW (optional) carries true for every timestamp let through and false
 *   for every one dropped.
 * - The MAX_IN_FLIGHT side packet (optional) overrides `max_in_flight`.
 * - `in_flight_timeout` (timestamp units, 0 = never): a timestamp in flight
 *   is abandoned once an input arrives more than that much later, so a lost
 *   FINISHED packet cannot block the limiter forever.
 * - Asks for the ImmediateInputStreamHandler, so FINISHED and new input are
 *   handled as soon as either arrives. As in MediaPipe, a handler the graph
 *   sets (on the node, or graph-wide) takes precedence; with one that waits
 *   for all inputs the limiter would wait on its own FINISHED back edge, so
 *   leave it unset (or Immediate) on this node.
 */
import { Calculator, Timestamp, type CalculatorContext, type CalculatorContract, type NodeShape, type Packet } from "../src/index.js";

export interface FlowLimiterCalculatorOptions {
  max_in_flight: number;
  max_in_queue: number;
  in_flight_timeout: number;
}

export class FlowLimiterCalculator extends Calculator<FlowLimiterCalculatorOptions> {
  static override readonly contract: CalculatorContract = {
    inputs: { "": { multiple: true }, FINISHED: {} },
    outputs: { "": { multiple: true }, ALLOW: { optional: true } },
    inputSidePackets: { MAX_IN_FLIGHT: { optional: true } },
    options: "mediapipe.FlowLimiterCalculatorOptions",
    inputStreamHandler: "ImmediateInputStreamHandler",
    validate(node: NodeShape): string | undefined {
      const ins = node.inputs.filter((p) => p.tag === "").length;
      const outs = node.outputs.filter((p) => p.tag === "").length;
      if (ins === 0) return "FlowLimiterCalculator needs at least one untagged input stream.";
      if (ins !== outs) return `FlowLimiterCalculator needs one untagged output per untagged input (${ins} inputs, ${outs} outputs).`;
      return undefined;
    },
  };

  private maxInFlight = 1;
  private maxInQueue = 0;
  private timeout = 0;
  private numData = 1;
  private hasAllow = false;
  /** Timestamps let through and not yet FINISHED, oldest first. */
  private inFlight: number[] = [];
  /** Input 0 packets waiting for room. */
  private queue: Packet[] = [];
  private lastMain: number = Timestamp.Unset;
  /** Decisions on input-0 timestamps the other inputs may still deliver. */
  private decisions = new Map<number, boolean>();
  /** Per other input: packets waiting for input 0's decision, and the last timestamp seen. */
  private held: Packet[][] = [];
  private lastAux: number[] = [];

  override open(ctx: CalculatorContext<FlowLimiterCalculatorOptions>): void {
    const o = ctx.options;
    const side = ctx.inputSidePackets.has("MAX_IN_FLIGHT") ? Number(ctx.inputSidePackets.get("MAX_IN_FLIGHT")) : undefined;
    this.maxInFlight = side ?? o?.max_in_flight ?? 1;
    this.maxInQueue = Math.max(0, o?.max_in_queue ?? 0);
    this.timeout = Number(o?.in_flight_timeout ?? 1_000_000);
    this.numData = ctx.inputs.count("");
    this.hasAllow = ctx.outputs.has("ALLOW");
    for (let i = 1; i < this.numData; i++) {
      this.held.push([]);
      this.lastAux.push(Timestamp.Unset);
    }
  }

  override process(ctx: CalculatorContext<FlowLimiterCalculatorOptions>): void {
    const finished = ctx.inputs.packet("FINISHED");
    if (finished !== undefined) {
      while (this.inFlight.length > 0 && this.inFlight[0] <= finished.timestamp) this.inFlight.shift();
    }
    const main = ctx.inputs.packet(0);
    if (main !== undefined) {
      this.queue.push(main);
      this.lastMain = main.timestamp;
      if (this.timeout > 0) {
        while (this.inFlight.length > 0 && main.timestamp - this.inFlight[0] > this.timeout) this.inFlight.shift();
      }
    }
    while (this.inFlight.length < this.maxInFlight && this.queue.length > 0) {
      const p = this.queue.shift()!;
      ctx.outputs.add(0, p.value, p.timestamp);
      this.decide(ctx, p.timestamp, true);
      this.inFlight.push(p.timestamp);
    }
    while (this.queue.length > this.maxInQueue) this.decide(ctx, this.queue.shift()!.timestamp, false);
    if (this.numData > 1) this.followers(ctx);
    this.setBounds(ctx);
  }

  private decide(ctx: CalculatorContext, ts: number, allowed: boolean): void {
    if (this.hasAllow) ctx.outputs.add("ALLOW", allowed, ts);
    if (this.numData > 1) this.decisions.set(ts, allowed);
  }

  /** Inputs 1..n-1 pass exactly when input 0 passed at the same timestamp. */
  private followers(ctx: CalculatorContext): void {
    let minSeen = Infinity;
    for (let i = 1; i < this.numData; i++) {
      const p = ctx.inputs.packet(i);
      const held = this.held[i - 1];
      if (p !== undefined) {
        held.push(p);
        this.lastAux[i - 1] = p.timestamp;
      }
      while (held.length > 0) {
        const ts = held[0].timestamp;
        const decision = this.decisions.get(ts);
        // Undecided: input 0 has it queued, or has not reached it yet.
        if (decision === undefined && (ts > this.lastMain || this.queue.some((q) => q.timestamp === ts))) break;
        const packet = held.shift()!;
        if (decision === true) ctx.outputs.add(i, packet.value, ts);
      }
      minSeen = Math.min(minSeen, this.lastAux[i - 1]);
    }
    for (const ts of this.decisions.keys()) if (ts <= minSeen) this.decisions.delete(ts);
  }

  private setBounds(ctx: CalculatorContext): void {
    if (this.lastMain === Timestamp.Unset) return;
    const bound = this.queue.length > 0 ? this.queue[0].timestamp : Timestamp.nextAllowedInStream(this.lastMain);
    ctx.outputs.setNextTimestampBound(0, bound);
    if (this.hasAllow) ctx.outputs.setNextTimestampBound("ALLOW", bound);
    for (let i = 1; i < this.numData; i++) {
      const held = this.held[i - 1];
      const last = this.lastAux[i - 1];
      if (last === Timestamp.Unset) continue;
      const own = held.length > 0 ? held[0].timestamp : Timestamp.nextAllowedInStream(last);
      ctx.outputs.setNextTimestampBound(i, Math.min(bound, own));
    }
  }
}
