/**
 * Live per-node statistics of one graph, summed over every run of it
 * (persistent instances and per-request runs alike): `process` calls
 * finished, running, failed and cancelled, their wall time, and the runs
 * (requests) active and finished. Runs are reported by whoever issues the
 * requests (a servable counts its leases, so a streamed answer is active
 * until its last event), since only it knows when an answer is over.
 *
 * The engine calls `begin`/`end` around every `process` call, so they are
 * kept allocation-free: counters live in typed arrays indexed by node id,
 * and a call costs two `performance.now()` reads. A worker-executor call is
 * timed as the main thread sees it, from dispatch to result. A call that
 * hands work off (`ctx.continueUntil`) stays active, and is timed, until
 * that work settles.
 *
 * A call ends in one of three ways (`CallOutcome`); the engine decides which:
 * - a `process` call that threw or rejected after its run's signal had
 *   aborted (the request was cancelled, or another node failed) is
 *   cancelled: it failed because it was told to stop; otherwise failed;
 * - handed-off work that rejected failed; work that resolved after its
 *   signal aborted was cancelled (calculators resolve on mere cancellation).
 */
import { performance } from "node:perf_hooks";
import type { Handoff } from "./context.js";

/** How a `process` call (with what it handed off) ended. */
export type CallOutcome = "ok" | "failed" | "cancelled";

/** Of two parts of one call (the call itself, work it handed off), the outcome that stands: "failed" over "cancelled" over "ok". */
const worse = (a: CallOutcome, b: CallOutcome): CallOutcome => (a === "failed" || b === "ok" ? a : b);

/** One node's numbers, as read by `read()`. */
export interface NodeCounters {
  readonly processed: number;
  readonly active: number;
  readonly errors: number;
  readonly cancelled: number;
  /** Mean wall time of a finished call, ms; null before the first. */
  readonly meanMs: number | null;
  /** Wall time of the latest finished call, ms; null before the first. */
  readonly lastMs: number | null;
}

export class NodeStatsCollector {
  /** Finished calls, failed and cancelled ones included. */
  private readonly finished: Float64Array;
  private readonly running: Int32Array;
  private readonly failed: Float64Array;
  private readonly aborted: Float64Array;
  private readonly totalMs: Float64Array;
  private readonly latestMs: Float64Array;
  private runsActive = 0;
  private runsFinished = 0;

  /** `size`: the graph's node count (ids 0 … size-1). */
  constructor(size: number) {
    this.finished = new Float64Array(size);
    this.running = new Int32Array(size);
    this.failed = new Float64Array(size);
    this.aborted = new Float64Array(size);
    this.totalMs = new Float64Array(size);
    this.latestMs = new Float64Array(size);
  }

  /** A `process` call of node `id` starts; returns its start time for `end`. */
  begin(id: number): number {
    this.running[id]++;
    return performance.now();
  }

  /** The call begun at `started` ended so. */
  end(id: number, started: number, outcome: CallOutcome): void {
    const ms = performance.now() - started;
    this.running[id]--;
    this.finished[id]++;
    this.totalMs[id] += ms;
    this.latestMs[id] = ms;
    if (outcome === "failed") this.failed[id]++;
    else if (outcome === "cancelled") this.aborted[id]++;
  }

  /**
   * The call begun at `started` ended so (`own`), having handed work off
   * (`ctx.continueUntil`): it ends when every handoff settled, with the
   * worst outcome of the call and its handoffs.
   */
  endAfter(id: number, started: number, own: CallOutcome, handoffs: readonly Handoff[]): void {
    void Promise.all(handoffs).then((hs) => this.end(id, started, hs.reduce(worse, own)));
  }

  /** A run (a request) starts. */
  runStarted(): void {
    this.runsActive++;
  }

  /** A run (a request) is over, whatever its outcome. */
  runFinished(): void {
    this.runsActive--;
    this.runsFinished++;
  }

  get runs(): { readonly active: number; readonly finished: number } {
    return { active: this.runsActive, finished: this.runsFinished };
  }

  /**
   * Node `id`'s numbers. `processed` counts every finished call; the mean is
   * over all of them (failed and cancelled ones took time too).
   */
  read(id: number): NodeCounters {
    const n = this.finished[id];
    return {
      processed: n,
      active: this.running[id],
      errors: this.failed[id],
      cancelled: this.aborted[id],
      meanMs: n === 0 ? null : this.totalMs[id] / n,
      lastMs: n === 0 ? null : this.latestMs[id],
    };
  }
}
