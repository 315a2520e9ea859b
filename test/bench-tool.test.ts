/**
 * `graphserve bench` against a real graphserve on loopback (tiny SD model,
 * and the echo servable for the tool's own ceiling): every report is checked
 * against what the server saw — its access-log lines, its request counters,
 * the seeds its image calculator logged, the 429s and 400s it sent.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { startImageServer } from "./image-server.js";
import { ECHO_GRAPH_DIR, start, tempDir, type TestServer } from "./server-helpers.js";
import { BENCH_USAGE, benchCommand, runBench, type BenchReport } from "../src/tools/bench/command.js";
import { parseBenchOptions, type BenchOptions } from "../src/tools/bench/options.js";
import { meanQueueWaitMs, parseQueueWait } from "../src/tools/bench/metrics.js";
import { percentile } from "../src/tools/bench/stats.js";
import { niceScale } from "../src/tools/bench/plot.js";

const GEN = "/v3/images/generations";

function opts(server: TestServer, model: string, over: Partial<BenchOptions> = {}): BenchOptions {
  return { url: server.url, model, path: GEN, levels: [1], warmup: false, stream: false, prompt: "a small red square", timeoutS: 60, json: false, ...over };
}

/** The server's access-log lines for the image endpoint, from index `from` on. */
function requestLines(server: TestServer, from = 0): Record<string, unknown>[] {
  return server.logs.slice(from).filter((l) => l.msg === "request" && l.path === GEN);
}

/** The sum of `name`'s samples labelled name="<servable>" in a scrape. */
async function counter(server: TestServer, name: string, servable: string): Promise<number> {
  const r = await server.request("GET", "/metrics");
  let sum = 0;
  for (const line of r.text.split("\n")) if (line.startsWith(`${name}{`) && line.includes(`name="${servable}"`)) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  return sum;
}

interface Captured {
  code: number;
  out: string[];
  err: string[];
  progress: string[];
}

async function command(argv: string[], tty = false): Promise<Captured> {
  const c: Captured = { code: -1, out: [], err: [], progress: [] };
  c.code = await benchCommand(argv, { out: (l) => c.out.push(l), err: (l) => c.err.push(l), progress: { isTTY: tty, write: (s) => c.progress.push(s) } });
  return c;
}

describe("options", () => {
  const bad: [string, string[], RegExp][] = [
    ["missing --url", ["--model", "m"], /--url is required/],
    ["missing --model", ["--url", "http://127.0.0.1:1"], /--model is required/],
    ["--concurrency 0", ["--url", "http://127.0.0.1:1", "--model", "m", "--concurrency", "0"], /--concurrency must be a positive integer/],
    ["--requests with --duration", ["--url", "http://127.0.0.1:1", "--model", "m", "--requests", "5", "--duration", "2"], /--requests or --duration, not both/],
    ["bad --sweep", ["--url", "http://127.0.0.1:1", "--model", "m", "--sweep", "1,two,4"], /--sweep must be a comma-separated list/],
    ["empty --sweep", ["--url", "http://127.0.0.1:1", "--model", "m", "--sweep", ""], /--sweep must be/],
    ["--sweep with --concurrency", ["--url", "http://127.0.0.1:1", "--model", "m", "--sweep", "1,2", "--concurrency", "2"], /not both/],
    ["--requests below the concurrency", ["--url", "http://127.0.0.1:1", "--model", "m", "--sweep", "1,8", "--requests", "3"], /--requests 3 is below the concurrency 8/],
    ["--partial-images without --stream", ["--url", "http://127.0.0.1:1", "--model", "m", "--partial-images", "2"], /--partial-images needs --stream/],
    ["--timeout past Node's timers", ["--url", "http://127.0.0.1:1", "--model", "m", "--timeout", "3000000"], /--timeout must be at most 2147483 s/],
    ["bad --size", ["--url", "http://127.0.0.1:1", "--model", "m", "--size", "big"], /--size must be WxH/],
    ["not a URL", ["--url", "localhost", "--model", "m"], /--url is not a URL/],
    ["unknown flag", ["--url", "http://127.0.0.1:1", "--model", "m", "--bogus"], /bogus/],
  ];
  test("flags in the server's snake_case work too (--partial_images, --api_key)", () => {
    const kebab = parseBenchOptions(["--url", "http://127.0.0.1:1", "--model", "m", "--stream", "--partial-images", "2", "--api-key", "k"]);
    const snake = parseBenchOptions(["--url", "http://127.0.0.1:1", "--model", "m", "--stream", "--partial_images=2", "--api_key", "k"]);
    assert.equal(snake?.partialImages, 2);
    assert.equal(snake?.apiKey, "k");
    assert.deepEqual(snake, kebab);
  });

  for (const [what, argv, message] of bad) {
    test(`${what}: exit 2 with one line`, async () => {
      const c = await command(argv);
      assert.equal(c.code, 2);
      assert.deepEqual(c.out, []);
      assert.equal(c.err.length, 1);
      assert.ok(!c.err[0].includes("\n"), c.err[0]);
      assert.match(c.err[0], /^graphserve bench: /);
      assert.match(c.err[0], message);
    });
  }

  test("--help prints the usage", async () => {
    const c = await command(["--help"]);
    assert.equal(c.code, 0);
    assert.ok(c.out.join("\n").includes(BENCH_USAGE));
  });
});

