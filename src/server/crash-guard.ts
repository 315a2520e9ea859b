/**
 * No error of one request ends the process. Each request runs in an async
 * scope; an error nobody caught (an emitter's unhandled `error`, a throw in
 * a timer, an unhandled rejection) that surfaces inside a request's scope
 * fails that request (500, or its connection closed when the answer has
 * begun) and is logged; the server keeps serving everyone else. An error
 * outside every request is the server's own: logged as fatal, and the
 * process exits as Node would.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Logger } from "pino";
import { clip, loggedError } from "./logging.js";

export interface RequestScope {
  readonly requestId: string;
  /** Ends the request with `error` (called at most once per error). */
  fail(error: unknown): void;
}

const scope = new AsyncLocalStorage<RequestScope>();

/** Runs `fn` (and everything it starts) as part of the request `s`. */
export function inRequestScope(s: RequestScope, fn: () => void): void {
  scope.run(s, fn);
}

/** Installs the process-wide handler; returns its removal. */
export function guardProcess(logger: Logger): () => void {
  const onUncaught = (err: unknown, origin: NodeJS.UncaughtExceptionOrigin): void => {
    const request = scope.getStore();
    if (request === undefined) {
      logger.fatal({ err: loggedError(err), origin }, `uncaught error outside any request: exiting (${clip(err instanceof Error ? err.message : String(err))})`);
      logger.flush();
      process.exit(1);
    }
    logger.error({ err: loggedError(err), origin, requestId: request.requestId }, "a request failed outside its handlers; the server keeps running");
    request.fail(err);
  };
  process.on("uncaughtException", onUncaught);
  return () => process.off("uncaughtException", onUncaught);
}
