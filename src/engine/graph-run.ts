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
 */
import { STOP, type Calculator, type Packet, type ProcessResult } from "./calculator.js";
import { isThenable, NodeContext, OP_ADD, OP_BOUND } from "./context.js";
import { GraphPlan, type EngineRegistry, type NodePlan } from "./graph-plan.js";
import { NOT_READY, READY_FOR_CLOSE } from "./input-handlers.js";
import type { CallOutcome, NodeStatsCollector } from "./node-stats.js";
import { PacketQueue } from "./packet-queue.js";
import { Timestamp } from "./timestamp.js";
import type { ValidatedGraph } from "../graph/validated.js";
import { collectTransferables, deserializeError, markShared, visitHeld, type WorkerProcessTask } from "./worker-protocol.js";

export type RunPhase = "Open" | "Process" | "Close";

/** One failure of a run: a calculator phase of a node, or the graph itself (node undefined). */
export interface RunFailure {
  readonly node: string | undefined;
  readonly phase: RunPhase | "Graph";
  readonly cause: unknown;
}

/**
 * A failed run, with MediaPipe's combined message:
 * `CalculatorGraph::Run() failed: \nCalculator::Process() for node "X" failed: …`,
 * one line per error.
 */
export class GraphRunError extends Error {
  readonly errors: readonly RunFailure[];
  constructor(errors: readonly RunFailure[]) {
    super(`CalculatorGraph::Run() failed: \n${errors.map(describeFailure).join("\n")}`);
    this.name = "GraphRunError";
    this.errors = errors;
  }
}

function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

function describeFailure(f: RunFailure): string {
  return f.phase === "Graph" ? messageOf(f.cause) : `Calculator::${f.phase}() for node "${f.node}" failed: ${messageOf(f.cause)}`;
}

/** An error with an absl-style status code, e.g. UNAVAILABLE for a throttling deadlock. */
export class StatusError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "StatusError";
  }
}

export type PacketObserver = (packet: Packet) => void;
export type BoundObserver = (bound: Timestamp) => void;

const DONE = Timestamp.Done;
/** Source calls between yields to the event loop. */
const SOURCE_BATCH = 64;

/**
 * Packet values (and the objects, typed arrays and buffers inside them) that
 * someone besides the engine may hold: the caller (graph inputs, side
 * packets, graph outputs), an observer, or more than one node. Their buffers
 * are copied to worker threads, never moved. Only runs with worker nodes
 * record anything.
 */
const shared = new WeakSet<object>();

// Node lifecycle states.
const WAITING = 0; // input side packets missing
const OPENING = 1;
const OPEN = 2;
const CLOSING = 3;
const CLOSED = 4;

// Run states.
const NEW = 0;
const RUNNING = 1;
const FINISHED = 2;

/** Recorded outputs of one call: an OutputBuffer or a worker's result. */
interface Ops {
  readonly kinds: readonly number[];
  readonly portsAt: readonly number[];
  readonly values: readonly unknown[];
  readonly stamps: readonly number[];
  readonly length: number;
  /** Forgets them (an OutputBuffer is reused). */
  reset?(): void;
}

/** Recorded output side packets of one call, by flat port. */
type SideOps = { port: number; value: unknown }[];

/** An in-flight call of a node running several at once (max_in_flight > 1, or a worker). */
interface Invocation {
  readonly ctx: NodeContext | undefined;
  settled: boolean;
  result: ProcessResult;
  /** Set once the call succeeded (always for a main-thread call). */
  ops: Ops | undefined;
  side: SideOps | undefined;
  failed: RunPhase | undefined;
  error: unknown;
  /** NodeStatsCollector.begin()'s time, or -1 when the call is not timed here (stats off, or already counted). */
  startedAt: number;
}

class NodeState {
  state = WAITING;
  calc: Calculator | undefined = undefined;
  ctx: NodeContext | undefined = undefined;
  readonly queues: PacketQueue[];
  inFlight = 0;
  /** Start of the running async call (max_in_flight 1), for the stats. */
  startedAt = 0;
  missingSide = 0;
  /** Close once idle: a source said STOP while busy, or a graceful stop. */
  closeWhenIdle = false;
  /** Calls in start order, released in that order (max_in_flight > 1 or worker). */
  flight: Invocation[] | undefined = undefined;
  /** Spare contexts for max_in_flight > 1. */
  spare: NodeContext[] | undefined = undefined;
  fullQueues = 0;
  /** Full queues downstream of this source. */
  throttledBy = 0;
  /** This run's input side packets by the node's flat index. */
  sideValues: unknown[] = [];
  sideHas: boolean[] = [];

