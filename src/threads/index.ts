/**
 * Thread plumbing shared by the engine's executors (src/engine/worker-*.ts),
 * the ONNX backend's model workers and the image codec's BMP worker: pools,
 * cross-thread cancel flags, the one-close-task-per-thread barrier, errors
 * across threads, the worker-file lookup and the module importer; plus the
 * abortable FIFO semaphore for generation slots and pipeline instances.
 */
export { CancelFlag } from "./cancel-flag.js";
export { awaitEveryThread, onEveryThread } from "./close-barrier.js";
export { deserializeError, serializeError, type SerializedError } from "./errors.js";
export { importModule } from "./module-import.js";
export { fixedPool, onDemandPool, type PoolOptions } from "./pool.js";
export { AbortableSemaphore, type SemaphoreOptions } from "./semaphore.js";
export { workerFile } from "./worker-file.js";
