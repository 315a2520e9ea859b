/**
 * Real-scale benchmark (issue 18): full-size SD-Turbo, SD 1.5 and SDXL-Turbo
 * (published architectures, seeded random weights: tools/reference/real_models.py)
 * through graphserve and its peers, side by side, on this machine.
 *
 *   npm run bench:real -- [--models sd-turbo,sd15,sdxl-turbo] [--peers graphserve,graphserve-stages,ort,diffusers,ov-fp32,ov-fp32-default,ov-int8,sdcpp]
 *                         [--threads 2] [--warmup 1] [--reps 3] [--concurrency 4] [--make] [--report-only] [--out DIR]
 *
 * The same request for every peer: the model's prompt at 512×512 with its steps
 * and guidance (SD-Turbo and SDXL-Turbo 1 step, no CFG; SD 1.5 20 steps at 7.5),
 * seed 42; `--warmup` runs first, then the median of `--reps`. Every peer runs in
 * a process of its own, one at a time, with one intra-op pool of `--threads`
 * threads (graphserve: plugin_config intraOpNumThreads; the Python peers:
 * tools/reference/real_peers.py) and OMP_NUM_THREADS set to it.
 *
 * - graphserve: the CLI server over HTTP (/v3/images/generations), one request at
 *   a time, then `--concurrency` clients at once (throughput); the server's peak RSS.
 * - graphserve-stages: the same ONNX Runtime pipeline in-process (OnnxBackend, no
 *   HTTP) for its text-encoder / step / VAE timings, which HTTP does not report.
 * - the Python peers (real_peers.py): optimum's ORT pipeline on the same ONNX files,
 *   diffusers on PyTorch, OpenVINO GenAI on the IR exports, stable-diffusion.cpp.
 *
 * Results accumulate in docs/bench-real.json (a rerun of some models/peers
 * replaces only those entries), and each run rewrites docs/bench-real.md (tables)
 * and docs/bench-real.png (tools/reference/real_plot.py). Needs the reference
 * tool's venv (tools/reference/README.md; or GRAPHSERVE_REAL_PYTHON) and the
 * models made (`--make` makes the missing ones, or run real_models.py).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { createServer } from "node:net";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";
import { memoryMb } from "./process-stats.js";

const ROOT = fileURLToPath(new URL(import.meta.url.includes("/dist/") ? "../../" : "../", import.meta.url));
const TOOL = join(ROOT, "tools", "reference");
const PYTHON = process.env.GRAPHSERVE_REAL_PYTHON ?? join(TOOL, ".venv", "bin", "python");
const CACHE = process.env.GRAPHSERVE_REAL_CACHE ?? join(TOOL, ".cache", "real");
/** Where results, table and plot go: docs/ unless --out names another folder (e.g. for a trial run). */
let OUT = join(ROOT, "docs");
const RESULTS = () => join(OUT, "bench-real.json");
const REPORT = () => join(OUT, "bench-real.md");
const PLOT = () => join(OUT, "bench-real.png");
const CLI = join(ROOT, "dist", "src", "cli", "main.js");

const PROMPT = "a photo of an astronaut riding a horse on mars";
const SEED = 42;

/** The request per model (issue 18), and the same values real_models.py's MODELS gives the Python peers. */
const MODELS = {
  "sd-turbo": { steps: 1, guidance: 0, label: "SD-Turbo (SD 2.1-base UNet), 1 step" },
  sd15: { steps: 20, guidance: 7.5, label: "SD 1.5, 20 steps, guidance 7.5" },
  "sdxl-turbo": { steps: 1, guidance: 0, label: "SDXL-Turbo, 1 step" },
} as const;
type ModelName = keyof typeof MODELS;

const PY_PEERS = ["ort", "diffusers", "ov-fp32", "ov-fp32-default", "ov-int8", "sdcpp"] as const;
const PEERS = ["graphserve", "graphserve-stages", ...PY_PEERS] as const;
type Peer = (typeof PEERS)[number];

