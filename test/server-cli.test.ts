/**
 * The real `graphserve` CLI in server mode, as a child process: flag
 * errors, and SIGTERM draining a request in flight (then exit 0).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { serveOptionsFrom } from "../src/server/flags.js";
import { CLI, ECHO_GRAPH_DIR, ROOT, call, eventually, oneNodeGraph, tempDir, testCalculatorsDir, writeServable } from "./server-helpers.js";

async function graphserve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    // The timeout turns a server that should have exited but keeps serving into a failure (code null) instead of a hang.
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd: ROOT, timeout: 60_000, env: { ...process.env, API_KEY: "", OVMS_MODEL_REPOSITORY_PATH: "", ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

test("bad server command lines exit 2 with a one-line reason", async () => {
  const single = ["--model_name", "echo", "--model_path", ECHO_GRAPH_DIR];
  const cases: [string[], RegExp][] = [
    [[...single], /--rest_port is required/],
    [["--rest_port", "abc", ...single], /--rest_port must be an integer from 0 to 65535, got "abc"/],
    [["--rest_port", "70000", ...single], /--rest_port must be an integer/],
    [["--rest_port", "0"], /nothing to serve/],
    [["--rest_port", "0", "--model_path", ECHO_GRAPH_DIR, "--config_path", "c.json"], /--model_path and --config_path exclude each other/],
    [["--rest_port", "0", "--model_name", "echo"], /--model_name needs --model_path/],
    [["--rest_port", "0", "--model_path", ECHO_GRAPH_DIR], /--model_path needs --model_name/],
    [["--rest_port", "0", "--model_name", "e", "--config_path", "c.json"], /--model_name and --config_path exclude each other/],
    [["--rest_port", "0", ...single, "--log_level", "LOUD"], /--log_level must be TRACE, DEBUG, INFO, WARNING or ERROR/],
    [["--rest_port", "0", ...single, "--metrics_enable", "--metrics_list", "ovms_nope"], /unknown metric family ovms_nope/],
    [["--rest_port", "0", ...single, "--file_system_poll_wait_seconds=-1"], /--file_system_poll_wait_seconds must be a non-negative number/],
    [["--rest_port", "0", ...single, "--max_body_size", "lots"], /--max_body_size must be a size/],
    [["--rest_port", "0", ...single, "--api_key_file", "/no/such/key"], /--api_key_file: .*no such file/i],
    [["--rest_port", "0", "--source_model", "OpenVINO/x"], /--source_model needs --model_repository_path/],
    [["--rest_port", "0", "--source_model", "../x", "--model_repository_path", "/m", "--pull"], /--source_model must be a Hugging Face repository id/],
    [["--rest_port", "0", "--source_model", "OpenVINO/x", "--model_repository_path", "/m", "--max_resolution", "big"], /--max_resolution must be WxH/],
    [["--rest_port", "0", "--source_model", "OpenVINO/x", "--model_repository_path", "/m", "--task", "text_generation"], /--task text_generation is not served by graphserve/],
    [["--rest_port", "0", ...single, "--task", "image_generation"], /--task applies only with --source_model or --configure/],
    [["--rest_port", "0", ...single, "--pull"], /--pull applies only with --source_model or --configure/],
    [["--configure", "--task", "image_generation"], /--configure needs --model_path/],
    [["--configure", "--model_path", ECHO_GRAPH_DIR, "--overwrite_models"], /--configure excludes --overwrite_models/],
    // Serving flags are checked before any download (the Hub here is unreachable, so reaching it would fail otherwise).
    [["--rest_port", "abc", "--source_model", "org/x", "--model_repository_path", "/tmp/graphserve-never"], /--rest_port must be an integer/],
    [["--rest_port", "0", ...single, "--bogus"], /Unknown option '--bogus'/],
    [["--rest_port", "0", ...single, "--rest_workers", "-2"], /argument is ambiguous/],
    [["graph", "check", "--rest_port", "1", "graphs/echo/graph.pbtxt"], /--rest_port is a server option/],
  ];
  await Promise.all(
    cases.map(async ([args, reason]) => {
      const r = await graphserve(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, /^graphserve: [^\n]+\n$/, args.join(" "));
      assert.match(r.stderr, reason, args.join(" "));
    }),
  );
  const help = await graphserve(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--rest_port N/);
  assert.match(help.stdout, /graph check FILE/);
});

test("OVMS_MODEL_REPOSITORY_PATH (or --model_repository_path) defaults --config_path to <repo>/config.json", () => {
  assert.equal(serveOptionsFrom({ rest_port: "1" }, { OVMS_MODEL_REPOSITORY_PATH: "/models" }).configPath, "/models/config.json");
  assert.equal(serveOptionsFrom({ rest_port: "1", model_repository_path: "/m2" }, { OVMS_MODEL_REPOSITORY_PATH: "/models" }).configPath, "/m2/config.json");
  assert.equal(serveOptionsFrom({ rest_port: "1", config_path: "/c.json" }, { OVMS_MODEL_REPOSITORY_PATH: "/models" }).configPath, "/c.json");
  const single = serveOptionsFrom({ rest_port: "1", model_name: "e", model_path: "/e" }, { OVMS_MODEL_REPOSITORY_PATH: "/models" });
  assert.equal(single.configPath, undefined);
  assert.deepEqual(single.single, { name: "e", path: "/e" });
  const o = serveOptionsFrom({ rest_port: "1", model_name: "e", model_path: "/e", port: "9000", max_body_size: "2M", rest_workers: "4" }, {});
  assert.deepEqual(o.ignored, ["--port"]);
  assert.equal(o.maxBodyBytes, 2 * 1024 * 1024);
  assert.equal(o.restWorkers, 4);
  assert.equal(o.restBindAddress, "0.0.0.0");
  assert.equal(o.pollSeconds, 1);
});

interface Child {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly lines: Record<string, unknown>[];
  readonly exit: Promise<number | null>;
}

/** Spawns the CLI and waits for its "listening" line (JSON logs: stdout is a pipe, not a TTY). */
async function spawnServer(args: string[]): Promise<Child> {
  const proc = spawn(process.execPath, [CLI, "--rest_port", "0", "--rest_bind_address", "127.0.0.1", ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const lines: Record<string, unknown>[] = [];
  const exit = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (typeof entry.url === "string") resolve(entry.url);
    });
    void exit.then((code) => reject(new Error(`server exited (${code}) before listening: ${stderr}`)));
  });
  return { proc, url, lines, exit };
}

