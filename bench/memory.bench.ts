/**
 * Memory bench: what the ONNX Runtime backend really takes, next to what the
 * memory pre-check (src/backends/onnx/memory-budget.ts) estimates. Each case
 * runs in a fresh process and reads its own RSS (/proc/self/status), so one
 * case's allocator state does not leak into the next.
 *
 * - weights: one ORT session of a synthetic model with 400 MiB of float32
 *   weights (16 3×3 convolutions of 512 channels, 16 MatMuls of 2048²), fp32
 *   or fp16, data inline in model.onnx or in model.onnx_data, loaded through
 *   createSession (the fp16 rewrite included) after a warm-up session; and
 *   one with 6 convolutions of 1280 channels (59 MB kernels).
 * - backend: OnnxBackend on the committed fixtures and the demo model, 1 and
 *   2 workers: RSS after loading, then after text-to-image and
 *   image-to-image at the given size (one request per worker at once).
 *
 *   node dist/bench/memory.bench.js [--size 512]
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { OnnxBackend } from "../src/backends/onnx/onnx-backend.js";
import { estimateMemory, readMemoryFacts } from "../src/backends/onnx/memory-budget.js";
import { createSession } from "../src/backends/onnx/sessions.js";
import { readWeightCensus } from "../src/backends/onnx/weight-census.js";
import { memoryMb } from "./process-stats.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const FIXTURES = join(ROOT, "test", "fixtures", "conformance");
const MiB = 2 ** 20;
const rss = () => memoryMb(process.pid, "VmRSS");

// ---------------------------------------------------------------------------
// Synthetic models: just enough protobuf to write initializers, Conv and MatMul nodes.

function varint(v: number): number[] {
  const out: number[] = [];
  for (; v >= 0x80; v = Math.floor(v / 128)) out.push((v % 128) | 0x80);
  out.push(v);
  return out;
}
const num = (field: number, v: number) => Buffer.from([...varint(field * 8), ...varint(v)]);
const bytes = (field: number, b: Uint8Array) => Buffer.concat([Buffer.from([...varint(field * 8 + 2), ...varint(b.length)]), b]);
const text = (field: number, s: string) => bytes(field, Buffer.from(s));
const ints = (name: string, values: number[]) => Buffer.concat([text(1, name), ...values.map((v) => num(8, v)), num(20, 7)]);
const node = (op: string, inputs: string[], output: string, attrs: Buffer[] = []) =>
  Buffer.concat([...inputs.map((i) => text(1, i)), text(2, output), text(4, op), ...attrs.map((a) => bytes(5, a))]);
const valueInfo = (name: string, elem: number, dims: (number | string)[]) =>
  Buffer.concat([text(1, name), bytes(2, bytes(1, Buffer.concat([num(1, elem), bytes(2, Buffer.concat(dims.map((d) => bytes(1, typeof d === "number" ? num(1, d) : text(2, d)))))])))]);

/** Writes the synthetic model (`big`: 6 convolutions of 1280 channels, 59 MB kernels, instead); returns its model.onnx path. */
function writeSynthetic(dir: string, half: boolean, external: boolean, big = false): string {
  const elem = half ? 10 : 1;
  const width = half ? 2 : 4;
  const inits: Buffer[] = [];
  const nodes: Buffer[] = [];
  const data = external ? openSync(join(dir, "model.onnx_data"), "w") : undefined;
  let size = 0;
  let seed = 1;
  const weight = (name: string, dims: number[]) => {
    const count = dims.reduce((a, b) => a * b, 1);
    const raw = Buffer.alloc(count * width);
    for (let i = 0; i < count; i++) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      const x = (seed / 2 ** 32 - 0.5) * 0.02;
      if (half) raw.writeUInt16LE(x < 0 ? 0xa000 : 0x2000, i * 2);
      else raw.writeFloatLE(x, i * 4);
    }
    const head = [...dims.map((d) => num(1, d)), num(2, elem), text(8, name)];
    if (data === undefined) return inits.push(Buffer.concat([...head, bytes(9, raw)]));
    const offset = Math.ceil(size / 4096) * 4096;
    writeSync(data, raw, 0, raw.length, offset);
    size = offset + raw.length;
    const entry = (k: string, v: string) => bytes(13, Buffer.concat([text(1, k), text(2, v)]));
    inits.push(Buffer.concat([...head, entry("location", "model.onnx_data"), entry("offset", String(offset)), entry("length", String(raw.length)), num(14, 1)]));
  };
  const channels = big ? 1280 : 512;
  let x = "x";
  for (let i = 0; i < (big ? 6 : 16); i++) {
    weight(`conv${i}`, [channels, channels, 3, 3]);
    nodes.push(node("Conv", [x, `conv${i}`], `c${i}`, [ints("pads", [1, 1, 1, 1]), ints("kernel_shape", [3, 3])]));
    x = `c${i}`;
  }
  let y = "y";
  for (let i = 0; i < (big ? 0 : 16); i++) {
    weight(`mm${i}`, [2048, 2048]);
    nodes.push(node("MatMul", [y, `mm${i}`], `m${i}`));
    y = `m${i}`;
  }
  if (data !== undefined) closeSync(data);
  const graph = Buffer.concat([
    ...nodes.map((n) => bytes(1, n)),
    text(2, "synthetic"),
    ...inits.map((t) => bytes(5, t)),
    bytes(11, valueInfo("x", elem, [1, channels, "h", "w"])),
    bytes(11, valueInfo("y", elem, [1, "t", 2048])),
    bytes(12, valueInfo(x, elem, [1, channels, "h", "w"])),
    bytes(12, valueInfo(y, elem, [1, "t", 2048])),
  ]);
  const path = join(dir, "model.onnx");
  writeFileSync(path, Buffer.concat([num(1, 8), bytes(8, Buffer.concat([text(1, ""), num(2, 17)])), text(2, "bench"), bytes(7, graph)]));
  return path;
}

