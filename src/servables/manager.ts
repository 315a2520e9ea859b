/**
 * The servables of one server: applies config.json (or single-servable
 * mode), reloads on demand or when polling sees config.json change, and
 * reports status in OVMS's `GET /v1/config` shape.
 *
 * Config applications (initial load, reloads, poll checks) run one at a
 * time, so a servable is never loaded by two of them at once.
 *
 * Applying a config also reloads servables whose graph file content changed
 * (OVMS itself reloads only on config.json changes): a reload request should
 * pick up an edited graph. Polling watches config.json's content only.
 */
import { Registry as MetricsRegistry } from "prom-client";
import type { Logger } from "pino";
import type { MemoryCheckOptions } from "../backends/host-memory.js";
import type { CalculatorRegistry } from "../engine/registry.js";
import { parseConfigText, readConfigFile, singleServableConfig, type MetricsSettings, type ServerConfig } from "./config.js";
import { ManagedServable } from "./servable.js";
import type { ReloadResult, ServableErrorCode, Servables, ServableState } from "./types.js";

export interface ServableManagerOptions {
  /** config.json; exclusive with `single`. */
  readonly configPath?: string;
  /** Single-servable mode (`--model_name`, `--model_path`: a folder with graph.pbtxt, or the graph file). */
  readonly single?: { readonly name: string; readonly path: string };
  readonly calculators: CalculatorRegistry;
  /** Seconds between config.json checks (fractions allowed); default 1, 0 = off. Unused in single mode. */
  readonly pollSeconds?: number;
  readonly logger: Logger;
  /** Handed to every node resource load (the server's --skip_memory_check). */
  readonly memoryCheck?: MemoryCheckOptions;
  /** Where servables' nodes register their metrics (the server's own registry); default a private one. */
  readonly metrics?: MetricsRegistry;
  /** Threads of worker pools whose executor sets no count (--rest_workers); default one per core. */
  readonly workerThreads?: number;
}

/** One entry of `model_version_status` in `GET /v1/config`. */
export interface ModelVersionStatus {
  readonly version: string;
  readonly state: ServableState;
  readonly status: { readonly error_code: ServableErrorCode; readonly error_message: string };
}

/** The body of `GET /v1/config` (and of `POST /v1/config/reload`). */
export type ConfigStatus = Record<string, { readonly model_version_status: readonly ModelVersionStatus[] }>;

export class ServableManager implements Servables {
  private readonly opts: ServableManagerOptions;
  private readonly log: Logger;
  private readonly pollMs: number;
  /** Configured servables plus retired ones (still reported, as END), by name. */
  private readonly servables = new Map<string, ManagedServable>();
  /** Configured names, in config order. */
  private order: string[] = [];
  /** Servables retiring, until they reach END (a re-added name gets a new servable meanwhile). */
  private readonly retiring = new Map<ManagedServable, Promise<void>>();
  /** Tail of the serialized config applications. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly initialLoad: Promise<void>;
  private isInitialized = false;
  /** A reload queued and not started yet, which later reload requests join. */
  private waitingReload: Promise<ReloadResult> | undefined;
  /** Hash of the config text last read (valid or not): polling reloads when it differs. */
  private configHash: string | undefined;
  private configError: string | undefined;
  private lastPollError: string | undefined;
  private metricsSettings: MetricsSettings;
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  private readonly metricsRegistry: MetricsRegistry;

  private constructor(opts: ServableManagerOptions, initial: ServerConfig, hash: string | undefined) {
    this.metricsRegistry = opts.metrics ?? new MetricsRegistry();
    this.opts = opts;
    this.log = opts.logger;
    this.pollMs = opts.configPath !== undefined ? Math.max(0, (opts.pollSeconds ?? 1) * 1000) : 0;
    this.configHash = hash;
    this.metricsSettings = initial.metrics;
    // Called directly, not queued: the servables exist (START/LOADING) as soon as start() returns.
    const first = this.apply(initial);
    this.queue = first.catch(() => undefined);
    this.initialLoad = first.then(
      () => {
        this.isInitialized = true;
        // OVMS reports a failed load as LOADING/FAILED_PRECONDITION in /v1/config; the log says "failed" plainly.
        const failed = this.list().filter((s) => s.status().state !== "AVAILABLE").map((s) => s.name);
        if (failed.length === 0) this.log.info(`servables initialized: ${this.order.length} configured`);
        else this.log.warn({ failed }, `servables initialized: ${this.order.length} configured, ${failed.length} failed to load: ${failed.join(", ")}`);
      },
      (e: unknown) => {
        this.isInitialized = true;
        this.log.error({ err: e }, "initial servable load failed");
      },
    );
  }

  /**
   * Reads the config and starts loading every servable; resolves without
   * waiting for the loads (see initialized()/whenInitialized()). Rejects
   * (ConfigError) when the initial config is unreadable or invalid: OVMS
   * refuses to start then too.
   */
  static async start(opts: ServableManagerOptions): Promise<ServableManager> {
    if ((opts.configPath === undefined) === (opts.single === undefined)) {
      throw new Error("give either a config path or a single servable (--model_name/--model_path), not both or neither");
    }
    const poll = opts.pollSeconds ?? 1;
    if (!Number.isFinite(poll) || poll < 0) throw new Error(`poll interval must be a non-negative number of seconds, got ${poll}`);
    let initial: ServerConfig;
    let hash: string | undefined;
    if (opts.single) {
      initial = singleServableConfig(opts.single.name, opts.single.path);
    } else {
      const read = await readConfigFile(opts.configPath!);
      hash = read.hash;
      initial = parseConfigText(read.text, opts.configPath!);
    }
    const manager = new ServableManager(opts, initial, hash);
    manager.schedulePoll();
    return manager;
  }

