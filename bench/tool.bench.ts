/**
 * `graphserve bench`'s own ceiling: the same echo servable (HttpInput → JSON
 * → response, in a server process of its own) loaded by autocannon and by
 * our tool at the same concurrency. Image servables answer tens of requests
 * a second; the tool must manage orders of magnitude more, so what it
 * reports is the server's limit, not its own.
 * Run with `npm run bench:tool`. Env: BENCH_SECONDS (default 3).
 */
import { fork } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { runBench } from "../src/tools/bench/run.js";

const HTTP_BENCH = fileURLToPath(new URL("./http.bench.js", import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const PATH = "/v3/images/generations";
const BODY = JSON.stringify({ model: "echo", prompt: "three cats", n: 1, rng_seed: 1 });

function autocannonRps(url: string, connections: number): Promise<number> {
  return new Promise((resolve, reject) => {
    autocannon({ url: url + PATH, method: "POST", headers: { "content-type": "application/json" }, body: BODY, connections, duration: SECONDS }, (err, r) =>
      err ? reject(err) : resolve(r.requests.total / SECONDS),
    );
  });
}

/** Requests answered per second (the echo servable's 200s carry no `data`, so the tool files them as "no-data"). */
async function toolRps(url: string, concurrency: number): Promise<number> {
  const report = await runBench({ url, model: "echo", path: PATH, levels: [concurrency], warmup: false, durationS: SECONDS, stream: false, prompt: "three cats", timeoutS: 60, json: true });
  const level = report.levels[0];
  if (Object.keys(level.errors).some((k) => k !== "no-data")) throw new Error(`unexpected errors: ${JSON.stringify(level.errors)}`);
  return level.requests / level.durationS;
}

const child = fork(HTTP_BENCH, ["--serve", "echo"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
try {
  const url = await new Promise<string>((resolve, reject) => {
    child.once("message", (m) => resolve(`http://127.0.0.1:${(m as { port: number }).port}`));
    child.once("exit", (code) => reject(new Error(`echo server exited with ${code}`)));
  });
  await autocannonRps(url, 16); // warm-up
  console.log(`echo servable, ${SECONDS} s per point, ${availableParallelism()} cores, Node ${process.version}`);
  console.log("conc  autocannon req/s  graphserve bench req/s  ratio");
  for (const c of [1, 16, 64]) {
    const a = await autocannonRps(url, c);
    const t = await toolRps(url, c);
    console.log(`${String(c).padStart(4)}  ${a.toFixed(0).padStart(16)}  ${t.toFixed(0).padStart(22)}  ${((100 * t) / a).toFixed(0).padStart(4)}%`);
  }
} finally {
  child.kill("SIGTERM");
}
