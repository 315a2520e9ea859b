/**
 * Worker pools (piscina), in the two shapes graphserve uses: a fixed pool
 * whose threads and what they loaded live as long as the pool (executors,
 * model workers), and an on-demand pool whose idle threads exit (rare work
 * kept off the event loop, never holding a process alive).
 */
import { Piscina } from "piscina";

export interface PoolOptions {
  /** Passed to every thread as `workerData`. */
  readonly workerData?: unknown;
  /** Tasks one thread runs at once (default piscina's). */
  readonly concurrentTasksPerWorker?: number;
}

/** `threads` threads, started now and kept until destroy(). */
export function fixedPool<Task, Result>(filename: string, threads: number, opts: PoolOptions = {}): Piscina<Task, Result> {
  return new Piscina<Task, Result>({
    filename,
    name: "default",
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: Infinity,
    ...(opts.concurrentTasksPerWorker !== undefined ? { concurrentTasksPerWorker: opts.concurrentTasksPerWorker } : {}),
    ...(opts.workerData !== undefined ? { workerData: opts.workerData } : {}),
  });
}

/** Up to `maxThreads` threads, started on demand; a thread idle for `idleMs` exits (piscina unrefs idle ones). */
export function onDemandPool<Task, Result>(filename: string, maxThreads: number, idleMs: number): Piscina<Task, Result> {
  return new Piscina<Task, Result>({ filename, minThreads: 0, maxThreads, idleTimeout: idleMs });
}
