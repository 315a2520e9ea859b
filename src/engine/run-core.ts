/**
 * What a graph run's parts share: GraphRun (the hot loop: host API, heap,
 * drain, invoke, deliver) owns this state, and the modules it delegates to
 * (node-lifecycle.ts, throttling.ts, worker-dispatch.ts) reach it through
 * RunCore.
 */
import type { Calculator, ProcessResult } from "./calculator.js";
import type { NodeContext } from "./context.js";
import type { GraphPlan, NodePlan } from "./graph-plan.js";
import type { GraphRuntime } from "./graph-runtime.js";
import type { NodeStatsCollector } from "./node-stats.js";
import { PacketQueue } from "./packet-queue.js";
import type { InputHandler } from "./stream-handlers/index.js";
import type { RunPhase } from "./run-errors.js";

/**
 * A run's state; it only moves forward. Stopping: a node returned STOP, so
 * graph inputs and sources are closed and the rest drains (still a normal
 * run). Halted: an error or cancel stopped scheduling; Closing: the opened
 * nodes are being closed (each once its in-flight calls settle). MediaPipe
 * keeps the same distinctions in CalculatorGraph's state.
 */
export const RunState = { New: 0, Running: 1, Stopping: 2, Halted: 3, Closing: 4, Finished: 5 } as const;
export type RunState = (typeof RunState)[keyof typeof RunState];

/** A node's lifecycle state. */
export const NodeLife = { Waiting: 0, Opening: 1, Open: 2, Closing: 3, Closed: 4 } as const;
export type NodeLife = (typeof NodeLife)[keyof typeof NodeLife];

/** Recorded outputs of one call: an OutputBuffer or a worker's result. */
export interface Ops {
  readonly kinds: readonly number[];
  readonly portsAt: readonly number[];
  readonly values: readonly unknown[];
  readonly stamps: readonly number[];
  readonly length: number;
  /** Forgets them (an OutputBuffer is reused). */
  reset?(): void;
}

/** Recorded output side packets of one call, by flat port. */
export type SideOps = { port: number; value: unknown }[];

/** A call that went asynchronous (a promise, a worker), or a result queued behind one. */
export interface Invocation {
  /** The main-thread context of the call (undefined on a worker). */
  readonly ctx: NodeContext | undefined;
  settled: boolean;
  result: ProcessResult;
  /** What the call recorded (a worker's result arrives with it). */
  ops: Ops | undefined;
  side: SideOps | undefined;
  failed: RunPhase | undefined;
  error: unknown;
  /** NodeStatsCollector.begin()'s time, or -1 when the call is not timed here (stats off, or already counted). */
  readonly startedAt: number;
}

export class NodeState {
  state: NodeLife = NodeLife.Waiting;
  calc: Calculator | undefined = undefined;
  ctx: NodeContext | undefined = undefined;
  readonly queues: PacketQueue[];
  inFlight = 0;
  missingSide = 0;
  /** Close once idle: a source said STOP while busy, or a graceful stop. */
  closeWhenIdle = false;
  /** Asynchronous calls in start order, released in that order. */
  readonly flight: Invocation[] = [];
  /** Spare contexts for max_in_flight > 1. */
  spare: NodeContext[] | undefined = undefined;
  fullQueues = 0;
  /** Full queues downstream of this source. */
  throttledBy = 0;
  /** This run's input side packets by the node's flat index. */
  readonly sideValues: unknown[] = [];
  readonly sideHas: boolean[] = [];

  constructor(
    numInputs: number,
    limit: number,
    /** The node's input stream handler (its own instance when the handler keeps state). */
    readonly handler: InputHandler,
  ) {
    this.queues = new Array<PacketQueue>(numInputs);
    for (let i = 0; i < numInputs; i++) this.queues[i] = new PacketQueue(limit);
  }
}

/** The part of a GraphRun its delegate modules use. */
export interface RunCore {
  readonly runtime: GraphRuntime;
  readonly plan: GraphPlan;
  readonly nodes: readonly NodeState[];
  readonly bounds: Float64Array;
  readonly stats: NodeStatsCollector | undefined;
  readonly signal: AbortSignal;
  /** This run's side packet values by side packet index. */
  readonly sideValues: readonly unknown[];
  /** The run failed or was cancelled (scheduling stopped). */
  readonly halted: boolean;
  /** Async opens, calls and closes not settled yet. */
  pending: number;
  closedCount: number;
  schedule(id: number): void;
  drain(): void;
  fail(id: number | undefined, phase: RunPhase | "Graph", cause: unknown): void;
  raiseBound(s: number, bound: number): void;
  /** Applies a finished call's recording; false (the node's `phase` failed) when that throws. */
  releaseRecorded(id: number, n: NodePlan, ops: Ops, side: SideOps, phase: RunPhase): boolean;
  /** Completes an asynchronous call (the one completion path for those: see GraphRun.settle). */
  settle(id: number, inv: Invocation, r: ProcessResult, failed: RunPhase | undefined, error: unknown): void;
  /** Every node closed: the run is over. */
  finish(): void;
}