const PEER_LABELS: Record<Peer, string> = {
  graphserve: "graphserve (HTTP, ORT fp32)",
  "graphserve-stages": "graphserve pipeline in-process",
  ort: "optimum ORT pipeline (same ONNX)",
  diffusers: "diffusers, PyTorch fp32",
  "ov-fp32": "OpenVINO GenAI, IR fp32, f32",
  "ov-fp32-default": "OpenVINO GenAI, IR fp32, default precision",
  "ov-int8": "OpenVINO GenAI, IR int8 weights",
  sdcpp: "stable-diffusion.cpp",
};

/** The export folder each peer reads (real_models.py's formats). */
const PEER_FORMAT: Record<Peer, string> = {
  graphserve: "onnx-fp32",
  "graphserve-stages": "onnx-fp32",
  ort: "onnx-fp32",
  diffusers: "diffusers",
  "ov-fp32": "ov-fp32",
  "ov-fp32-default": "ov-fp32",
  "ov-int8": "ov-int8",
  sdcpp: "diffusers",
};

interface Run {
  readonly seconds: number;
  readonly text_ms?: number;
  readonly denoise_ms?: number;
  readonly vae_ms?: number;
  readonly finite?: number;
}

/** One model × peer measurement, as stored in docs/bench-real.json. */
interface Entry {
  readonly model: ModelName;
  readonly peer: Peer;
  readonly threads: number;
  readonly warmup: number;
  readonly runs: readonly Run[];
  readonly load_s: number;
  readonly peak_rss_mb: number;
  readonly rss_loaded_mb?: number;
  readonly engine?: string;
  readonly precision?: string;
  /** graphserve over HTTP: `concurrency` clients at once, `images` in `seconds`. */
  readonly concurrent?: { readonly concurrency: number; readonly images: number; readonly seconds: number; readonly latencies: readonly number[] };
  /** Why the concurrent round has no figure (the one-at-a-time runs are kept). */
  readonly concurrent_error?: string;
  readonly measured_at: string;
  /** /proc/loadavg's 1-minute figure before and after, and the uptime line before: other work on the machine. */
  readonly load_before: number;
  readonly load_after: number;
  readonly uptime: string;
  readonly error?: string;
}

interface Results {
  machine: { cpu: string; cores: number; memory_gb: number };
  entries: Record<string, Entry>;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

const loadavg = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
const uptime = () => spawnSync("uptime", { encoding: "utf8" }).stdout.trim();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// graphserve over HTTP.

/** A graph file beside the export pointing at it, with the bench's thread count (the export's own graph.pbtxt stays as made). */
function benchGraph(model: ModelName, threads: number): string {
  const dir = join(CACHE, model);
  const path = join(dir, `graph-bench-${threads}t.pbtxt`);
  writeFileSync(
    path,
    `# bench:real's graph: ${PEER_FORMAT.graphserve} with ${threads} ORT intra-op threads
input_stream: "HTTP_REQUEST_PAYLOAD:input"
output_stream: "HTTP_RESPONSE_PAYLOAD:output"
node: {
  name: "ImageGenExecutor"
  calculator: "ImageGenCalculator"
  input_stream: "HTTP_REQUEST_PAYLOAD:input"
  input_side_packet: "IMAGE_GEN_NODE_RESOURCES:pipes"
  output_stream: "HTTP_RESPONSE_PAYLOAD:output"
  node_options: {
    [type.googleapis.com / mediapipe.ImageGenCalculatorOptions]: {
      models_path: "./${PEER_FORMAT.graphserve}",
      device: "CPU",
      plugin_config: '{"intraOpNumThreads": ${threads}}',
      default_resolution: '512x512',
      max_num_inference_steps: 50,
    }
  }
}
`,
  );
  return path;
}

/** No client-side time limits: with 4 clients on one worker the last answer starts after minutes (fetch gives up at 300 s). */
const NO_TIMEOUTS = new Agent({ headersTimeout: 0, bodyTimeout: 0 });

async function postImage(url: string, model: ModelName): Promise<number> {
  const m = MODELS[model];
  const t0 = performance.now();
  const res = await request(`${url}/v3/images/generations`, {
    method: "POST",
    dispatcher: NO_TIMEOUTS,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: PROMPT, size: "512x512", num_inference_steps: m.steps, guidance_scale: m.guidance, rng_seed: SEED }),
  });
  const body = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`graphserve answered ${res.statusCode}: ${body.slice(0, 300)}`);
  const json = JSON.parse(body) as { data?: { b64_json?: string }[] };
  if (!json.data?.[0]?.b64_json) throw new Error(`graphserve answered without an image: ${body.slice(0, 300)}`);
  return (performance.now() - t0) / 1000;
}

