/**
 * Runs a servable's graph per request, as OVMS does:
 *
 * - without a graph queue, each request gets its own GraphRun: start, one
 *   packet per graph input stream at timestamp 0, close the inputs, wait
 *   until done;
 * - with `graphQueueSize` N, up to N persistent GraphRuns are started once
 *   and reused: calculators stay open across requests, each request feeds
 *   its packets at the instance's next timestamp and gets the graph output
 *   packets at that timestamp. It completes when every graph output stream
 *   is bounded past it, or when the instance goes idle first: then the graph
 *   cannot answer that timestamp without more input (a branch that sent
 *   neither a packet nor a bound), and the request has all it will get. A
 *   packet that turns up later for an earlier timestamp is dropped (logged
 *   with NODE_DEBUG=graphserve), never handed to another request.
 *   A request waits for a free instance. Side packets are fixed when an
 *   instance starts, so per-request side packets are refused. An instance
 *   whose run fails is discarded; one that stops taking input (a node
 *   returned STOP) serves no further request. Either is replaced by a fresh
 *   instance on demand.
 */
import { debuglog } from "node:util";
import type { Packet } from "./calculator.js";
import type { GraphPlan } from "./graph-plan.js";
import { GraphRuntime, type GraphRuntimeOptions } from "./graph-runtime.js";
import { GraphRun } from "./graph-run.js";
import { Timestamp } from "./timestamp.js";
import type { ValidatedGraph } from "../graph/validated.js";

const debug = debuglog("graphserve");

export interface GraphPoolOptions extends GraphRuntimeOptions {
  /** Side packets for every run (per-request runs may add to them). */
  readonly sidePackets?: Record<string, unknown>;
  /** Overrides the graph's queue size: 0 runs a graph per request. */
  readonly graphQueueSize?: number;
  // stats, executors (GraphRuntimeOptions): for a pool given a bare graph, which then owns its runtime.
}

export interface RunRequestOptions {
  /** Only without a graph queue: side packets for this request's run. */
  readonly sidePackets?: Record<string, unknown>;
  /** Cancels the request; with a graph queue its instance is discarded. */
  readonly signal?: AbortSignal;
}

/** Every graph output packet of one request, by output stream name (a null-prototype object). */
export type RunOutputs = Record<string, Packet[]>;

interface Request {
  readonly inputs: Record<string, unknown>;
  readonly signal: AbortSignal | undefined;
  resolve(out: RunOutputs): void;
  reject(e: unknown): void;
  onAbort: (() => void) | undefined;
  outputs: RunOutputs | undefined;
}

class Instance {
  readonly run: GraphRun;
  nextTs = 0;
  current: Request | undefined;
  currentTs = 0;
  /** Out of service: its run failed, was cancelled, or stopped taking input. */
  retired = false;
  constructor(run: GraphRun) {
    this.run = run;
  }
}

export class GraphPool {
  readonly graph: ValidatedGraph;
  /** Persistent instances kept (0: a graph per request). */
  readonly queueSize: number;
  private readonly plan: GraphPlan;
  private readonly sidePackets: Record<string, unknown>;
  readonly runtime: GraphRuntime;
  private readonly ownsRuntime: boolean;
  private readonly inputIndex: [name: string, stream: number][];
  private readonly outputNames: string[];
  private readonly outputIndex: Int32Array;
  private readonly instances: Instance[] = [];
  private readonly free: Instance[] = [];
  /** Retired runs still winding down; close() waits for them. */
  private readonly retiring = new Set<GraphRun>();
  private readonly waiting: Request[] = [];
  private active = 0;
  private pumping = false;
  private closing: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  /**
   * Serves requests with runs of `source`'s runtime; given a bare graph, the
   * pool makes a runtime of its own (disposed by close()).
   */
  constructor(source: GraphRuntime | ValidatedGraph, opts: GraphPoolOptions = {}) {
    this.ownsRuntime = !(source instanceof GraphRuntime);
    this.runtime = source instanceof GraphRuntime ? source : new GraphRuntime(source, opts);
    const graph = this.runtime.graph;
    this.graph = graph;
    this.plan = this.runtime.plan;
    this.sidePackets = opts.sidePackets ?? {};
    this.queueSize = Math.max(0, opts.graphQueueSize ?? graph.graphQueueSize ?? 0);
    this.inputIndex = graph.inputStreams.map((p) => [p.name, this.plan.streamIndex.get(p.name)!]);
    this.outputNames = graph.outputStreams.map((p) => p.name);
    this.outputIndex = Int32Array.from(graph.outputStreams, (p) => this.plan.streamIndex.get(p.name)!);
  }

