/**
 * Executor types by name. Adding one: a module exporting an ExecutorType
 * (executor.ts) and one registration line here.
 */
import type { ExecutorType } from "./executor.js";
import { threadPoolExecutor } from "./thread-pool.js";

export type { Executor, ExecutorDefaults, ExecutorType } from "./executor.js";

const types = new Map<string, ExecutorType>();

export function registerExecutorType(type: ExecutorType): void {
  if (type.type === "" || types.has(type.type)) throw new Error(`Executor type "${type.type}" is already registered (or reserved).`);
  types.set(type.type, type);
}

registerExecutorType(threadPoolExecutor);

/** The registered type, or undefined ("" is the event loop, which has none). */
export function executorType(type: string): ExecutorType | undefined {
  return types.get(type);
}

export function executorTypeNames(): string[] {
  return [...types.keys()];
}

/** The type validation gives the engine's own worker pool ("__workers"). */
export const WORKER_POOL_TYPE = threadPoolExecutor.type;
