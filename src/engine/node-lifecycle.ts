/**
 * Opening and closing a run's nodes. A node opens once its input side
 * packets exist (a worker node opens on its thread, the first time that
 * thread serves it); it closes when its inputs are done, when it stops
 * (a source's STOP), at the end of the run (loops through back edges), or
 * after a failure or cancel. `close` runs once for every node whose `open`
 * succeeded; a node that never opened (open failed, side packets never
 * came) gets no close call. Closing a node closes its output streams.
 */
import type { Calculator } from "./calculator.js";
import { isThenable, NodeContext } from "./context.js";
import type { NodePlan } from "./graph-plan.js";
import { NodeLife, type NodeState, type RunCore } from "./run-core.js";
import type { Throttling } from "./throttling.js";
import { Timestamp } from "./timestamp.js";

const DONE = Timestamp.Done;

export class NodeLifecycle {
  constructor(
    private readonly run: RunCore,
    private readonly throttling: Throttling,
  ) {}

  /** A node's context (its own, or a spare for max_in_flight > 1), reading the run's state. */
  makeContext(rt: NodeState, n: NodePlan): NodeContext {
    const run = this.run;
    const bounds = run.bounds;
    return new NodeContext({
      nodeName: n.name,
      calculatorName: n.calculatorName,
      options: n.spec.options,
      indexes: n.indexes,
      sideValues: rt.sideValues,
      sidePresent: (i) => rt.sideHas[i],
      inputDone: (i) => rt.queues[i].size === 0 && bounds[n.inStream[i]] >= DONE,
      signalSource: run,
      keepsHandoffs: true,
    });
  }

  open(id: number): void {
    const run = this.run;
    const rt = run.nodes[id];
    if (rt.state !== NodeLife.Waiting) return;
    const n = run.plan.nodes[id];
    rt.state = NodeLife.Opening;
    const inSide = n.inSide;
    for (let k = 0; k < inSide.length; k++) {
      rt.sideValues[k] = run.sideValues[inSide[k]];
      rt.sideHas[k] = run.sideValues[inSide[k]] !== undefined;
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
    if (n.maxInFlight > 1) rt.spare = [];
    if (calc.open === undefined) {
      this.afterOpen(id, rt, n);
      return;
    }
    ctx.inputTimestamp = Timestamp.Unstarted;
    const open = calc.open.bind(calc);
    this.hook(
      () => open(ctx),
      () => this.afterOpen(id, rt, n),
      (e) => {
        ctx.discardRecorded();
        this.openFailed(id, rt, e);
      },
    );
  }

  /** Calls close (once, the node having opened) and then closes its outputs. */
  close(id: number, rt: NodeState): void {
    rt.state = NodeLife.Closing;
    const calc = rt.calc;
    const ctx = rt.ctx;
    if (calc?.close === undefined || ctx === undefined) {
      this.finishClose(id, rt, !this.run.halted);
      return;
    }
    ctx.inputTimestamp = DONE;
    ctx.inputs.current.fill(undefined);
    const close = calc.close.bind(calc);
    this.hook(
      () => close(ctx),
      () => this.finishClose(id, rt, !this.run.halted),
      (e) => {
        this.run.fail(id, "Close", e);
        this.finishClose(id, rt, false);
      },
    );
  }

  /**
   * The run is idle with every graph input and source finished: closes the
   * first node still open (loops through back edges never see their inputs
   * end) or retires one whose side packets never came. Returns whether it
   * did something; finishes the run when every node is closed.
   */
  closeLeftover(): boolean {
    const { nodes, plan } = this.run;
    for (let id = 0; id < nodes.length; id++) {
      const s = nodes[id].state;
      if (plan.nodes[id].isSource && s !== NodeLife.Closed && s !== NodeLife.Waiting) return false; // a source still runs
    }
    for (let id = 0; id < nodes.length; id++) {
      const rt = nodes[id];
      if (rt.state === NodeLife.Open) {
        this.close(id, rt);
        return true;
      }
      if (rt.state === NodeLife.Waiting) {
        // Its side packets never came: it never opened, so no close call.
        this.finishClose(id, rt, false);
        return true;
      }
    }
    if (this.run.closedCount === nodes.length) this.run.finish();
    return false;
  }

  /** After a failure or cancel: closes every opened node with nothing in flight; the rest close as their calls settle. */
  shutdown(): void {
    const nodes = this.run.nodes;
    for (let id = 0; id < nodes.length; id++) {
      const rt = nodes[id];
      if (rt.state === NodeLife.Waiting) {
        rt.state = NodeLife.Closed;
        this.run.closedCount++;
      } else if (rt.state === NodeLife.Open && rt.inFlight === 0) {
        this.close(id, rt);
      }
    }
  }

  /**
   * Runs open or close, either of which may return a promise: `done` or
   * `failed` follows at once for a synchronous result, or once the promise
   * settles (counted as pending meanwhile, then the run drains).
   */
  private hook(call: () => void | Promise<void>, done: () => void, failed: (e: unknown) => void): void {
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
    const run = this.run;
    run.pending++;
    Promise.resolve(r).then(
      () => {
        run.pending--;
        done();
        run.drain();
      },
      (e: unknown) => {
        run.pending--;
        failed(e);
        run.drain();
      },
    );
  }

  private openFailed(id: number, rt: NodeState, e: unknown): void {
    // Open did not succeed: no close call for this node.
    rt.state = NodeLife.Closed;
    this.run.closedCount++;
    this.run.fail(id, "Open", e);
  }

  private afterOpen(id: number, rt: NodeState, n: NodePlan): void {
    rt.state = NodeLife.Open;
    const run = this.run;
    if (run.halted) {
      this.close(id, rt);
      return;
    }
    const ctx = rt.ctx;
    if (ctx !== undefined && !run.releaseRecorded(id, n, ctx.outputs, ctx.outputSidePackets.pending, "Open")) return;
    if (rt.closeWhenIdle) this.close(id, rt);
    else run.schedule(id);
  }

  private finishClose(id: number, rt: NodeState, propagate: boolean): void {
    const run = this.run;
    const n = run.plan.nodes[id];
    const ctx = rt.ctx;
    if (ctx !== undefined) {
      if (propagate) run.releaseRecorded(id, n, ctx.outputs, ctx.outputSidePackets.pending, "Close");
      else ctx.discardRecorded();
    }
    this.throttling.clearQueues(rt, n);
    rt.state = NodeLife.Closed;
    run.closedCount++;
    if (!run.halted) {
      const outStream = n.outStream;
      for (let o = 0; o < outStream.length; o++) if (run.bounds[outStream[o]] < DONE) run.raiseBound(outStream[o], DONE);
      if (run.closedCount === run.nodes.length) run.finish();
    }
  }
}
