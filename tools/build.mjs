#!/usr/bin/env node
/**
 * `npm run build`: compiles into a fresh staging folder beside dist/, then
 * moves each file into dist/ with a rename and only then deletes what the
 * new build no longer has. A server or `npx graphserve` running from dist/
 * meanwhile never finds a file missing (the build used to delete dist/ first:
 * `/` answered 404 for seconds and a server starting then crashed), stale
 * outputs of deleted sources still go, and a failed build leaves dist/ as it was.
 *
 * `--prepare` (npm's prepare script) builds too, except when npm runs it for
 * `npx graphserve` inside the clone: npm links the clone into its npx cache
 * and runs prepare there, which must not rebuild under a running server.
 * Plain JavaScript: it runs before anything is compiled.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { basename, delimiter, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const DIST = join(ROOT, "dist");

/** Every file under `dir`, relative to it. */
function filesUnder(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => !d.isDirectory())
    .map((d) => relative(dir, join(d.parentPath, d.name)));
}

/**
 * Moves every file of `staging` into `target` (one rename each, so a reader
 * sees the old file or the new one, never none), HTML last so a page never
 * names assets not there yet; then removes target's files the staging did
 * not have, and emptied folders. `staging` is gone afterwards.
 */
export function replaceTree(staging, target) {
  // Two builds at once (npm test in two terminals) would otherwise remove each other's folders and files mid-move.
  holding(join(dirname(target), `.${basename(target)}-build-lock`), () => moveTree(staging, target));
}

function moveTree(staging, target) {
  const fresh = filesUnder(staging).sort((a, b) => Number(a.endsWith(".html")) - Number(b.endsWith(".html")));
  for (const file of fresh) {
    mkdirSync(dirname(join(target, file)), { recursive: true });
    renameSync(join(staging, file), join(target, file));
  }
  const kept = new Set(fresh);
  for (const file of filesUnder(target)) if (!kept.has(file)) rmSync(join(target, file), { force: true });
  removeEmptyFolders(target);
  rmSync(staging, { recursive: true, force: true });
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
};

/**
 * Runs `fn` holding `lock`, a file naming its holder's pid; waits while
 * another live process holds it, takes it over from a dead one (a build
 * killed mid-move).
 */
function holding(lock, fn) {
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: "wx" });
      break;
    } catch (e) {
      if (e.code !== "EEXIST") throw e;
    }
    let holder = 0;
    try {
      holder = Number(readFileSync(lock, "utf8"));
    } catch {} // released meanwhile: try again
    if (holder > 0 && !alive(holder)) rmSync(lock, { force: true });
    else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

function removeEmptyFolders(dir) {
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    const sub = join(dir, d.name);
    removeEmptyFolders(sub);
    if (readdirSync(sub).length === 0) rmdirSync(sub);
  }
}

/** Removes staging folders of builds killed before they could (Ctrl-C during tsc), and one an earlier process with our pid left. */
export function removeAbandonedStaging(root) {
  for (const name of readdirSync(root)) {
    const pid = Number(/^\.dist-build-(\d+)$/.exec(name)?.[1]);
    if (pid === process.pid || (pid > 0 && !alive(pid))) removeStaging(join(root, name));
  }
}

/**
 * Best effort: the native tsc outlives its node wrapper on Ctrl-C and may
 * still be writing there (rmdir: ENOTEMPTY); a later build removes the rest.
 */
function removeStaging(dir) {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {}
}

class StepFailed extends Error {}

function run(command, args) {
  // node_modules/.bin on PATH, as under `npm run`, so `node tools/build.mjs` works by itself too.
  const PATH = [join(ROOT, "node_modules", ".bin"), process.env.PATH].join(delimiter);
  const r = spawnSync(command, args, { cwd: ROOT, stdio: "inherit", env: { ...process.env, PATH } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new StepFailed(`${command} ${args.join(" ")} failed; dist/ is unchanged`);
}

function build() {
  // A sibling of dist/: compiled files find proto/, graphs/ and package.json by relative paths.
  const staging = join(ROOT, `.dist-build-${process.pid}`);
  removeAbandonedStaging(ROOT);
  try {
    run("tsc", ["-p", "tsconfig.json", "--outDir", staging]);
    run("tsc", ["-p", "web/tsconfig.json"]);
    run("tsc", ["-p", "web/tsconfig.test.json", "--outDir", join(staging, "web-test")]);
    run("vite", ["build", "-c", "web/vite.config.ts", "--outDir", join(staging, "web")]);
    // The bin before bin/graphserve.js: npx caches that link a clone's bin keep pointing here.
    chmodSync(join(staging, "src/cli/main.js"), 0o755);
    mkdirSync(DIST, { recursive: true });
    replaceTree(staging, DIST);
  } finally {
    removeStaging(staging);
  }
}

/** Whether node was started with this file (also through a symlink: node runs its real path, argv keeps the link). */
export const isBuildScript = (argv1) => argv1 !== undefined && existsSync(argv1) && realpathSync(argv1) === fileURLToPath(import.meta.url);

if (isBuildScript(process.argv[1])) {
  // The build is synchronous, so these run once it has ended: Ctrl-C or SIGTERM never cuts the
  // move into dist/ short (a step the signal reached too, tsc, fails and leaves dist/ as it was).
  process.on("SIGINT", () => process.exit(130));
  process.on("SIGTERM", () => process.exit(143));
  const underNpx = process.argv.includes("--prepare") && process.env.npm_command === "exec";
  try {
    if (!(underNpx && existsSync(join(DIST, "src/cli/main.js")))) build();
  } catch (e) {
    if (!(e instanceof StepFailed)) throw e;
    console.error(`build: ${e.message}`);
    process.exitCode = 1;
  }
}
