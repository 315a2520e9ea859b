/**
 * One running CalculatorGraph: MediaPipe's run lifecycle on the event loop.
 *
 * Scheduling is a drain loop over a priority heap of nodes that may have
 * work: open tasks first (lower id first), then non-sources before sources,
 * downstream (higher id) first. A node's input stream handler forms an input
 * set; `process` gets the node's reused context; when it returns a
 * non-thenable the recorded outputs are propagated at once and the loop
 * continues, so a graph of synchronous calculators runs with no Promise or
 * closure per packet. Only a thenable (or a worker executor) parks the node
 * until it settles; max_in_flight > 1 lets several calls overlap and
 * releases their outputs in start (timestamp) order, a synchronous result
 * included: it waits for the calls started before it.
 *
 * Timestamps: every stream has a bound (the lowest timestamp it may still
 * carry); a packet at T moves it to T+1, `setNextTimestampBound` and `close`
 * move it explicitly, and nodes with a timestamp offset copy their input
 * bound (+offset) to their outputs even when they are not processed.
 *
 * Lifecycle: a node opens once its input side packets exist; it closes when
 * all its inputs are done; `close` runs once for every node whose `open`
 * succeeded, also on error and cancel. Sources run until they return STOP,
 * yielding to the event loop after every batch of source calls (counted
 * across drains, deadlock relief included, so not even a microtask chain of
 * async sources can starve timers and I/O); STOP from any other node closes
 * the sources (no further calls) and graph inputs. When the graph is idle with every
 * graph input and source finished, the nodes still open (loops through back
 * edges) are closed, lowest id first.
 *
 * Flow control: a node input queue at max_queue_size throttles the sources
 * upstream of it; if everything goes idle while a source is throttled the
 * full queues grow by one (or the run fails with UNAVAILABLE when
 * report_deadlock is set). Graph input streams are not throttled:
 * addPacket always accepts.
 *
 * Errors: the first error stops scheduling and aborts the run's signal; the
 * opened nodes are closed once their in-flight calls settle, and
 * waitUntilDone() rejects with a GraphRunError listing every error.
 *
 * This module is the hot loop: host API, heap, drain, invoke, one completion
 * path per call, deliver. Node open/close is node-lifecycle.ts, flow control
 * throttling.ts, worker calls worker-dispatch.ts, which buffers may move to a
 * worker buffer-ownership.ts, the errors run-errors.ts.
 */
import { STOP, type Packet, type ProcessResult } from "./calculator.js";
import { isThenable, type NodeContext, OP_ADD, OP_BOUND } from "./context.js";
import type { BufferOwnership } from "./buffer-ownership.js";
import type { GraphPlan, NodePlan } from "./graph-plan.js";
import { GraphRuntime, type GraphRuntimeOptions } from "./graph-runtime.js";
import { NOT_READY, READY_FOR_CLOSE } from "./stream-handlers/index.js";
import { NodeLifecycle } from "./node-lifecycle.js";
import type { CallOutcome, NodeStatsCollector } from "./node-stats.js";
import { type Invocation, NodeLife, NodeState, type Ops, type RunCore, RunState, type SideOps } from "./run-core.js";
import { describeFailure, GraphRunError, messageOf, type RunFailure, type RunPhase } from "./run-errors.js";
import { Throttling } from "./throttling.js";
import { Timestamp } from "./timestamp.js";
import { WorkerDispatch } from "./worker-dispatch.js";
import type { ValidatedGraph } from "../graph/validated.js";

export type PacketObserver = (packet: Packet) => void;
export type BoundObserver = (bound: Timestamp) => void;

const DONE = Timestamp.Done;
/** Source calls between yields to the event loop. */
const SOURCE_BATCH = 64;

// Hot-path copies of the states (plain module constants compare fastest).
const NEW = RunState.New;
const RUNNING = RunState.Running;
const STOPPING = RunState.Stopping;
const HALTED = RunState.Halted;
const CLOSING = RunState.Closing;
const FINISHED = RunState.Finished;
const OPEN = NodeLife.Open;
const CLOSED = NodeLife.Closed;
const WAITING = NodeLife.Waiting;

/** A bound past PostStream (OneOverPostStream and up) leaves nothing to carry: the stream is done. */
function doneIfPast(bound: number): number {
  return bound > Timestamp.PostStream ? DONE : bound;
}

function mismatch(stream: string, expected: number, received: number): Error {
  return new Error(
    `Packet timestamp mismatch on a calculator receiving from stream "${stream}". Current minimum expected timestamp is ${Timestamp.format(expected)} but received ${Timestamp.format(received)}.`,
  );
}

function illegalTimestamp(stream: string, ts: number): Error {
  return new Error(`In stream "${stream}", timestamp not specified or set to illegal value: ${Timestamp.format(ts)}`);
}

