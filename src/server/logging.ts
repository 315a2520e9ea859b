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
const MAX_LOGGED_CHARS = 200;

/** `text` cut to MAX_LOGGED_CHARS characters, saying how much was left out: client input must not make log lines unbounded. */
export function clip(text: string): string {
  return text.length <= MAX_LOGGED_CHARS ? text : `${text.slice(0, MAX_LOGGED_CHARS)}… (${text.length - MAX_LOGGED_CHARS} more characters)`;
}

/** Causes followed in a logged error (a wrapped error's own cause is where it started). */
const MAX_LOGGED_CAUSES = 3;

/**
 * `e` bounded for a log line: its message cut like any client text (an
 * error's message may echo what the client sent, and pino copies it into the
 * line's message and stack both), with its stack frames and what it wraps.
 * An Error still, so pino's serializer logs it as one.
 */
export function loggedError(e: unknown, depth = 0): Error {
  if (!(e instanceof Error)) return new Error(clip(String(e)));
  const cause = e.cause !== undefined && depth < MAX_LOGGED_CAUSES ? { cause: loggedError(e.cause, depth + 1) } : undefined;
  const out = new Error(clip(e.message), cause);
  out.name = e.name;
  const frames = (e.stack ?? "").split("\n").filter((line) => /^\s+at /.test(line));
  out.stack = [`${e.name}: ${out.message}`, ...frames.map(clip)].join("\n");
  return out;
}
