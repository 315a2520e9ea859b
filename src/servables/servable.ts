/**
 * One servable: a graph file loaded, validated and wrapped in a GraphPool,
 * lent to requests through counted leases, reloaded without downtime and
 * retired only once its requests are done.
 *
 * States, as OVMS reports them in `GET /v1/config`:
 * - START → LOADING while the first load runs;
 * - AVAILABLE/OK once a graph serves;
 * - LOADING/FAILED_PRECONDITION/<why> when no graph could be loaded;
 * - AVAILABLE/FAILED_PRECONDITION/"reload failed, still serving the previous
 *   graph: <why>" when a reload failed while an older graph keeps serving
 *   (a broken edit never takes a working servable down);
 * - UNLOADING/OK while retiring (no new leases), END/OK once closed.
 */
import type { Registry as MetricsRegistry } from "prom-client";
import { readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "pino";
import type { MemoryCheckOptions } from "../backends/host-memory.js";
import { GraphRuntime } from "../engine/graph-runtime.js";
import type { ExecutorDefaults } from "../engine/executors/index.js";
import { GraphPool } from "../engine/graph-pool.js";
import { loadNodeResources, type LoadedResources } from "../engine/node-resources.js";
import { NodeStatsCollector } from "../engine/node-stats.js";
import type { CalculatorRegistry } from "../engine/registry.js";
import { formatDiagnostic } from "../graph/diagnostics.js";
import { parseGraphText } from "../graph/load.js";
import { validateGraph } from "../graph/validate.js";
import type { ValidatedGraph } from "../graph/validated.js";
import { httpStreams } from "./http-streams.js";
import { contentHash, ioReason, isRemotePath, type ServableConfig } from "./config.js";
import type { Servable, ServableErrorCode, ServableLease, ServableState, ServableStatus, ServedGraph } from "./types.js";

/** One loaded graph of a servable; a reload makes a new one while the old one drains. */
interface Generation extends ServedGraph {
  readonly config: ServableConfig;
  readonly graph: ValidatedGraph;
  readonly runner: GraphPool;
  /** The graph's plan, worker pools and statistics; this generation owns it (disposed once, when it retires). */
  readonly runtime: GraphRuntime;
  /** What the graph's nodes loaded (models, pipelines), shared by all its runs. */
  readonly resources: LoadedResources;
  inFlight: number;
  /** Set while retiring: called when the last lease is released. */
  onDrained: (() => void) | undefined;
}

/** The graph file's bytes, or why they could not be had. */
type GraphSource = { readonly text: string; readonly hash: string } | { readonly error: string };

export class ManagedServable implements Servable {
  readonly name: string;
  private readonly calculators: CalculatorRegistry;
  /** Where its nodes register their metrics. */
  private readonly metrics: MetricsRegistry;
  /** Thread counts for executors that set none (--rest_workers). */
  private readonly executorDefaults: ExecutorDefaults;
  private readonly log: Logger;
  /** The config of the last load attempt. */
  private config: ServableConfig;
  /**
   * Paths + graph hash (or read error) of the last attempt whose outcome they
   * decide: the same inputs are not loaded twice. Unset when loading the
   * nodes' resources failed, since that depends on more than the graph.
   */
  private attempted: string | undefined;
  private serving: Generation | undefined;
  /** Generations retiring (replaced, or the whole servable retiring), until closed. */
  private readonly draining = new Map<Generation, Promise<void>>();
  private state: ServableState = "START";
  private errorCode: ServableErrorCode = "OK";
  private errorMessage = "OK";
  private retiring: Promise<void> | undefined;
  /** Set by forceClose(): stop waiting for leases. */
  private forced = false;
  private readonly forceWaiters = new Set<() => void>();
  /** Aborts node resource loads still running when the servable retires. */
  private readonly loads = new AbortController();
  /** The last graph build (parse, validate, load resources): retiring waits for it to settle. */
  private building: Promise<unknown> | undefined;

  constructor(
    config: ServableConfig,
    calculators: CalculatorRegistry,
    logger: Logger,
    metrics: MetricsRegistry,
    executorDefaults: ExecutorDefaults = {},
    private readonly memoryCheck?: MemoryCheckOptions,
  ) {
    this.name = config.name;
    this.config = config;
    this.calculators = calculators;
    this.metrics = metrics;
    this.executorDefaults = executorDefaults;
    this.log = logger.child({ servable: config.name });
  }

  /** The serving graph's folder, or the configured one while none serves. */
  get basePath(): string {
    return (this.serving?.config ?? this.config).basePath;
  }

  get graphPath(): string {
    return (this.serving?.config ?? this.config).graphPath;
  }

  status(): ServableStatus {
    return { state: this.state, errorCode: this.errorCode, errorMessage: this.errorMessage };
  }

  inFlight(): number {
    let n = this.serving?.inFlight ?? 0;
    for (const gen of this.draining.keys()) if (gen !== this.serving) n += gen.inFlight;
    return n;
  }

  acquire(): ServableLease | undefined {
    const gen = this.serving;
    if (gen === undefined || this.state !== "AVAILABLE") return undefined;
    gen.inFlight++;
    // A lease is one request, from routing to the last byte of its answer (a stream included): a run as the stats count them.
    gen.stats.runStarted();
    let released = false;
    return {
      runner: gen.runner,
      graph: gen.graph,
      release: () => {
        // Idempotent: a double release must not let a graph close under another request.
        if (released) return;
        released = true;
        gen.stats.runFinished();
        if (--gen.inFlight === 0) gen.onDrained?.();
      },
    };
  }

  served(): ServedGraph | undefined {
    const gen = this.serving;
    return gen === undefined ? undefined : { graph: gen.graph, text: gen.text, stats: gen.stats };
  }

  overloaded(): { readonly retryAfterSeconds: number } | undefined {
    const gen = this.serving;
    // Retiring or loading: acquire() refuses with the right status.
    if (this.state !== "AVAILABLE") return undefined;
    const capacity = gen?.resources.capacity;
    if (gen === undefined || capacity === undefined || gen.inFlight < capacity) return undefined;
    return { retryAfterSeconds: gen.resources.retryAfterSeconds() };
  }

  /** Retiring or retired: the manager replaces such a servable when its name comes back. */
  isRetiring(): boolean {
    return this.retiring !== undefined;
  }

  /**
   * Loads `config`'s graph unless these paths and graph bytes were already
   * tried (so re-applying a config only reloads what changed; a graph whose
   * models failed to load is tried again). On success new
   * leases get the new graph and the old one retires after its requests; on
   * failure an old graph keeps serving. Never throws; true if a load was attempted.
   */
  async apply(config: ServableConfig): Promise<boolean> {
    if (this.retiring) return false;
    if (this.state === "START") this.state = "LOADING";
    const source = await readGraph(config);
    const key = JSON.stringify([config.basePath, config.graphPath, "hash" in source ? source.hash : source.error]);
    if (key === this.attempted || this.retiring) return false;
    this.attempted = key;
    this.config = config;

    let gen: Generation;
    try {
      if ("error" in source) throw new Error(source.error);
      const building = this.build(config, source.text);
      this.building = building;
      gen = await building;
    } catch (e) {
      if (this.retiring) return true;
      const why = e instanceof Error ? e.message : String(e);
      this.errorCode = "FAILED_PRECONDITION";
      if (this.serving) {
        this.errorMessage = `reload failed, still serving the previous graph: ${why}`;
        this.log.error({ graph: config.graphPath }, `reload of servable "${this.name}" failed; the previous graph keeps serving:\n${why}`);
      } else {
        this.state = "LOADING";
        this.errorMessage = why;
        this.log.error({ graph: config.graphPath }, `servable "${this.name}" failed to load:\n${why}`);
      }
      return true;
    }
    if (this.retiring) {
      await gen.resources.dispose();
      return true;
    }
    const old = this.serving;
    this.serving = gen;
    this.state = "AVAILABLE";
    this.errorCode = "OK";
    this.errorMessage = "OK";
    this.log.info({ graph: config.graphPath }, old ? `servable "${this.name}" reloaded` : `servable "${this.name}" is available`);
    if (old) void this.retireGeneration(old);
    return true;
  }

  /**
   * UNLOADING (no new leases) until every lease of every generation is
   * released and the runners are closed, then END. Idempotent.
   */
  retire(): Promise<void> {
    this.retiring ??= (async () => {
      this.loads.abort(new Error(`servable "${this.name}" is retiring`));
      this.state = "UNLOADING";
      this.errorCode = "OK";
      this.errorMessage = "OK";
      // A load in progress gives up at the abort; what it built is disposed by apply().
      await this.building?.catch(() => undefined);
      const gen = this.serving;
      if (gen) void this.retireGeneration(gen);
      await Promise.all(this.draining.values());
      this.serving = undefined;
      this.state = "END";
      this.log.info(`servable "${this.name}" retired`);
    })();
    return this.retiring;
  }

  /** Stops waiting for in-flight requests: retiring graphs are closed now (for shutdown after the grace period). */
  forceClose(): void {
    this.forced = true;
    for (const wake of this.forceWaiters) wake();
    this.forceWaiters.clear();
  }

  /**
   * Parses and validates the graph text read for `config` (read once, so the
   * hash matches what loads), then loads its nodes' resources: the servable
   * is not ready before its models are.
   */
  private async build(config: ServableConfig, text: string): Promise<Generation> {
    const doc = parseGraphText(text, config.graphPath, this.calculators.schema);
    for (const w of doc.warnings) this.log.warn(formatDiagnostic(w));
    const graph = validateGraph(doc, this.calculators);
    httpStreams(graph);
    let resources: LoadedResources;
    try {
      resources = await loadNodeResources(graph, { graphDir: dirname(config.graphPath), servable: this.name, logger: this.log, signal: this.loads.signal, metrics: this.metrics, memoryCheck: this.memoryCheck });
    } catch (e) {
      // What failed lies outside the graph's bytes (a model folder, a device): the same bytes are tried again next time.
      this.attempted = undefined;
      throw e;
    }
    // Persistent graph instances must not be the bottleneck: every request the nodes' capacity admits
    // gets one, so it waits in the node's own queue, where it is counted and can be cancelled.
    const pooled = graph.graphQueueSize;
    const graphQueueSize = pooled !== undefined && pooled > 0 && resources.capacity !== undefined ? Math.max(pooled, resources.capacity) : undefined;
    // Counted per generation: a reload may change the nodes, so its numbers start afresh.
    const stats = new NodeStatsCollector(graph.nodes.length);
    const runtime = new GraphRuntime(graph, { stats, executors: this.executorDefaults });
    const runner = new GraphPool(runtime, { sidePackets: resources.sidePackets, ...(graphQueueSize !== undefined ? { graphQueueSize } : {}) });
    return { config, graph, text, stats, runner, runtime, resources, inFlight: 0, onDrained: undefined };
  }

  private retireGeneration(gen: Generation): Promise<void> {
    let done = this.draining.get(gen);
    if (done) return done;
    done = (async () => {
      const drained = gen.inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (gen.onDrained = resolve));
      // Close only once no lease is out: a lease holder may call run() well after acquire().
      const clean = await this.untilForced(drained);
      const closing = gen.runner.close().catch((e: unknown) => this.log.warn({ err: e }, `closing a graph of servable "${this.name}" failed`));
      // Forced: a hung request would keep runner.close() waiting forever; ending the worker pools is what matters.
      if (clean) await this.untilForced(closing);
      await gen.runtime.dispose().catch((e: unknown) => this.log.warn({ err: e }, `disposing a graph of servable "${this.name}" failed`));
      // After a forced close a request may still be inside a backend; dispose() lets it finish or cancels it first.
      await gen.resources.dispose();
      this.draining.delete(gen);
    })();
    this.draining.set(gen, done);
    return done;
  }

  /**
   * True once `p` settles, false if forceClose() comes first. A waiter set
   * rather than racing one shared promise: each race would stay subscribed to
   * it, keeping every retired graph reachable for the servable's lifetime.
   */
  private untilForced(p: Promise<unknown>): Promise<boolean> {
    if (this.forced) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const wake = () => resolve(false);
      this.forceWaiters.add(wake);
      const done = () => {
        this.forceWaiters.delete(wake);
        resolve(true);
      };
      p.then(done, done);
    });
  }
}

async function readGraph(config: ServableConfig): Promise<GraphSource> {
  if (isRemotePath(config.graphPath)) return { error: `"${config.graphPath}" is a remote URL: graphserve loads graphs from local folders only` };
  try {
    const text = await readFile(config.graphPath, "utf8");
    return { text, hash: contentHash(text) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { error: code === "ENOENT" ? notFound(config) : `cannot read graph file "${config.graphPath}": ${ioReason(e)}` };
  }
}

/** A missing graph, explained: most often base_path points at a classic OVMS model (numbered version folders). */
function notFound({ basePath, graphPath }: ServableConfig): string {
  const head = `graph file "${graphPath}" not found`;
  let names: string[];
  try {
    names = readdirSync(basePath, { withFileTypes: true })
      .filter((d) => d.isDirectory() && /^\d+$/.test(d.name))
      .map((d) => d.name);
  } catch {
    return `${head}: base_path "${basePath}" does not exist`;
  }
  if (names.length === 0) return head;
  return `${head}: base_path "${basePath}" holds numbered version folders (${names.sort().join(", ")}), i.e. a classic OVMS model; graphserve serves MediaPipe graphs only`;
}
