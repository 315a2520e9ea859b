/**
 * Calculators for the scheduler tests. They report what happened to them
 * through `events` (open/process/close per node), so tests can assert the
 * lifecycle without timing.
 */
import { Calculator, STOP, type CalculatorContext, type CalculatorContract, type ProcessResult } from "../../src/index.js";
import { CalculatorRegistry } from "../../src/engine/registry.js";

/** Lifecycle log: `open:node`, `process:node@ts`, `close:node`. */
export const events: string[] = [];
const log = (ctx: CalculatorContext, what: string) => events.push(`${what}:${ctx.nodeName}`);

/** Pending async calls of HeldCalculator, released by the test. */
export const held: { ts: number; release(): void }[] = [];

/** Flags tests flip from outside the graph. */
export const flags = { stopSource: false, opens: 0, graphStopped: false };

const ONE_IN_ONE_OUT: CalculatorContract = { inputs: { "": {} }, outputs: { "": {} } };

/** Logs open/close; passes packets through. */
export class LogPassCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override open(ctx: CalculatorContext): void {
    log(ctx, "open");
  }
  override process(ctx: CalculatorContext): void {
    ctx.outputs.add(0, ctx.inputs.value(0));
  }
  override close(ctx: CalculatorContext): void {
    log(ctx, "close");
  }
}

export class DoubleCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(ctx: CalculatorContext): void {
    ctx.outputs.add(0, (ctx.inputs.value<number>(0) ?? 0) * 2);
  }
}

/** Doubles after yielding to the event loop. */
export class AsyncDoubleCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override async process(ctx: CalculatorContext): Promise<void> {
    const v = ctx.inputs.value<number>(0)!;
    await new Promise((r) => setImmediate(r));
    ctx.outputs.add(0, v * 2);
  }
}

/** Counts opens (persistent instances are opened once) and numbers its calls. */
export class StatefulCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  private calls = 0;
  override open(): void {
    flags.opens++;
  }
  override async process(ctx: CalculatorContext): Promise<void> {
    const v = ctx.inputs.value<number>(0)!;
    this.calls++;
    await new Promise((r) => setImmediate(r));
    ctx.outputs.add(0, { v, calls: this.calls });
  }
}

/** Passes even timestamps only; offset 0 lets bounds through for the odd ones. */
export class EvenGateCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { ...ONE_IN_ONE_OUT, timestampOffset: 0 };
  override process(ctx: CalculatorContext): void {
    if (ctx.inputTimestamp % 2 === 0) ctx.outputs.add(0, ctx.inputs.value(0));
  }
}

/** Passes even timestamps only and says so with an explicit bound. */
export class BoundGateCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(ctx: CalculatorContext): void {
    if (ctx.inputTimestamp % 2 === 0) ctx.outputs.add(0, ctx.inputs.value(0));
    else ctx.outputs.setNextTimestampBound(0, ctx.inputTimestamp + 1);
  }
}

/** Passes even timestamps only and says nothing about the others. */
export class SilentGateCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(ctx: CalculatorContext): void {
    if (ctx.inputTimestamp % 2 === 0) ctx.outputs.add(0, ctx.inputs.value(0));
  }
}

/** Emits what it saw on A and B at each input timestamp (null = empty packet). */
export class JoinCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { inputs: { A: {}, B: {} }, outputs: { "": {} } };
  override process(ctx: CalculatorContext): void {
    ctx.outputs.add(0, { ts: ctx.inputTimestamp, a: ctx.inputs.value("A") ?? null, b: ctx.inputs.value("B") ?? null });
  }
}

/** Has no streams: turns side packet BASE into FACTOR = BASE * 10 when it opens. */
export class SideMakerCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { inputSidePackets: { BASE: {} }, outputSidePackets: { FACTOR: {} } };
  override open(ctx: CalculatorContext): void {
    ctx.outputSidePackets.set("FACTOR", ctx.inputSidePackets.get<number>("BASE")! * 10);
  }
  override process(): ProcessResult {
    return STOP;
  }
}

/** Multiplies its input by side packet FACTOR. */
export class ScaleCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { ...ONE_IN_ONE_OUT, inputSidePackets: { FACTOR: {} } };
  override process(ctx: CalculatorContext): void {
    ctx.outputs.add(0, ctx.inputs.value<number>(0)! * ctx.inputSidePackets.get<number>("FACTOR")!);
  }
}

export class FailOpenCalculator extends LogPassCalculator {
  override open(ctx: CalculatorContext): void {
    log(ctx, "open-failed");
    throw new Error("cannot open");
  }
}