async function benchHttp(model: ModelName, threads: number, warmup: number, reps: number, concurrency: number): Promise<Omit<Entry, "measured_at" | "load_before" | "load_after" | "uptime">> {
  const port = await freePort();
  const graph = benchGraph(model, threads);
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, "--rest_port", String(port), "--rest_bind_address", "127.0.0.1", "--model_name", model, "--model_path", graph, "--log_level", "WARNING", "--no_ui", "--file_system_poll_wait_seconds", "0"], {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, OMP_NUM_THREADS: String(threads) },
  });
  let exited: number | null | undefined;
  child.once("exit", (code) => (exited = code));
  const url = `http://127.0.0.1:${port}`;
  try {
    for (;;) {
      if (exited !== undefined) throw new Error(`graphserve exited with ${exited} while loading ${graph}`);
      try {
        if ((await fetch(`${url}/v2/models/${model}/ready`)).ok) break;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    const load_s = (performance.now() - t0) / 1000;
    const rss_loaded_mb = memoryMb(child.pid!, "VmRSS");
    const runs: Run[] = [];
    for (let i = 0; i < warmup + reps; i++) {
      const seconds = await postImage(url, model);
      console.error(`graphserve ${model} run ${i + 1}/${warmup + reps}: ${seconds.toFixed(2)} s`);
      if (i >= warmup) runs.push({ seconds });
    }
    let concurrent: Entry["concurrent"];
    let error: string | undefined;
    if (concurrency > 1) {
      const c0 = performance.now();
      try {
        const latencies = await Promise.all(Array.from({ length: concurrency }, () => postImage(url, model)));
        const seconds = (performance.now() - c0) / 1000;
        concurrent = { concurrency, images: concurrency, seconds, latencies };
        console.error(`graphserve ${model} ${concurrency} concurrent: ${concurrency} images in ${seconds.toFixed(2)} s`);
      } catch (e) {
        error = `${concurrency} concurrent clients: ${(e as Error).message}`; // the one-at-a-time runs stand
      }
    }
    const peak_rss_mb = memoryMb(child.pid!, "VmHWM");
    return { model, peer: "graphserve", threads, warmup, runs, load_s, peak_rss_mb, rss_loaded_mb, engine: "onnxruntime-node", concurrent, ...(error ? { concurrent_error: error } : {}) };
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => (exited !== undefined ? r(undefined) : child.once("exit", r)));
  }
}

// ---------------------------------------------------------------------------
// graphserve's pipeline in-process, for stage timings (child mode: --stages).

