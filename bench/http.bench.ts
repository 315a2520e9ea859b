/**
 * HTTP overhead of graphserve: the echo servable (request → HttpInput →
 * JSON → response, through the servable lease, graph runner and logging)
 * against a bare Express handler doing the same job (express.json() then
 * res.json(req.body)), in the same run, at concurrency 1, 16 and 64.
 *
 * Each server runs in a child process of its own; autocannon drives it over
 * loopback from this one. Goal: echo ≥ 80% of bare Express throughput.
 * Each point is the better of BENCH_ROUNDS runs (default 2), the two
 * targets alternating so background load hits both alike.
 * Run with `npm run bench:http`. Env: BENCH_SECONDS (default 3), BENCH_ROUNDS,
 * BENCH_METRICS=1 (echo with metrics on).
 */
import { fork, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import express from "express";
import { pino } from "pino";

const SELF = fileURLToPath(import.meta.url);
const ECHO_DIR = fileURLToPath(new URL("../../graphs/echo", import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));
const CONCURRENCY = [1, 16, 64];
const PATH = "/v3/chat/completions";
const BODY = JSON.stringify({ model: "echo", prompt: "a watercolour fox in the snow", n: 1, size: "512x512", response_format: "b64_json" });

type Target = "bare" | "echo";

/** Child mode: serve one target, report the port, run until killed. */
async function serve(target: Target): Promise<void> {
  let port: number;
  if (target === "bare") {
    const app = express();
    app.post(PATH, express.json({ limit: "64mb" }), (req, res) => {
      res.json(req.body);
    });
    port = await new Promise<number>((resolve) => {
      const s = app.listen(0, "127.0.0.1", () => resolve((s.address() as { port: number }).port));
    });
  } else {
    const { startServer } = await import("../src/server/serve.js");
    const { DEFAULT_CORS } = await import("../src/server/cors.js");
    // A request line per request at info, written (asynchronously) to /dev/null: logging is part of the cost.
    const logger = pino({ level: "info" }, pino.destination({ dest: "/dev/null", sync: false }));
    const server = await startServer({
      restPort: 0,
      restBindAddress: "127.0.0.1",
      single: { name: "echo", path: ECHO_DIR },
      pollSeconds: 0,
      logLevel: "INFO",
      metricsEnable: process.env.BENCH_METRICS === "1",
      cors: DEFAULT_CORS,
      maxBodyBytes: 64 * 1024 * 1024,
      maxJsonDepth: 100,
      shutdownGraceSeconds: 1,
      ignored: [],
      logger,
    });
    await server.manager.whenInitialized();
    port = server.port;
  }
  process.send!({ port });
  // The parent went away (finished or crashed): do not linger.
  process.once("disconnect", () => process.exit(0));
}

function startChild(target: Target): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(SELF, ["--serve", target], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    child.once("message", (m) => resolve({ child, url: `http://127.0.0.1:${(m as { port: number }).port}` }));
    child.once("exit", (code) => reject(new Error(`${target} server exited with ${code}`)));
  });
}

interface Point {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

/** autocannon's own percentiles are whole milliseconds; its per-response times are not, so we sort those. */
function load(url: string, connections: number, seconds: number): Promise<Point> {
  const times: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { url: url + PATH, method: "POST", headers: { "content-type": "application/json" }, body: BODY, connections, duration: seconds },
      (err, r) => {
        if (err) return reject(err);
        times.sort((a, b) => a - b);
        const pct = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? NaN;
        resolve({ rps: r.requests.total / seconds, p50: pct(0.5), p99: pct(0.99), errors: r.errors + r.non2xx + r.timeouts });
      },
    );
    instance.on("response", (_client: unknown, _status: number, _bytes: number, ms: number) => times.push(ms));
  });
}

async function main(): Promise<void> {
  const started = await Promise.allSettled([startChild("bare"), startChild("echo")]);
  const children = started.flatMap((s) => (s.status === "fulfilled" ? [s.value.child] : []));
  if (started.some((s) => s.status === "rejected")) {
    for (const c of children) c.kill("SIGTERM");
    throw (started.find((s) => s.status === "rejected") as PromiseRejectedResult).reason;
  }
  const [bareServer, echoServer] = started.map((s) => (s as PromiseFulfilledResult<{ child: ChildProcess; url: string }>).value);
  const servers = { bare: bareServer, echo: echoServer };
  try {
    const check = await fetch(servers.echo.url + PATH, { method: "POST", headers: { "content-type": "application/json" }, body: BODY });
    if (check.status !== 200 || (await check.text()) !== BODY) throw new Error(`the echo servable does not echo (status ${check.status})`);
    for (const t of ["bare", "echo"] as const) await load(servers[t].url, 16, 1); // warm-up (JIT, graph instances)

    const rows: string[] = [];
    const ratios: number[] = [];
    const fmt = (n: number, d = 0) => n.toFixed(d).padStart(9);
    console.log(`POST ${PATH}, ${BODY.length}-byte JSON body, best of ${ROUNDS} x ${SECONDS} s per point, loopback, ${process.platform} ${process.arch}, ${availableParallelism()} cores, Node ${process.version}`);
    console.log(`${"target".padEnd(14)}${"conc".padStart(6)}${"req/s".padStart(9)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}${"errors".padStart(9)}`);
    for (const c of CONCURRENCY) {
      let bare: Point | undefined;
      let echo: Point | undefined;
      const better = (a: Point | undefined, b: Point) => (a === undefined || b.rps > a.rps ? b : a);
      for (let r = 0; r < ROUNDS; r++) {
        const order: Target[] = r % 2 === 0 ? ["bare", "echo"] : ["echo", "bare"];
        for (const t of order) {
          const p = await load(servers[t].url, c, SECONDS);
          if (t === "bare") bare = better(bare, p);
          else echo = better(echo, p);
        }
      }
      if (bare === undefined || echo === undefined) throw new Error("no measurement");
      for (const [name, p] of [["bare express", bare], ["echo graph", echo]] as const) {
        const row = `${name.padEnd(14)}${String(c).padStart(6)}${fmt(p.rps)}${fmt(p.p50, 2)}${fmt(p.p99, 2)}${fmt(p.errors)}`;
        rows.push(row);
        console.log(row);
      }
      ratios.push(echo.rps / bare.rps);
    }
    console.log("");
    CONCURRENCY.forEach((c, i) => console.log(`echo / bare express at concurrency ${String(c).padStart(2)}: ${(ratios[i] * 100).toFixed(1)}%`));
    const worst = Math.min(...ratios);
    console.log(`goal echo >= 80% of bare express: ${worst >= 0.8 ? "met" : "NOT met"} (worst ${(worst * 100).toFixed(1)}%)`);
  } finally {
    for (const s of Object.values(servers)) s.child.kill("SIGTERM");
  }
}

const i = process.argv.indexOf("--serve");
if (i >= 0) await serve(process.argv[i + 1] as Target);
else await main();
