/**
 * A real graphserve for the browser tests: the compiled CLI in a child
 * process (`graphserve demo`, or any flags), on an ephemeral loopback port,
 * waited on until /v2/health/ready, stopped with SIGTERM when the test ends.
 * The demo model is the committed one (models/demo), served in place.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { demoModelDir } from "../../src/cli/demo-command.js";
import type { GraphStats, GraphView } from "../../src/server/graph-view-types.js";
import { onCleanup } from "./cleanup.js";

/** The repository root (from `<outDir>/test/helpers/`). */
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** The CLI compiled beside this file: dist/ in CI, a private outDir while developing. */
export const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

export interface GraphserveProcess {
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  /** The servable's graph and its live statistics (with the API key when one is set). */
  graph(name: string): Promise<GraphView>;
  stats(name: string): Promise<GraphStats>;
  /** SIGTERM, then waits for the exit (SIGKILL after a grace period). Idempotent. */
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** Extra CLI flags. */
  readonly args?: readonly string[];
  /** Require this API key (the server reads it from API_KEY); graph() and stats() send it. */
  readonly apiKey?: string;
}

/** `graphserve demo` with the shared demo model. */
export function startDemoServer(t: TestContext, opts: ServerOptions = {}): Promise<GraphserveProcess> {
  return startGraphserve(t, ["demo", ...(opts.args ?? [])], opts.apiKey);
}

/** graphserve with `args` (no "demo"), e.g. --config_path from writePipelineConfig. */
export function startConfiguredServer(t: TestContext, args: readonly string[], opts: Omit<ServerOptions, "args"> = {}): Promise<GraphserveProcess> {
  return startGraphserve(t, args, opts.apiKey);
}

/**
 * A config.json serving the demo model twice: as "demo" (its one-node graph) and
 * as `pipelineName` through graphs/image-generation-pipeline (three nodes),
 * whose models_path is pointed at the demo model and whose step limit is the
 * demo's (500, for runs long enough to watch). Returns the config's path.
 */
export async function writePipelineConfig(pipelineName: string): Promise<string> {
  const model = await demoModel();
  const dir = mkdtempSync(join(tmpdir(), "graphserve-ui-config-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const pipelineDir = join(dir, "pipeline");
  mkdirSync(pipelineDir);
  const graph = readFileSync(join(ROOT, "graphs/image-generation-pipeline/graph.pbtxt"), "utf8");
  const pointed = graph
    .replace(/models_path:\s*"[^"]*"/, `models_path: ${JSON.stringify(model)}`)
    .replace(/max_num_inference_steps:\s*\d+/, "max_num_inference_steps: 500");
  if (!pointed.includes(JSON.stringify(model)) || !pointed.includes("max_num_inference_steps: 500")) {
    throw new Error("graphs/image-generation-pipeline/graph.pbtxt no longer has the models_path and max_num_inference_steps this fixture rewrites");
  }
  writeFileSync(join(pipelineDir, "graph.pbtxt"), pointed);
  const file = join(dir, "config.json");
  writeFileSync(
    file,
    JSON.stringify({ model_config_list: [{ config: { name: "demo", base_path: model } }, { config: { name: pipelineName, base_path: pipelineDir } }] }, null, 2),
  );
  return file;
}

/** The demo model's folder, as `graphserve demo` serves it. */
export async function demoModel(): Promise<string> {
  return demoModelDir();
}

async function startGraphserve(t: TestContext, args: readonly string[], apiKey: string | undefined): Promise<GraphserveProcess> {
  const fullArgs = [CLI, ...args, "--rest_port", "0", "--rest_bind_address", "127.0.0.1", "--shutdown_grace_seconds", "5"];
  const proc = spawn(process.execPath, fullArgs, {
    cwd: ROOT,
    env: { ...process.env, API_KEY: apiKey ?? "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<string>((resolve) => proc.once("exit", (code, signal) => resolve(signal ?? `code ${code}`)));
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };
  onCleanup(t, stop);
  // Should the test process die before its cleanups run, the server must not outlive it.
  const orphanGuard = () => void proc.kill("SIGKILL");
  process.once("exit", orphanGuard);
  void exited.then(() => process.removeListener("exit", orphanGuard));

  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout }).on("line", (line) => {
      output += line + "\n";
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(line);
      if (m) resolve(m[1]);
    });
    void exited.then((how) => reject(new Error(`graphserve ${args.join(" ")} exited (${how}) before listening:\n${output}`)));
  });
  const headers: Record<string, string> = apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` };
  const getJson = async <T>(path: string): Promise<T> => {
    const res = await fetch(url + path, { headers });
    const text = await res.text();
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  };

  // Servables load in the background; ready means every one of them is available.
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const res = await fetch(`${url}/v2/health/ready`).catch(() => undefined);
    await res?.arrayBuffer();
    if (res?.status === 200) break;
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`graphserve exited while loading:\n${output}`);
    if (Date.now() > deadline) throw new Error(`graphserve not ready after ${READY_TIMEOUT_MS} ms:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    graph: (name) => getJson<GraphView>(`/graphserve/v1/graphs/${name}`),
    stats: (name) => getJson<GraphStats>(`/graphserve/v1/graphs/${name}/stats`),
    stop,
  };
}