// ---------------------------------------------------------------------------
// Cases (each in its own process).

interface Result {
  readonly name: string;
  readonly measured: readonly number[];
  readonly estimated: readonly number[];
}

async function weightsCase(kind: string, path: string): Promise<Result> {
  await createSession(join(FIXTURES, "sd1", "optimum-onnx-fp32", "text_encoder", "model.onnx"), { intraOpNumThreads: 1 });
  const before = rss();
  const session = await createSession(path, { intraOpNumThreads: 1 });
  const measured = [rss() - before, memoryMb(process.pid, "VmHWM") - before];
  await session.release();
  const weights = await readWeightCensus(path);
  const e = estimateMemory({ dir: path, components: [{ name: "unet", weights }], defaultWidth: 8, defaultHeight: 8, tmpInMemory: false }, { workers: 1 });
  return { name: `weights ${kind} (${(weights.loadedBytes / MiB).toFixed(0)} MiB as float32)`, measured, estimated: [e.weights / MiB, (e.weights + e.loading) / MiB] };
}

async function backendCase(dir: string, workers: number, size: number): Promise<Result> {
  const before = rss();
  const backend = await OnnxBackend.load(dir, { parallelism: workers, memoryCheck: { skip: true } });
  const loaded = rss() - before;
  const image = { width: size, height: size, data: new Uint8Array(size * size * 3).fill(128) };
  const all = (mode: "text2image" | "image2image") =>
    Promise.all(Array.from({ length: workers }, (_, i) => backend.generate({ mode, prompt: "a red circle", width: size, height: size, numInferenceSteps: 2, rngSeed: i, ...(mode === "image2image" ? { image, strength: 1 } : {}) })));
  await all("text2image");
  if (backend.capabilities().modes.includes("image2image")) await all("image2image");
  const ran = rss() - before;
  await backend.dispose();
  const e = estimateMemory(await readMemoryFacts(dir), { workers, width: size, height: size });
  const name = `${dir.startsWith(FIXTURES) ? dir.slice(FIXTURES.length + 1) : dir.slice(ROOT.length)} ×${workers} at ${size}²`;
  return { name, measured: [loaded, ran], estimated: [(workers * (e.weights + e.loading + e.overhead)) / MiB, e.total / MiB] };
}

const { values } = parseArgs({ options: { size: { type: "string", default: "512" }, child: { type: "string" } }, allowPositionals: true });

if (values.child !== undefined) {
  const [kind, ...rest] = JSON.parse(values.child) as [string, ...string[]];
  const r = kind === "weights" ? await weightsCase(rest[0], rest[1]) : await backendCase(rest[0], Number(rest[1]), Number(rest[2]));
  process.stdout.write(JSON.stringify(r) + "\n");
} else {
  const size = Number(values.size);
  // Written here, so the measuring process holds none of the writer's buffers.
  const synthetic = mkdtempSync(join(tmpdir(), "graphserve-memory-bench-"));
  process.on("exit", () => rmSync(synthetic, { recursive: true, force: true }));
  const models = ["fp32-external", "fp32-inline", "fp16-external", "fp16-inline", "fp32-external-59MB-kernels"].map((kind) => {
    const dir = join(synthetic, kind);
    mkdirSync(dir);
    return ["weights", kind, writeSynthetic(dir, kind.startsWith("fp16"), kind.includes("external"), kind.includes("59MB"))];
  });
  const cases: string[][] = [
    ...models,
    ...["sd1/optimum-onnx-fp32", "sd1/optimum-onnx-fp16", "sdxl/optimum-onnx-fp32", "flux-schnell/optimum-onnx-fp32", "sd3/optimum-onnx-fp32"].flatMap((d) => [1, 2].map((w) => ["backend", join(FIXTURES, d), String(w), String(size)])),
    ...[1, 2].map((w) => ["backend", join(ROOT, "models", "demo"), String(w), String(size)]),
  ];
  console.log("case | measured MiB (weights: loaded; peak — backend: loaded; after t2i+i2i) | estimated MiB");
  for (const c of cases) {
    const out = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--child", JSON.stringify(c)], { encoding: "utf8" });
    const line = out.stdout.trim().split("\n").at(-1) ?? "";
    if (out.status !== 0 || !line.startsWith("{")) {
      console.log(`${c.join(" ")} | failed: ${out.stderr.trim().split("\n").at(-1)}`);
      continue;
    }
    const r = JSON.parse(line) as Result;
    const f = (xs: readonly number[]) => xs.map((x) => x.toFixed(0)).join("; ");
    console.log(`${r.name} | ${f(r.measured)} | ${f(r.estimated)}`);
  }
}