async function stagesChild(model: ModelName, threads: number, warmup: number, reps: number): Promise<void> {
  const { OnnxBackend } = await import("../src/backends/onnx/onnx-backend.js");
  const ort = (await import("onnxruntime-node")).default;
  const m = MODELS[model];
  const t0 = performance.now();
  const backend = await OnnxBackend.load(join(CACHE, model, PEER_FORMAT["graphserve-stages"]), { intraOpNumThreads: threads, parallelism: 1 });
  const load_s = (performance.now() - t0) / 1000;
  const rss_loaded_mb = process.memoryUsage().rss / 2 ** 20;
  const runs: Run[] = [];
  try {
    for (let i = 0; i < warmup + reps; i++) {
      const s0 = performance.now();
      const r = await backend.generate({ mode: "text2image", prompt: PROMPT, width: 512, height: 512, numInferenceSteps: m.steps, guidanceScale: m.guidance, rngSeed: SEED });
      const seconds = (performance.now() - s0) / 1000;
      const t = r.timings;
      console.error(`graphserve-stages ${model} run ${i + 1}/${warmup + reps}: ${seconds.toFixed(2)} s text ${t.textEncodingMs.toFixed(0)} ms, steps ${t.stepMs.map((x) => x.toFixed(0)).join("+")} ms, vae ${t.vaeDecodeMs.toFixed(0)} ms`);
      if (i >= warmup) runs.push({ seconds, text_ms: t.textEncodingMs, denoise_ms: t.stepMs.reduce((a, b) => a + b, 0), vae_ms: t.vaeDecodeMs });
    }
  } finally {
    await backend.dispose();
  }
  const peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ model, peer: "graphserve-stages", threads, warmup, runs, load_s, peak_rss_mb, rss_loaded_mb, engine: `onnxruntime-node ${ort.env.versions.common}` }));
}

// ---------------------------------------------------------------------------
// Child processes reporting one JSON line.

function jsonChild(cmd: string, args: string[], threads: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.once("error", reject);
    child.once("exit", (code) => {
      const last = out.trim().split("\n").at(-1) ?? "";
      if (code !== 0) return reject(new Error(`${args.join(" ")} exited with ${code}${last ? `: ${last.slice(0, 300)}` : ""}`));
      try {
        resolve(JSON.parse(last) as Record<string, unknown>);
      } catch {
        reject(new Error(`${args.join(" ")} printed no JSON result: ${last.slice(0, 300)}`));
      }
    });
  });
}

// ---------------------------------------------------------------------------
// The report.

const fmt = (x: number | undefined, digits = 2) => (x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits));

interface Row {
  readonly peer: Peer;
  readonly sPerImage: number;
  readonly textMs?: number;
  readonly stepMs?: number;
  readonly vaeMs?: number;
  readonly e: Entry;
}

function rowOf(e: Entry): Row {
  const steps = MODELS[e.model].steps;
  const med = (k: keyof Run) => (e.runs.every((r) => typeof r[k] === "number") && e.runs.length ? median(e.runs.map((r) => r[k] as number)) : undefined);
  const denoise = med("denoise_ms");
  return { peer: e.peer, sPerImage: med("seconds") ?? NaN, textMs: med("text_ms"), stepMs: denoise === undefined ? undefined : denoise / steps, vaeMs: med("vae_ms"), e };
}

