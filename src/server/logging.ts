/**
 * pino logging with OVMS's `--log_level` names. JSON lines, or pino-pretty
 * when stdout is a terminal (pretty-printing runs in pino's transport
 * thread, so it costs the event loop nothing).
 */
import { pino, type Logger } from "pino";

export type { Logger } from "pino";

/** OVMS's levels, mapped to pino's. */
export const LOG_LEVELS = { TRACE: "trace", DEBUG: "debug", INFO: "info", WARNING: "warn", ERROR: "error" } as const;
export type LogLevelName = keyof typeof LOG_LEVELS;

/** The OVMS level name for a flag value (case-insensitive), or undefined. */
export function parseLogLevel(value: string): LogLevelName | undefined {
  const upper = value.toUpperCase();
  return Object.hasOwn(LOG_LEVELS, upper) ? (upper as LogLevelName) : undefined;
}

export interface LoggerOptions {
  readonly level?: LogLevelName;
  /** Force pretty output on or off; default: when stdout is a TTY. */
  readonly pretty?: boolean;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = LOG_LEVELS[opts.level ?? "INFO"];
  const pretty = opts.pretty ?? process.stdout.isTTY === true;
  if (pretty) {
    return pino({ level, base: undefined }, pino.transport({ target: "pino-pretty", options: { colorize: true, singleLine: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" } }));
  }
  // Asynchronous writes: a request's log line must not block the event loop.
  // serve.ts flushes before the process exits.
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 1, sync: false }));
}

/** Longest client-supplied text copied into a log field. */
export const MAX_LOGGED_CHARS = 200;

/** `text` cut to `max` characters, saying how much was left out: client input must not make log lines unbounded. */
export function clip(text: string, max = MAX_LOGGED_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}
