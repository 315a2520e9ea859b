/**
 * The Images API on the tiny demo model: what the serving layer costs around
 * the model, and whether encoding large answers holds up the event loop.
 *
 * For the one-node OVMS graph (encoding with sharp on libuv's threads) and
 * the three-node pipeline (Base64Encoder on the worker pool), each in a child
 * process of its own: requests/s and latency at 1024×1024 (1 step, so the
 * answer's encoding weighs as much as the model), and `/v2/health/live`
 * latency probed every 10 ms meanwhile (goal: p99 ≤ 50 ms). Then a 64×64
 * run at concurrency 8 with a small queue shows how 429s hold latency down.
 * Run with `npm run bench:images`. Env: BENCH_REQUESTS (default 80).
 */
import { fork } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { makeTinyModel } from "../src/backends/onnx/tiny/make-tiny-model.js";

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 80);

type Shape = "one-node" | "pipeline";

async function serve(dir: string): Promise<void> {
  const { startServer } = await import("../src/server/serve.js");
  const { DEFAULT_CORS } = await import("../src/server/cors.js");
  const server = await startServer({
    restPort: 0,
    restBindAddress: "127.0.0.1",
    single: { name: "demo", path: dir },
    pollSeconds: 0,
    logLevel: "INFO",
    metricsEnable: false,
    cors: DEFAULT_CORS,
    maxBodyBytes: 64 * 1024 * 1024,
    maxJsonDepth: 100,
    shutdownGraceSeconds: 1,
    ignored: [],
    logger: pino({ level: "info" }, pino.destination({ dest: "/dev/null", sync: false })),
  });
  await server.manager.whenInitialized();
  process.send!({ url: server.url });
}

function servable(model: string, shape: Shape, queue: number): string {
  const dir = join(tmpdir(), `graphserve-bench-${shape}-${queue}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const source = join(ROOT, shape === "pipeline" ? "graphs/image-generation-pipeline/graph.pbtxt" : "graphs/image-generation/graph.pbtxt");
  const text = readFileSync(source, "utf8").replace(
    /\[type\.googleapis\.com \/ mediapipe\.ImageGenCalculatorOptions\]: \{[^}]*\}/,
    `[type.googleapis.com / mediapipe.ImageGenCalculatorOptions]: { models_path: "${model}" max_resolution: "1024x1024" max_queue_size: ${queue} }`,
  );
  writeFileSync(join(dir, "graph.pbtxt"), text);
  return dir;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function generate(url: string, body: object): Promise<{ status: number; ms: number }> {
  const t = performance.now();
  const res = await fetch(`${url}/v3/images/generations`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - t };
}

/** Runs `total` requests with `concurrency` in flight while probing health every 10 ms. */
async function load(url: string, body: object, total: number, concurrency: number) {
  let next = 0;
  const results: { status: number; ms: number }[] = [];
  const probes: number[] = [];
  let running = true;
  const prober = (async () => {
    while (running) {
      const t = performance.now();
      await (await fetch(`${url}/v2/health/live`)).arrayBuffer();
      probes.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        results.push(await generate(url, body));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  running = false;
  await prober;
  const ok = results.filter((r) => r.status === 200);
  return {
    ok: ok.length,
    refused: results.filter((r) => r.status === 429).length,
    other: results.length - ok.length - results.filter((r) => r.status === 429).length,
    perSecond: ok.length / seconds,
    p50: pct(ok.map((r) => r.ms), 50),
    p99: pct(ok.map((r) => r.ms), 99),
    healthP50: pct(probes, 50),
    healthP99: pct(probes, 99),
    healthMax: Math.max(...probes),
  };
}

async function withServer<T>(dir: string, f: (url: string) => Promise<T>): Promise<T> {
  const child = fork(SELF, ["serve", dir], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.once("message", (m) => resolve((m as { url: string }).url));
      child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    });
    return await f(url);
  } finally {
    child.kill("SIGKILL");
  }
}

const ms = (x: number) => x.toFixed(1).padStart(7);

async function main(): Promise<void> {
  const model = join(tmpdir(), `graphserve-bench-model-${process.pid}`);
  await makeTinyModel(model, { family: "sd", seed: 1 });
  console.log(`Images API on the tiny SD model, Node ${process.version}, ${REQUESTS} requests per row`);
  console.log("graph      size      conc  ok  429   img/s  p50 ms  p99 ms | /v2/health/live p50  p99   max ms");
  const rows: [Shape, number, number, number, number][] = [
    ["one-node", 1024, 1, 2, 16],
    ["pipeline", 1024, 1, 2, 16],
    ["one-node", 64, 2, 8, 2],
  ];
  for (const [shape, size, steps, conc, queue] of rows) {
    const r = await withServer(servable(model, shape, queue), async (url) => {
      await generate(url, { model: "demo", prompt: "warm-up", size: `${size}x${size}`, num_inference_steps: steps });
      return load(url, { model: "demo", prompt: "three cats", size: `${size}x${size}`, num_inference_steps: steps }, REQUESTS, conc);
    });
    console.log(
      `${shape.padEnd(10)} ${`${size}x${size}`.padEnd(9)} ${String(conc).padStart(4)} ${String(r.ok).padStart(3)} ${String(r.refused).padStart(4)} ${r.perSecond.toFixed(2).padStart(7)} ${ms(r.p50)} ${ms(r.p99)} |            ${ms(r.healthP50)} ${ms(r.healthP99)} ${ms(r.healthMax)}${r.other ? `  (${r.other} other errors)` : ""}`,
    );
  }
}

if (process.argv[2] === "serve") await serve(process.argv[3]);
else await main();
