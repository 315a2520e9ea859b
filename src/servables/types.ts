/**
 * What the HTTP layer needs from the servables: look one up, borrow its
 * graph runner for one request, and report status in OVMS's terms. The
 * manager (src/servables/manager.ts) implements it; the server only sees
 * this interface.
 */
import type { GraphPool } from "../engine/graph-pool.js";
import type { NodeStatsCollector } from "../engine/node-stats.js";
import type { ValidatedGraph } from "../graph/validated.js";

/** OVMS's model version states, as `GET /v1/config` reports them. */
export type ServableState = "START" | "LOADING" | "AVAILABLE" | "UNLOADING" | "END";

/** OVMS's status error codes in `GET /v1/config`. */
export type ServableErrorCode = "OK" | "UNKNOWN" | "FAILED_PRECONDITION";

export interface ServableStatus {
  readonly state: ServableState;
  readonly errorCode: ServableErrorCode;
  /** "OK", or why loading failed (a located graph error, a missing file…). */
  readonly errorMessage: string;
}

/** A request's hold on a servable: the servable cannot retire until it is released. */
export interface ServableLease {
  readonly runner: GraphPool;
  readonly graph: ValidatedGraph;
  /** Call exactly once, when the response has been sent or the request failed. */
  release(): void;
}

/** The graph a servable serves, for inspection (the web UI's graph view). */
export interface ServedGraph {
  readonly graph: ValidatedGraph;
  /** The graph file's text, as loaded. */
  readonly text: string;
  /** Per-node statistics of every run of this graph since it loaded. */
  readonly stats: NodeStatsCollector;
}

export interface Servable {
  readonly name: string;
  /** Absolute path of the folder holding the graph. */
  readonly basePath: string;
  /** Absolute path of graph.pbtxt (or the configured graph_path). */
  readonly graphPath: string;
  status(): ServableStatus;
  /** Requests currently holding a lease. */
  inFlight(): number;
  /**
   * Borrows the runner for one request; undefined unless AVAILABLE (while
   * loading, after retirement, or after a failed load).
   */
  acquire(): ServableLease | undefined;
  /**
   * Whether the serving graph holds as many requests as its nodes can take
   * (their declared capacity): then a new request is refused with 429 and
   * `retryAfterSeconds` instead of being queued without bound.
   */
  overloaded(): { readonly retryAfterSeconds: number } | undefined;
  /**
   * The graph serving now (a failed reload keeps the previous one), or
   * undefined while none does. Optional: a servable that cannot show its
   * graph is answered as not loaded.
   */
  served?(): ServedGraph | undefined;
}

/** Outcome of applying a config (at start, on reload or when polling). */
export interface ReloadResult {
  /** Some servable was added, removed or reloaded. */
  readonly changed: boolean;
  /** The config could not be read or parsed; running servables were kept. */
  readonly error?: string;
}

export interface Servables {
  /** A servable by name, in any state (including one that failed to load); undefined if not configured. */
  get(name: string): Servable | undefined;
  /** Every configured servable, in config order. */
  list(): readonly Servable[];
  /** True once the initial configuration has been applied (every servable loaded or failed). */
  initialized(): boolean;
  /** Re-reads the configuration and applies changes; never throws for a bad config. */
  reload(): Promise<ReloadResult>;
  /** Stops polling, waits for in-flight requests (up to `graceMs`), closes every graph. */
  close(graceMs: number): Promise<void>;
}
