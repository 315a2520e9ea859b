/**
 * Loads the resources nodes declare in `contract.resources` (OVMS builds its
 * image pipelines the same way: once per graph load, keyed by node name,
 * handed to every run through a side packet). A load that fails disposes
 * what was already built, so a broken graph leaks no model.
 */
import type { Registry as MetricsRegistry } from "prom-client";
import type { CalculatorLogger, NodeResources } from "./calculator.js";
import type { ValidatedGraph } from "../graph/validated.js";
import type { MemoryCheckOptions } from "../backends/host-memory.js";

export interface ResourceLoadOptions {
  readonly graphDir: string;
  readonly servable: string;
  readonly logger: CalculatorLogger;
  readonly signal?: AbortSignal;
  /** Passed on to every load (ResourceLoadContext.memoryCheck). */
  readonly memoryCheck?: MemoryCheckOptions;
  /** Where nodes register their metrics (ResourceLoadContext.metrics). */
  readonly metrics: MetricsRegistry;
}

export interface LoadedResources {
  /** Side packets for the GraphPool: side packet name → (node name → resources). */
  readonly sidePackets: Record<string, Map<string, NodeResources>>;
  /** The smallest `capacity` of the loaded resources (undefined: unbounded). */
  readonly capacity: number | undefined;
  /** The Retry-After for a refusal: the largest any node asks for, in whole seconds from 1 to MAX_RETRY_AFTER_SECONDS. */
  retryAfterSeconds(): number;
  /** Disposes every node's resources (errors are logged, not thrown). */
  dispose(): Promise<void>;
}

export async function loadNodeResources(graph: ValidatedGraph, opts: ResourceLoadOptions): Promise<LoadedResources> {
  const sidePackets: Record<string, Map<string, NodeResources>> = Object.create(null);
  const loaded: [node: string, resources: NodeResources][] = [];
  const dispose = async () => {
    for (const [node, r] of loaded.splice(0).reverse()) {
      try {
        await r.dispose?.();
      } catch (e) {
        opts.logger.warn({ err: e, node }, `disposing the resources of node "${node}" failed`);
      }
    }
  };
  const signal = opts.signal ?? new AbortController().signal;
  try {
    for (const node of graph.nodes) {
      const spec = node.calculator.contract.resources;
      if (spec === undefined) continue;
      const port = node.inputSidePackets.find((p) => p.tag === spec.sidePacket);
      // Unwired (an optional port) or produced inside the graph: the host supplies nothing.
      if (port === undefined || graph.sidePackets.get(port.name)?.producer !== "graph") continue;
      signal.throwIfAborted();
      const started = performance.now();
      const r = await untilAborted(Promise.resolve(spec.load({ node, graphDir: opts.graphDir, servable: opts.servable, logger: opts.logger, signal, metrics: opts.metrics, ...(opts.memoryCheck !== undefined ? { memoryCheck: opts.memoryCheck } : {}) })), signal, (late) => {
        Promise.resolve(late.dispose?.()).catch((e: unknown) => opts.logger.warn({ err: e, node: node.name }, `disposing the abandoned resources of node "${node.name}" failed`));
      });
      loaded.push([node.name, r]);
      (sidePackets[port.name] ??= new Map()).set(node.name, r);
      opts.logger.info({ node: node.name, ms: Math.round(performance.now() - started) }, `node "${node.name}" (${node.calculatorName}) loaded its resources`);
    }
  } catch (e) {
    await dispose();
    throw e;
  }
  let capacity: number | undefined;
  for (const [, r] of loaded) if (r.capacity !== undefined) capacity = Math.min(capacity ?? Infinity, r.capacity);
  const retryAfterSeconds = () => Math.max(1, ...loaded.map(([, r]) => retryAfterOf(r)));
  return { sidePackets, capacity, retryAfterSeconds, dispose };
}

/**
 * The longest Retry-After: an estimate further out is guesswork about a
 * queue that will have changed (a hung generation would otherwise price
 * every waiter), and a client told to wait longer has likely given up.
 */
export const MAX_RETRY_AFTER_SECONDS = 600;

/** A node's Retry-After as a header value: whole seconds from 1 to the maximum; its default, 1, for NaN. */
function retryAfterOf(r: NodeResources): number {
  const asked = r.retryAfterSeconds?.() ?? 1;
  return Number.isNaN(asked) ? 1 : Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(asked)));
}

/**
 * `load`, or the signal's reason as soon as it aborts (a load that cannot
 * stop early must not hold a shutdown up); what it loads after that is
 * handed to `abandon`.
 */
function untilAborted<R>(load: Promise<R>, signal: AbortSignal, abandon: (late: R) => void): Promise<R> {
  if (signal.aborted) {
    load.then(abandon, () => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<R>((resolve, reject) => {
    const onAbort = () => {
      load.then(abandon, () => undefined);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    load.then(
      (r) => {
        signal.removeEventListener("abort", onAbort);
        resolve(r);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