  get(name: string): ManagedServable | undefined {
    return this.servables.get(name);
  }

  list(): readonly ManagedServable[] {
    return this.order.map((name) => this.servables.get(name)!);
  }

  initialized(): boolean {
    return this.isInitialized;
  }

  /** Resolves once every servable of the initial config has loaded or failed. */
  whenInitialized(): Promise<void> {
    return this.initialLoad;
  }

  /** The last config read that could not be applied; cleared by the next good one. */
  lastConfigError(): string | undefined {
    return this.configError;
  }

  /** `monitoring.metrics` of the config last applied (OVMS reads it at startup only). */
  metrics(): MetricsSettings {
    return this.metricsSettings;
  }

  /**
   * Reloads run one at a time, and reloads asked for while one waits join it:
   * each still reads the disk after it was asked for, and a flood of them
   * (a reload retries every load that failed) costs two reloads, not one each.
   */
  reload(): Promise<ReloadResult> {
    if (this.closing) return Promise.resolve({ changed: false, error: "the server is shutting down" });
    this.waitingReload ??= this.enqueue(() => {
      this.waitingReload = undefined;
      return this.reloadNow();
    });
    return this.waitingReload;
  }

  /** `GET /v1/config`: configured servables in config order, then retired ones. Graphs are unversioned: always version "1". */
  configStatus(): ConfigStatus {
    const names = [...this.order, ...[...this.servables.keys()].filter((n) => !this.order.includes(n))];
    // fromEntries defines own properties, so a servable named "__proto__" cannot touch the prototype.
    return Object.fromEntries(
      names.map((name) => {
        const s = this.servables.get(name)!.status();
        const v: ModelVersionStatus = { version: "1", state: s.state, status: { error_code: s.errorCode, error_message: s.errorMessage } };
        return [name, { model_version_status: [v] }];
      }),
    );
  }

  close(graceMs: number): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.timer);
      // Retiring aborts model loads in progress, so a reload under way ends soon; one that added servables meanwhile gets them retired too.
      for (const s of this.servables.values()) this.retire(s);
      await this.queue;
      for (const s of this.servables.values()) this.retire(s);
      const all = Promise.all(this.retiring.values());
      let timer: NodeJS.Timeout | undefined;
      const clean = await Promise.race([all.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)))]);
      clearTimeout(timer);
      if (!clean) {
        const left = [...this.retiring.keys()].reduce((n, s) => n + s.inFlight(), 0);
        this.log.warn(`closing servables with ${left} request(s) still in flight after ${graceMs} ms`);
        for (const s of this.retiring.keys()) s.forceClose();
        await all;
      }
    })();
    return this.closing;
  }

  // ------------------------------------------------------------------------

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async reloadNow(): Promise<ReloadResult> {
    let config: ServerConfig;
    try {
      if (this.opts.single) {
        config = singleServableConfig(this.opts.single.name, this.opts.single.path);
      } else {
        const read = await readConfigFile(this.opts.configPath!);
        this.configHash = read.hash;
        config = parseConfigText(read.text, this.opts.configPath!);
      }
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      this.configError = error;
      this.log.error(`config reload failed; the running servables are kept:\n${error}`);
      return { changed: false, error };
    }
    this.configError = undefined;
    const changed = await this.apply(config);
    this.log.info({ changed }, changed ? "config reloaded: servables changed" : "config reloaded: nothing changed");
    return { changed };
  }

  /** Diffs `config` against the servables by name; resolves once every load is done. True if anything changed. */
  private async apply(config: ServerConfig): Promise<boolean> {
    for (const w of config.warnings) this.log.warn(w);
    const names = new Set(config.servables.map((s) => s.name));
    let changed = false;
    for (const name of this.order) {
      if (!names.has(name)) {
        this.retire(this.servables.get(name)!);
        changed = true;
      }
    }
    const loads = config.servables.map((entry) => {
      let s = this.servables.get(entry.name);
      if (s === undefined || s.isRetiring()) {
        s = new ManagedServable(entry, this.opts.calculators, this.log, this.metricsRegistry, { threads: this.opts.workerThreads }, this.opts.memoryCheck);
        this.servables.set(entry.name, s);
      }
      // A servable's apply() only loads when its paths or graph bytes changed.
      return s.apply(entry);
    });
    this.order = config.servables.map((s) => s.name);
    this.metricsSettings = config.metrics;
    for (const loaded of await Promise.all(loads)) changed ||= loaded;
    return changed;
  }

  /** Starts retiring in the background (requests in flight finish first). */
  private retire(s: ManagedServable): void {
    if (this.retiring.has(s) || s.status().state === "END") return;
    const done = s.retire().finally(() => this.retiring.delete(s));
    this.retiring.set(s, done);
  }

  private schedulePoll(): void {
    if (this.pollMs <= 0 || this.closing) return;
    this.timer = setTimeout(() => void this.poll(), this.pollMs);
    this.timer.unref(); // polling alone must not keep the process alive
  }

  /** Reloads when config.json's content (not just its mtime) changed. Logs, never throws. */
  private async poll(): Promise<void> {
    try {
      await this.enqueue(async () => {
        if (this.closing) return;
        let hash: string;
        try {
          hash = (await readConfigFile(this.opts.configPath!)).hash;
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          // Once per distinct error, not once per tick.
          if (msg !== this.lastPollError) this.log.error(`config poll: ${msg}`);
          this.lastPollError = msg;
          return;
        }
        this.lastPollError = undefined;
        if (hash === this.configHash) return;
        this.log.info("config file changed; reloading");
        await this.reloadNow();
      });
    } catch (e) {
      this.log.error({ err: e }, "config poll failed");
    } finally {
      this.schedulePoll();
    }
  }
}
