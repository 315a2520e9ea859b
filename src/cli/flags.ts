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

/** parseArgs(config) in strict mode; throws FlagError. */
export function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T & { strict: true }>> {
  try {
    return parseArgs({ ...config, strict: true });
  } catch (e) {
    throw new FlagError((e as Error).message.split("\n", 1)[0]);
  }
}
