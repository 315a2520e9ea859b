/**
 * Flag parsing every graphserve command shares: node:util's parseArgs,
 * strict, with its errors cut to their first line (the rest is a hint) and
 * thrown as a FlagError, the one-line problem a command prints before
 * exiting 2.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

/**
 * parseArgs(config) in strict mode; throws FlagError. A long flag may be
 * spelled with `_` or `-` whichever the command declares (the server's flags
 * are OVMS's snake_case, the client tools' kebab-case).
 */
export function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T & { strict: true }>> {
  const declared = new Set(Object.keys(config.options ?? {}));
  let ended = false;
  const args = config.args?.map((arg) => {
    ended ||= arg === "--";
    const m = /^--([^=]+)(=.*)?$/s.exec(arg);
    if (ended || m === null || declared.has(m[1])) return arg;
    const other = m[1].includes("_") ? m[1].replaceAll("_", "-") : m[1].replaceAll("-", "_");
    return declared.has(other) ? `--${other}${m[2] ?? ""}` : arg;
  });
  const normalized: T = args === undefined ? config : { ...config, args };
  try {
    return parseArgs({ ...normalized, strict: true });
  } catch (e) {
    throw new FlagError((e as Error).message.split("\n", 1)[0]);
  }
}
