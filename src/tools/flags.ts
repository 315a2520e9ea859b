/**
 * Flag values the client tools (bench, accuracy) share. Every problem is a
 * one-line FlagError naming the flag; the commands print it and exit 2.
 */
import { FlagError } from "../cli/flags.js";

export function positiveInt(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new FlagError(`--${flag} must be a positive integer, got "${text}"`);
  return n;
}

export function positiveNumber(flag: string, text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n <= 0) throw new FlagError(`--${flag} must be a positive number, got "${text}"`);
  return n;
}

/** Node's timers hold at most 2^31 − 1 ms; a longer timeout would fire at once. */
export const MAX_TIMEOUT_S = Math.floor((2 ** 31 - 1) / 1000);

/** A parsed --timeout (seconds), refused beyond what a timer can hold. */
export function boundedTimeout(seconds: number): number {
  if (seconds > MAX_TIMEOUT_S) throw new FlagError(`--timeout must be at most ${MAX_TIMEOUT_S} s (about 24 days), got ${seconds}`);
  return seconds;
}
