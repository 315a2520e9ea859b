/**
 * How much memory a model load may still take on this host, and the policy a
 * loader follows with it (the server's `--skip_memory_check`).
 *
 * os.freemem()/totalmem() see the machine, not the container: a pod with an
 * 8 GB limit on a 256 GB node is OOM-killed at 8 GB. So on Linux this reads
 * every figure that can bind and takes the smallest:
 * - MemAvailable in /proc/meminfo (free memory plus what the kernel can reclaim);
 * - the memory cgroup of this process and of each ancestor (a parent's limit
 *   binds its children): cgroup v2 `memory.max`, cgroup v1
 *   `memory.limit_in_bytes` (and `hierarchical_memory_limit`), each minus the
 *   cgroup's working set (usage less inactive file pages, as the kubelet counts
 *   it: page cache is reclaimed before the OOM killer runs).
 * Swap is not counted. Elsewhere (macOS, Windows) Node's process.availableMemory().
 */
import { readFileSync } from "node:fs";
import { join, posix } from "node:path";

export interface MemoryFigure {
  readonly bytes: number;
  /** What it is and where it was read, e.g. "MemAvailable in /proc/meminfo". */
  readonly source: string;
}

export interface AvailableMemory extends MemoryFigure {
  /** Every figure read; `bytes`/`source` are the smallest of them. */
  readonly figures: readonly MemoryFigure[];
}

/** What a loader does about memory before it loads a model. */
export interface MemoryCheckOptions {
  /** Load without comparing needs and memory (the server's --skip_memory_check). */
  readonly skip?: boolean;
  /** Reads the memory there is; default readAvailableMemory(). Tests inject a figure here. */
  readonly readAvailable?: () => AvailableMemory;
  /** The image size to budget working memory for (the graph's default_resolution); default the model's native size. */
  readonly imageSize?: { readonly width: number; readonly height: number };
}

/** A file's text, or undefined when it cannot be read (the figure it holds then does not apply). */
export type ReadText = (path: string) => string | undefined;

const readTextFile: ReadText = (path) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
};

/** cgroup v1 writes a page-rounded 2^63 − 1 for "no limit"; anything this large is none. */
const NO_LIMIT = 2 ** 62;

/** `key value` lines (memory.stat) or `Key:  value kB` lines (meminfo) → numbers. */
function keyValues(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^(\w+):?\s+(\d+)(\s+kB)?\s*$/.exec(line);
    if (m) out.set(m[1], Number(m[2]) * (m[3] ? 1024 : 1));
  }
  return out;
}

function number(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : undefined;
}

interface Mount {
  /** The hierarchy's folder mounted there (not "/" when a container sees only its own cgroup). */
  readonly root: string;
  readonly point: string;
  readonly fsType: string;
  readonly superOptions: readonly string[];
}

/** /proc/self/mountinfo: `id parent dev root point options [tags] - fstype source superoptions`. */
function mounts(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split("\n")) {
    const [left, right] = line.split(" - ");
    if (right === undefined) continue;
    const l = left.split(" ");
    const r = right.split(" ");
    if (l.length < 5 || r.length < 3) continue;
    const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    out.push({ root: unescape(l[3]), point: unescape(l[4]), fsType: r[0], superOptions: r[2].split(",") });
  }
  return out;
}

/** The folders of `path` inside a mount: itself, then each parent up to the mount point. */
function cgroupDirs(mount: Mount, path: string, read: ReadText): string[] {
  const rel = mount.root === "/" ? path : path === mount.root || path.startsWith(mount.root + "/") ? path.slice(mount.root.length) : undefined;
  // A container that sees its cgroup mounted at the root but a host path in /proc/self/cgroup: the mount is its own cgroup.
  let dir = rel !== undefined && read(join(mount.point, rel, "cgroup.procs")) !== undefined ? join(mount.point, rel) : mount.point;
  const dirs = [dir];
  while (dir !== mount.point && dir.startsWith(mount.point + "/")) {
    dir = posix.dirname(dir);
    dirs.push(dir);
  }
  return dirs;
}