function gatedServer(): { configPath: string; dir: string } {
  const dir = tempDir();
  writeServable(dir, "gate", oneNodeGraph("GateCalculator"));
  const configPath = join(dir, "config.json");
  writeFileSync(configPath, JSON.stringify({ model_config_list: [{ config: { name: "gate", base_path: "gate" } }, { config: { name: "echo", base_path: ECHO_GRAPH_DIR } }] }));
  return { configPath, dir };
}

test("SIGTERM: stop accepting, let the request in flight finish, close graphs, exit 0", async () => {
  const { configPath, dir } = gatedServer();
  const child = await spawnServer(["--config_path", configPath, "--calculators_dir", testCalculatorsDir(), "--log_level", "INFO"]);
  try {
    await eventually(async () => (await call(child.url, "GET", "/v2/health/ready")).status === 200, "ready");
    const entered = join(dir, "entered");
    const release = join(dir, "release");
    const inFlight = call(child.url, "POST", "/v3/images/generations", { json: { model: "gate", entered_file: entered, wait_file: release } });
    await eventually(() => existsSync(entered), "the request to be in flight");

    child.proc.kill("SIGTERM");
    await eventually(() => child.lines.some((l) => String(l.msg).startsWith("SIGTERM: stopping")), "the shutdown to begin");
    // The listener is closed: a new connection is refused.
    await eventually(async () => {
      try {
        await fetch(`${child.url}/v2/health/live`, { headers: { connection: "close" } });
        return false;
      } catch {
        return true;
      }
    }, "new connections to be refused");

    writeFileSync(release, "");
    const done = await inFlight;
    assert.equal(done.status, 200);
    assert.deepEqual(done.body, { gate: null, file: release });
    assert.equal(done.headers.get("connection"), "close");
    assert.equal(await child.exit, 0);
    const messages = child.lines.map((l) => l.msg);
    assert.ok(messages.includes("server closed"), "logged the end");
    assert.ok(child.lines.some((l) => l.msg === "request" && l.servable === "gate" && l.status === 200), "the drained request was logged");
  } finally {
    if (child.proc.exitCode === null) child.proc.kill("SIGKILL");
  }
});

test("SIGTERM with a request that outlives --shutdown_grace_seconds: its connection is closed, exit 0 all the same", async () => {
  const { configPath, dir } = gatedServer();
  const child = await spawnServer(["--config_path", configPath, "--calculators_dir", testCalculatorsDir(), "--shutdown_grace_seconds", "0.2"]);
  try {
    await eventually(async () => (await call(child.url, "GET", "/v2/health/ready")).status === 200, "ready");
    const entered = join(dir, "entered");
    const stuck = call(child.url, "POST", "/v3/x", { json: { model: "gate", entered_file: entered, wait_file: join(dir, "never") } });
    await eventually(() => existsSync(entered), "the request to be in flight");
    child.proc.kill("SIGTERM");
    await assert.rejects(stuck, "the connection was cut");
    assert.equal(await child.exit, 0);
    assert.ok(child.lines.some((l) => /still in flight after 200 ms/.test(String(l.msg))));
  } finally {
    if (child.proc.exitCode === null) child.proc.kill("SIGKILL");
  }
});

test("a config that cannot be read at startup: exit 1 with the reason", async () => {
  const r = await graphserve(["--rest_port", "0", "--config_path", join(tempDir(), "missing.json")]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /cannot start: cannot read config file .*missing\.json/);
});

test("single-model mode: a servable that cannot load exits 1 once loading is over, with a one-line reason", async () => {
  const broken = writeServable(tempDir(), "b", oneNodeGraph("NoSuchCalculator"));
  const cases: [path: string, reason: RegExp][] = [
    [join(tempDir(), "mistyped"), /^cannot serve "m": graph file ".*mistyped\/graph\.pbtxt" not found: base_path ".*mistyped" does not exist$/],
    [tempDir(), /^cannot serve "m": graph file ".*\/graph\.pbtxt" not found$/],
    [broken, /^cannot serve "m": ValidatedGraphConfig Initialization failed\. .*graph\.pbtxt:3:\d+: Unable to find Calculator "NoSuchCalculator"$/],
  ];
  await Promise.all(
    cases.map(async ([path, reason]) => {
      const r = await graphserve(["--rest_port", "0", "--rest_bind_address", "127.0.0.1", "--model_name", "m", "--model_path", path]);
      assert.equal(r.code, 1, `${path}: ${r.stdout}`);
      const fatal = r.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 60);
      assert.equal(fatal.length, 1, r.stdout);
      assert.match(fatal[0].msg, reason);
      assert.doesNotMatch(r.stdout, /server is ready/, "a single servable that failed is never announced ready");
    }),
  );
});
