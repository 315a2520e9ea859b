/** What a folder holds, to show that something left it untouched. */
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/** Every file under `dir` as "path size mtime", sorted: equal snapshots mean nothing was added, removed, rewritten or touched. */
export function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const p = join(e.parentPath, e.name);
      const s = statSync(p);
      return `${relative(dir, p)} ${s.size} ${s.mtimeMs}`;
    })
    .sort();
}
