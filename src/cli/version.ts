/** graphserve's version, from its package.json (dist/src/cli/ -> the package root). */
import { readFileSync } from "node:fs";

export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}
