/**
 * The `graphserve` command as a clone has it (README, "Serving"): the bin
 * npm links runs after any rebuild, `npx graphserve` in the clone runs the
 * build that is there instead of rebuilding it, killing npx by its PID stops
 * the server it started, and a build never takes a live file away.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { connect } from "node:net";
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { ROOT, eventually, spawnCli, tempDir } from "./server-helpers.js";

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Record<string, unknown> & { bin: Record<string, string>; version: string };

test("package-lock.json's root entry matches package.json, so npm install leaves the lockfile as it is", () => {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, Record<string, unknown>> };
  const root = lock.packages[""];
  for (const field of ["name", "version", "license", "bin", "engines", "dependencies", "devDependencies", "optionalDependencies"]) {
    assert.deepEqual(root[field], pkg[field], `package-lock.json's "${field}" differs from package.json's: run npm install and commit the lockfile`);
  }
});

test("the package's bin is executable after a build and runs the built command", async () => {
  const bin = join(ROOT, pkg.bin.graphserve);
  // `npm test` has just rebuilt dist/: the bin must not be a file the build recreates.
  assert.ok(!pkg.bin.graphserve.startsWith("dist/"), `bin ${pkg.bin.graphserve} lives in dist/, which every build replaces`);
  accessSync(bin, constants.X_OK);
  const { stdout: mode } = await run("git", ["ls-files", "--stage", pkg.bin.graphserve], { cwd: ROOT }).catch(() => ({ stdout: "" }));
  if (mode !== "") assert.match(mode, /^100755 /, "committed with its executable bit, so every clone has it");
  const { stdout } = await run(bin, ["--version"]);
  assert.equal(stdout.trim(), pkg.version);
  // npx caches made before bin/ existed link the clone's bin to the compiled entry point and are never refreshed.
  const stale = join(tempDir(), "graphserve");
  symlinkSync(join(ROOT, "dist/src/cli/main.js"), stale);
  assert.equal((await run(stale, ["--version"])).stdout.trim(), pkg.version);
});

/** Running (an exited orphan may linger as a zombie where PID 1 does not reap: that counts as gone). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

test("npx graphserve in the clone serves without rebuilding, and stops when npx is killed", async (t) => {
  const entry = join(ROOT, "dist/src/cli/main.js");
  const builtAt = statSync(entry).mtimeMs;
  // A fresh npm cache: the first npx in a clone, when npm links the clone into its npx cache and runs its prepare script.
  const env = { npm_config_cache: tempDir(), npm_config_offline: "true", npm_config_update_notifier: "false" };
  const srv = await spawnCli(t, ["--rest_port", "0", "--rest_bind_address", "127.0.0.1", "--model_name", "echo", "--model_path", "graphs/echo", "--log_level", "INFO"], env, ["npx", "graphserve"]);
  assert.equal(statSync(entry).mtimeMs, builtAt, "npx rebuilt dist/ (npm ran the clone's prepare script)");
  const r = await fetch(`${srv.url}/v3/echo`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"model":"echo","x":1}' });
  assert.equal(r.status, 200);

  // The server is npm's grandchild (npm → sh → node).
  const pid = await serverUnder(srv.proc.pid!);
  assert.ok(pid > 0 && pid !== srv.proc.pid, `server pid ${pid}, npx pid ${srv.proc.pid}`);
  t.after(() => {
    if (alive(pid)) process.kill(pid, "SIGKILL");
  });
  srv.proc.kill("SIGTERM");
  await eventually(() => !alive(pid), `server (pid ${pid}) to stop after its npx was killed`, 15_000);
  assert.match(srv.stderr(), /npm \(parent pid \d+\) exited; stopping as on SIGTERM/);
});

test("a signal to npx and the server together (a process-group kill) drains once: npx exiting is no second signal", async (t) => {
  const env = { npm_config_cache: tempDir(), npm_config_offline: "true", npm_config_update_notifier: "false" };
  const srv = await spawnCli(t, ["--rest_port", "0", "--rest_bind_address", "127.0.0.1", "--model_name", "echo", "--model_path", "graphs/echo", "--log_level", "INFO"], env, ["npx", "graphserve"]);
  let log = "";
  srv.proc.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  const pid = await serverUnder(srv.proc.pid!);
  t.after(() => {
    if (alive(pid)) process.kill(pid, "SIGKILL");
  });
  // A request in flight across the signal: its headers are in, half its body is not.
  const body = '{"model":"echo","x":1}';
  const socket = connect(Number(new URL(srv.url).port), "127.0.0.1");
  await once(socket, "connect");
  socket.write(`POST /v3/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 5)}`);
  let answer = "";
  socket.on("data", (d: Buffer) => (answer += d.toString()));
  await new Promise((r) => setTimeout(r, 300));
  // What systemd stopping the unit does: SIGTERM to every process of it at once.
  process.kill(pid, "SIGTERM");
  srv.proc.kill("SIGTERM");
  await eventually(() => /SIGTERM: stopping/.test(log), "the server to start draining", 10_000);
  // Longer than the parent watch's poll: npx is gone by now.
  await new Promise((r) => setTimeout(r, 1000));
  socket.end(body.slice(5));
  await once(socket, "close");
  assert.match(answer, /^HTTP\/1\.1 200 /, `the request in flight was answered (server log: ${log})`);
  assert.doesNotMatch(log, /again: exiting without waiting/);
  assert.doesNotMatch(srv.stderr(), /npm \(parent pid \d+\) exited/);
  await eventually(() => !alive(pid), `server (pid ${pid}) to stop after draining`, 15_000);
});

/** The deepest descendant of `pid` (the server under npx's shell), from ps. */
async function serverUnder(pid: number): Promise<number> {
  const { stdout } = await run("ps", ["-eo", "pid=,ppid="]);
  const rows = stdout.trim().split("\n").map((l) => l.trim().split(/\s+/).map(Number));
  let leaf = pid;
  for (let next: number | undefined = pid; next !== undefined; next = rows.find((r) => r[1] === leaf)?.[0]) leaf = next;
  return leaf;
}