  constructor(numInputs: number, limit: number) {
    this.queues = new Array<PacketQueue>(numInputs);
    for (let i = 0; i < numInputs; i++) this.queues[i] = new PacketQueue(limit);
  }
}

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

export interface GraphRunOptions {
  /** Collects per-node `process` statistics (shared by every run of the graph). */
  readonly stats?: NodeStatsCollector;
}

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

export class GraphRun {
  readonly graph: ValidatedGraph;
  private readonly plan: GraphPlan;
  private readonly nodes: NodeState[];
  private readonly bounds: Float64Array;
  private readonly heap: Int32Array;
  private readonly inHeap: Uint8Array;
  private readonly priority: Int32Array;
  private heapSize = 0;
  private readonly openQueue: number[] = [];
  private status = NEW;
  private draining = false;
  private yielding = false;
  /** Source calls since the last yield to the event loop. */
  private sourceRuns = 0;
  /** A node returned STOP: graph inputs and sources are closed, the rest drains. */
  private gracefullyStopping = false;
  /** Record which values others may hold (the graph has worker nodes, which may move buffers). */
  private readonly tracking: boolean;
  /** Scheduling stopped by an error or cancel. */
  private stopped = false;
  private shutdownStarted = false;
  /** Async opens, calls and closes not settled yet. */
  private pending = 0;
  private closedCount = 0;
  private inputsOpen: number;
  private readonly errors: RunFailure[] = [];
  private cancelReason: unknown = undefined;
  private cancelled = false;
  private controller: AbortController | undefined;
  private cancelFlag: Int32Array | undefined;
  private sideValues: unknown[] = [];
  private sideAvailable: Uint8Array | undefined;
  private packetObservers: PacketObserver[][] | undefined;
  private boundObservers: BoundObserver[][] | undefined;
  private idleWaiters: Waiter[] = [];
  private doneWaiters: Waiter[] = [];
  private runError: Error | undefined;
  /** @internal GraphRunner's per-request sink: packets by stream index. */
  outputSink: Packet[][] | undefined;
  /** @internal Called whenever the run goes idle while running. */
  idleListener: (() => void) | undefined;
  private readonly stats: NodeStatsCollector | undefined;

