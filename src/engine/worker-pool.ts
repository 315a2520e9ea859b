/**
 * Worker executors: a node whose executor is a declared ThreadPoolExecutor
 * (or "__workers", the engine's own pool for calculators whose contract
 * prefers "worker") runs `process` on a piscina worker thread.
 *
 * Semantics:
 * - One pool per executor name, shared by every run of the graph.
 *   minThreads = maxThreads = the executor's num_threads (default
 *   os.availableParallelism()), idleTimeout Infinity: threads and whatever
 *   they loaded live as long as the pool.
 * - Each thread keeps its own calculator instance per (graph, node). It is
 *   created and opened the first time that thread serves the node, with the
 *   node's options rebuilt from the schema files and the side packets of the
 *   run that got there first (side packets must be structured-cloneable; a
 *   non-cloneable one fails the run naming it). The instance then serves
 *   every later run on that thread; `close` runs when the pool is destroyed.
 * - `process` sees a context that records outputs and sends them back; they
 *   are applied on the main thread when the call returns, like any node's.
 * - Packet values are structured clones. An input whose stream has this node
 *   as its only consumer (and no observer) is transferred: its whole-buffer
 *   ArrayBuffers/typed arrays move and are detached on the main side.
 *   Outputs are always transferred back. A shared input is copied.
 * - A running task is never aborted (terminating a thread inside a native
 *   call can take the process down). Cancellation is cooperative: the run's
 *   SharedArrayBuffer flag is what the worker context's `signal` reflects.
 */
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import type { WorkerCloseResult, WorkerCloseTask, WorkerProcessResult, WorkerProcessTask, WorkerTask } from "./worker-protocol.js";

const ENTRY = fileURLToPath(new URL("./worker-entry.js", import.meta.url));
/** How long destroy() waits for every thread to take its close task. */
const CLOSE_BARRIER_MS = 10_000;

export class WorkerPool {
  readonly name: string;
  readonly threads: number;
  private readonly pool: Piscina<WorkerTask, WorkerProcessResult | WorkerCloseResult>;
  private destroyed: Promise<void> | undefined;

  constructor(name: string, numThreads?: number) {
    this.name = name;
    this.threads = Math.max(1, numThreads ?? availableParallelism());
    this.pool = new Piscina({
      filename: ENTRY,
      name: "default",
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: Infinity,
    });
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
    const barrier = new SharedArrayBuffer(4);
    const task: WorkerCloseTask = { kind: "closeAll", barrier, parties: this.threads, waitMs: CLOSE_BARRIER_MS };
    const settled = await Promise.allSettled(
      Array.from({ length: this.threads }, () => this.pool.run(task) as Promise<WorkerCloseResult>),
    );
    await this.pool.destroy();
    const failures: string[] = [];
    for (const s of settled) {
      if (s.status === "rejected") failures.push(String((s.reason as Error)?.message ?? s.reason));
      else for (const e of s.value.errors) failures.push(`Calculator::Close() for node "${e.node}" failed: ${(e.error as Error)?.message ?? String(e.error)}`);
    }
    if (failures.length > 0) throw new Error(`Executor "${this.name}": ${failures.join("\n")}`);
  }
}
