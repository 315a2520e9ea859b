/**
 * Memory under two abuses of the HTTP layer, against `graphserve demo` (the
 * compiled CLI in a child process, loopback only):
 *
 * - bodies: 30 concurrent 60 MB JSON generations (the prompt plus an
 *   ignored 60 MB `image` field), then 30 concurrent 60 MB multipart edits
 *   (a 60 MB file that is no image), each against a fresh server. Reports
 *   the server's peak RSS (VmHWM), the statuses, and `/v2/health/live`
 *   latency meanwhile.
 * - stalled: 40 streamed 1024×1024 generations of 4 images each (partial images and progress
 *   events) whose clients never read. Reports the server's RSS and open
 *   client connections every 5 s for 45 s, then whether a normal generation
 *   is still served.
 *
 * Run with `npm run bench:abuse`; `BENCH_ONLY=bodies|stalled` runs one.
 * Extra server flags: BENCH_SERVER_ARGS (space-separated).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { connect, createServer, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { memoryMb, openSockets } from "./process-stats.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const HOST = "127.0.0.1";
const ONLY = process.env.BENCH_ONLY;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, HOST, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A memory figure of the server, whole MB. */
const procStatus = (pid: number, key: "VmRSS" | "VmHWM"): number => Math.round(memoryMb(pid, key));

interface Server {
  readonly port: number;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

async function startServer(): Promise<Server> {
  const port = await freePort();
  const extra = (process.env.BENCH_SERVER_ARGS ?? "").split(" ").filter((a) => a !== "");
  const child = spawn(process.execPath, [CLI, "demo", "--rest_port", String(port), "--rest_bind_address", HOST, "--log_level", "ERROR", ...extra], { stdio: ["ignore", "ignore", "inherit"] });
  for (let i = 0; i < 600; i++) {
    if ((await get(port, "/v2/health/ready").catch(() => 0)) === 200) break;
    await sleep(100);
  }
  return {
    port,
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  };
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

function post(port: number, body: Buffer | string, path = "/v3/images/generations", contentType = "application/json"): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: HOST, port, path, method: "POST", agent: false, headers: { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body) } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    // Node's client may fail its own upload (EPIPE) as the answer comes in: a reset only if no answer follows.
    req.on("error", (e) => setTimeout(() => resolve((e as NodeJS.ErrnoException).code === "ECONNRESET" || (e as NodeJS.ErrnoException).code === "EPIPE" ? -1 : -2), 1000));
    req.end(body);
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const MB = 60;

/** `{"model":"demo",…,"image":"AAAA…"}` of 60 MB. */
function jsonBody(): [Buffer, string, string] {
  const head = '{"model":"demo","prompt":"three cats","size":"64x64","num_inference_steps":1,"image":"';
  const body = Buffer.alloc(head.length + MB * 1024 * 1024 + 2, "A");
  body.write(head);
  body.write('"}', body.length - 2);
  return [body, "/v3/images/generations", "application/json"];
}

/** An edit whose `image` part is 60 MB of bytes that are no image. */
function multipartBody(): [Buffer, string, string] {
  const head = '--B\r\nContent-Disposition: form-data; name="model"\r\n\r\ndemo\r\n--B\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na dog\r\n' +
    '--B\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n';
  const tail = "\r\n--B--\r\n";
  const body = Buffer.alloc(head.length + MB * 1024 * 1024 + tail.length, "A");
  body.write(head);
  body.write(tail, body.length - tail.length);
  return [body, "/v3/images/edits", "multipart/form-data; boundary=B"];
}

async function bodies(kind: "JSON" | "multipart"): Promise<void> {
  const server = await startServer();
  const pid = server.child.pid!;
  const baseline = procStatus(pid, "VmRSS");
  const [body, path, contentType] = kind === "JSON" ? jsonBody() : multipartBody();
  const latencies: number[] = [];
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const t = performance.now();
      await get(server.port, "/v2/health/live").catch(() => 0);
      latencies.push(performance.now() - t);
      await sleep(50);
    }
  })();
  const started = performance.now();
  const statuses = await Promise.all(Array.from({ length: 30 }, () => post(server.port, body, path, contentType)));
  const seconds = (performance.now() - started) / 1000;
  probing = false;
  await probe;
  latencies.sort((a, b) => a - b);
  const counts: Record<string, number> = {};
  for (const s of statuses) counts[s === -1 ? "reset" : String(s)] = (counts[String(s === -1 ? "reset" : s)] ?? 0) + 1;
  console.log(
    `bodies: 30 × ${MB} MB ${kind} in ${seconds.toFixed(1)} s; server RSS before ${baseline} MB, peak ${procStatus(pid, "VmHWM")} MB; ` +
      `statuses ${JSON.stringify(counts)}; /v2/health/live p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`,
  );
  await server.stop();
}

async function stalled(): Promise<void> {
  const server = await startServer();
  const pid = server.child.pid!;
  const body = JSON.stringify({ model: "demo", prompt: "three cats", size: "1024x1024", n: 4, num_inference_steps: 20, stream: true, partial_images: 3, stream_progress: true });
  const request = `POST /v3/images/generations HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  console.log(`stalled: server RSS before ${procStatus(pid, "VmRSS")} MB, sockets ${openSockets(pid)}`);
  const sockets: Socket[] = [];
  for (let i = 0; i < 40; i++) {
    const s = connect({ host: HOST, port: server.port });
    s.pause(); // never read: the receive buffer fills, then the server's send buffer
    s.on("error", () => undefined);
    s.write(request);
    sockets.push(s);
  }
  const started = performance.now();
  for (let t = 5; t <= 45; t += 5) {
    await sleep(started + t * 1000 - performance.now());
    console.log(`  t=${t}s: RSS ${procStatus(pid, "VmRSS")} MB (peak ${procStatus(pid, "VmHWM")} MB), server sockets ${openSockets(pid)}`);
  }
  const t = performance.now();
  const status = await post(server.port, JSON.stringify({ model: "demo", prompt: "a dog", size: "64x64", num_inference_steps: 1 }));
  console.log(`  a normal generation meanwhile: ${status} in ${(performance.now() - t).toFixed(0)} ms`);
  for (const s of sockets) s.destroy();
  await server.stop();
}

if (ONLY === undefined || ONLY === "bodies") {
  await bodies("JSON");
  await bodies("multipart");
}
if (ONLY === undefined || ONLY === "stalled") await stalled();
