/**
 * Starting and stopping the server: calculators (built-ins plus
 * `--calculators_dir`), the servable manager, the HTTP listener, and the
 * graceful shutdown SIGTERM/SIGINT trigger.
 *
 * As in OVMS the listener comes up before the servables have loaded: live
 * answers 200 at once, ready 503 until the initial config is applied.
 */
import { Registry } from "prom-client";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino, type Logger } from "pino";
import { CalculatorRegistry } from "../engine/registry.js";
import type { MemoryCheckOptions } from "../backends/host-memory.js";
import { ServableManager } from "../servables/manager.js";
import type { Servable } from "../servables/types.js";
import { createApp, type GraphserveApp } from "./app.js";
import { guardProcess } from "./crash-guard.js";
import { deferContinue } from "./body.js";
import { allowHalfClose } from "./client-gone.js";
import { capConnections, DEFAULT_CONNECTION_LIMITS, serverTimeouts } from "./connections.js";
import type { ServeOptions } from "./flags.js";
import { createLogger } from "./logging.js";
import { ServerMetrics } from "./metrics.js";
import type { ModelAliases } from "./context.js";
import { webUiBuilt } from "./web-ui.js";

export interface StartOptions extends ServeOptions {
  /** Default: a logger at `logLevel` on stdout. */
  readonly logger?: Logger;
  readonly aliases?: ModelAliases;
  /** The built web UI's folder (tests); default `<outDir>/web/`. */
  readonly webUiDir?: string;
  /** How model loads weigh models against memory (tests inject the memory there is); `skipMemoryCheck` sets `skip`. */
  readonly memoryCheck?: MemoryCheckOptions;
}

export interface RunningServer {
  /** `http://host:port`, with a loopback host when bound to every interface. */
  readonly url: string;
  readonly port: number;
  readonly manager: ServableManager;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  /**
   * Stops accepting connections, lets requests in flight finish for up to
   * `graceMs` (default: the options' grace), then closes the remaining
   * connections and every graph. Idempotent.
   */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger({ level: opts.logLevel });
  for (const flag of opts.ignored) logger.warn(`${flag} is ignored: graphserve serves REST only`);
  // OVMS sizes its request threads with --rest_workers; HTTP here runs on the
  // event loop, so the flag sizes the worker pools that do the CPU work.