describe("stats, metrics parsing, plot scale", () => {
  test("nearest-rank percentiles", () => {
    const s = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.deepEqual([percentile(s, 50), percentile(s, 90), percentile(s, 99), percentile(s, 100)], [50, 90, 99, 100]);
    assert.equal(percentile([7], 99), 7);
    assert.equal(percentile([], 50), undefined);
  });

  test("queue wait: summed over nodes of the servable only; absent series → null", () => {
    const scrape = (s: number, c: number) => `# HELP x
graphserve_image_queue_wait_seconds_sum{servable="a",node="n1"} ${s}
graphserve_image_queue_wait_seconds_count{servable="a",node="n1"} ${c}
graphserve_image_queue_wait_seconds_sum{servable="a",node="n2"} ${s}
graphserve_image_queue_wait_seconds_count{servable="a",node="n2"} ${c}
graphserve_image_queue_wait_seconds_sum{servable="ab",node="n1"} 99
graphserve_image_queue_wait_seconds_count{servable="ab",node="n1"} 99
`;
    assert.deepEqual(parseQueueWait(scrape(1, 2), "a"), { sum: 2, count: 4 });
    assert.equal(meanQueueWaitMs(scrape(1, 2), scrape(2, 4), "a"), 500);
    assert.equal(meanQueueWaitMs("", scrape(0.5, 5), "a"), 100);
    assert.equal(meanQueueWaitMs("ovms_requests_accepted 3", "ovms_requests_accepted 9", "a"), null);
    assert.equal(meanQueueWaitMs(undefined, scrape(1, 1), "a"), null);
    // Quoted label values may hold "," and "}", in any label order.
    const odd = 'graphserve_image_queue_wait_seconds_sum{node="n",servable="sd,v2}"} 3\ngraphserve_image_queue_wait_seconds_count{servable="sd,v2}",node="n"} 6\n';
    assert.deepEqual(parseQueueWait(odd, "sd,v2}"), { sum: 3, count: 6 });
  });

  test("nice axis scales", () => {
    assert.deepEqual(niceScale(7.3), { max: 8, step: 2 });
    assert.deepEqual(niceScale(430), { max: 500, step: 100 });
    assert.deepEqual(niceScale(0), { max: 1, step: 0.2 });
  });
});

/** The tiny SD model behind one generation slot, with `maxQueueSize` more requests allowed to wait. */
function startBenchServer(model: string, maxQueueSize: number): Promise<TestServer> {
  return startImageServer(model, {
    metrics: true,
    options: `default_resolution: "64x64"
      max_resolution: "512x512"
      default_num_inference_steps: 2
      max_num_inference_steps: 50
      max_queue_size: ${maxQueueSize}`,
  });
}

