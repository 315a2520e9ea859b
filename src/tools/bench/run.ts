/**
 * The load loop: C workers, each awaiting one request at a time, over
 * Node's fetch (undici keeps connections alive). Per request the loop
 * allocates the body string, the fetch itself and the response parse, and
 * records one latency number: nothing else, so the tool's own ceiling (see
 * the echo test: thousands of req/s) sits far above image throughput.
 */
import { randomInt } from "node:crypto";
import type { BenchOptions } from "./options.js";
import { defaultRequests } from "./options.js";
import { meanQueueWaitMs, scrapeMetrics } from "./metrics.js";
import { percentile, summarize, type LatencySummary } from "./stats.js";

/** One concurrency level's results. Latencies are of successful requests only. */
export interface LevelReport {
  readonly concurrency: number;
  /** Requests completed (ok + errors). */
  readonly requests: number;
  readonly ok: number;
  readonly images: number;
  /** Failed requests by HTTP status ("429"), or "network" / "timeout" / "stream" (an error event in a 200 stream). */
  readonly errors: Readonly<Record<string, number>>;
  readonly durationS: number;
  /** Successful requests and images per second of the level's wall time. */
  readonly throughput: { readonly requestsPerS: number; readonly imagesPerS: number };
  readonly latencyMs: LatencySummary | null;
  /** Time to the first partial-image event (streaming only; null when none arrived). */
  readonly firstPartialMs: { readonly p50: number; readonly p99: number } | null;
  /** Mean server-side queue wait from the server's metrics; null when it reports none (OVMS). */
  readonly queueWaitMs: number | null;
}

export interface BenchReport {
  readonly url: string;
  readonly path: string;
  readonly model: string;
  readonly size: string | null;
  readonly steps: number | null;
  readonly stream: boolean;
  readonly partialImages: number | null;
  readonly warmup: boolean;
  readonly levels: readonly LevelReport[];
}

/** A snapshot for the live progress line. */
export interface Progress {
  readonly concurrency: number;
  readonly done: number;
  readonly ok: number;
  readonly failed: number;
  readonly elapsedS: number;
  /** Requests planned for the level, or undefined in --duration mode. */
  readonly target?: number;
  readonly durationS?: number;
}

export interface RunHooks {
  /** Called every `progressIntervalMs` while a level runs. */
  readonly onProgress?: (p: Progress) => void;
  readonly progressIntervalMs?: number;
  /** First rng_seed (default: random); request i of the whole run sends seedBase + i. */
  readonly seedBase?: number;
}

/** What every request shares: built once per run. */
interface Target {
  readonly endpoint: string;
  readonly headers: Record<string, string>;
  /** The JSON body up to the seed: each request appends `<seed>}`. */
  readonly prefix: string;
  readonly stream: boolean;
  readonly timeoutMs: number;
}

/** Mutable per-level counters, written by every worker. */
class Tally {
  done = 0;
  ok = 0;
  failed = 0;
  images = 0;
  readonly errors: Record<string, number> = {};
  readonly latencies: number[] = [];
  readonly firstPartials: number[] = [];

  fail(kind: string): void {
    this.done++;
    this.failed++;
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }

  succeed(ms: number, images: number): void {
    this.done++;
    this.ok++;
    this.images += images;
    this.latencies.push(ms);
  }
}

function target(o: BenchOptions): Target {
  const body: Record<string, unknown> = { model: o.model, prompt: o.prompt };
  if (o.size !== undefined) body.size = o.size;
  if (o.steps !== undefined) body.num_inference_steps = o.steps;
  body.n = 1;
  if (o.stream) body.stream = true;
  if (o.partialImages !== undefined) body.partial_images = o.partialImages;
  const headers: Record<string, string> = { "content-type": "application/json", accept: o.stream ? "text/event-stream" : "application/json" };
  if (o.apiKey !== undefined) headers.authorization = `Bearer ${o.apiKey}`;
  const json = JSON.stringify(body);
  return { endpoint: o.url + o.path, headers, prefix: `${json.slice(0, -1)},"rng_seed":`, stream: o.stream, timeoutMs: o.timeoutS * 1000 };
}

/** Images in a unary answer: its `data` entries, or undefined when it has no `data` array (not an images answer). */
function countData(text: string): number | undefined {
  try {
    const data = (JSON.parse(text) as { data?: unknown } | null)?.data;
    return Array.isArray(data) ? data.length : undefined;
  } catch {
    return undefined;
  }
}

interface StreamResult {
  readonly images: number;
  readonly firstPartialMs: number | undefined;
  readonly failed: boolean;
}

/**
 * Reads an SSE answer: `*.partial_image` events time the first partial,
 * `*.completed` events count images, an `error` event fails the request.
 * Image payloads are skipped, not accumulated: only events without a name
 * need their data (to read its `type`).
 */
