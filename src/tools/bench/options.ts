/**
 * `graphserve bench` flags, parsed with node:util's parseArgs into a typed,
 * checked BenchOptions. Every problem is one line (an FlagError); the
 * command prints it and exits 2.
 */
import { FlagError, parseFlags } from "../../cli/flags.js";
import { boundedTimeout, positiveInt, positiveNumber } from "../flags.js";

export const BENCH_USAGE = `  graphserve bench --url URL --model NAME [--concurrency C | --sweep 1,2,4,8,16]
                   [--requests N | --duration S] [--size WxH] [--steps K] [--stream]
                   [--partial-images P] [--prompt TEXT] [--api-key KEY] [--timeout S]
                   [--path /v3/images/generations] [--json] [--plot FILE.svg]
                                     load-test any server speaking the OpenAI Images API
                                     (graphserve, OVMS, ...): throughput, latency percentiles,
                                     errors by status, time to first partial image, queue wait`;

export interface BenchOptions {
  /** Server base URL, without a trailing slash. */
  readonly url: string;
  readonly model: string;
  /** Endpoint path (OVMS serves the Images API under /v3). */
  readonly path: string;
  /** Concurrency levels, run in turn (one level unless --sweep). */
  readonly levels: readonly number[];
  /** True with --sweep: one uncounted warm-up request before the first level. */
  readonly warmup: boolean;
  /** Requests per level (exclusive with durationS). */
  readonly requests?: number;
  /** Seconds per level: workers stop starting requests after it. */
  readonly durationS?: number;
  /** WxH; undefined: the server's default resolution. */
  readonly size?: string;
  /** num_inference_steps (an OVMS extra); undefined: not sent. */
  readonly steps?: number;
  readonly stream: boolean;
  readonly partialImages?: number;
  readonly prompt: string;
  readonly apiKey?: string;
  readonly timeoutS: number;
  readonly json: boolean;
  readonly plot?: string;
}

/** Requests per level when neither --requests nor --duration is given: enough for p90 at every level. */
export function defaultRequests(concurrency: number): number {
  // 100 at least: below that, a nearest-rank p99 is simply the slowest request.
  return Math.max(100, 4 * concurrency);
}

/** Parses `argv` (after `bench`); undefined for --help. Throws FlagError. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions | undefined {
  const { values } = parseFlags({
    args: [...argv],
    allowPositionals: false,
    options: {
      help: { type: "boolean" },
      url: { type: "string" },
      model: { type: "string" },
      path: { type: "string" },
      concurrency: { type: "string" },
      sweep: { type: "string" },
      requests: { type: "string" },
      duration: { type: "string" },
      size: { type: "string" },
      steps: { type: "string" },
      stream: { type: "boolean" },
      "partial-images": { type: "string" },
      prompt: { type: "string" },
      "api-key": { type: "string" },
      timeout: { type: "string" },
      json: { type: "boolean" },
      plot: { type: "string" },
    },
  });
  if (values.help) return undefined;

  if (values.url === undefined) throw new FlagError("--url is required (e.g. --url http://localhost:8000)");
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw new FlagError(`--url is not a URL: "${values.url}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new FlagError(`--url must be http or https, got "${values.url}"`);
  if (values.model === undefined || values.model === "") throw new FlagError("--model is required");

  if (values.concurrency !== undefined && values.sweep !== undefined) throw new FlagError("give --concurrency or --sweep, not both");
  let levels: number[];
  if (values.sweep !== undefined) {
    const parts = values.sweep.split(",");
    if (parts.some((p) => !/^\d+$/.test(p.trim()) || Number(p) < 1)) throw new FlagError(`--sweep must be a comma-separated list of positive integers, got "${values.sweep}"`);
    levels = parts.map(Number);
  } else {
    levels = [values.concurrency === undefined ? 1 : positiveInt("concurrency", values.concurrency)];
  }

  if (values.requests !== undefined && values.duration !== undefined) throw new FlagError("give --requests or --duration, not both");
  const requests = values.requests === undefined ? undefined : positiveInt("requests", values.requests);
  const durationS = values.duration === undefined ? undefined : positiveNumber("duration", values.duration);

  // Only the shape is checked: whether a size is allowed is the server's call (a 400 is a result).
  if (values.size !== undefined && !/^\d+x\d+$/.test(values.size)) throw new FlagError(`--size must be WxH (e.g. 512x512), got "${values.size}"`);
  // Fewer requests than workers would label a level with a concurrency it never reached.
  if (requests !== undefined && requests < Math.max(...levels)) throw new FlagError(`--requests ${requests} is below the concurrency ${Math.max(...levels)}: every worker needs at least one request`);
  const steps = values.steps === undefined ? undefined : positiveInt("steps", values.steps);
  let partialImages: number | undefined;
  if (values["partial-images"] !== undefined && !values.stream) throw new FlagError("--partial-images needs --stream");
  if (values["partial-images"] !== undefined) {
    const p = values["partial-images"];
    if (!/^\d+$/.test(p)) throw new FlagError(`--partial-images must be a non-negative integer, got "${p}"`);
    partialImages = Number(p);
  }
  const path = values.path ?? "/v3/images/generations";
  if (!path.startsWith("/")) throw new FlagError(`--path must start with "/", got "${path}"`);
  if (values.plot !== undefined && values.plot === "") throw new FlagError("--plot needs a file name");

  return {
    url: values.url.replace(/\/+$/, ""),
    model: values.model,
    path,
    levels,
    warmup: values.sweep !== undefined,
    ...(requests !== undefined ? { requests } : {}),
    ...(durationS !== undefined ? { durationS } : {}),
    ...(values.size !== undefined ? { size: values.size } : {}),
    ...(steps !== undefined ? { steps } : {}),
    stream: values.stream ?? false,
    ...(partialImages !== undefined ? { partialImages } : {}),
    prompt: values.prompt ?? "a photo of a red fox in the snow",
    ...(values["api-key"] !== undefined ? { apiKey: values["api-key"] } : {}),
    timeoutS: values.timeout === undefined ? 600 : boundedTimeout(positiveNumber("timeout", values.timeout)),
    json: values.json ?? false,
    ...(values.plot !== undefined ? { plot: values.plot } : {}),
  };
}