interface BuildScript {
  replaceTree(staging: string, target: string): void;
  removeAbandonedStaging(root: string): void;
  isBuildScript(argv1: string | undefined): boolean;
}
const buildScript = async () => (await import(pathToFileURL(join(ROOT, "tools/build.mjs")).href)) as BuildScript;

test("a build replaces dist/ file by file: a reader never finds a file missing, stale files go", async () => {
  const { replaceTree } = await buildScript();
  const dir = tempDir();
  const target = join(dir, "dist");
  const write = (root: string, version: number, extra: string[] = []) => {
    for (const f of ["web/index.html", "web/assets/app.js", "src/cli/main.js", ...extra]) {
      mkdirSync(join(root, f, ".."), { recursive: true });
      writeFileSync(join(root, f), `${f} v${version}\n`.repeat(2000));
    }
  };
  write(target, 0, ["src/removed.js"]);
  // Another process reads the live files as fast as it can while builds replace them.
  const reader = spawn(process.execPath, ["-e", `
    const fs = require("node:fs");
    const files = ["web/index.html", "web/assets/app.js", "src/cli/main.js"].map((f) => ${JSON.stringify(target)} + "/" + f);
    let reads = 0, missing = 0, torn = 0;
    const end = Date.now() + 1500;
    while (Date.now() < end) for (const f of files) {
      try { const s = fs.readFileSync(f, "utf8"); reads++; if (!/^(.*\\n)\\1*$/.test(s)) torn++; } catch { missing++; }
    }
    console.log(JSON.stringify({ reads, missing, torn }));`], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  reader.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const done = new Promise((resolve) => reader.once("exit", resolve));
  await new Promise((r) => setTimeout(r, 200));
  let builds = 0;
  for (const started = Date.now(); Date.now() - started < 1000; builds++) {
    const staging = join(dir, `.dist-build-${builds}`);
    write(staging, builds + 1);
    replaceTree(staging, target);
    await new Promise((r) => setImmediate(r));
  }
  await done;
  const seen = JSON.parse(out) as { reads: number; missing: number; torn: number };
  assert.ok(seen.reads > 100 && builds > 10, `reads ${seen.reads}, builds ${builds}`);
  assert.equal(seen.missing, 0, `${seen.missing} reads found a file missing during ${builds} builds`);
  assert.equal(seen.torn, 0, "a read saw half a file");
  assert.equal(readFileSync(join(target, "src/cli/main.js"), "utf8").split("\n")[0], `src/cli/main.js v${builds}`);
  assert.throws(() => statSync(join(target, "src/removed.js")), /ENOENT/, "a file the new build does not have is removed");
});

test("two builds replacing dist/ at once take turns: neither fails, dist/ ends as the last one left it", async () => {
  const target = join(tempDir(), "dist");
  mkdirSync(target);
  // Each round's build has other folders than the one before (as after a source change), so each move creates and removes folders.
  const builder = (tag: string) => `
    const { mkdirSync, writeFileSync } = require("node:fs");
    import(${JSON.stringify(pathToFileURL(join(ROOT, "tools/build.mjs")).href)}).then(({ replaceTree }) => {
      const failures = [];
      for (let round = 0; round < 20; round++) {
        const staging = ${JSON.stringify(target)} + "/../.dist-build-${tag}" + round;
        for (let d = 0; d < 20; d++) {
          mkdirSync(staging + "/d" + d + "/r" + (round % 2), { recursive: true });
          writeFileSync(staging + "/d" + d + "/r" + (round % 2) + "/f.js", "x");
        }
        try { replaceTree(staging, ${JSON.stringify(target)}); } catch (e) { failures.push(e.code ?? e.message); }
      }
      console.log(JSON.stringify(failures));
    });`;
  const results = await Promise.all(["a", "b"].map((tag) => run(process.execPath, ["-e", builder(tag)])));
  for (const { stdout } of results) assert.deepEqual(JSON.parse(stdout), []);
  const files = readdirSync(target, { recursive: true, withFileTypes: true }).filter((d) => !d.isDirectory());
  assert.deepEqual(files.map((d) => join(d.parentPath, d.name)).sort(), Array.from({ length: 20 }, (_, d) => join(target, `d${d}/r1/f.js`)).sort());
  assert.deepEqual(readdirSync(join(target, "..")).sort(), ["dist"], "no lock or staging folder left behind");
});

test("a build removes the staging folders of builds that were killed, not those of builds still running", async () => {
  const { removeAbandonedStaging } = await buildScript();
  const root = tempDir();
  const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
  for (const pid of [dead, process.pid, process.ppid]) mkdirSync(join(root, `.dist-build-${pid}/src`), { recursive: true });
  mkdirSync(join(root, "dist"));
  removeAbandonedStaging(root);
  assert.deepEqual(readdirSync(root).sort(), [`.dist-build-${process.ppid}`, "dist"]);
});

test("the build script builds when started through a symlink to the clone, not only by its real path", async () => {
  const { isBuildScript } = await buildScript();
  const link = join(tempDir(), "clone");
  symlinkSync(ROOT, link);
  assert.equal(isBuildScript(join(link, "tools/build.mjs")), true, "node <link>/tools/build.mjs built nothing and exited 0");
  assert.equal(isBuildScript(join(ROOT, "tools/build.mjs")), true);
  assert.equal(isBuildScript(join(ROOT, "package.json")), false);
  assert.equal(isBuildScript(undefined), false);
});
