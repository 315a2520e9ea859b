/**
 * Worker executors: a node whose executor is a declared ThreadPoolExecutor
 * (or "__workers", the engine's own pool for calculators whose contract
 * prefers "worker") runs `process` on a piscina worker thread.
 *
 * Semantics:
 * - One pool per executor name, shared by every run of the graph.
 *   minThreads = maxThreads = the executor's num_threads (default: the
 *   graph runtime's ExecutorDefaults, i.e. the server's --rest_workers, else
 *   os.availableParallelism()), idleTimeout Infinity: threads and whatever
 *   they loaded live as long as the pool (until the runtime is disposed).
 * - Each thread keeps its own calculator instance per (graph, node). It is
 *   created and opened the first time that thread serves the node, with the
 *   node's options rebuilt from the schema files and the side packets of the
 *   run that got there first (side packets must be structured-cloneable; a
 *   non-cloneable one fails the run naming it). The instance then serves
 *   every later run on that thread; `close` runs when the pool is destroyed.
 * - `open` may not emit output packets, bounds or output side packets: the
 *   instance outlives the run that opened it, so only that run would see
 *   them. Doing so fails the run's Open of the node with an error naming it.
 * - `process` sees a context that records outputs and sends them back; they
 *   are applied on the main thread when the call returns, like any node's.
 * - Packet values are structured clones: copies, except that whole-buffer
 *   ArrayBuffers/typed arrays in an input (two levels into plain objects and
 *   arrays) are moved, detached on the main side, when the engine knows
 *   nobody else holds them. It never moves a buffer that came from outside
 *   the engine or may still be seen there: what came in on a graph input
 *   stream (the caller still has it) or as a side packet, what went to a
 *   graph output stream, an observer or a GraphPool result, and what
 *   reached more than one node input (a stream with several readers, or the
 *   same object or buffer emitted several times by one call). Such values
 *   are tracked with whatever lies up to three levels inside them, so a part
 *   taken out of one and sent on is not moved either. So only buffers a
 *   calculator produced and sent to a single worker node move. As in
 *   MediaPipe, a calculator hands over what it emits: it must not keep
 *   using, mutate or emit again a buffer it has sent.
 *   Outputs are always transferred back (they are the worker's own).
 * - A running task is never aborted (terminating a thread inside a native
 *   call can take the process down). Cancellation is cooperative: the run's
 *   SharedArrayBuffer flag is what the worker context's `signal` reflects.
 */
import { availableParallelism } from "node:os";
import type { Piscina } from "piscina";
import { fixedPool, onEveryThread, workerFile } from "../threads/index.js";
import type { Executor } from "./executors/executor.js";
import type { WorkerCloseResult, WorkerCloseTask, WorkerProcessResult, WorkerProcessTask, WorkerTask } from "./worker-protocol.js";

const ENTRY = workerFile(import.meta.url, "worker-entry");
/** How long destroy() waits for every thread to take its close task. */
const CLOSE_BARRIER_MS = 10_000;

export class WorkerPool implements Executor {
  readonly name: string;
  readonly threads: number;
  private readonly pool: Piscina<WorkerTask, WorkerProcessResult | WorkerCloseResult>;
  private destroyed: Promise<void> | undefined;

  constructor(name: string, numThreads?: number) {
    this.name = name;
    this.threads = Math.max(1, numThreads ?? availableParallelism());
    this.pool = fixedPool(ENTRY, this.threads);
  }

  run(task: WorkerProcessTask, transferList: ArrayBuffer[]): Promise<WorkerProcessResult> {
    if (this.destroyed) return Promise.reject(new Error(`Executor "${this.name}" has been destroyed.`));
    return this.pool.run(task, transferList.length > 0 ? { transferList } : undefined) as Promise<WorkerProcessResult>;
  }

  /**
   * Closes every thread's calculator instances, then ends the threads.
   * Rejects (after ending them) when a `close` failed.
   */
  destroy(): Promise<void> {
    this.destroyed ??= this.closeAndEnd();
    return this.destroyed;
  }

  private async closeAndEnd(): Promise<void> {
    // One close task per thread: each blocks on a barrier until all have
    // arrived, so no thread can take two and every thread takes one.
    const settled = await onEveryThread(this.threads, (barrier) => {
      const task: WorkerCloseTask = { kind: "closeAll", barrier, parties: this.threads, waitMs: CLOSE_BARRIER_MS };
      return this.pool.run(task) as Promise<WorkerCloseResult>;
    });
    await this.pool.destroy();
    const failures: string[] = [];
    for (const s of settled) {
      if (s.status === "rejected") failures.push(String((s.reason as Error)?.message ?? s.reason));
      else for (const e of s.value.errors) failures.push(`Calculator::Close() for node "${e.node}" failed: ${(e.error as Error)?.message ?? String(e.error)}`);
    }
    if (failures.length > 0) throw new Error(`Executor "${this.name}": ${failures.join("\n")}`);
  }
}