function report(results: Results): string {
  const lines: string[] = [];
  const { machine } = results;
  lines.push(`CPU: ${machine.cpu}, ${machine.cores} cores, ${machine.memory_gb} GB RAM. Every peer with the same intra-op thread count (column "thr"), one process at a time.`);
  lines.push("s/image: median wall time of one 512×512 image (after warm-up); ratio: s/image ÷ graphserve's over HTTP (below 1: faster than graphserve).");
  lines.push("text / step / VAE: median milliseconds in the text encoder(s), per denoising step (the UNet calls; graphserve: the whole step), in the VAE decoder.");
  lines.push("load: seconds from start to ready (graphserve over HTTP: process start to the servable being ready). RSS: peak resident set of the peer's process, in GB. load avg: /proc/loadavg before → after (the machine is shared).");
  lines.push("");
  for (const model of Object.keys(MODELS) as ModelName[]) {
    const entries = Object.values(results.entries).filter((e) => e.model === model);
    if (entries.length === 0) continue;
    const rows = PEERS.map((p) => entries.find((e) => e.peer === p)).filter((e): e is Entry => e !== undefined).map(rowOf);
    const base = rows.find((r) => r.peer === "graphserve" && !r.e.error)?.sPerImage;
    lines.push(`### ${MODELS[model].label}`);
    lines.push("");
    lines.push("| peer | s/image | ratio | text ms | step ms | VAE ms | load s | peak RSS GB | thr | engine | load avg | measured |");
    lines.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |");
    for (const r of rows) {
      const e = r.e;
      if (e.error) {
        lines.push(`| ${PEER_LABELS[r.peer]} | failed: ${e.error.replaceAll("|", "\\|").slice(0, 160)} | | | | | | | ${e.threads} | | ${fmt(e.load_before)} → ${fmt(e.load_after)} | ${e.measured_at.slice(0, 16)} |`);
        continue;
      }
      const ratio = base === undefined ? undefined : r.sPerImage / base;
      const engine = [e.engine, e.precision].filter(Boolean).join(", ");
      lines.push(
        `| ${PEER_LABELS[r.peer]} | ${fmt(r.sPerImage)} | ${fmt(ratio)} | ${fmt(r.textMs, 0)} | ${fmt(r.stepMs, 0)} | ${fmt(r.vaeMs, 0)} | ${fmt(e.load_s, 1)} | ${fmt(e.peak_rss_mb / 1024)} | ${e.threads} | ${engine} | ${fmt(e.load_before)} → ${fmt(e.load_after)} | ${e.measured_at.slice(0, 16)} |`,
      );
    }
    const gsFailed = entries.find((e) => e.peer === "graphserve" && e.concurrent_error);
    if (gsFailed) lines.push("", `graphserve throughput: no figure (${gsFailed.concurrent_error}).`);
    const gs = entries.find((e) => e.peer === "graphserve" && e.concurrent);
    if (gs?.concurrent) {
      const c = gs.concurrent;
      const one = median(gs.runs.map((r) => r.seconds));
      lines.push("");
      lines.push(
        `graphserve throughput: 1 client ${fmt(60 / one, 2)} images/min; ${c.concurrency} concurrent clients ${fmt((60 * c.images) / c.seconds, 2)} images/min (${c.images} images in ${fmt(c.seconds, 1)} s, latencies ${c.latencies.map((x) => fmt(x, 1)).join(", ")} s).`,
      );
    }
    lines.push("");
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// Main.

function machine(): Results["machine"] {
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? NaN);
  // Under a hypervisor the model name can be bare ("AMD EPYC"): the family and the vector extensions say more.
  const info = readFileSync("/proc/cpuinfo", "utf8");
  const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, "m").exec(info)?.[1]?.trim();
  const flags = new Set((field("flags") ?? "").split(/\s+/));
  const isa = ["avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile"].filter((f) => flags.has(f));
  const cpu = `${cpus()[0]?.model ?? "unknown"} (family ${field("cpu family") ?? "?"} model ${field("model") ?? "?"}; ${isa.join(", ")})`;
  return { cpu, cores: availableParallelism(), memory_gb: Math.round(memKb / 2 ** 20) };
}

function loadResults(): Results {
  if (!existsSync(RESULTS())) return { machine: machine(), entries: {} };
  return JSON.parse(readFileSync(RESULTS(), "utf8")) as Results;
}

function writeReport(results: Results): void {
  writeFileSync(RESULTS(), JSON.stringify(results, null, 1) + "\n");
  writeFileSync(REPORT(), `# bench:real results\n\nMade by \`npm run bench:real\` (bench/real.bench.ts); data in docs/bench-real.json, plot docs/bench-real.png.\n\n${report(results)}`);
  const plot = spawnSync(PYTHON, [join(TOOL, "real_plot.py"), RESULTS(), PLOT()], { stdio: "inherit" });
  if (plot.status !== 0) console.error(`plot not made (real_plot.py exited with ${plot.status})`);
  console.log(report(results));
  console.log(`wrote ${relative(ROOT, RESULTS())}, ${relative(ROOT, REPORT())}, ${relative(ROOT, PLOT())}`);
}

