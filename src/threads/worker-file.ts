/**
 * Where a worker script is: the compiled `.js` beside the module asking, or,
 * running from source (tsx), the `.ts` one (workers inherit the parent's
 * loader flags, so they can run it).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The path of worker `name` (no extension) beside `base` (the caller's import.meta.url). */
export function workerFile(base: string, name: string): string {
  const candidates = [".js", ".ts"].map((ext) => fileURLToPath(new URL(`./${name}${ext}`, base)));
  return candidates.find((p) => existsSync(p)) ?? candidates[0];
}