  /**
   * Runs one request: a packet per graph input stream (keyed by stream name),
   * resolving with every graph output packet of the request.
   */
  run(inputs: Record<string, unknown>, opts?: RunRequestOptions): Promise<RunOutputs> {
    if (this.closing) return Promise.reject(new Error("The graph runner is closed."));
    for (const [name] of this.inputIndex) {
      if (!Object.hasOwn(inputs, name)) return Promise.reject(new Error(`Input stream "${name}" was not provided.`));
    }
    for (const name in inputs) {
      if (!this.inputIndex.some(([n]) => n === name)) return Promise.reject(new Error(`The graph has no input stream "${name}".`));
    }
    const signal = opts?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.queueSize === 0) return this.runOnce(inputs, opts?.sidePackets, signal);
    if (opts?.sidePackets !== undefined) {
      return Promise.reject(
        new Error("Per-request side packets are not accepted when the graph keeps persistent instances (OVMS_GRAPH_QUEUE_MAX_SIZE); set them on the GraphPool."),
      );
    }
    return new Promise<RunOutputs>((resolve, reject) => {
      const req: Request = { inputs, signal, resolve, reject, onAbort: undefined, outputs: undefined };
      this.active++;
      if (signal !== undefined) {
        req.onAbort = () => this.abortRequest(req);
        signal.addEventListener("abort", req.onAbort, { once: true });
      }
      this.waiting.push(req);
      this.pump();
    });
  }

  /**
   * Waits for accepted requests, then closes every instance, and disposes
   * the runtime when the pool made it (a runtime it was given stays its
   * owner's). New requests are refused.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.active > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      const runs = this.instances.splice(0).map((inst) => {
        inst.run.closeAllInputStreams();
        return inst.run.waitUntilDone().catch(() => undefined);
      });
      for (const run of this.retiring) runs.push(run.waitUntilDone().catch(() => undefined));
      this.free.length = 0;
      await Promise.all(runs);
      if (this.ownsRuntime) await this.runtime.dispose();
    })();
    return this.closing;
  }

  // ------------------------------------------------------- a run per request

  private runOnce(inputs: Record<string, unknown>, extra: Record<string, unknown> | undefined, signal: AbortSignal | undefined): Promise<RunOutputs> {
    const run = new GraphRun(this.runtime);
    const sink: Packet[][] = [];
    const outputs: RunOutputs = Object.create(null) as RunOutputs;
    for (let i = 0; i < this.outputIndex.length; i++) {
      const list: Packet[] = [];
      sink[this.outputIndex[i]] = list;
      outputs[this.outputNames[i]] = list;
    }
    run.outputSink = sink;
    this.active++;
    try {
      run.start(extra === undefined ? this.sidePackets : { ...this.sidePackets, ...extra });
      for (const [name, s] of this.inputIndex) run.addPacketAt(s, inputs[name], 0);
      run.closeAllInputStreams();
    } catch (e) {
      run.cancel(e);
      this.requestDone();
      return Promise.reject(run.error ?? e);
    }
    if (run.done) {
      // Synchronous calculators finish inside closeAllInputStreams: no waiting.
      this.requestDone();
      return run.error ? Promise.reject(run.error) : Promise.resolve(outputs);
    }
    const onAbort = signal && (() => run.cancel(signal.reason));
    if (onAbort) signal.addEventListener("abort", onAbort, { once: true });
    return run.waitUntilDone().then(
      () => {
        if (onAbort) signal.removeEventListener("abort", onAbort);
        this.requestDone();
        return outputs;
      },
      (e: unknown) => {
        if (onAbort) signal.removeEventListener("abort", onAbort);
        this.requestDone();
        throw e;
      },
    );
  }

  // -------------------------------------------------- persistent instances

  /**
   * Hands waiting requests to free instances. A loop rather than recursion:
   * a synchronous graph completes a request inside dispatch(), which frees
   * the instance for the next one, and thousands may be waiting.
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.waiting.length > 0) {
        let inst: Instance | undefined;
        try {
          inst = this.acquire();
        } catch (e) {
          // Cannot start an instance (e.g. a required side packet is missing).
          const req = this.waiting.shift()!;
          this.finishRequest(req);
          req.reject(e);
          continue;
        }
        if (inst === undefined) break;
        this.dispatch(inst, this.waiting.shift()!);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** A free instance still taking input, or a new one while there is room. */
  private acquire(): Instance | undefined {
    for (;;) {
      const inst = this.free.pop();
      if (inst === undefined) break;
      if (inst.run.accepting) return inst;
      // Finished, failed or stopped since its last request: never hand it another.
      this.retire(inst);
    }
    if (this.instances.length >= this.queueSize) return undefined;
    return this.startInstance();
  }

  private startInstance(): Instance {
    const run = new GraphRun(this.runtime);
    const inst = new Instance(run);
    const check = (): void => this.checkComplete(inst);
    for (let i = 0; i < this.outputIndex.length; i++) {
      const name = this.outputNames[i];
      run.observe(
        name,
        (p) => {
          const req = inst.current;
          // Only the current request's timestamp: a late packet for an
          // earlier request (completed when the graph went idle) must not
          // reach this one.
          if (req !== undefined && p.timestamp === inst.currentTs) req.outputs![name].push(p);
          else debug(`graph runner: dropped a packet on output stream "${name}" at ${Timestamp.format(p.timestamp)}, not the current request's timestamp (${req === undefined ? "none" : inst.currentTs})`);
        },
        check,
      );
    }
    run.idleListener = check;
    run.start(this.sidePackets);
    this.instances.push(inst);
    run.waitUntilDone().then(
      () => {
        this.retiring.delete(run);
        // Finished cleanly (a node's STOP): the request has all it will get.
        if (inst.current !== undefined && !inst.retired) this.complete(inst);
        this.retire(inst);
      },
      (e: unknown) => {
        this.retiring.delete(run);
        // Failed or cancelled: its request learns why.
        this.discard(inst, e);
      },
    );
    return inst;
  }

  private dispatch(inst: Instance, req: Request): void {
    const run = inst.run;
    const outputs = Object.create(null) as RunOutputs;
    for (const name of this.outputNames) outputs[name] = [];
    req.outputs = outputs;
    inst.current = req;
    const ts = inst.nextTs++;
    inst.currentTs = ts;
    let fed = 0;
    try {
      for (const [name, s] of this.inputIndex) {
        run.addPacketAt(s, req.inputs[name], ts);
        fed++;
      }
    } catch (e) {
      if (!run.accepting && !run.halted && run.error === undefined) {
        // Not a failure: a node returned STOP, which closed the graph inputs.
        if (fed > 0) {
          // Mid-request: the request gets what the graph makes of its input.
          this.checkComplete(inst);
          return;
        }
        // A fresh instance that stopped before its first input (acquire
        // never hands out one that stopped): do not start another for it.
        inst.current = undefined;
        this.finishRequest(req);
        req.reject(new Error("The graph stopped (a node returned STOP) before it took the request."));
        this.retire(inst);
        return;
      }
      // The instance is unusable (e.g. it failed opening): this request fails with its error.
      const error = run.error ?? e;
      run.cancel(error);
      this.discard(inst, error);
      return;
    }
    this.checkComplete(inst);
  }

  /** The request at ts is complete when every output stream is bounded past it, or nothing more can happen. */
  private checkComplete(inst: Instance): void {
    const req = inst.current;
    const run = inst.run;
    if (req === undefined || inst.retired) return;
    if (run.done) {
      // Failed: discard rejects the request. Finished cleanly (a node's
      // STOP): the request has all it will get; the instance goes.
      if (run.error === undefined) {
        this.complete(inst);
        this.retire(inst);
      } else {
        this.discard(inst, run.error);
      }
      return;
    }
    if (run.halted) return; // winding down after an error: done() follows
    // With no output streams only idleness tells that the request is through.
    let bounded = this.outputIndex.length > 0;
    for (let i = 0; i < this.outputIndex.length; i++) {
      if (run.boundAt(this.outputIndex[i]) <= inst.currentTs) {
        bounded = false;
        break;
      }
    }
    // Idle with an output still unbounded at ts: the graph cannot answer ts
    // without more input, so the request is through (late packets are dropped).
    if (!bounded && !run.idle) return;
    this.complete(inst);
    this.release(inst);
  }

  /** Resolves the instance's current request with what it collected. */
  private complete(inst: Instance): void {
    const req = inst.current!;
    inst.current = undefined;
    this.finishRequest(req);
    req.resolve(req.outputs!);
  }

  private release(inst: Instance): void {
    if (inst.retired) return;
    if (!inst.run.accepting) {
      this.retire(inst);
      return;
    }
    this.free.push(inst);
    this.pump();
  }

  /** Takes an instance without a request out of service; a replacement takes over the queue. */
  private retire(inst: Instance): void {
    if (inst.retired) return;
    this.remove(inst);
    this.pump();
  }

  /** Takes a failed instance out of service, rejecting its request with `error`. */
  private discard(inst: Instance, error: unknown): void {
    if (inst.retired) return;
    this.remove(inst);
    const req = inst.current;
    inst.current = undefined;
    if (req !== undefined) {
      this.finishRequest(req);
      req.reject(error);
    }
    this.pump();
  }

  private remove(inst: Instance): void {
    inst.retired = true;
    if (!inst.run.done) this.retiring.add(inst.run);
    const i = this.instances.indexOf(inst);
    if (i >= 0) this.instances.splice(i, 1);
    const f = this.free.indexOf(inst);
    if (f >= 0) this.free.splice(f, 1);
  }

  private abortRequest(req: Request): void {
    const w = this.waiting.indexOf(req);
    if (w >= 0) {
      this.waiting.splice(w, 1);
      this.finishRequest(req);
      req.reject(req.signal!.reason);
      return;
    }
    const inst = this.instances.find((i) => i.current === req);
    // In flight: the instance is cancelled (and replaced), which rejects the request.
    if (inst !== undefined) inst.run.cancel(req.signal!.reason);
  }

  private finishRequest(req: Request): void {
    if (req.onAbort !== undefined) req.signal!.removeEventListener("abort", req.onAbort);
    this.requestDone();
  }

  private requestDone(): void {
    if (--this.active === 0 && this.drained !== undefined) {
      const d = this.drained;
      this.drained = undefined;
      d();
    }
  }
}