describe("against graphserve (tiny SD, one slot, queue of 1)", () => {
  const MODEL = "bench-tiny";
  let server: TestServer;
  before(async () => {
    server = await startBenchServer(MODEL, 1);
  });

  test("request counts, images and seeds match what the server saw; queue wait is reported", async () => {
    const mark = server.logs.length;
    const [acc0, rej0] = [await counter(server, "ovms_requests_accepted", MODEL), await counter(server, "ovms_requests_rejected", MODEL)];
    const report = await runBench(opts(server, MODEL, { levels: [2], requests: 8, size: "64x64", steps: 2 }), { seedBase: 5000 });
    const l = report.levels[0];
    assert.equal(l.concurrency, 2);
    assert.equal(l.requests, 8);
    assert.equal(l.ok, 8);
    assert.equal(l.images, 8);
    assert.deepEqual(l.errors, {});
    const lines = requestLines(server, mark);
    assert.equal(lines.length, l.requests);
    assert.ok(lines.every((x) => x.status === 200));
    assert.equal((await counter(server, "ovms_requests_accepted", MODEL)) - acc0, l.requests);
    assert.equal((await counter(server, "ovms_requests_rejected", MODEL)) - rej0, 0);
    // Seeds: distinct per request, as the image calculator logged them.
    const seeds = server.logs.slice(mark).filter((x) => x.msg === "images generated").map((x) => x.rngSeed as number);
    assert.deepEqual([...seeds].sort((a, b) => a - b), [5000, 5001, 5002, 5003, 5004, 5005, 5006, 5007]);
    assert.ok(l.latencyMs !== null && l.latencyMs.p50 <= l.latencyMs.p90 && l.latencyMs.p90 <= l.latencyMs.p99 && l.latencyMs.p99 <= l.latencyMs.max);
    assert.ok(l.throughput.requestsPerS > 0 && l.throughput.imagesPerS === l.throughput.requestsPerS);
    assert.ok(l.queueWaitMs !== null && l.queueWaitMs > 0, `queue wait ${l.queueWaitMs}`);
    assert.equal(l.firstPartialMs, null);
  });

  test("streaming: time to first partial image, completed events counted as images", async () => {
    const mark = server.logs.length;
    const report = await runBench(opts(server, MODEL, { levels: [1], requests: 4, size: "64x64", steps: 3, stream: true, partialImages: 2 }));
    const l = report.levels[0];
    assert.deepEqual(l.errors, {});
    assert.equal(l.ok, 4);
    assert.equal(l.images, 4);
    assert.ok(l.firstPartialMs !== null && l.latencyMs !== null);
    assert.ok(l.firstPartialMs.p50 > 0 && l.firstPartialMs.p99 <= l.latencyMs.max, JSON.stringify(l));
    assert.equal(requestLines(server, mark).length, 4);
  });

  test("an invalid size: errors by status, as the server answered", async () => {
    const mark = server.logs.length;
    const report = await runBench(opts(server, MODEL, { levels: [2], requests: 6, size: "65x64" }));
    const l = report.levels[0];
    assert.deepEqual(l.errors, { 400: 6 });
    assert.equal(l.ok, 0);
    assert.equal(l.latencyMs, null);
    assert.equal(requestLines(server, mark).filter((x) => x.status === 400).length, 6);
  });

  test("--sweep --json --plot: one JSON document, a warm-up request, an SVG with both series", async () => {
    const mark = server.logs.length;
    const svg = join(tempDir(), "bench.svg");
    const c = await command(["--url", server.url, "--model", MODEL, "--sweep", "1,2", "--requests", "4", "--size", "64x64", "--steps", "2", "--json", "--plot", svg]);
    assert.equal(c.code, 0, c.err.join("\n"));
    const report = JSON.parse(c.out.join("\n")) as BenchReport;
    assert.deepEqual(report.levels.map((l) => [l.concurrency, l.requests, l.ok]), [[1, 4, 4], [2, 4, 4]]);
    assert.equal(report.warmup, true);
    // 8 counted requests plus the warm-up.
    assert.equal(requestLines(server, mark).length, 9);
    const text = readFileSync(svg, "utf8");
    assert.match(text, /^<svg /);
    assert.match(text, /data-series="throughput \(req\/s\)"/);
    assert.match(text, /data-series="p99 latency \(ms\)"/);
    assert.equal(text.match(/<polyline /g)?.length, 2);
    assert.match(text, /concurrency/);
  });

  test("the table, with a live progress line redrawn on a TTY", async () => {
    const c = await command(["--url", server.url, "--model", MODEL, "--concurrency", "2", "--duration", "0.7", "--size", "64x64", "--steps", "2"], true);
    assert.equal(c.code, 0, c.err.join("\n"));
    assert.match(c.out[0], /bench-tiny/);
    assert.match(c.out[1], /conc .*req\/s .*img\/s .*p99 ms .*queue wait ms/);
    assert.match(c.out[2], /^\s*2\s+\d+\s+\d+\s+-\s/);
    assert.ok(c.progress.some((p) => /^\r\x1b\[2Kbench: concurrency 2: \d+ done, \d+ ok, 0 failed/.test(p)), JSON.stringify(c.progress));
    for (const line of c.out) console.log(`    ${line}`);
  });
});

describe("against graphserve with no queue (max_queue_size 0)", () => {
  const MODEL = "bench-q0";
  let server: TestServer;
  before(async () => {
    server = await startBenchServer(MODEL, 0);
  });

  test("concurrency 4: the 429s reported are the 429s the server sent", async () => {
    const mark = server.logs.length;
    const [acc0, rej0] = [await counter(server, "ovms_requests_accepted", MODEL), await counter(server, "ovms_requests_rejected", MODEL)];
    const report = await runBench(opts(server, MODEL, { levels: [4], requests: 24, size: "256x256", steps: 20 }));
    const l = report.levels[0];
    const lines = requestLines(server, mark);
    assert.equal(l.requests, 24);
    assert.equal(lines.length, 24);
    assert.ok((l.errors[429] ?? 0) > 0, JSON.stringify(l.errors));
    assert.deepEqual(Object.keys(l.errors), ["429"]);
    assert.equal(l.errors[429], lines.filter((x) => x.status === 429).length);
    assert.equal(l.ok, lines.filter((x) => x.status === 200).length);
    assert.equal((await counter(server, "ovms_requests_accepted", MODEL)) - acc0, l.ok);
    assert.equal((await counter(server, "ovms_requests_rejected", MODEL)) - rej0, l.errors[429]);
    console.log(`    max_queue_size 0, concurrency 4: ${l.ok} ok, ${l.errors[429]} × 429`);
  });
});

describe("against a stub server (failures without a status, other SSE shapes)", () => {
  /** Answers by path: /slow never, /reset drops the socket, /sse-typed and /sse-error stream. */
  async function stub(): Promise<{ url: string; close(): void }> {
    const server = createServer((req, res) => {
      req.resume();
      if (req.url === "/slow") return;
      if (req.url === "/reset") return void req.socket.destroy();
      res.writeHead(200, { "content-type": "text/event-stream" });
      if (req.url === "/sse-typed") {
        // No `event:` lines: the type is only in the data (and a trailing [DONE]).
        res.write(`data: {"type":"image_generation.partial_image","b64_json":"AAAA"}\n\n`);
        setTimeout(() => res.end(`data: {"type":"image_generation.completed","b64_json":"AAAA"}\r\n\r\ndata: [DONE]\n\n`), 20);
      } else res.end(`event: error\ndata: {"error":{"message":"broke"}}\n\n`);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => (server.close(), server.closeAllConnections()) };
  }
  const stubOpts = (url: string, path: string, over: Partial<BenchOptions> = {}): BenchOptions =>
    ({ url, model: "m", path, levels: [2], requests: 4, warmup: false, stream: true, prompt: "p", timeoutS: 60, json: false, ...over });

  test("timeouts and dropped connections are grouped as timeout / network", async () => {
    const s = await stub();
    try {
      const slow = await runBench(stubOpts(s.url, "/slow", { timeoutS: 0.2, stream: false }));
      assert.deepEqual(slow.levels[0].errors, { timeout: 4 });
      const reset = await runBench(stubOpts(s.url, "/reset", { stream: false }));
      assert.deepEqual(reset.levels[0].errors, { network: 4 });
      assert.equal(reset.levels[0].queueWaitMs, null);
    } finally {
      s.close();
    }
  });

  test("SSE: events typed only in their data, CRLF lines; an error event fails the request", async () => {
    const s = await stub();
    try {
      const typed = (await runBench(stubOpts(s.url, "/sse-typed"))).levels[0];
      assert.deepEqual([typed.ok, typed.images, typed.errors], [4, 4, {}]);
      assert.ok(typed.firstPartialMs !== null && typed.latencyMs !== null && typed.firstPartialMs.p99 < typed.latencyMs.p50);
      const failed = (await runBench(stubOpts(s.url, "/sse-error"))).levels[0];
      assert.deepEqual([failed.ok, failed.errors], [0, { stream: 4 }]);
    } finally {
      s.close();
    }
  });
});

// The tool's own ceiling is measured by `npm run bench:tool` (separate processes); here only its counting is checked.
describe("against the echo servable", () => {
  test("a duration-bound run at concurrency 16: every request counted once; a 200 that is not an images answer is 'no-data'", async () => {
    const server = await start({ single: { name: "echo", path: ECHO_GRAPH_DIR }, metricsEnable: true });
    // Half a second first, unmeasured: the first second otherwise measures fetch's and the server's JIT warm-up (≈ 500 vs ≈ 900 req/s).
    await runBench(opts(server, "echo", { levels: [16], durationS: 0.5 }));
    const mark = server.logs.length;
    const report = await runBench(opts(server, "echo", { levels: [16], durationS: 1 }));
    const l = report.levels[0];
    assert.ok(l.requests > 0);
    assert.deepEqual(l.errors, { "no-data": l.requests }); // echoed JSON, no `data`: not counted as an image success
    assert.equal(l.ok, 0);
    assert.equal(l.queueWaitMs, null); // no queue-wait series: "n/a"
    assert.equal(requestLines(server, mark).length, l.requests);
  });
});