/** For a run given a bare graph, which then owns a runtime of its own (see GraphRuntimeOptions). */
export type GraphRunOptions = GraphRuntimeOptions;

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

export class GraphRun implements RunCore {
  readonly graph: ValidatedGraph;
  /** @internal The graph's runtime: shared, or this run's own (disposed when it finishes). */
  readonly runtime: GraphRuntime;
  /** @internal */
  readonly plan: GraphPlan;
  /** @internal */
  readonly nodes: NodeState[];
  /** @internal Every stream's bound, by stream index. */
  readonly bounds: Float64Array;
  /** @internal */
  readonly stats: NodeStatsCollector | undefined;
  /** @internal Async opens, calls and closes not settled yet. */
  pending = 0;
  /** @internal */
  closedCount = 0;
  /** @internal This run's side packet values by side packet index. */
  readonly sideValues: unknown[] = [];
  /** @internal GraphPool's per-request sink: packets by stream index. */
  outputSink: Packet[][] | undefined;
  /** @internal Called whenever the run goes idle while running. */
  idleListener: (() => void) | undefined;

  private readonly heap: Int32Array;
  private readonly inHeap: Uint8Array;
  private readonly priority: Int32Array;
  private heapSize = 0;
  private readonly openQueue: number[] = [];
  private state: RunState = NEW;
  /** drain() is on the stack (it is not re-entered). */
  private draining = false;
  /** Sources wait for the setImmediate that yields to the event loop. */
  private yielding = false;
  /** Source calls since the last yield to the event loop. */
  private sourceRuns = 0;
  /** Who may hold which value, when the graph has worker nodes (which may move buffers); else undefined. */
  private readonly ownership: BufferOwnership | undefined;
  private readonly throttling: Throttling;
  private readonly lifecycle: NodeLifecycle;
  private readonly workers: WorkerDispatch | undefined;
  private inputsOpen: number;
  private readonly errors: RunFailure[] = [];
  /** Set once cancel() halted the run. */
  private cancelled: { readonly reason: unknown } | undefined;
  private controller: AbortController | undefined;
  private sideAvailable: Uint8Array | undefined;
  private packetObservers: PacketObserver[][] | undefined;
  private boundObservers: BoundObserver[][] | undefined;
  private idleWaiters: Waiter[] = [];
  private doneWaiters: Waiter[] = [];
  private runError: Error | undefined;
  /** The runtime is this run's own: disposed when the run finishes. */
  private readonly ownsRuntime: boolean;

