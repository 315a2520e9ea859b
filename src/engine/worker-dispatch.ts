/**
 * Sends a worker node's calls to its executor's thread pool (semantics in
 * worker-pool.ts): forms the input set, moves the buffers nobody else holds,
 * sends the node's init until every thread has opened it, and completes the
 * call through the run's one completion path (RunCore.settle) with the
 * worker's recorded outputs or its error.
 */
import { STOP, type Packet } from "./calculator.js";
import type { BufferOwnership } from "./buffer-ownership.js";
import type { NodePlan } from "./graph-plan.js";
import type { Invocation, NodeState, RunCore } from "./run-core.js";
import { messageOf } from "./run-errors.js";
import type { Throttling } from "./throttling.js";
import { Timestamp } from "./timestamp.js";
import type { WorkerProcessTask } from "./worker-protocol.js";
import { CancelFlag, deserializeError } from "../threads/index.js";
import type { Executor } from "./executors/index.js";

const DONE = Timestamp.Done;

export class WorkerDispatch {
  /** The run's cross-thread cancel flag (raised once it halts), created on first use. */
  private cancelFlag: CancelFlag | undefined;

  constructor(
    private readonly run: RunCore,
    private readonly throttling: Throttling,
    private readonly ownership: BufferOwnership,
  ) {}

  /** The run halted: what runs on the workers sees its signal abort. */
  halt(): void {
    this.cancelFlag?.raise();
  }

  invoke(id: number, rt: NodeState, n: NodePlan, ts: number): void {
    const run = this.run;
    const numInputs = n.inStream.length;
    const values: unknown[] = new Array(numInputs);
    const present: boolean[] = new Array(numInputs);
    const done: boolean[] = new Array(numInputs);
    const transfer = new Set<ArrayBuffer>();
    if (!n.isSource) {
      const current: (Packet | undefined)[] = new Array(numInputs);
      rt.handler.fill(ts, rt.queues, run.bounds, n.inStream, current);
      if (rt.fullQueues > 0) this.throttling.releaseFull(rt, n);
      for (let i = 0; i < numInputs; i++) {
        const p = current[i];
        values[i] = p?.value;
        present[i] = p !== undefined;
        done[i] = rt.queues[i].size === 0 && run.bounds[n.inStream[i]] >= DONE;
        // Buffers nobody else holds move instead of being copied.
        if (p !== undefined) this.ownership.movable(p.value, transfer);
      }
    }
    // Timed as the main thread sees it: dispatch to result, queueing on the pool included.
    const inv: Invocation = {
      ctx: undefined,
      settled: false,
      result: undefined,
      ops: undefined,
      side: undefined,
      failed: undefined,
      error: undefined,
      startedAt: run.stats === undefined ? -1 : run.stats.begin(id),
    };
    rt.flight.push(inv);
    rt.inFlight++;
    run.pending++;
    let task: WorkerProcessTask;
    let pool: Executor;
    try {
      pool = run.runtime.executor(n.workerExecutor!);
      const init = run.runtime.workerInit(id);
      const needInit = Atomics.load(new Int32Array(init.openedCount), 0) < pool.threads;
      task = {
        kind: "process",
        key: init.key,
        init: needInit ? { ...init, sidePackets: rt.sideValues, sidePresent: rt.sideHas } : undefined,
        ts,
        values,
        present,
        done,
        cancel: this.flag().buffer,
      };
    } catch (e) {
      run.settle(id, inv, undefined, "Open", e);
      return;
    }
    const send = (t: WorkerProcessTask, list: ArrayBuffer[]): void => {
      pool.run(t, list).then(
        (res) => {
          if (res.needInit) {
            // This thread lost its instance (a replaced thread): send the init along.
            const init = run.runtime.workerInit(id);
            send({ ...t, init: { ...init, sidePackets: rt.sideValues, sidePresent: rt.sideHas } }, []);
            return;
          }
          if (res.failed !== undefined) {
            run.settle(id, inv, undefined, res.failed, deserializeError(res.error));
            return;
          }
          inv.ops = res;
          inv.side = res.side;
          run.settle(id, inv, res.stop ? STOP : undefined, undefined, undefined);
        },
        (e: unknown) => run.settle(id, inv, undefined, "Process", this.explainCloneError(e, id, t)),
      );
    };
    send(task, [...transfer]);
    if (n.maxInFlight > 1) run.schedule(id); // room for another call in flight
  }

  private flag(): CancelFlag {
    if (this.cancelFlag === undefined) {
      this.cancelFlag = new CancelFlag();
      if (this.run.halted) this.cancelFlag.raise();
    }
    return this.cancelFlag;
  }

  /** Turns a DataCloneError into one naming the side packet or input that cannot cross threads. */
  private explainCloneError(e: unknown, id: number, task: WorkerProcessTask): unknown {
    if (!(e instanceof Error) || (e.name !== "DataCloneError" && !/could not be cloned/i.test(e.message))) return e;
    const plan = this.run.plan;
    const n = plan.nodes[id];
    if (task.init !== undefined) {
      for (let k = 0; k < n.inSide.length; k++) {
        try {
          structuredClone(task.init.sidePackets[k]);
        } catch (c) {
          return new Error(
            `Side packet "${plan.sidePackets[n.inSide[k]].name}" cannot be sent to a worker thread (executor "${n.workerExecutor}"): ${messageOf(c)} Side packets of worker nodes must be structured-cloneable.`,
            { cause: e },
          );
        }
      }
    }
    for (let i = 0; i < task.values.length; i++) {
      try {
        structuredClone(task.values[i]);
      } catch (c) {
        return new Error(`A packet on input stream "${plan.streams[n.inStream[i]].name}" cannot be sent to a worker thread: ${messageOf(c)}`, { cause: e });
      }
    }
    return e;
  }
}