export class FailProcessCalculator extends LogPassCalculator {
  override process(ctx: CalculatorContext): void {
    throw new Error(`boom at ${ctx.inputTimestamp}`);
  }
}

export class AsyncFailProcessCalculator extends LogPassCalculator {
  override async process(ctx: CalculatorContext): Promise<void> {
    await new Promise((r) => setImmediate(r));
    throw new Error(`async boom at ${ctx.inputTimestamp}`);
  }
}

export class FailCloseCalculator extends LogPassCalculator {
  override close(ctx: CalculatorContext): void {
    log(ctx, "close");
    throw new Error("cannot close");
  }
}

/** Fails Process and Close: two errors in one run. */
export class FailTwiceCalculator extends FailProcessCalculator {
  override close(ctx: CalculatorContext): void {
    log(ctx, "close");
    throw new Error("cannot close either");
  }
}

/** Fails when the input value is "bad". */
export class PickyCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(ctx: CalculatorContext): void {
    const v = ctx.inputs.value(0);
    if (v === "bad") throw new Error("bad input");
    ctx.outputs.add(0, v);
  }
}

/** Always writes at timestamp 0: the second call breaks monotonicity. */
export class StuckClockCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(ctx: CalculatorContext): void {
    ctx.outputs.add(0, ctx.inputs.value(0), 0);
  }
}

/** A source: emits 0..COUNT-1 at timestamps 0..COUNT-1, then STOP. */
export class CountSourceCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { outputs: { "": {} }, inputSidePackets: { COUNT: {} } };
  private next = 0;
  override process(ctx: CalculatorContext): ProcessResult {
    if (this.next >= ctx.inputSidePackets.get<number>("COUNT")!) return STOP;
    ctx.outputs.add(0, this.next, this.next);
    this.next++;
    return undefined;
  }
  override close(ctx: CalculatorContext): void {
    log(ctx, "close");
  }
}

/** A source that runs until `flags.stopSource` is set from outside (only the event loop can set it). */
export class UntilFlagSourceCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { outputs: { "": {} } };
  private next = 0;
  override process(ctx: CalculatorContext): ProcessResult {
    if (flags.stopSource) return STOP;
    ctx.outputs.add(0, this.next, this.next);
    this.next++;
    return undefined;
  }
}

/** Returns STOP from Process at timestamp 2: a graceful stop of the whole graph. */
export class StopAtTwoCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(ctx: CalculatorContext): ProcessResult {
    ctx.outputs.add(0, ctx.inputs.value(0));
    return ctx.inputTimestamp === 2 ? STOP : undefined;
  }
}

/** Waits for the test to release each call (see `held`). */
export class HeldCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(ctx: CalculatorContext): Promise<void> {
    const ts = ctx.inputTimestamp;
    const value = ctx.inputs.value(0);
    return new Promise<void>((resolve) => {
      held.push({
        ts,
        release: () => {
          ctx.outputs.add(0, value, ts);
          resolve();
        },
      });
    });
  }
}

/** Swallows everything: the FINISHED packet of a flow-limited section never comes. */
export class SwallowCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(): void {}
}

/** Processes slowly (one event-loop turn) and records how far its source is ahead. */
export class SlowSinkCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  static backlog: number[] = [];
  static emitted = 0;
  override async process(ctx: CalculatorContext): Promise<void> {
    SlowSinkCalculator.backlog.push(SlowSinkCalculator.emitted - ctx.inputTimestamp - 1);
    await new Promise((r) => setImmediate(r));
    ctx.outputs.add(0, ctx.inputs.value(0));
  }
}

/** A source counting what it has emitted into SlowSinkCalculator.emitted. */
export class TrackedSourceCalculator extends CountSourceCalculator {
  override process(ctx: CalculatorContext): ProcessResult {
    const r = super.process(ctx);
    if (r !== STOP) SlowSinkCalculator.emitted++;
    return r;
  }
}

/** Waits for the run's signal, then records that it saw the abort. */
export class AbortWaitCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(ctx: CalculatorContext): Promise<void> {
    log(ctx, "waiting");
    return new Promise<void>((resolve) => {
      ctx.signal.addEventListener("abort", () => {
        log(ctx, `aborted(${String((ctx.signal.reason as Error)?.message)})`);
        resolve();
      });
    });
  }
  override close(ctx: CalculatorContext): void {
    log(ctx, "close");
  }
}