  /**
   * Runs of one graph share its runtime (plan, worker pools, statistics);
   * given a bare graph, the run makes a runtime of its own with `opts`.
   */
  constructor(source: GraphRuntime | ValidatedGraph, opts: GraphRunOptions = {}) {
    this.ownsRuntime = !(source instanceof GraphRuntime);
    const runtime = source instanceof GraphRuntime ? source : new GraphRuntime(source, opts);
    this.runtime = runtime;
    this.graph = runtime.graph;
    this.stats = runtime.stats;
    const plan = runtime.plan;
    this.plan = plan;
    this.ownership = runtime.ownership;
    this.throttling = new Throttling(this);
    this.lifecycle = new NodeLifecycle(this, this.throttling);
    this.workers = runtime.ownership === undefined ? undefined : new WorkerDispatch(this, this.throttling, runtime.ownership);
    const n = plan.nodes.length;
    this.nodes = new Array<NodeState>(n);
    const priority = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const np = plan.nodes[i];
      this.nodes[i] = new NodeState(np.inStream.length, plan.queueLimit, np.handler.forRun?.() ?? np.handler);
      priority[i] = np.priority;
    }
    this.priority = priority;
    this.heap = new Int32Array(n);
    this.inHeap = new Uint8Array(n);
    this.bounds = new Float64Array(plan.streams.length).fill(Timestamp.PreStream);
    this.inputsOpen = plan.graphInputs.length;
  }

  // ---------------------------------------------------------------- host API

  /**
   * Starts the run: supplies the graph's input side packets and opens every
   * node whose input side packets exist (the others open when a node
   * produces theirs). Throws when a required side packet is missing; open
   * failures surface through waitUntilDone().
   */
  start(sidePackets: Record<string, unknown> = {}): void {
    if (this.state !== NEW) throw new Error("GraphRun.start() may only be called once.");
    for (const name of this.graph.requiredSidePackets) {
      if (!Object.hasOwn(sidePackets, name)) throw new Error(`Side packet "${name}" is required but was not provided.`);
    }
    this.state = RUNNING;
    const plan = this.plan;
    if (plan.sidePackets.length > 0) {
      const available = new Uint8Array(plan.sidePackets.length);
      this.sideAvailable = available;
      plan.sidePackets.forEach((sp, i) => {
        if (!sp.fromGraph) return;
        // A graph side packet the caller left out is available but empty (MediaPipe's optional side packet).
        available[i] = 1;
        if (!Object.hasOwn(sidePackets, sp.name)) return;
        const value = sidePackets[sp.name];
        this.sideValues[i] = value;
        this.ownership?.markShared(value); // the caller keeps it
      });
    }
    for (let id = 0; id < this.nodes.length; id++) {
      const inSide = plan.nodes[id].inSide;
      let missing = 0;
      for (let k = 0; k < inSide.length; k++) if (this.sideAvailable![inSide[k]] === 0) missing++;
      this.nodes[id].missingSide = missing;
      if (missing === 0) this.openQueue.push(id);
    }
    this.drain();
  }

  /** Adds a packet to a graph input stream; timestamps must increase. Runs what becomes ready. */
  addPacket(stream: string, value: unknown, timestamp: Timestamp): void {
    this.addPacketAt(this.graphInput(stream), value, timestamp);
  }

  /** @internal addPacket by stream index (GraphPool's hot path). */
  addPacketAt(s: number, value: unknown, ts: number): void {
    this.checkAccepting();
    const bound = this.bounds[s];
    if (bound >= DONE) throw new Error(`Graph input stream "${this.plan.streams[s].name}" is closed.`);
    if (!(ts >= Timestamp.PreStream && ts <= Timestamp.PostStream && ts % 1 === 0)) throw illegalTimestamp(this.plan.streams[s].name, ts);
    if (ts < bound) throw mismatch(this.plan.streams[s].name, bound, ts);
    // The caller still holds what it passes in: never moved to a worker.
    if (this.ownership !== undefined) this.ownership.markShared(value);
    this.deliver(s, { value, timestamp: ts });
    const b = doneIfPast(Timestamp.nextAllowedInStream(ts));
    if (b >= DONE) this.inputsOpen--;
    this.raiseBound(s, b);
    this.drain();
  }

  /**
   * Promises no packet below `timestamp` on a graph input stream. The bound
   * must be an integer and may not move back; past PostStream it closes the
   * stream.
   */
  setInputStreamBound(stream: string, timestamp: Timestamp): void {
    const s = this.graphInput(stream);
    this.checkAccepting();
    const bound = this.bounds[s];
    if (bound >= DONE) throw new Error(`Graph input stream "${stream}" is closed.`);
    if (typeof timestamp !== "number" || !Number.isInteger(timestamp)) {
      throw new Error(`setInputStreamBound("${stream}", ${String(timestamp)}): a timestamp bound must be an integer.`);
    }
    if (timestamp < bound) {
      throw new Error(
        `setInputStreamBound("${stream}", ${Timestamp.format(timestamp)}): the stream's bound is already ${Timestamp.format(bound)}, and a bound cannot move back.`,
      );
    }
    if (timestamp === bound) return;
    const b = doneIfPast(timestamp);
    if (b >= DONE) this.inputsOpen--;
    this.raiseBound(s, b);
    this.drain();
  }

  closeInputStream(stream: string): void {
    this.closeInputAt(this.graphInput(stream));
    this.drain();
  }

  closeAllInputStreams(): void {
    const inputs = this.plan.graphInputs;
    for (let i = 0; i < inputs.length; i++) this.closeInputAt(inputs[i]);
    this.drain();
  }

  /**
   * Calls `onPacket` for every packet on a stream (typically a graph output
   * stream) and `onBound` whenever its bound moves. Register before start().
   * An observer that throws fails the run.
   */
  observe(stream: string, onPacket: PacketObserver, onBound?: BoundObserver): void {
    const s = this.plan.streamIndex.get(stream);
    if (s === undefined) throw new Error(`The graph has no stream "${stream}".`);
    const count = this.plan.streams.length;
    this.packetObservers ??= Array.from({ length: count }, () => []);
    this.packetObservers[s].push(onPacket);
    if (onBound !== undefined) {
      this.boundObservers ??= Array.from({ length: count }, () => []);
      this.boundObservers[s].push(onBound);
    }
  }

  /** A side packet by name, once some node (or the caller) has set it. */
  sidePacket(name: string): unknown {
    const i = this.plan.sideIndex.get(name);
    return i === undefined ? undefined : this.sideValues[i];
  }

  /** The current bound of a stream (Timestamp.Done once closed). */
  streamBound(stream: string): Timestamp {
    const s = this.plan.streamIndex.get(stream);
    if (s === undefined) throw new Error(`The graph has no stream "${stream}".`);
    return this.bounds[s];
  }

  /** Nothing is scheduled or in flight (the run may still take input). */
  get idle(): boolean {
    return !this.draining && !this.yielding && this.heapSize === 0 && this.pending === 0 && this.openQueue.length === 0;
  }

  /** Scheduling stopped because the run failed or was cancelled (it may still be closing nodes). */
  get halted(): boolean {
    const s = this.state;
    return s === HALTED || s === CLOSING || (s === FINISHED && this.runError !== undefined);
  }

  /** @internal The run takes input: started, not failed or cancelled, not stopped by a node's STOP. */
  get accepting(): boolean {
    return this.state === RUNNING;
  }

  /** @internal The bound of a stream by index. */
  boundAt(s: number): Timestamp {
    return this.bounds[s];
  }

  /** The run has finished: every node closed, or it failed or was cancelled and wound down. */
  get done(): boolean {
    return this.state === FINISHED;
  }

  /** The run's error once it failed (or its cancel reason as an Error). */
  get error(): Error | undefined {
    return this.runError;
  }

  /** Resolves when nothing is scheduled or in flight; rejects if the run failed. */
  waitUntilIdle(): Promise<void> {
    if (this.state === FINISHED) return this.settled();
    if (this.state === NEW || (!this.halted && this.idle)) return Promise.resolve();
    return new Promise((resolve, reject) => this.idleWaiters.push({ resolve, reject }));
  }

  /** Resolves when the run has finished; rejects with its GraphRunError, or the cancel reason. */
  waitUntilDone(): Promise<void> {
    if (this.state === FINISHED) return this.settled();
    return new Promise((resolve, reject) => this.doneWaiters.push({ resolve, reject }));
  }

  /**
   * Cancels the run: aborts every context's signal (and the worker flag),
   * stops scheduling, and closes the nodes that opened once their in-flight
   * calls settle. waitUntilDone() then rejects with `reason`.
   */
  cancel(reason?: unknown): void {
    // Already finished or winding down (a failure keeps its own error).
    if (this.state >= HALTED) return;
    this.cancelled = { reason: reason ?? new DOMException("The graph run was cancelled.", "AbortError") };
    if (this.state === NEW) {
      this.halt();
      this.closedCount = this.nodes.length;
      for (const rt of this.nodes) rt.state = CLOSED;
      this.finish();
      return;
    }
    this.halt();
    this.drain();
  }

  /** Aborted when the run fails or is cancelled (created on first use). */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.halted) this.controller.abort(this.abortReason());
    }
    return this.controller.signal;
  }

  // -------------------------------------------------------------- internals

  private graphInput(stream: string): number {
    const s = this.plan.streamIndex.get(stream);
    if (s === undefined || !this.plan.streams[s].graphInput) throw new Error(`"${stream}" is not an input stream of the graph.`);
    return s;
  }

  private checkAccepting(): void {
    if (this.state === NEW) throw new Error("GraphRun.start() must be called first.");
    if (this.halted) {
      if (this.cancelled !== undefined) throw new Error("The graph run was cancelled.");
      throw new Error(`Graph has errors: ${this.errors.map(describeFailure).join("\n")}`);
    }
    if (this.state === FINISHED) throw new Error("The graph run is done.");
  }

  private closeInputAt(s: number): void {
    if (this.state === NEW || this.state === FINISHED || this.bounds[s] >= DONE) return;
    this.inputsOpen--;
    this.raiseBound(s, DONE);
  }

  private settled(): Promise<void> {
    return this.runError ? Promise.reject(this.cancelled !== undefined ? this.cancelled.reason : this.runError) : Promise.resolve();
  }

  private abortReason(): unknown {
    return this.cancelled !== undefined ? this.cancelled.reason : this.runError ?? new GraphRunError(this.errors);
  }

  // ---- heap of nodes that may have work; higher priority pops first

  /** @internal Puts a node that may have work on the heap. */
  schedule(id: number): void {
    if (this.inHeap[id] !== 0) return;
    this.inHeap[id] = 1;
    const heap = this.heap;
    const prio = this.priority;
    const p = prio[id];
    let i = this.heapSize++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pid = heap[parent];
      if (prio[pid] >= p) break;
      heap[i] = pid;
      i = parent;
    }
    heap[i] = id;
  }

  private popHeap(): number {
    const heap = this.heap;
    const prio = this.priority;
    const top = heap[0];
    const size = --this.heapSize;
    if (size > 0) {
      const last = heap[size];
      const p = prio[last];
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= size) break;
        if (child + 1 < size && prio[heap[child + 1]] > prio[heap[child]]) child++;
        if (prio[heap[child]] <= p) break;
        heap[i] = heap[child];
        i = child;
      }
      heap[i] = last;
    }
    this.inHeap[top] = 0;
    return top;
  }

  // ---- the drain loop

  /** @internal Runs what is ready until nothing is (or only sources waiting for their yield). */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      for (;;) {
        if (this.state >= HALTED) {
          if (this.state === HALTED) this.shutdown();
          break;
        }
        this.runQueue();
        if (this.state >= HALTED) continue;
        if (this.yielding || this.pending > 0 || this.heapSize > 0 || this.openQueue.length > 0) break;
        if (!this.whenIdle() && this.state < HALTED) break;
      }
    } catch (e) {
      // An engine bug must not leave the run hanging.
      this.fail(undefined, "Graph", e);
      if (this.state === HALTED) this.shutdown();
    } finally {
      this.draining = false;
    }
    const s = this.state;
    if (s === HALTED || s === CLOSING) this.tryFinish();
    else if ((s === RUNNING || s === STOPPING) && this.idle) this.notifyIdle();
  }

  private runQueue(): void {
    while (this.state < HALTED) {
      if (this.openQueue.length > 0) {
        this.lifecycle.open(this.openQueue.shift()!);
        continue;
      }
      if (this.heapSize === 0) return;
      const id = this.heap[0];
      if (this.priority[id] < 0) {
        // Only sources are left (they sort below every other node). They never
        // starve the event loop: after a batch, timers, I/O and other runs get
        // a turn. The count survives drains, so neither deadlock relief nor a
        // chain of promise callbacks can keep a source going without a yield.
        if (this.yielding) return;
        if (++this.sourceRuns > SOURCE_BATCH) {
          this.yielding = true;
          setImmediate(() => {
            this.yielding = false;
            this.sourceRuns = 0;
            this.drain();
          });
          return;
        }
      }
      this.popHeap();
      this.step(id);
    }
  }

  private step(id: number): void {
    const rt = this.nodes[id];
    if (rt.state !== OPEN) return;
    if (rt.closeWhenIdle) {
      // A source told to stop (its own STOP, or a graceful stop): no more calls.
      if (rt.inFlight === 0) this.lifecycle.close(id, rt);
      return;
    }
    const n = this.plan.nodes[id];
    if (rt.inFlight >= n.maxInFlight) return;
    if (n.isSource) {
      if (rt.throttledBy > 0) return; // rescheduled when the queue drains
      this.invoke(id, rt, n, Timestamp.Unset);
      return;
    }
    const ts = rt.handler.readiness(rt.queues, this.bounds, n.inStream);
    if (ts === NOT_READY) {
      if (n.offset !== undefined && rt.inFlight === 0) this.propagateOffset(rt, n);
      return;
    }
    if (ts === READY_FOR_CLOSE) {
      if (rt.inFlight === 0) this.lifecycle.close(id, rt);
      return;
    }
    this.invoke(id, rt, n, ts);
  }

  /** Forms the input set at `ts` (none for a source) and calls process. */
  private invoke(id: number, rt: NodeState, n: NodePlan, ts: number): void {
    if (n.workerExecutor !== undefined) {
      this.workers!.invoke(id, rt, n, ts);
      return;
    }
    const ctx = n.maxInFlight === 1 ? rt.ctx! : (rt.spare!.pop() ?? this.lifecycle.makeContext(rt, n));
    if (!n.isSource) {
      rt.handler.fill(ts, rt.queues, this.bounds, n.inStream, ctx.inputs.current);
      if (rt.fullQueues > 0) this.throttling.releaseFull(rt, n);
    }
    ctx.inputTimestamp = ts;
    let r: ProcessResult | Promise<ProcessResult>;
    let async: boolean;
    const stats = this.stats;
    const started = stats === undefined ? -1 : stats.begin(id);
    ctx.inProcess = true;
    try {
      r = rt.calc!.process(ctx);
      async = isThenable(r);
    } catch (e) {
      this.endTiming(id, started, true, ctx);
      this.complete(id, rt, n, ctx, ctx.outputs, ctx.outputSidePackets.pending, undefined, "Process", e);
      if (n.maxInFlight !== 1) rt.spare!.push(ctx);
      return;
    }
    const flight = rt.flight;
    if (async) {
      rt.inFlight++;
      this.pending++;
      const inv: Invocation = { ctx, settled: false, result: undefined, ops: ctx.outputs, side: ctx.outputSidePackets.pending, failed: undefined, error: undefined, startedAt: started };
      flight.push(inv);
      // Promise.resolve: a thenable whose then() throws rejects instead of escaping.
      Promise.resolve(r).then(
        (v) => this.settle(id, inv, v, undefined, undefined),
        (e: unknown) => this.settle(id, inv, undefined, "Process", e),
      );
      if (n.maxInFlight > 1) this.schedule(id); // room for another call in flight
      return;
    }
    this.endTiming(id, started, false, ctx);
    if (flight.length === 0) {
      this.complete(id, rt, n, ctx, ctx.outputs, ctx.outputSidePackets.pending, r as ProcessResult, undefined, undefined);
      if (n.maxInFlight !== 1) rt.spare!.push(ctx);
      return;
    }
    // An earlier call is still running: this result waits its turn, so
    // outputs leave in timestamp order.
    rt.inFlight++;
    this.pending++;
    flight.push({ ctx, settled: true, result: r as ProcessResult, ops: ctx.outputs, side: ctx.outputSidePackets.pending, failed: undefined, error: undefined, startedAt: -1 });
    this.schedule(id);
  }

  /**
   * A main-thread `process` call is over: its timing ends now, or once the
   * work it handed off (`ctx.continueUntil`) settled. Scheduling never waits for that.
   */
  private endTiming(id: number, started: number, failed: boolean, ctx: NodeContext): void {
    const handoffs = ctx.endProcess();
    const stats = this.stats;
    if (stats === undefined) return;
    if (handoffs === undefined) stats.end(id, started, this.outcome(failed));
    else stats.endAfter(id, started, this.outcome(failed), handoffs);
  }

  /**
   * How a call that just settled ended: a failure once the run's signal
   * aborted (the run was cancelled, or failed elsewhere) is the call being
   * stopped, not failing. Called before the call's own failure halts the run.
   */
  private outcome(failed: boolean): CallOutcome {
    return !failed ? "ok" : this.halted ? "cancelled" : "failed";
  }

  /**
   * @internal Settles an asynchronous call (a promise, a worker's answer);
   * completes the node's settled calls in start (timestamp) order, up to the
   * first one still running (a synchronous result queued behind it included).
   */
  settle(id: number, inv: Invocation, r: ProcessResult, failed: RunPhase | undefined, error: unknown): void {
    const rt = this.nodes[id];
    const n = this.plan.nodes[id];
    if (inv.ctx !== undefined) this.endTiming(id, inv.startedAt, failed !== undefined, inv.ctx);
    else if (this.stats !== undefined && inv.startedAt >= 0) this.stats.end(id, inv.startedAt, this.outcome(failed !== undefined));
    inv.settled = true;
    inv.result = r;
    inv.failed = failed;
    inv.error = error;
    const flight = rt.flight;
    while (flight.length > 0 && flight[0].settled) {
      const head = flight.shift()!;
      rt.inFlight--;
      this.pending--;
      this.complete(id, rt, n, head.ctx, head.ops, head.side, head.result, head.failed, head.error);
      if (head.ctx !== undefined && n.maxInFlight !== 1) rt.spare!.push(head.ctx);
    }
    this.drain();
  }

  /**
   * The one completion path of a `process` call, however it ran
   * (synchronous, async, one of several in flight, on a worker): its inputs
   * are let go; what it recorded is applied, or discarded when it failed or
   * the run halted; STOP is honoured; and a node whose call ends after the
   * run halted closes once nothing of it is in flight (shutdown skipped it).
   */
  private complete(id: number, rt: NodeState, n: NodePlan, ctx: NodeContext | undefined, ops: Ops | undefined, side: SideOps | undefined, r: ProcessResult, failed: RunPhase | undefined, error: unknown): void {
    if (ctx !== undefined) ctx.inputs.current.fill(undefined);
    const halted = this.state >= HALTED;
    if (failed !== undefined || halted) {
      ctx?.discardRecorded();
      if (failed !== undefined && this.cancelled === undefined) this.fail(id, failed, error);
      if (halted && rt.inFlight === 0 && rt.state === OPEN) this.lifecycle.close(id, rt);
      return;
    }
    if (!this.releaseRecorded(id, n, ops!, side!, "Process")) return;
    if (r === STOP) {
      if (n.isSource) rt.closeWhenIdle = true;
      else this.gracefulStop();
    }
    if (rt.closeWhenIdle) {
      if (rt.inFlight === 0 && rt.state === OPEN) this.lifecycle.close(id, rt);
      return;
    }
    this.schedule(id);
  }

  /**
   * @internal Propagates what a finished call (open, process or close)
   * recorded, as MediaPipe does when a call returns: its packets, bounds and
   * closes, then its output side packets. A failure there (e.g. a timestamp
   * mismatch) fails the node's `phase`. The recording is cleared either way;
   * returns whether it succeeded.
   */
  releaseRecorded(id: number, n: NodePlan, ops: Ops, side: SideOps, phase: RunPhase): boolean {
    try {
      if (ops.length > 0) this.release(n, ops);
      if (side.length > 0) this.releaseSide(n, side); // clears them
    } catch (e) {
      if (ops.length > 0) ops.reset?.();
      side.length = 0;
      this.fail(id, phase, e);
      return false;
    }
    if (ops.length > 0) ops.reset?.();
    return true;
  }

  // ---- propagation

  /** Applies a call's recorded outputs: packets, bounds, closes (MediaPipe's batched updates). */
  private release(n: NodePlan, ops: Ops): void {
    const len = ops.length;
    if (len === 0) return;
    if (this.ownership !== undefined && len > 1) this.ownership.markRepeated(ops);
    const outStream = n.outStream;
    const bounds = this.bounds;
    for (let k = 0; k < len; k++) {
      const s = outStream[ops.portsAt[k]];
      const ts = ops.stamps[k];
      const kind = ops.kinds[k];
      if (kind === OP_ADD) {
        if (!(ts >= Timestamp.PreStream && ts <= Timestamp.PostStream && ts % 1 === 0)) throw illegalTimestamp(this.plan.streams[s].name, ts);
        const bound = bounds[s];
        if (ts < bound) throw mismatch(this.plan.streams[s].name, bound, ts);
        this.deliver(s, { value: ops.values[k], timestamp: ts });
        this.raiseBound(s, doneIfPast(Timestamp.nextAllowedInStream(ts)));
      } else if (kind === OP_BOUND) {
        if (ts > bounds[s]) this.raiseBound(s, doneIfPast(ts));
      } else if (bounds[s] < DONE) {
        this.raiseBound(s, DONE);
      }
    }
  }

  private deliver(s: number, packet: Packet): void {
    const sp = this.plan.streams[s];
    const consumerNode = sp.consumerNode;
    const consumerPort = sp.consumerPort;
    for (let j = 0; j < consumerNode.length; j++) {
      const c = consumerNode[j];
      const rt = this.nodes[c];
      if (rt.state === CLOSED) continue;
      const q = rt.queues[consumerPort[j]];
      q.push(packet);
      const h = rt.handler;
      if (h.packetAdded !== undefined) h.packetAdded(rt.queues, this.bounds, this.plan.nodes[c].inStream);
      if (q.size >= q.limit && !q.full) this.throttling.markFull(rt, c, consumerPort[j], q);
      this.schedule(c);
    }
    const sink = this.outputSink;
    if (sink !== undefined) sink[s]?.push(packet);
    const observers = this.packetObservers;
    if (this.ownership !== undefined) this.track(this.ownership, s, packet.value);
    if (observers !== undefined) this.notify(observers[s], packet, s);
  }

  /** A value that more than one reader gets (or the caller, or an observer) may never move to a worker. */
  private track(ownership: BufferOwnership, s: number, value: unknown): void {
    if (value === null || typeof value !== "object") return;
    if (this.plan.streams[s].manyReaders || (this.packetObservers?.[s].length ?? 0) > 0 || this.outputSink?.[s] !== undefined) {
      ownership.markShared(value);
    }
  }

  /** Calls a stream's observers; one that throws fails the run instead of the engine. */
  private notify<T>(list: readonly ((value: T) => void)[], value: T, s: number): void {
    for (let i = 0; i < list.length; i++) {
      try {
        list[i](value);
      } catch (e) {
        this.fail(undefined, "Graph", new Error(`Observer of stream "${this.plan.streams[s].name}" failed: ${messageOf(e)}`, { cause: e }));
      }
    }
  }

  /** @internal Moves a stream's bound (and schedules its readers). */
  raiseBound(s: number, bound: number): void {
    this.bounds[s] = bound;
    const consumerNode = this.plan.streams[s].consumerNode;
    for (let j = 0; j < consumerNode.length; j++) this.schedule(consumerNode[j]);
    const observers = this.boundObservers;
    if (observers !== undefined) this.notify(observers[s], bound, s);
  }

  /** timestampOffset: output bounds follow the input bound (+offset) without a Process call. */
  private propagateOffset(rt: NodeState, n: NodePlan): void {
    const queues = rt.queues;
    const inStream = n.inStream;
    let min = Infinity;
    for (let i = 0; i < queues.length; i++) {
      const q = queues[i];
      const v = q.size > 0 ? q.peek().timestamp : this.bounds[inStream[i]];
      if (v < min) min = v;
    }
    if (min >= DONE || min === Infinity) return; // the node closes instead
    let target = min + n.offset!;
    if (target < Timestamp.PreStream) return;
    target = doneIfPast(target);
    const outStream = n.outStream;
    for (let o = 0; o < outStream.length; o++) {
      const s = outStream[o];
      if (target > this.bounds[s]) this.raiseBound(s, target);
    }
  }

  private releaseSide(n: NodePlan, pending: SideOps): void {
    for (const { port, value } of pending) this.setSidePacket(n.outSide[port], value);
    pending.length = 0;
  }

  private setSidePacket(i: number, value: unknown): void {
    const available = this.sideAvailable!;
    const sp = this.plan.sidePackets[i];
    if (available[i] !== 0) throw new Error(`Output side packet "${sp.name}" was set twice.`);
    available[i] = 1;
    this.sideValues[i] = value;
    this.ownership?.markShared(value); // several nodes may read it
    for (let k = 0; k < sp.consumers.length; k++) {
      const c = sp.consumers[k];
      const rt = this.nodes[c];
      if (--rt.missingSide === 0 && rt.state === WAITING) this.queueOpen(c);
    }
  }

  private queueOpen(id: number): void {
    // Open tasks run lower id first.
    const q = this.openQueue;
    let i = q.length;
    while (i > 0 && q[i - 1] > id) i--;
    q.splice(i, 0, id);
  }

  /**
   * Called when nothing is scheduled or in flight. Relieves a throttling
   * deadlock, or, once every graph input and source is finished, closes the
   * nodes still open (loops through back edges never see their inputs end).
   * Returns true when it made new work.
   */
  private whenIdle(): boolean {
    if (this.state !== RUNNING && this.state !== STOPPING) return false;
    if (this.throttling.anySourceThrottled()) return this.throttling.relieveDeadlock();
    if (this.inputsOpen > 0) return false;
    return this.lifecycle.closeLeftover();
  }

  private notifyIdle(): void {
    this.idleListener?.();
    if (this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w.resolve();
  }

  /** A non-source returned STOP: close the sources and graph inputs, let the rest drain. */
  private gracefulStop(): void {
    if (this.state === RUNNING) this.state = STOPPING;
    const inputs = this.plan.graphInputs;
    for (let i = 0; i < inputs.length; i++) this.closeInputAt(inputs[i]);
    for (let id = 0; id < this.nodes.length; id++) {
      if (!this.plan.nodes[id].isSource) continue;
      const rt = this.nodes[id];
      rt.closeWhenIdle = true;
      if (rt.state === OPEN && rt.inFlight === 0) this.lifecycle.close(id, rt);
    }
  }

  // ---- errors and the end of the run

  /** @internal Records a failure; the first one halts the run. */
  fail(id: number | undefined, phase: RunPhase | "Graph", cause: unknown): void {
    this.errors.push({ node: id === undefined ? undefined : this.plan.nodes[id].name, phase, cause });
    if (this.state < HALTED) this.halt();
  }

  /** Stops scheduling and tells everything running to stop; drain() then closes the nodes. */
  private halt(): void {
    this.state = HALTED;
    this.heapSize = 0;
    this.inHeap.fill(0);
    this.openQueue.length = 0;
    this.workers?.halt();
    if (this.controller !== undefined && !this.controller.signal.aborted) this.controller.abort(this.abortReason());
  }

  /** After a failure or cancel (from drain, never re-entered). */
  private shutdown(): void {
    this.state = CLOSING;
    this.lifecycle.shutdown();
  }

  private tryFinish(): void {
    if ((this.state === HALTED || this.state === CLOSING) && this.closedCount === this.nodes.length && this.pending === 0) this.finish();
  }

  /** @internal Ends the run: settles whoever waits for it. */
  finish(): void {
    if (this.state === FINISHED) return;
    this.state = FINISHED;
    // Closing the last nodes scheduled their readers: nothing is left to run.
    this.heapSize = 0;
    this.inHeap.fill(0);
    this.openQueue.length = 0;
    const cancelled = this.cancelled;
    if (cancelled !== undefined) {
      this.runError = cancelled.reason instanceof Error ? cancelled.reason : new Error(messageOf(cancelled.reason));
    } else if (this.errors.length > 0) {
      this.runError = new GraphRunError(this.errors);
    }
    const waiters = [...this.idleWaiters, ...this.doneWaiters];
    this.idleWaiters = [];
    this.doneWaiters = [];
    if (this.ownsRuntime && this.plan.hasWorkers) {
      // Its own worker pools end with it; waiters learn of the run once they have.
      void this.runtime.dispose().then(
        () => this.settleWaiters(waiters),
        (e: unknown) => {
          this.runError ??= e instanceof Error ? e : new Error(messageOf(e));
          this.settleWaiters(waiters);
        },
      );
      return;
    }
    this.settleWaiters(waiters);
  }

  private settleWaiters(waiters: readonly Waiter[]): void {
    const result = this.runError ? (this.cancelled !== undefined ? this.cancelled.reason : this.runError) : undefined;
    for (const w of waiters) {
      if (this.runError) w.reject(result);
      else w.resolve();
    }
  }
}