function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(1)} GB`;
}

function cgroupV2(mount: Mount, path: string, read: ReadText): MemoryFigure[] {
  const out: MemoryFigure[] = [];
  for (const dir of cgroupDirs(mount, path, read)) {
    const limit = number(read(join(dir, "memory.max")));
    if (limit === undefined || limit >= NO_LIMIT) continue; // "max", or the root (which has no memory.max)
    const usage = number(read(join(dir, "memory.current"))) ?? 0;
    const inactive = keyValues(read(join(dir, "memory.stat")) ?? "").get("inactive_file") ?? 0;
    const used = Math.max(0, usage - inactive);
    out.push({ bytes: Math.max(0, limit - used), source: `cgroup v2 limit ${join(dir, "memory.max")} (${gb(limit)}, ${gb(used)} of it in use)` });
  }
  return out;
}

function cgroupV1(mount: Mount, path: string, read: ReadText): MemoryFigure[] {
  const out: MemoryFigure[] = [];
  // The leaf's memory.stat knows the smallest limit of the hierarchy above it; reading each level also names the one that binds.
  const dirs = cgroupDirs(mount, path, read);
  for (const dir of dirs) {
    const stat = keyValues(read(join(dir, "memory.stat")) ?? "");
    const own = number(read(join(dir, "memory.limit_in_bytes")));
    const limit = Math.min(own ?? Infinity, dir === dirs[0] ? stat.get("hierarchical_memory_limit") ?? Infinity : Infinity);
    if (!(limit < NO_LIMIT)) continue;
    const usage = number(read(join(dir, "memory.usage_in_bytes"))) ?? 0;
    const inactive = stat.get("total_inactive_file") ?? stat.get("inactive_file") ?? 0;
    const used = Math.max(0, usage - inactive);
    const file = own !== undefined && own <= limit ? "memory.limit_in_bytes" : "memory.stat hierarchical_memory_limit";
    out.push({ bytes: Math.max(0, limit - used), source: `cgroup v1 limit ${join(dir, file)} (${gb(limit)}, ${gb(used)} of it in use)` });
  }
  return out;
}

/**
 * The memory a load may take now. `read` reads a file (tests pass a fake /proc and /sys);
 * `fallback` is the figure for hosts without /proc/meminfo.
 */
export function readAvailableMemory(read: ReadText = readTextFile, fallback: () => number = () => process.availableMemory()): AvailableMemory {
  const figures: MemoryFigure[] = [];
  const meminfo = read("/proc/meminfo");
  const available = meminfo === undefined ? undefined : keyValues(meminfo).get("MemAvailable");
  if (available !== undefined) figures.push({ bytes: available, source: "MemAvailable in /proc/meminfo" });
  const groups = read("/proc/self/cgroup");
  const mountInfo = read("/proc/self/mountinfo");
  if (groups !== undefined && mountInfo !== undefined) {
    const all = mounts(mountInfo);
    for (const line of groups.split("\n")) {
      const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
      if (!m) continue;
      const [, id, controllers, path] = m;
      if (id === "0" && controllers === "") {
        const mount = all.find((x) => x.fsType === "cgroup2");
        if (mount) figures.push(...cgroupV2(mount, path, read));
      } else if (controllers.split(",").includes("memory")) {
        const mount = all.find((x) => x.fsType === "cgroup" && x.superOptions.includes("memory"));
        if (mount) figures.push(...cgroupV1(mount, path, read));
      }
    }
  }
  if (figures.length === 0) figures.push({ bytes: fallback(), source: "process.availableMemory()" });
  const least = figures.reduce((a, b) => (b.bytes < a.bytes ? b : a));
  return { bytes: least.bytes, source: least.source, figures };
}