  /**
   * @param registry Accepted for compatibility and not needed: validation
   *   recorded what the engine needs from it (module URLs, schema files).
   */
  constructor(graph: ValidatedGraph, registry?: EngineRegistry, opts: GraphRunOptions = {}) {
    void registry;
    this.graph = graph;
    this.stats = opts.stats;
    const plan = GraphPlan.of(graph);
    this.tracking = plan.hasWorkers;
    this.plan = plan;
    const n = plan.nodes.length;
    this.nodes = new Array<NodeState>(n);
    const priority = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const np = plan.nodes[i];
      this.nodes[i] = new NodeState(np.inStream.length, plan.queueLimit);
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
    if (this.status !== NEW) throw new Error("GraphRun.start() may only be called once.");
    for (const name of this.graph.requiredSidePackets) {
      if (!Object.hasOwn(sidePackets, name)) throw new Error(`Side packet "${name}" is required but was not provided.`);
    }
    this.status = RUNNING;
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
        if (this.tracking) markShared(value, shared); // the caller keeps it
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

  /** @internal addPacket by stream index (GraphRunner's hot path). */
  addPacketAt(s: number, value: unknown, ts: number): void {
    this.checkAccepting();
    const bound = this.bounds[s];
    if (bound >= DONE) throw new Error(`Graph input stream "${this.plan.streams[s].name}" is closed.`);
    if (!(ts >= Timestamp.PreStream && ts <= Timestamp.PostStream && ts % 1 === 0)) throw illegalTimestamp(this.plan.streams[s].name, ts);
    if (ts < bound) throw mismatch(this.plan.streams[s].name, bound, ts);
    // The caller still holds what it passes in: never moved to a worker.
    if (this.tracking) markShared(value, shared);
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
    return this.stopped;
  }

  /** @internal The run takes input: started, not failed or cancelled, not stopped by a node's STOP. */
  get accepting(): boolean {
    return this.status === RUNNING && !this.stopped && !this.gracefullyStopping;
  }

  /** @internal The bound of a stream by index. */
  boundAt(s: number): Timestamp {
    return this.bounds[s];
  }

  /** The run has finished: every node closed, or it failed or was cancelled and wound down. */
  get done(): boolean {
    return this.status === FINISHED;
  }

  /** The run's error once it failed (or its cancel reason as an Error). */
  get error(): Error | undefined {
    return this.runError;
  }

  /** Resolves when nothing is scheduled or in flight; rejects if the run failed. */
  waitUntilIdle(): Promise<void> {
    if (this.status === FINISHED) return this.settled();
    if (this.status === NEW || (!this.stopped && this.idle)) return Promise.resolve();
    return new Promise((resolve, reject) => this.idleWaiters.push({ resolve, reject }));
  }

  /** Resolves when the run has finished; rejects with its GraphRunError, or the cancel reason. */
  waitUntilDone(): Promise<void> {
    if (this.status === FINISHED) return this.settled();
    return new Promise((resolve, reject) => this.doneWaiters.push({ resolve, reject }));
  }

  /**
   * Cancels the run: aborts every context's signal (and the worker flag),
   * stops scheduling, and closes the nodes that opened once their in-flight
   * calls settle. waitUntilDone() then rejects with `reason`.
   */
  cancel(reason?: unknown): void {
    // Already finished or winding down (a failure keeps its own error).
    if (this.status === FINISHED || this.cancelled || this.stopped) return;
    this.cancelled = true;
    this.cancelReason = reason ?? new DOMException("The graph run was cancelled.", "AbortError");
    if (this.status === NEW) {
      this.status = RUNNING;
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
      if (this.stopped) this.controller.abort(this.abortReason());
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
    if (this.status === NEW) throw new Error("GraphRun.start() must be called first.");
    if (this.stopped) {
      if (this.cancelled) throw new Error("The graph run was cancelled.");
      throw new Error(`Graph has errors: ${this.errors.map(describeFailure).join("\n")}`);
    }
    if (this.status === FINISHED) throw new Error("The graph run is done.");
  }

  private closeInputAt(s: number): void {
    if (this.status !== RUNNING || this.bounds[s] >= DONE) return;
    this.inputsOpen--;
    this.raiseBound(s, DONE);
  }

  private settled(): Promise<void> {
    return this.runError ? Promise.reject(this.cancelled ? this.cancelReason : this.runError) : Promise.resolve();
  }

  private abortReason(): unknown {
    return this.cancelled ? this.cancelReason : this.runError ?? new GraphRunError(this.errors);
  }

  // ---- heap of nodes that may have work; higher priority pops first

  private schedule(id: number): void {
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

  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      for (;;) {
        if (this.stopped) {
          if (!this.shutdownStarted) this.shutdown();
          break;
        }
        this.runQueue();
        if (this.stopped) continue;
        if (this.yielding || this.pending > 0 || this.heapSize > 0 || this.openQueue.length > 0) break;
        if (!this.whenIdle() && !this.stopped) break;
      }
    } catch (e) {
      // An engine bug must not leave the run hanging.
      this.fail(undefined, "Graph", e);
      if (!this.shutdownStarted) this.shutdown();
    } finally {
      this.draining = false;
    }
    if (this.stopped) this.tryFinish();
    else if (this.status === RUNNING && this.idle) this.notifyIdle();
  }

  private runQueue(): void {
    while (!this.stopped) {
      if (this.openQueue.length > 0) {
        this.openNode(this.openQueue.shift()!);
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
      if (rt.inFlight === 0) this.closeNode(id, rt);
      return;
    }
    const n = this.plan.nodes[id];
    if (rt.inFlight >= n.maxInFlight) return;
    if (n.isSource) {
      if (rt.throttledBy > 0) return; // rescheduled when the queue drains
      this.invoke(id, rt, n, Timestamp.Unset);
      return;
    }
    const ts = n.handler.readiness(rt.queues, this.bounds, n.inStream);
    if (ts === NOT_READY) {
      if (n.offset !== undefined && rt.inFlight === 0) this.propagateOffset(rt, n);
      return;
    }
    if (ts === READY_FOR_CLOSE) {
      if (rt.inFlight === 0) this.closeNode(id, rt);
      return;
    }
    this.invoke(id, rt, n, ts);
  }

  /** Forms the input set at `ts` (none for a source) and calls process. */
  private invoke(id: number, rt: NodeState, n: NodePlan, ts: number): void {
    if (n.workerExecutor !== undefined) {
      this.invokeWorker(id, rt, n, ts);
      return;
    }
    const ctx = n.maxInFlight === 1 ? rt.ctx! : (rt.spare!.pop() ?? this.makeContext(rt, n));
    const current = ctx.inputs.current;
    if (!n.isSource) {
      n.handler.fill(ts, rt.queues, this.bounds, n.inStream, current);
      if (rt.fullQueues > 0) this.releaseFull(rt, n);
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
      this.endCall(id, started, true, ctx);
      ctx.outputs.reset();
      ctx.outputSidePackets.pending.length = 0;
      current.fill(undefined);
      if (n.maxInFlight !== 1) rt.spare!.push(ctx);
      this.fail(id, "Process", e);
      return;
    }
    if (async) {
      rt.inFlight++;
      this.pending++;
      // Promise.resolve: a thenable whose then() throws rejects instead of escaping.
      const p = Promise.resolve(r);
      if (n.maxInFlight === 1) {
        rt.startedAt = started;
        p.then(
          (v) => this.afterAsyncProcess(id, v, undefined, false),
          (e: unknown) => this.afterAsyncProcess(id, undefined, e, true),
        );
      } else {
        const inv: Invocation = { ctx, settled: false, result: undefined, ops: ctx.outputs, side: ctx.outputSidePackets.pending, failed: undefined, error: undefined, startedAt: started };
        rt.flight!.push(inv);
        p.then(
          (v) => this.settle(id, inv, v, undefined, undefined),
          (e: unknown) => this.settle(id, inv, undefined, "Process", e),
        );
        this.schedule(id); // room for another call in flight
      }
      return;
    }
    this.endCall(id, started, false, ctx);
    current.fill(undefined);
    if (n.maxInFlight === 1) {
      this.afterProcess(id, rt, n, ctx, r as ProcessResult);
      return;
    }
    const flight = rt.flight!;
    if (flight.length === 0) {
      this.afterProcess(id, rt, n, ctx, r as ProcessResult);
      rt.spare!.push(ctx);
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
  private endCall(id: number, started: number, failed: boolean, ctx: NodeContext): void {
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
    return !failed ? "ok" : this.stopped ? "cancelled" : "failed";
  }

  private afterProcess(id: number, rt: NodeState, n: NodePlan, ctx: NodeContext, r: ProcessResult): void {
    if (this.releaseRecorded(id, n, ctx.outputs, ctx.outputSidePackets.pending, "Process")) this.afterCall(id, rt, n, r);
  }

  private afterCall(id: number, rt: NodeState, n: NodePlan, r: ProcessResult): void {
    if (r === STOP) {
      if (n.isSource) rt.closeWhenIdle = true;
      else this.gracefulStop();
    }
    if (rt.closeWhenIdle) {
      if (rt.inFlight === 0 && rt.state === OPEN) this.closeNode(id, rt);
      return;
    }
    this.schedule(id);
  }

  private afterAsyncProcess(id: number, r: ProcessResult, error: unknown, failed: boolean): void {
    const rt = this.nodes[id];
    const n = this.plan.nodes[id];
    const ctx = rt.ctx!;
    this.endCall(id, rt.startedAt, failed, ctx);
    rt.inFlight--;
    this.pending--;
    ctx.inputs.current.fill(undefined);
    if (this.stopped) {
      ctx.outputs.reset();
      ctx.outputSidePackets.pending.length = 0;
      if (failed && !this.cancelled) this.fail(id, "Process", error);
      if (rt.state === OPEN) this.closeNode(id, rt);
    } else if (failed) {
      ctx.outputs.reset();
      ctx.outputSidePackets.pending.length = 0;
      this.fail(id, "Process", error);
    } else {
      this.afterProcess(id, rt, n, ctx, r);
    }
    this.drain();
  }

  /**
   * Completes an in-flight call; releases finished calls in start (timestamp)
   * order, up to the first one still running (a synchronous result queued
   * behind it included).
   */
  private settle(id: number, inv: Invocation, r: ProcessResult, failed: RunPhase | undefined, error: unknown): void {
    const rt = this.nodes[id];
    const n = this.plan.nodes[id];
    if (inv.ctx !== undefined) this.endCall(id, inv.startedAt, failed !== undefined, inv.ctx);
    else if (this.stats !== undefined && inv.startedAt >= 0) this.stats.end(id, inv.startedAt, this.outcome(failed !== undefined));
    inv.settled = true;
    inv.result = r;
    inv.failed = failed;
    inv.error = error;
    const flight = rt.flight!;
    while (flight.length > 0 && flight[0].settled) {
      const head = flight.shift()!;
      rt.inFlight--;
      this.pending--;
      const ctx = head.ctx;
      if (ctx !== undefined) ctx.inputs.current.fill(undefined);
      if (head.failed !== undefined) {
        if (!this.cancelled) this.fail(id, head.failed, head.error);
      } else if (!this.stopped && this.releaseRecorded(id, n, head.ops!, head.side!, "Process")) {
        this.afterCall(id, rt, n, head.result);
      }
      if (ctx !== undefined) {
        ctx.outputs.reset();
        ctx.outputSidePackets.pending.length = 0;
        rt.spare!.push(ctx);
      }
    }
    if (this.stopped && rt.inFlight === 0 && rt.state === OPEN) this.closeNode(id, rt);
    this.drain();
  }

  /**
   * Propagates what a finished call (open, process or close) recorded, as
   * MediaPipe does when a call returns: its packets, bounds and closes, then
   * its output side packets. A failure there (e.g. a timestamp mismatch)
   * fails the node's `phase`. The recording is cleared either way; returns
   * whether it succeeded.
   */
  private releaseRecorded(id: number, n: NodePlan, ops: Ops, side: SideOps, phase: RunPhase): boolean {
    try {
      if (ops.length > 0) {
        this.release(n, ops);
        ops.reset?.();
      }
      if (side.length > 0) this.releaseSide(n, side); // clears them
      return true;
    } catch (e) {
      ops.reset?.();
      side.length = 0;
      this.fail(id, phase, e);
      return false;
    }
  }

  // ---- propagation

  /** Applies a call's recorded outputs: packets, bounds, closes (MediaPipe's batched updates). */
  private release(n: NodePlan, ops: Ops): void {
    const len = ops.length;
    if (len === 0) return;
    if (this.tracking && len > 1) this.markRepeated(ops);
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
      if (q.size >= q.limit && !q.full) this.markFull(rt, c, consumerPort[j], q);
      this.schedule(c);
    }
    const sink = this.outputSink;
    if (sink !== undefined) sink[s]?.push(packet);
    const observers = this.packetObservers;
    if (this.tracking) this.track(s, packet.value);
    if (observers !== undefined) this.notify(observers[s], packet, s);
  }

  /** A value that more than one reader gets (or the caller, or an observer) may never move to a worker. */
  private track(s: number, value: unknown): void {
    if (value === null || typeof value !== "object") return;
    if (this.plan.streams[s].manyReaders || (this.packetObservers?.[s].length ?? 0) > 0 || this.outputSink?.[s] !== undefined) {
      markShared(value, shared);
    }
  }

  /** One call emitting the same object (or buffer) in several packets hands it to several readers. */
  private markRepeated(ops: Ops): void {
    const owner = new Map<object, number>(); // what lies in which packet
    for (let k = 0; k < ops.length; k++) {
      const v = ops.values[k];
      if (ops.kinds[k] !== OP_ADD || v === null || typeof v !== "object") continue;
      let clash = -1;
      visitHeld(v, (held) => {
        const prev = owner.get(held);
        if (prev === undefined) owner.set(held, k);
        else if (prev !== k) clash = prev;
      });
      if (clash >= 0) {
        markShared(v, shared);
        markShared(ops.values[clash], shared);
      }
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

  private raiseBound(s: number, bound: number): void {
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
    if (this.tracking) markShared(value, shared); // every run's nodes read it
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

  // ---- throttling (max_queue_size)

  private markFull(rt: NodeState, node: number, port: number, q: PacketQueue): void {
    q.full = true;
    rt.fullQueues++;
    const sources = this.plan.nodes[node].throttles[port];
    for (let k = 0; k < sources.length; k++) this.nodes[sources[k]].throttledBy++;
  }

  private unmarkFull(rt: NodeState, n: NodePlan, port: number, q: PacketQueue): void {
    q.full = false;
    rt.fullQueues--;
    const sources = n.throttles[port];
    for (let k = 0; k < sources.length; k++) {
      if (--this.nodes[sources[k]].throttledBy === 0) this.schedule(sources[k]);
    }
  }

  private releaseFull(rt: NodeState, n: NodePlan): void {
    const queues = rt.queues;
    for (let i = 0; i < queues.length; i++) {
      const q = queues[i];
      if (q.full && q.size < q.limit) this.unmarkFull(rt, n, i, q);
    }
  }

  /**
   * Called when nothing is scheduled or in flight. Relieves a throttling
   * deadlock, or, once every graph input and source is finished, closes the
   * nodes still open (loops through back edges never see their inputs end).
   * Returns true when it made new work.
   */
  private whenIdle(): boolean {
    if (this.status !== RUNNING) return false;
    const plan = this.plan;
    let throttled = false;
    let sourcesOpen = false;
    for (let id = 0; id < this.nodes.length; id++) {
      const rt = this.nodes[id];
      if (!plan.nodes[id].isSource || rt.state === CLOSED || rt.state === WAITING) continue;
      sourcesOpen = true;
      if (rt.throttledBy > 0) throttled = true;
    }
    if (throttled) {
      if (this.graph.reportDeadlock) {
        const full: string[] = [];
        this.nodes.forEach((rt, id) =>
          rt.queues.forEach((q, i) => {
            if (q.full) full.push(`"${plan.streams[plan.nodes[id].inStream[i]].name}"`);
          }),
        );
        this.fail(undefined, "Graph", new StatusError("UNAVAILABLE", `Detected a deadlock due to input throttling for: ${full.join(", ")}.`));
        return false;
      }
      // MediaPipe's relief: let every full queue grow by one.
      this.nodes.forEach((rt, id) =>
        rt.queues.forEach((q, i) => {
          if (!q.full) return;
          q.limit = q.size + 1;
          this.unmarkFull(rt, plan.nodes[id], i, q);
        }),
      );
      return true;
    }
    if (this.inputsOpen > 0 || sourcesOpen) return false;
    for (let id = 0; id < this.nodes.length; id++) {
      const rt = this.nodes[id];
      if (rt.state === OPEN) {
        this.closeNode(id, rt);
        return true;
      }
      if (rt.state === WAITING) {
        // Its side packets never came: it never opened, so no close call.
        this.finishClose(id, rt, false);
        return true;
      }
    }
    if (this.closedCount === this.nodes.length) this.finish();
    return false;
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
    this.gracefullyStopping = true;
    const inputs = this.plan.graphInputs;
    for (let i = 0; i < inputs.length; i++) this.closeInputAt(inputs[i]);
    for (let id = 0; id < this.nodes.length; id++) {
      if (!this.plan.nodes[id].isSource) continue;
      const rt = this.nodes[id];
      rt.closeWhenIdle = true;
      if (rt.state === OPEN && rt.inFlight === 0) this.closeNode(id, rt);
    }
  }

  // ---- lifecycle

  private makeContext(rt: NodeState, n: NodePlan): NodeContext {
    const bounds = this.bounds;
    return new NodeContext({
      nodeName: n.name,
      calculatorName: n.calculatorName,
      options: n.spec.options,
      indexes: n.indexes,
      sideValues: rt.sideValues,
      sidePresent: (i) => rt.sideHas[i],
      inputDone: (i) => rt.queues[i].size === 0 && bounds[n.inStream[i]] >= DONE,
      signalSource: this,
      keepsHandoffs: true,
    });
  }

  private openNode(id: number): void {
    const rt = this.nodes[id];
    if (rt.state !== WAITING) return;
    const n = this.plan.nodes[id];
    rt.state = OPENING;
    const inSide = n.inSide;
    for (let k = 0; k < inSide.length; k++) {
      rt.sideValues[k] = this.sideValues[inSide[k]];
      rt.sideHas[k] = this.sideValues[inSide[k]] !== undefined;
    }
    if (n.workerExecutor !== undefined) {
      // Worker instances open on their thread, the first time it serves the node.
      this.afterOpen(id, rt, n);
      return;
    }
    let calc: Calculator;
    try {
      calc = new n.cls();
    } catch (e) {
      this.openFailed(id, rt, e);
      return;
    }
    rt.calc = calc;
    const ctx = this.makeContext(rt, n);
    rt.ctx = ctx;
    if (n.maxInFlight > 1) {
      rt.spare = [];
      rt.flight = [];
    }
    if (calc.open === undefined) {
      this.afterOpen(id, rt, n);
      return;
    }
    ctx.inputTimestamp = Timestamp.Unstarted;
    const open = calc.open.bind(calc);
    this.lifecycle(
      () => open(ctx),
      () => this.afterOpen(id, rt, n),
      (e) => {
        ctx.outputs.reset();
        ctx.outputSidePackets.pending.length = 0;
        this.openFailed(id, rt, e);
      },
    );
  }

  /**
   * Runs open or close, either of which may return a promise: `done` or
   * `failed` follows at once for a synchronous result, or once the promise
   * settles (counted as pending meanwhile, then the run drains).
   */
  private lifecycle(call: () => void | Promise<void>, done: () => void, failed: (e: unknown) => void): void {
    let r: void | Promise<void>;
    let async: boolean;
    try {
      r = call();
      async = isThenable(r);
    } catch (e) {
      failed(e);
      return;
    }
    if (!async) {
      done();
      return;
    }
    this.pending++;
    Promise.resolve(r).then(
      () => {
        this.pending--;
        done();
        this.drain();
      },
      (e: unknown) => {
        this.pending--;
        failed(e);
        this.drain();
      },
    );
  }

  private openFailed(id: number, rt: NodeState, e: unknown): void {
    // Open did not succeed: no close call for this node.
    rt.state = CLOSED;
    this.closedCount++;
    this.fail(id, "Open", e);
  }

  private afterOpen(id: number, rt: NodeState, n: NodePlan): void {
    rt.state = OPEN;
    if (this.stopped) {
      this.closeNode(id, rt);
      return;
    }
    const ctx = rt.ctx;
    if (ctx !== undefined && !this.releaseRecorded(id, n, ctx.outputs, ctx.outputSidePackets.pending, "Open")) return;
    if (rt.closeWhenIdle) this.closeNode(id, rt);
    else this.schedule(id);
  }

  /** Calls close (once, the node having opened) and then closes its outputs. */
  private closeNode(id: number, rt: NodeState): void {
    rt.state = CLOSING;
    const calc = rt.calc;
    const ctx = rt.ctx;
    if (calc?.close === undefined || ctx === undefined) {
      this.finishClose(id, rt, !this.stopped);
      return;
    }
    ctx.inputTimestamp = DONE;
    ctx.inputs.current.fill(undefined);
    const close = calc.close.bind(calc);
    this.lifecycle(
      () => close(ctx),
      () => this.finishClose(id, rt, !this.stopped),
      (e) => {
        this.fail(id, "Close", e);
        this.finishClose(id, rt, false);
      },
    );
  }

  private finishClose(id: number, rt: NodeState, propagate: boolean): void {
    const n = this.plan.nodes[id];
    const ctx = rt.ctx;
    if (ctx !== undefined) {
      if (propagate) this.releaseRecorded(id, n, ctx.outputs, ctx.outputSidePackets.pending, "Close");
      else {
        ctx.outputs.reset();
        ctx.outputSidePackets.pending.length = 0;
      }
    }
    for (let i = 0; i < rt.queues.length; i++) {
      const q = rt.queues[i];
      if (q.full) this.unmarkFull(rt, n, i, q);
      q.clear();
    }
    rt.state = CLOSED;
    this.closedCount++;
    if (!this.stopped) {
      const outStream = n.outStream;
      for (let o = 0; o < outStream.length; o++) if (this.bounds[outStream[o]] < DONE) this.raiseBound(outStream[o], DONE);
      if (this.closedCount === this.nodes.length) this.finish();
    }
  }

  // ---- worker executor

  private invokeWorker(id: number, rt: NodeState, n: NodePlan, ts: number): void {
    const numInputs = n.inStream.length;
    const values: unknown[] = new Array(numInputs);
    const present: boolean[] = new Array(numInputs);
    const done: boolean[] = new Array(numInputs);
    const transfer = new Set<ArrayBuffer>();
    if (!n.isSource) {
      const current: (Packet | undefined)[] = new Array(numInputs);
      n.handler.fill(ts, rt.queues, this.bounds, n.inStream, current);
      if (rt.fullQueues > 0) this.releaseFull(rt, n);
      for (let i = 0; i < numInputs; i++) {
        const p = current[i];
        values[i] = p?.value;
        present[i] = p !== undefined;
        done[i] = rt.queues[i].size === 0 && this.bounds[n.inStream[i]] >= DONE;
        // Buffers nobody else holds move instead of being copied.
        if (p !== undefined) collectTransferables(p.value, transfer, shared);
      }
    }
    // Timed as the main thread sees it: dispatch to result, queueing on the pool included.
    const inv: Invocation = { ctx: undefined, settled: false, result: undefined, ops: undefined, side: undefined, failed: undefined, error: undefined, startedAt: this.stats === undefined ? -1 : this.stats.begin(id) };
    (rt.flight ??= []).push(inv);
    rt.inFlight++;
    this.pending++;
    let task: WorkerProcessTask;
    let pool;
    try {
      pool = this.plan.pool(n.workerExecutor!);
      const init = this.plan.workerInit(id);
      const needInit = Atomics.load(new Int32Array(init.openedCount), 0) < pool.threads;
      task = {
        kind: "process",
        key: init.key,
        init: needInit ? { ...init, sidePackets: rt.sideValues, sidePresent: rt.sideHas } : undefined,
        ts,
        values,
        present,
        done,
        cancel: this.workerCancelFlag().buffer as SharedArrayBuffer,
      };
    } catch (e) {
      this.settle(id, inv, undefined, "Open", e);
      return;
    }
    const send = (t: WorkerProcessTask, list: ArrayBuffer[]): void => {
      pool.run(t, list).then(
        (res) => {
          if (res.needInit) {
            // This thread lost its instance (a replaced thread): send the init along.
            const init = this.plan.workerInit(id);
            send({ ...t, init: { ...init, sidePackets: rt.sideValues, sidePresent: rt.sideHas } }, []);
            return;
          }
          if (res.failed !== undefined) {
            this.settle(id, inv, undefined, res.failed, deserializeError(res.error));
            return;
          }
          inv.ops = res;
          inv.side = res.side;
          this.settle(id, inv, res.stop ? STOP : undefined, undefined, undefined);
        },
        (e: unknown) => this.settle(id, inv, undefined, "Process", this.explainCloneError(e, id, t)),
      );
    };
    send(task, [...transfer]);
    if (n.maxInFlight > 1) this.schedule(id); // room for another call in flight
  }

  /** Turns a DataCloneError into one naming the side packet or input that cannot cross threads. */
  private explainCloneError(e: unknown, id: number, task: WorkerProcessTask): unknown {
    if (!(e instanceof Error) || (e.name !== "DataCloneError" && !/could not be cloned/i.test(e.message))) return e;
    const n = this.plan.nodes[id];
    if (task.init !== undefined) {
      for (let k = 0; k < n.inSide.length; k++) {
        try {
          structuredClone(task.init.sidePackets[k]);
        } catch (c) {
          return new Error(
            `Side packet "${this.plan.sidePackets[n.inSide[k]].name}" cannot be sent to a worker thread (executor "${n.workerExecutor}"): ${messageOf(c)} Side packets of worker nodes must be structured-cloneable.`,
            { cause: e },
          );
        }
      }
    }
    for (let i = 0; i < task.values.length; i++) {
      try {
        structuredClone(task.values[i]);
      } catch (c) {
        return new Error(`A packet on input stream "${this.plan.streams[n.inStream[i]].name}" cannot be sent to a worker thread: ${messageOf(c)}`, { cause: e });
      }
    }
    return e;
  }

  private workerCancelFlag(): Int32Array {
    if (this.cancelFlag === undefined) {
      this.cancelFlag = new Int32Array(new SharedArrayBuffer(4));
      if (this.stopped) Atomics.store(this.cancelFlag, 0, 1);
    }
    return this.cancelFlag;
  }

  // ---- errors and the end of the run

  private fail(id: number | undefined, phase: RunPhase | "Graph", cause: unknown): void {
    this.errors.push({ node: id === undefined ? undefined : this.plan.nodes[id].name, phase, cause });
    if (!this.stopped) this.halt();
  }

  /** Stops scheduling and tells everything running to stop; drain() then closes the nodes. */
  private halt(): void {
    this.stopped = true;
    this.heapSize = 0;
    this.inHeap.fill(0);
    this.openQueue.length = 0;
    if (this.cancelFlag !== undefined) Atomics.store(this.cancelFlag, 0, 1);
    if (this.controller !== undefined && !this.controller.signal.aborted) this.controller.abort(this.abortReason());
  }

  /** After a failure or cancel: close every opened node that has nothing in flight; the rest close as their calls settle. */
  private shutdown(): void {
    this.shutdownStarted = true;
    for (let id = 0; id < this.nodes.length; id++) {
      const rt = this.nodes[id];
      if (rt.state === WAITING) {
        rt.state = CLOSED;
        this.closedCount++;
      } else if (rt.state === OPEN && rt.inFlight === 0) {
        this.closeNode(id, rt);
      }
    }
  }

  private tryFinish(): void {
    if (this.status === RUNNING && this.closedCount === this.nodes.length && this.pending === 0) this.finish();
  }

  private finish(): void {
    if (this.status === FINISHED) return;
    this.status = FINISHED;
    if (this.cancelled) {
      this.runError = this.cancelReason instanceof Error ? this.cancelReason : new Error(messageOf(this.cancelReason));
    } else if (this.errors.length > 0) {
      this.runError = new GraphRunError(this.errors);
    }
    const result = this.runError ? (this.cancelled ? this.cancelReason : this.runError) : undefined;
    const waiters = [...this.idleWaiters, ...this.doneWaiters];
    this.idleWaiters = [];
    this.doneWaiters = [];
    for (const w of waiters) {
      if (this.runError) w.reject(result);
      else w.resolve();
    }
  }
}