  if (opts.restWorkers !== undefined && !(Number.isInteger(opts.restWorkers) && opts.restWorkers > 0)) {
    throw new Error(`worker thread count must be a positive integer, got ${opts.restWorkers}`);
  }
  // The server's own Prometheus registry (never prom-client's global one): servables' nodes register into it too.
  const metricsRegistry = new Registry();
  const calculators = await CalculatorRegistry.withBuiltins();
  if (opts.calculatorsDir !== undefined) await calculators.loadDirectory(opts.calculatorsDir);
  const manager = await ServableManager.start({
    ...(opts.configPath !== undefined ? { configPath: opts.configPath } : {}),
    ...(opts.single !== undefined ? { single: opts.single } : {}),
    calculators,
    metrics: metricsRegistry,
    ...(opts.restWorkers !== undefined ? { workerThreads: opts.restWorkers } : {}),
    pollSeconds: opts.pollSeconds,
    logger,
    memoryCheck: { ...opts.memoryCheck, ...(opts.skipMemoryCheck === true ? { skip: true } : {}) },
  });
  let server: Server;
  let gs: GraphserveApp;
  let metrics: ServerMetrics;
  try {
    // The flags enable metrics, or config.json does (read at startup, as OVMS); a flag list wins.
    const fromConfig = manager.metrics();
    const list = opts.metricsList ?? fromConfig.metricsList;
    metrics = new ServerMetrics({ enable: opts.metricsEnable || fromConfig.enable, ...(list !== undefined ? { list } : {}), registry: metricsRegistry });
    gs = createApp({
      servables: manager,
      logger,
      ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey } : {}),
      ...(opts.apiKeyScope !== undefined ? { apiKeyScope: opts.apiKeyScope } : {}),
      cors: opts.cors,
      metrics,
      limits: {
        maxBodyBytes: opts.maxBodyBytes,
        maxJsonDepth: opts.maxJsonDepth,
        ...(opts.maxJsonBodyBytes !== undefined ? { maxJsonBodyBytes: opts.maxJsonBodyBytes } : {}),
        ...(opts.maxTotalBodyBytes !== undefined ? { maxTotalBodyBytes: opts.maxTotalBodyBytes } : {}),
      },
      ...(opts.sendTimeoutSeconds !== undefined ? { sendTimeoutSeconds: opts.sendTimeoutSeconds } : {}),
      ...(opts.aliases !== undefined ? { aliases: opts.aliases } : {}),
      webUi: opts.webUi !== false,
      ...(opts.webUiDir !== undefined ? { webUiDir: opts.webUiDir } : {}),
    });
    const limits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.connections };
    server = createServer(serverTimeouts(limits), gs.app);
    capConnections(server, limits);
    deferContinue(server);
    allowHalfClose(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.restPort, opts.restBindAddress, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    await manager.close(0);
    throw e;
  }

  // Requests in progress, for draining.
  let active = 0;
  let closing = false;
  let drained: (() => void) | undefined;
  server.on("request", (_req, res) => {
    active++;
    res.once("close", () => {
      if (--active === 0) drained?.();
      // A kept-alive connection that just went idle would otherwise hold close() open.
      if (closing) server.closeIdleConnections();
    });
  });

  const { port, address } = server.address() as AddressInfo;
  const host = address === "0.0.0.0" || address === "::" ? "127.0.0.1" : address.includes(":") ? `[${address}]` : address;
  const url = `http://${host}:${port}`;
  logger.info({ address, port, url, config: opts.configPath, servable: opts.single?.name }, `REST server listening on ${url}`);
  if (opts.webUi !== false) {
    if (webUiBuilt(opts.webUiDir)) logger.info({ webUi: `${url}/` }, `web UI at ${url}/`);
    else logger.info("web UI not built (run npm run build); / answers 404 until it is");
  }
  void manager.whenInitialized().then(() => {
    // A single servable that failed is not "ready": runServer stops on it (see there).
    if (opts.single === undefined || loadFailure(manager.get(opts.single.name)) === undefined) logger.info("server is ready");
  });

  let done: Promise<void> | undefined;
  const close = (graceMs = opts.shutdownGraceSeconds * 1000): Promise<void> => {
    done ??= (async () => {
      closing = true;
      gs.startClosing();
      const deadline = Date.now() + graceMs;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const clean =
        active === 0 ||
        (await Promise.race([
          new Promise<boolean>((resolve) => (drained = () => resolve(true))),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
        ]));
      clearTimeout(timer);
      if (!clean) logger.warn(`shutdown: ${active} request(s) still in flight after ${graceMs} ms; closing their connections`);
      // Whatever is left is idle or cut short: the listener can finish closing.
      server.closeAllConnections();
      await closed;
      await manager.close(Math.max(0, deadline - Date.now()));
      logger.info("server closed");
    })();
    return done;
  };

  return { url, port, manager, metrics, logger, close };
}

/**
 * The CLI's server mode: starts, then shuts down gracefully on SIGTERM or
 * SIGINT (a second signal exits at once). While it serves, an error escaping
 * a request fails that request only (crash-guard.ts). Resolves with the exit code, after
 * the log is flushed.
 */
export async function runServer(opts: ServeOptions): Promise<number> {
  const logger = createLogger({ level: opts.logLevel });
  let server: RunningServer;
  try {
    server = await startServer({ ...opts, logger });
  } catch (e) {
    logger.fatal(`cannot start: ${e instanceof Error ? e.message : String(e)}`);
    return flushed(logger, 1);
  }
  const unguard = guardProcess(logger);
  const code = await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (code: number, graceMs?: number) => {
      stopping = true;
      server.close(graceMs).then(
        () => resolve(code),
        (e: unknown) => {
          logger.error({ err: e }, "shutdown failed");
          resolve(1);
        },
      );
    };
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn(`${signal} again: exiting without waiting`);
        logger.flush();
        process.exit(1);
      }
      logger.info(`${signal}: stopping; requests in flight have ${opts.shutdownGraceSeconds} s to finish`);
      stop(0);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    // Single-model mode has one servable: if it cannot load there is nothing to serve, and a server that
    // stays up answering 503 would hide that from whoever started it.
    if (opts.single !== undefined) {
      const { name } = opts.single;
      void server.manager.whenInitialized().then(() => {
        const reason = loadFailure(server.manager.get(name));
        if (reason === undefined || stopping) return;
        logger.fatal(`cannot serve "${name}": ${reason}`);
        stop(1, 0);
      });
    }
  });
  unguard();
  return flushed(logger, code);
}

/** Why `servable` has no graph serving after its load, on one line; undefined when it serves. */
function loadFailure(servable: Servable | undefined): string | undefined {
  const st = servable?.status();
  if (st === undefined || st.state === "AVAILABLE" || st.errorCode === "OK") return undefined;
  return st.errorMessage.split("\n").map((l) => l.trim()).filter((l) => l !== "").join(" ");
}

function flushed(logger: Logger, code: number): Promise<number> {
  return new Promise((resolve) => logger.flush(() => resolve(code)));
}

/** A logger that drops everything (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