/** Async with a delay that shrinks with the timestamp, so later calls finish first. */
export class ReverseDelayCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  static concurrent = 0;
  static maxConcurrent = 0;
  static finishOrder: number[] = [];
  override async process(ctx: CalculatorContext): Promise<void> {
    const C = ReverseDelayCalculator;
    C.maxConcurrent = Math.max(C.maxConcurrent, ++C.concurrent);
    const ts = ctx.inputTimestamp;
    for (let i = 0; i < 10 - ts; i++) await new Promise((r) => setImmediate(r));
    C.finishOrder.push(ts);
    C.concurrent--;
    ctx.outputs.add(0, ts);
  }
}

/** Records which inputs each call saw, as "A,B@ts"; emits nothing. */
export class SyncProbeCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { inputs: { A: {}, B: {}, C: {} } };
  static calls: string[] = [];
  override process(ctx: CalculatorContext): void {
    const seen = ["A", "B", "C"].filter((k) => ctx.inputs.packet(k) !== undefined);
    SyncProbeCalculator.calls.push(`${seen.join(",")}@${ctx.inputTimestamp}`);
  }
}

/** Odd timestamps answer synchronously (a "cache hit"), even ones after a few event-loop turns. */
export class MixedSyncAsyncCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(ctx: CalculatorContext): void | Promise<void> {
    const v = ctx.inputs.value(0);
    if (ctx.inputTimestamp % 2 === 1) {
      ctx.outputs.add(0, v);
      return;
    }
    return (async () => {
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      ctx.outputs.add(0, v);
    })();
  }
}

/** An async source emitting 0, 1, 2 … at those timestamps; odd calls take longer, so calls overlap with max_in_flight 2. */
export class AsyncSourceCalculator extends Calculator {
  static override readonly contract: CalculatorContract = { outputs: { "": {} } };
  /** Process calls made after StopNowCalculator stopped the graph. */
  static callsAfterStop = 0;
  private next = 0;
  override async process(ctx: CalculatorContext): Promise<ProcessResult> {
    if (flags.graphStopped) AsyncSourceCalculator.callsAfterStop++;
    const n = this.next++;
    if (n > 100) return STOP; // a safety net: the test stops it long before
    for (let i = 0; i < (n % 2 === 1 ? 5 : 1); i++) await new Promise((r) => setImmediate(r));
    ctx.outputs.add(0, n, n);
    return undefined;
  }
}

/** Passes its first packet on and returns STOP: a graceful stop (sets flags.graphStopped). */
export class StopNowCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(ctx: CalculatorContext): ProcessResult {
    ctx.outputs.add(0, ctx.inputs.value(0));
    flags.graphStopped = true;
    return STOP;
  }
}

/** A thenable whose then() throws. */
const brokenThenable = (what: string) => ({
  then() {
    throw new Error(`broken thenable from ${what}`);
  },
});

/** process() returns a thenable whose then() throws. */
export class BadThenableProcessCalculator extends Calculator {
  static override readonly contract = ONE_IN_ONE_OUT;
  override process(): ProcessResult {
    return brokenThenable("process") as unknown as ProcessResult;
  }
}

/** close() returns a thenable whose then() throws. */
export class BadThenableCloseCalculator extends LogPassCalculator {
  override close(): void {
    return brokenThenable("close") as unknown as void;
  }
}

export const TEST_CALCULATORS = [
  MixedSyncAsyncCalculator,
  AsyncSourceCalculator,
  StopNowCalculator,
  BadThenableProcessCalculator,
  BadThenableCloseCalculator,
  SyncProbeCalculator,
  LogPassCalculator,
  DoubleCalculator,
  AsyncDoubleCalculator,
  StatefulCalculator,
  EvenGateCalculator,
  BoundGateCalculator,
  SilentGateCalculator,
  JoinCalculator,
  SideMakerCalculator,
  ScaleCalculator,
  FailOpenCalculator,
  FailProcessCalculator,
  AsyncFailProcessCalculator,
  FailCloseCalculator,
  FailTwiceCalculator,
  PickyCalculator,
  StuckClockCalculator,
  CountSourceCalculator,
  UntilFlagSourceCalculator,
  StopAtTwoCalculator,
  HeldCalculator,
  SwallowCalculator,
  SlowSinkCalculator,
  TrackedSourceCalculator,
  AbortWaitCalculator,
  ReverseDelayCalculator,
];

/** The built-ins plus every test calculator. */
export async function testRegistry(): Promise<CalculatorRegistry> {
  const registry = await CalculatorRegistry.withBuiltins();
  for (const cls of TEST_CALCULATORS) registry.register(cls, import.meta.url);
  return registry;
}