async function readSse(body: ReadableStream<Uint8Array>, t0: number): Promise<StreamResult> {
  const decoder = new TextDecoder();
  let buf = "";
  let event = "";
  let data = "";
  let hasData = false;
  let images = 0;
  let first: number | undefined;
  let failed = false;
  const dispatch = () => {
    let name = event;
    if (name === "" && data.startsWith("{")) {
      try {
        const j = JSON.parse(data) as { type?: unknown; error?: unknown };
        name = typeof j.type === "string" ? j.type : j.error !== undefined ? "error" : "";
      } catch {
        // not JSON: e.g. "[DONE]"
      }
    }
    if (name.endsWith("partial_image")) first ??= performance.now() - t0;
    else if (name.endsWith(".completed")) images++;
    else if (name === "error") failed = true;
    event = "";
    data = "";
    hasData = false;
  };
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.charCodeAt(nl - 1) === 13 ? buf.slice(0, nl - 1) : buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === "") {
        if (event !== "" || hasData) dispatch();
      } else if (line.startsWith("event:")) {
        event = line.slice(6).trim();
      } else if (line.startsWith("data:")) {
        hasData = true;
        if (event === "" || event === "error") data += line.slice(5).trimStart();
      }
    }
  }
  if (event !== "" || hasData) dispatch();
  return { images, firstPartialMs: first, failed };
}

/**
 * One request, recorded in `tally`. Never throws. The timeout is a fresh
 * AbortSignal.timeout per request: measured faster than sharing one
 * controller per worker, which also piles abort listeners onto the signal.
 */
async function request(t: Target, seed: number, tally: Tally): Promise<void> {
  const t0 = performance.now();
  let status = 0;
  try {
    const res = await fetch(t.endpoint, { method: "POST", headers: t.headers, body: t.prefix + seed + "}", signal: AbortSignal.timeout(t.timeoutMs) });
    status = res.status;
    if (status !== 200) {
      await res.arrayBuffer(); // drain, so the connection is reused
      tally.fail(String(status));
      return;
    }
    if (t.stream && res.body !== null && (res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
      const r = await readSse(res.body, t0);
      if (r.failed) return tally.fail("stream");
      // A stream that ends without a final image (cut off mid-generation) is not a success.
      if (r.images === 0) return tally.fail("incomplete");
      if (r.firstPartialMs !== undefined) tally.firstPartials.push(r.firstPartialMs);
      tally.succeed(performance.now() - t0, r.images);
    } else {
      // A 200 that is not an images answer (an error object, another API) is not a success either.
      const images = countData(await res.text());
      if (images === undefined) return tally.fail("no-data");
      tally.succeed(performance.now() - t0, images);
    }
  } catch (e) {
    // A failure after a 200 status (body cut off) is still a network failure.
    tally.fail((e as Error).name === "TimeoutError" ? "timeout" : "network");
  }
}

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

/** Runs one level: `concurrency` workers until `requests` are sent or `durationS` has passed. */
async function runLevel(o: BenchOptions, t: Target, concurrency: number, nextSeed: () => number, hooks: RunHooks): Promise<LevelReport> {
  const scrapeHeaders: Record<string, string> = o.apiKey === undefined ? {} : { authorization: `Bearer ${o.apiKey}` };
  const before = await scrapeMetrics(o.url, scrapeHeaders);
  const tally = new Tally();
  const total = o.durationS === undefined ? (o.requests ?? defaultRequests(concurrency)) : Infinity;
  const start = performance.now();
  const deadline = o.durationS === undefined ? Infinity : start + o.durationS * 1000;
  let started = 0;
  const worker = async () => {
    while (started < total && performance.now() < deadline) {
      started++;
      await request(t, nextSeed(), tally);
    }
  };
  const snapshot = (): Progress => ({
    concurrency,
    done: tally.done,
    ok: tally.ok,
    failed: tally.failed,
    elapsedS: (performance.now() - start) / 1000,
    ...(total !== Infinity ? { target: total } : {}),
    ...(o.durationS !== undefined ? { durationS: o.durationS } : {}),
  });
  const timer = hooks.onProgress === undefined ? undefined : setInterval(() => hooks.onProgress!(snapshot()), hooks.progressIntervalMs ?? 1000);
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    clearInterval(timer);
  }
  const durationS = (performance.now() - start) / 1000;
  const after = await scrapeMetrics(o.url, scrapeHeaders);
  const fp = [...tally.firstPartials].sort((a, b) => a - b);
  return {
    concurrency,
    requests: tally.done,
    ok: tally.ok,
    images: tally.images,
    errors: { ...tally.errors },
    durationS: round(durationS, 3),
    throughput: { requestsPerS: round(tally.ok / durationS, 2), imagesPerS: round(tally.images / durationS, 2) },
    latencyMs: summarize(tally.latencies),
    firstPartialMs: fp.length === 0 ? null : { p50: round(percentile(fp, 50)!, 1), p99: round(percentile(fp, 99)!, 1) },
    queueWaitMs: meanQueueWaitMs(before, after, o.model),
  };
}

/** Runs every level of `o` in turn (after one uncounted warm-up request when o.warmup). */
export async function runBench(o: BenchOptions, hooks: RunHooks = {}): Promise<BenchReport> {
  const t = target(o);
  let seed = hooks.seedBase ?? randomInt(0, 2 ** 40);
  const nextSeed = () => seed++;
  if (o.warmup) await request(t, nextSeed(), new Tally());
  const levels: LevelReport[] = [];
  for (const c of o.levels) levels.push(await runLevel(o, t, c, nextSeed, hooks));
  return {
    url: o.url,
    path: o.path,
    model: o.model,
    size: o.size ?? null,
    steps: o.steps ?? null,
    stream: o.stream,
    partialImages: o.partialImages ?? null,
    warmup: o.warmup,
    levels,
  };
}