function listOf<T extends string>(value: string, all: readonly T[], what: string): T[] {
  const items = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!all.includes(i as T)) throw new Error(`unknown ${what} "${i}"; one of ${all.join(", ")}`);
  return items as T[];
}

function positive(value: string, name: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      models: { type: "string", default: Object.keys(MODELS).join(",") },
      peers: { type: "string", default: PEERS.join(",") },
      threads: { type: "string", default: String(availableParallelism()) },
      warmup: { type: "string", default: "1" },
      reps: { type: "string", default: "3" },
      concurrency: { type: "string", default: "4" },
      make: { type: "boolean", default: false },
      "report-only": { type: "boolean", default: false },
      out: { type: "string" },
      stages: { type: "string" },
    },
  });
  if (values.out !== undefined) OUT = values.out;
  const threads = positive(values.threads, "threads", 1);
  const warmup = positive(values.warmup, "warmup", 0);
  const reps = positive(values.reps, "reps", 1);
  const concurrency = positive(values.concurrency, "concurrency", 1);
  if (values.stages !== undefined) return stagesChild(listOf(values.stages, Object.keys(MODELS) as ModelName[], "model")[0], threads, warmup, reps);

  const results = loadResults();
  results.machine = machine();
  if (values["report-only"]) return writeReport(results);
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} missing: make the reference tool's venv (tools/reference/README.md) or set GRAPHSERVE_REAL_PYTHON`);
  const models = listOf(values.models, Object.keys(MODELS) as ModelName[], "model");
  const peers = listOf(values.peers, PEERS, "peer");

  for (const model of models) {
    const formats = [...new Set(peers.map((p) => PEER_FORMAT[p]))];
    const missing = formats.filter((f) => !existsSync(join(CACHE, model, f, ".complete.json")));
    if (missing.length > 0) {
      const cmd = [join(TOOL, "real_models.py"), "--formats", missing.join(","), model];
      if (!values.make) throw new Error(`${model}: ${missing.join(", ")} not made yet in ${CACHE}/${model}; run ${relative(ROOT, PYTHON)} ${relative(ROOT, cmd[0])} ${cmd.slice(1).join(" ")} (or pass --make)`);
      const made = spawnSync(PYTHON, cmd, { stdio: "inherit" });
      if (made.status !== 0) throw new Error(`real_models.py failed for ${model} (exit ${made.status})`);
    }
    for (const peer of peers) {
      const load_before = loadavg();
      const up = uptime();
      console.error(`--- ${model} / ${peer} (${up})`);
      let entry: Omit<Entry, "measured_at" | "load_before" | "load_after" | "uptime">;
      try {
        if (peer === "graphserve") entry = await benchHttp(model, threads, warmup, reps, concurrency);
        else if (peer === "graphserve-stages") {
          const self = fileURLToPath(import.meta.url);
          entry = (await jsonChild(process.execPath, [self, "--stages", model, "--threads", String(threads), "--warmup", String(warmup), "--reps", String(reps)], threads)) as unknown as Entry;
        } else {
          entry = (await jsonChild(PYTHON, [join(TOOL, "real_peers.py"), "--model", model, "--peer", peer, "--threads", String(threads), "--warmup", String(warmup), "--reps", String(reps)], threads)) as unknown as Entry;
        }
      } catch (e) {
        console.error(`${model} / ${peer} failed: ${(e as Error).message}`);
        entry = { model, peer, threads, warmup, runs: [], load_s: NaN, peak_rss_mb: NaN, error: (e as Error).message };
      }
      results.entries[`${model}/${peer}`] = { ...entry, measured_at: new Date().toISOString(), load_before, load_after: loadavg(), uptime: up };
      writeFileSync(RESULTS(), JSON.stringify(results, null, 1) + "\n"); // after every peer: an interrupted run keeps what it measured
    }
  }
  writeReport(results);
}

try {
  await main();
} catch (e) {
  console.error(`bench:real: ${(e as Error).message}`);
  process.exitCode = 1;
}
