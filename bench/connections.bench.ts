/**
 * A slowloris flood against the server: BENCH_CONNECTIONS sockets (default
 * 10,000) that each send a request line, then one header line a second and
 * never finish; a socket the server closes is reopened at once. Meanwhile
 * `/v2/health/live` is probed every 50 ms on a fresh connection (2 s limit).
 *
 * The server (the echo graph, from the CLI) and the flood run in child
 * processes, the probes in this one. The server's fd
 * limit is BENCH_FD_LIMIT (default 4096), twice: with Node's own limits (no
 * connection cap, 60 s for headers: the bounds turned off) and with
 * graphserve's defaults. Reports the connections the server held, its RSS,
 * and health answers and latency. Loopback only.
 * Run with `npm run bench:connections`.
 * Env: BENCH_CONNECTIONS, BENCH_SECONDS (default 20), BENCH_FD_LIMIT.
 */
import { fork, spawn } from "node:child_process";
import { get } from "node:http";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { memoryMb, openSockets } from "./process-stats.js";
import { fileURLToPath } from "node:url";

const SELF = fileURLToPath(import.meta.url);
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const ECHO_DIR = fileURLToPath(new URL("../../graphs/echo", import.meta.url));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const FD_LIMIT = Number(process.env.BENCH_FD_LIMIT ?? 4096);
/** Connection attempts in progress at once (a connect storm would measure the kernel's backlog instead). */
const CONNECTING = 200;

interface Result {
  readonly label: string;
  readonly heldMax: number;
  readonly heldMean: number;
  readonly reopened: number;
  readonly rssMb: number;
  readonly probes: number;
  readonly ok: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

async function startServer(flags: string[]): Promise<{ pid: number; port: number; stop(): Promise<void> }> {
  const args = [CLI, "--rest_port", "0", "--rest_bind_address", "127.0.0.1", "--model_name", "echo", "--model_path", ECHO_DIR, "--no_ui", ...flags];
  const quoted = [process.execPath, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  const child = spawn("sh", ["-c", `ulimit -n ${FD_LIMIT} && exec ${quoted}`], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    // Health probes log at debug: at info the server prints its start lines only.
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = /"port":(\d+)/.exec(line);
      if (m) resolve(Number(m[1]));
    });
    void exited.then(() => reject(new Error("the server exited before listening")));
  });
  return {
    pid: child.pid!,
    port,
    stop: async () => {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Child mode: keep CONNECTIONS trickling sockets open against `port` until killed; reports reopen counts on stdout. */
function flood(port: number): void {
  let open = 0;
  let connecting = 0;
  let reopened = 0;
  const dial = (): void => {
    if (connecting >= CONNECTING || open + connecting >= CONNECTIONS) return;
    connecting++;
    const s = connect(port, "127.0.0.1");
    let timer: NodeJS.Timeout | undefined;
    let connected = false;
    s.once("connect", () => {
      connecting--;
      connected = true;
      open++;
      s.write("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n");
      timer = setInterval(() => s.write("X-Trickle: a\r\n"), 1000);
      dial();
    });
    s.on("error", () => undefined);
    s.once("close", () => {
      clearInterval(timer);
      if (connected) {
        open--;
        reopened++;
      } else {
        connecting--;
      }
      setImmediate(dial);
    });
  };
  setInterval(() => {
    for (let i = 0; i < CONNECTING; i++) dial();
  }, 20);
  setInterval(() => process.send!({ reopened }), 500);
}

async function attack(label: string, flags: string[]): Promise<Result> {
  const server = await startServer(flags);
  const attacker = fork(SELF, ["flood", String(server.port)], { stdio: "inherit" });
  let reopened = 0;
  attacker.on("message", (m: { reopened: number }) => (reopened = m.reopened));

  const latencies: number[] = [];
  let probes = 0;
  const probe = setInterval(() => {
    probes++;
    const t0 = performance.now();
    const req = get({ host: "127.0.0.1", port: server.port, path: "/v2/health/live", agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.once("end", () => {
        if (res.statusCode === 200) latencies.push(performance.now() - t0);
      });
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => undefined);
  }, 50);

  const held: number[] = [];
  const sampler = setInterval(() => held.push(openSockets(server.pid)), 1000);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const rss = memoryMb(server.pid, "VmRSS");
  clearInterval(probe);
  clearInterval(sampler);
  attacker.kill("SIGKILL");
  await new Promise((r) => setTimeout(r, 2100)); // the last probes answer or time out
  await server.stop();

  latencies.sort((a, b) => a - b);
  const q = (p: number) => (latencies.length === 0 ? NaN : latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]);
  return {
    label,
    heldMax: Math.max(...held),
    heldMean: Math.round(held.reduce((a, b) => a + b, 0) / held.length),
    reopened,
    rssMb: Math.round(rss),
    probes,
    ok: latencies.length,
    p50: q(0.5),
    p99: q(0.99),
    max: latencies.at(-1) ?? NaN,
  };
}

if (process.argv[2] === "flood") {
  flood(Number(process.argv[3]));
} else {
const rows = [
    await attack("Node's limits (no cap, 60 s headers)", ["--max_connections", "1000000", "--headers_timeout_seconds", "60", "--request_timeout_seconds", "300"]),
    await attack("graphserve's defaults", []),
  ];
  const f = (n: number) => (Number.isNaN(n) ? "n/a" : n.toFixed(1));
  console.log(`${CONNECTIONS} trickling connections for ${SECONDS} s; server fd limit ${FD_LIMIT}; health probed every 50 ms`);
  console.log("| server limits | connections held (max / mean) | reopened after a close | server RSS MB | health 200 / probes | health p50 / p99 / max ms |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const r of rows) console.log(`| ${r.label} | ${r.heldMax} / ${r.heldMean} | ${r.reopened} | ${r.rssMb} | ${r.ok} / ${r.probes} | ${f(r.p50)} / ${f(r.p99)} / ${f(r.max)} |`);
}
