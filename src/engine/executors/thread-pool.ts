/** ThreadPoolExecutor: a piscina worker pool (worker-pool.ts has the semantics). */
import { WorkerPool } from "../worker-pool.js";
import type { ExecutorType } from "./executor.js";

export const threadPoolExecutor: ExecutorType = {
  type: "ThreadPoolExecutor",
  optionsExtension: ".mediapipe.ThreadPoolExecutorOptions.ext",
  configure(options) {
    const threads = (options as { num_threads?: number } | undefined)?.num_threads;
    return { numThreads: threads !== undefined && threads > 0 ? threads : undefined };
  },
  create: (spec, defaults) => new WorkerPool(spec.name, spec.numThreads ?? defaults.threads),
};
