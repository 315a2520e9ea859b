/**
 * The ONNX Runtime backend's memory pre-check: the weight census of ONNX files,
 * the estimate from the committed fixtures (fp32 vs fp16, workers, sizes), the
 * memory there is (MemAvailable and cgroup limits, read from a fake /proc and
 * /sys), the refusal and the lowered default worker count, OnnxBackend.load and
 * the server with the memory there is injected, and --skip_memory_check.
 */
import { strict as assert } from "node:assert";
import { cpSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type AvailableMemory, readAvailableMemory } from "../src/backends/host-memory.js";
import { OnnxBackend } from "../src/backends/onnx/onnx-backend.js";
import {
  type ComponentFacts,
  estimateMemory,
  formatBytes,
  type MemoryFacts,
  memoryRefusal,
  planWorkers,
  readMemoryFacts,
  WORKER_OVERHEAD_BYTES,
} from "../src/backends/onnx/memory-budget.js";
import { readWeightCensus, type WeightCensus } from "../src/backends/onnx/weight-census.js";
import { BackendError } from "../src/backends/types.js";
import { serveOptionsFrom, SERVER_USAGE } from "../src/server/flags.js";
import { CONFORMANCE_ROOT } from "./helpers/conformance.js";
import { imageServable } from "./image-server.js";
import { errorOf, ROOT, start, tempDir } from "./server-helpers.js";

const SD1_FP32 = join(CONFORMANCE_ROOT, "sd1", "optimum-onnx-fp32");
const SD1_FP16 = join(CONFORMANCE_ROOT, "sd1", "optimum-onnx-fp16");
const SD1_LEGACY = join(CONFORMANCE_ROOT, "sd1", "legacy");
const SDXL_FP32 = join(CONFORMANCE_ROOT, "sdxl", "optimum-onnx-fp32");
const LCM_FP32 = join(CONFORMANCE_ROOT, "lcm", "optimum-onnx-fp32");
const FLUX_FP32 = join(CONFORMANCE_ROOT, "flux-schnell", "optimum-onnx-fp32");
const SD3_FP16 = join(CONFORMANCE_ROOT, "sd3", "optimum-onnx-fp16");
const DEMO = join(ROOT, "models", "demo");

const figure = (bytes: number, source = "injected figure"): AvailableMemory => ({ bytes, source, figures: [{ bytes, source }] });
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------------------
// A few protobuf fields, to write models whose initializers claim data they do not have.

function varint(v: number): number[] {
  const out: number[] = [];
  for (; v >= 0x80; v = Math.floor(v / 128)) out.push((v % 128) | 0x80);
  out.push(v);
  return out;
}
const concat = (parts: readonly Uint8Array[]) => Buffer.concat(parts);
const num = (field: number, v: number) => Uint8Array.from([...varint(field * 8), ...varint(v)]);
const bytes = (field: number, b: Uint8Array) => concat([Uint8Array.from([...varint(field * 8 + 2), ...varint(b.length)]), b]);
const text = (field: number, s: string) => bytes(field, Buffer.from(s));

/** TensorProto with external data at `location` (never written) or `raw` inline data. */
function tensorProto(name: string, dataType: number, dims: readonly number[], data: { location: string } | { raw: Uint8Array }): Uint8Array {
  const head = [...dims.map((d) => num(1, d)), num(2, dataType), text(8, name)];
  if ("raw" in data) return concat([...head, bytes(9, data.raw)]);
  const entry = (k: string, v: string) => bytes(13, concat([text(1, k), text(2, v)]));
  return concat([...head, entry("location", data.location), entry("offset", "0"), num(14, 1)]);
}

function writeModel(path: string, initializers: readonly Uint8Array[]): void {
  const graph = concat([text(2, "g"), ...initializers.map((t) => bytes(5, t))]);
  writeFileSync(path, concat([num(1, 8), text(2, "test"), bytes(7, graph)]));
}

describe("weight census: the initializers of a model.onnx, from their headers", () => {
  it("an fp32 export: weights as stored, all inside model.onnx", async () => {
    const path = join(SD1_FP32, "unet", "model.onnx");
    const c = await readWeightCensus(path);
    assert.equal(c.fileBytes, statSync(path).size);
    assert.ok(c.tensors > 100 && c.storedBytes > 0 && c.storedBytes < c.fileBytes, JSON.stringify(c));
    assert.equal(c.loadedBytes, c.storedBytes);
    assert.equal(c.inlineBytes, c.storedBytes);
    assert.equal(c.float16Bytes, 0);
    assert.ok(c.convBytes > 0 && c.convBytes < c.loadedBytes, "convolution kernels are part of a UNet");
    assert.equal(c.smallConvBytes, c.convBytes, "tiny kernels, all under 32 MiB");
    assert.deepEqual(c.externalFiles, []);
  });

  it("the fp16 export of the same weights: half the bytes stored, as many as fp32 once loaded (widened to float32)", async () => {
    for (const component of ["text_encoder", "unet", "vae_decoder", "vae_encoder"]) {
      const fp32 = await readWeightCensus(join(SD1_FP32, component, "model.onnx"));
      const fp16 = await readWeightCensus(join(SD1_FP16, component, "model.onnx"));
      assert.equal(fp16.float16Bytes, fp16.storedBytes, component);
      assert.equal(fp16.loadedBytes, 2 * fp16.storedBytes, component);
      assert.equal(fp16.loadedBytes, fp32.loadedBytes, component);
      assert.equal(fp16.convBytes, fp32.convBytes, component);
      assert.equal(fp16.tensors, fp32.tensors, component);
    }
  });

  it("external data: the legacy export's weights.pb is counted to the byte", async () => {
    const c = await readWeightCensus(join(SD1_LEGACY, "unet", "model.onnx"));
    assert.deepEqual(c.externalFiles, ["weights.pb"]);
    assert.equal(c.storedBytes - c.inlineBytes, statSync(join(SD1_LEGACY, "unet", "weights.pb")).size);
  });

  it("reads headers only: a 40 GB fp32 tensor, a 10 GB fp16 one and a 118 MB kernel in external files that do not exist", async () => {
    const path = join(tempDir(), "model.onnx");
    const inline = new Uint8Array(4 * 6);
    writeModel(path, [
      tensorProto("w", 1, [100_000, 100_000], { location: "model.onnx_data" }),
      tensorProto("h", 10, [50_000, 100_000], { location: "other.bin" }),
      tensorProto("big_conv", 1, [1280, 2560, 3, 3], { location: "model.onnx_data" }),
      tensorProto("conv", 1, [1, 1, 2, 3], { raw: inline }),
    ]);
    const big = 1280 * 2560 * 9 * 4;
    const c = await readWeightCensus(path);
    assert.equal(c.tensors, 4);
    assert.equal(c.storedBytes, 4e10 + 1e10 + big + 24);
    assert.equal(c.loadedBytes, 4e10 + 2e10 + big + 24);
    assert.equal(c.float16Bytes, 1e10);
    assert.equal(c.inlineBytes, 24);
    assert.equal(c.convBytes, big + 24);
    assert.equal(c.smallConvBytes, 24);
    assert.equal(c.largestBytes, 4e10);
    assert.deepEqual(c.externalFiles, ["model.onnx_data", "other.bin"]);
  });

  it("a file that is not an ONNX model: an error naming it", async () => {
    const path = join(tempDir(), "model.onnx");
    writeFileSync(path, Buffer.from("this is not a protobuf at all \x00\x01\x02"));
    await assert.rejects(readWeightCensus(path), (e: Error) => e.message.startsWith(path));
  });
});

describe("what a folder needs: the facts read from its files", () => {
  it("SD 1.x: the components present, attention at the first level under classifier-free guidance, the native size", async () => {
    const f = await readMemoryFacts(SD1_FP32);
    assert.deepEqual(f.components.map((c) => c.name), ["text_encoder", "unet", "vae_decoder", "vae_encoder"]);
    assert.deepEqual([f.defaultWidth, f.defaultHeight], [64, 64]);
    const unet = f.components.find((c) => c.name === "unet")!;
    // attention_head_dim 2 is diffusers' (misnamed) head count; one token per latent pixel of the ×8 VAE.
    assert.deepEqual(unet.attention, { heads: 2, pixelsPerToken: 64, fixedTokens: 0, batch: 2 });
    const vae = f.components.find((c) => c.name === "vae_decoder")!;
    assert.equal(vae.featureChannels, 8 + 8); // block_out_channels [8, 8, 16, 16]
  });

  it("SDXL: a second text encoder; the first down block has no attention, so it starts a level down", async () => {
    const f = await readMemoryFacts(SDXL_FP32);
    assert.deepEqual(f.components.map((c) => c.name), ["text_encoder", "text_encoder_2", "unet", "vae_decoder", "vae_encoder"]);
    assert.deepEqual(f.components.find((c) => c.name === "unet")!.attention, { heads: 4, pixelsPerToken: 256, fixedTokens: 0, batch: 2 });
  });

  it("LCM: guidance is an embedding, one row per image", async () => {
    const f = await readMemoryFacts(LCM_FP32);
    assert.equal(f.components.find((c) => c.name === "unet")!.attention!.batch, 1);
  });

  it("FLUX (files only, whatever model-folder.ts accepts): T5 as text_encoder_2, 2×2 packed tokens plus 512 text tokens, no CFG batch, 1024² by default", async () => {
    const f = await readMemoryFacts(FLUX_FP32);
    assert.deepEqual(f.components.map((c) => c.name), ["text_encoder", "text_encoder_2", "transformer", "vae_decoder", "vae_encoder"]);
    assert.deepEqual(f.components.find((c) => c.name === "transformer")!.attention, { heads: 2, pixelsPerToken: 256, fixedTokens: 512, batch: 1 });
    assert.deepEqual(f.components.find((c) => c.name === "text_encoder_2")!.attention, { heads: 4, pixelsPerToken: 0, fixedTokens: 512, batch: 2 });
    assert.deepEqual([f.defaultWidth, f.defaultHeight], [1024, 1024]);
  });

  it("SD3: three text encoders, patches of 2, CLIP + T5 text tokens under CFG, its sample_size", async () => {
    const f = await readMemoryFacts(SD3_FP16);
    assert.deepEqual(f.components.map((c) => c.name), ["text_encoder", "text_encoder_2", "text_encoder_3", "transformer", "vae_decoder", "vae_encoder"]);
    assert.deepEqual(f.components.find((c) => c.name === "transformer")!.attention, { heads: 4, pixelsPerToken: 256, fixedTokens: 77 + 512, batch: 2 });
    assert.deepEqual([f.defaultWidth, f.defaultHeight], [64, 64]);
  });

  it("the demo model: 512×512", async () => {
    const f = await readMemoryFacts(DEMO);
    assert.deepEqual([f.defaultWidth, f.defaultHeight], [512, 512]);
  });
});

describe("the estimate", () => {
  it("every worker loads every component: workers multiply the whole of it", async () => {
    const facts = await readMemoryFacts(SD1_FP32);
    const one = estimateMemory(facts, { workers: 1 });
    const two = estimateMemory(facts, { workers: 2 });
    assert.equal(two.perWorker, one.perWorker);
    assert.equal(two.total, 2 * one.total);
    assert.equal(one.perWorker, one.weights + one.loading + one.activations + WORKER_OVERHEAD_BYTES);
  });

  it("fp32 and fp16 exports of the same weights: as much once loaded; fp16 costs its rewrite while loading, fp32 its inline data", async () => {
    const fp32 = await readMemoryFacts(SD1_FP32);
    const fp16 = await readMemoryFacts(SD1_FP16);
    const loaded = (f: MemoryFacts) => sum(f.components.map((c) => c.weights.loadedBytes));
    assert.equal(loaded(fp16), loaded(fp32));
    const e32 = estimateMemory(fp32, { workers: 1 });
    const e16 = estimateMemory(fp16, { workers: 1 });
    const unet32 = fp32.components.find((c) => c.name === "unet")!.weights;
    const unet16 = fp16.components.find((c) => c.name === "unet")!.weights;
    assert.equal(e32.components.find((c) => c.name === "unet")!.loading, 1.4 * unet32.inlineBytes);
    assert.equal(e16.components.find((c) => c.name === "unet")!.loading, unet16.fileBytes + 4 * unet16.largestBytes);
    assert.equal(e16.activations, e32.activations);
  });

  it("attention grows with the square of the tokens: twice the side, 16× the UNet's working memory", async () => {
    const facts = await readMemoryFacts(SD1_FP32);
    const unet = (side: number) => estimateMemory(facts, { workers: 1, width: side, height: side }).components.find((c) => c.name === "unet")!.activations;
    assert.equal(unet(512), 16 * unet(256));
    // 2 heads × (64·64 tokens)² × 4 bytes × 2 rows (CFG), kept twice (scores and softmax), with the arena's 1.35 slack.
    assert.equal(unet(512), 1.35 * 2 * 2 * 4096 ** 2 * 4 * 2);
  });

  it("FLUX.1 at 1024², from the reference's figures: 24 heads over 4096 + 512 tokens, ≈ 2.0 GB of probabilities per image", () => {
    const census = (params: number): WeightCensus => ({
      storedBytes: 2 * params, loadedBytes: 4 * params, convBytes: 0, smallConvBytes: 0, inlineBytes: 0, float16Bytes: 2 * params, largestBytes: 4 * 3072 * 12288, tensors: 1, fileBytes: 1e6, externalFiles: ["model.onnx_data"],
    });
    const transformer: ComponentFacts = { name: "transformer", weights: census(11.9e9), attention: { heads: 24, pixelsPerToken: 256, fixedTokens: 512, batch: 1 } };
    const facts: MemoryFacts = { dir: "flux", components: [transformer], defaultWidth: 1024, defaultHeight: 1024, tmpInMemory: false };
    const e = estimateMemory(facts, { workers: 1 });
    const probabilities = 24 * 4608 ** 2 * 4;
    assert.ok(Math.abs(probabilities - 2.04e9) < 0.01e9);
    assert.equal(e.activations, 1.35 * 2 * probabilities);
    assert.equal(e.weights, 11.9e9 * 4 + 1e6); // float16 on disk, float32 in memory
    // A tmpfs temp folder also holds the float32 rewrite while it loads.
    assert.equal(estimateMemory({ ...facts, tmpInMemory: true }, { workers: 1 }).loading - e.loading, 11.9e9 * 4);
  });
});

describe("the check: what to start, or what to say", () => {
  it("enough memory: the workers asked for", async () => {
    const facts = await readMemoryFacts(SD1_FP32);
    const plan = planWorkers(facts, figure(1e12), { workers: 2, explicit: true });
    assert.equal(plan.workers, 2);
    assert.equal(plan.lowered, undefined);
  });

  it("the default worker count is lowered to what fits, with a warning", async () => {
    const facts = await readMemoryFacts(SD1_FP32);
    const per = estimateMemory(facts, { workers: 1 }).perWorker;
    const plan = planWorkers(facts, figure(1.5 * per), { workers: 2, explicit: false });
    assert.equal(plan.workers, 1);
    assert.match(plan.lowered!, /starting 1 worker instead of 2: each needs about .* is available \(injected figure\)$/);
  });

  it("workers asked for that do not fit: refused, saying how many would", async () => {
    const facts = await readMemoryFacts(SD1_FP32);
    const e = estimateMemory(facts, { workers: 2 });
    const available = figure(1.5 * e.perWorker);
    assert.throws(
      () => planWorkers(facts, available, { workers: 2, explicit: true }),
      (err: Error) => {
        assert.ok(err instanceof BackendError);
        assert.equal(err.message, memoryRefusal(facts, e, available, 1));
        assert.ok(err.message.startsWith(`${SD1_FP32}: this model needs about ${formatBytes(e.total)} of memory to load and run, but ${formatBytes(1.5 * e.perWorker)} is available (injected figure). `));
        assert.match(err.message, /Per worker \(2 workers, each loading every component\): .* = weights .* as loaded \(unet /);
        assert.match(err.message, /working memory for one 64×64 image/);
        assert.match(err.message, /Try fewer workers \(parallelism 1 needs .*\), a lower-precision export such as int8 \(not fp16: it is widened to float32 here\), an int8 OpenVINO IR/);
        assert.match(err.message, /or a machine or container limit with more memory; or --skip_memory_check to load it anyway/);
        return true;
      },
    );
  });

  it("not even one worker fits: refused, default or not; an fp16 folder is told fp16 saves nothing", async () => {
    const facts = await readMemoryFacts(SD1_FP16);
    assert.throws(
      () => planWorkers(facts, figure(10e6), { workers: 1, explicit: false }),
      (err: Error) => {
        assert.ok(err instanceof BackendError);
        assert.match(err.message, /but 10 MB is available \(injected figure\)\. It needs .* = weights .*; float16 weights are widened to float32 when they load\)/);
        assert.doesNotMatch(err.message, /fewer workers/);
        assert.match(err.message, /int8 \(fp16 saves nothing here\)/);
        return true;
      },
    );
    assert.throws(() => planWorkers(facts, figure(10e6), { workers: 2, explicit: false }), /fewer workers \(but one alone needs/);
  });

  it("SD3 with T5: suggests the export without text_encoder_3", async () => {
    const facts = await readMemoryFacts(SD3_FP16);
    assert.throws(() => planWorkers(facts, figure(1e6), { workers: 1, explicit: true }), /an export without text_encoder_3 \(the T5 encoder, .* here\), which SD3 can run without/);
  });
});

describe("the memory there is", () => {
  const fake = (files: Record<string, string>) => (path: string) => files[path];
  const MEMINFO = "MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n";

  it("MemAvailable, without cgroups", () => {
    const m = readAvailableMemory(fake({ "/proc/meminfo": MEMINFO }), () => 1);
    assert.deepEqual(m, { bytes: 20000000 * 1024, source: "MemAvailable in /proc/meminfo", figures: [{ bytes: 20000000 * 1024, source: "MemAvailable in /proc/meminfo" }] });
  });

  it("cgroup v2: the smallest headroom of the process's cgroup and its ancestors, page cache not counted as used", () => {
    const G = 2 ** 30;
    const m = readAvailableMemory(
      fake({
        "/proc/meminfo": MEMINFO,
        "/proc/self/cgroup": "0::/kubepods/pod1/app\n",
        "/proc/self/mountinfo": "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        "/sys/fs/cgroup/kubepods/pod1/app/cgroup.procs": "1\n",
        "/sys/fs/cgroup/kubepods/pod1/app/memory.max": "max\n",
        "/sys/fs/cgroup/kubepods/pod1/memory.max": `${8 * G}\n`,
        "/sys/fs/cgroup/kubepods/pod1/memory.current": `${3 * G}\n`,
        "/sys/fs/cgroup/kubepods/pod1/memory.stat": `anon ${2 * G}\nfile ${G}\ninactive_file ${G}\n`,
        "/sys/fs/cgroup/kubepods/memory.max": `${64 * G}\n`,
        "/sys/fs/cgroup/kubepods/memory.current": `${10 * G}\n`,
      }),
    );
    assert.equal(m.bytes, 6 * G);
    assert.equal(m.source, "cgroup v2 limit /sys/fs/cgroup/kubepods/pod1/memory.max (8.6 GB, 2.1 GB of it in use)");
    assert.deepEqual(m.figures.map((f) => f.bytes), [20000000 * 1024, 6 * G, 54 * G]);
  });

  it("cgroup v1 in a container: a host path in /proc/self/cgroup, the container's own cgroup mounted at the root", () => {
    const m = readAvailableMemory(
      fake({
        "/proc/meminfo": MEMINFO,
        "/proc/self/cgroup": "12:pids:/docker/abc\n4:memory:/docker/abc\n0::/\n",
        "/proc/self/mountinfo": "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n",
        "/sys/fs/cgroup/memory/cgroup.procs": "1\n",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes": "4294967296\n",
        "/sys/fs/cgroup/memory/memory.usage_in_bytes": "1073741824\n",
        "/sys/fs/cgroup/memory/memory.stat": "cache 600000000\ntotal_inactive_file 73741824\nhierarchical_memory_limit 4294967296\n",
      }),
    );
    assert.equal(m.bytes, 4294967296 - (1073741824 - 73741824));
    assert.match(m.source, /^cgroup v1 limit \/sys\/fs\/cgroup\/memory\/memory\.limit_in_bytes \(4\.3 GB, 1\.0 GB of it in use\)$/);
  });

  it("cgroup v1 without a limit (this machine's kind): only MemAvailable; no /proc at all: process.availableMemory()", () => {
    const unlimited = readAvailableMemory(
      fake({
        "/proc/meminfo": MEMINFO,
        "/proc/self/cgroup": "4:memory:/process_api/x\n",
        "/proc/self/mountinfo": "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        "/sys/fs/cgroup/memory/process_api/x/cgroup.procs": "1\n",
        "/sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes": "9223372036854771712\n",
        "/sys/fs/cgroup/memory/process_api/x/memory.stat": "hierarchical_memory_limit 9223372036854771712\n",
        "/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes": "9223372036854771712\n",
      }),
    );
    assert.equal(unlimited.source, "MemAvailable in /proc/meminfo");
    assert.equal(unlimited.figures.length, 1);
    assert.deepEqual(readAvailableMemory(fake({}), () => 12345), { bytes: 12345, source: "process.availableMemory()", figures: [{ bytes: 12345, source: "process.availableMemory()" }] });
  });

  it("on this host: a positive figure", () => {
    const m = readAvailableMemory();
    assert.ok(m.bytes > 0 && m.figures.length >= 1, JSON.stringify(m));
  });
});

describe("OnnxBackend.load", () => {
  it("refuses before any worker starts when the memory there is is too small; memoryCheck.skip loads anyway", async () => {
    const tiny = () => figure(20e6);
    await assert.rejects(OnnxBackend.load(SD1_FP32, { parallelism: 1, memoryCheck: { readAvailable: tiny } }), (e: Error) => {
      assert.ok(e instanceof BackendError);
      assert.match(e.message, /this model needs about .* but 20 MB is available \(injected figure\)/);
      return true;
    });
    const b = await OnnxBackend.load(SD1_FP32, { parallelism: 1, memoryCheck: { readAvailable: tiny, skip: true } });
    try {
      assert.equal(b.capabilities().parallelism, 1);
      const r = await b.generate({ mode: "text2image", prompt: "a cat", numInferenceSteps: 1, rngSeed: 1 });
      assert.equal(r.count, 1);
    } finally {
      await b.dispose();
    }
  });

  it("a model.onnx the census cannot read counts as its size; the load then reports ONNX Runtime's error, not the check's", async () => {
    const dir = join(tempDir(), "sd1");
    cpSync(SD1_FP32, dir, { recursive: true });
    const unet = join(dir, "unet", "model.onnx");
    writeFileSync(unet, readFileSync(unet).subarray(0, 1000));
    const facts = await readMemoryFacts(dir);
    assert.deepEqual(facts.components.find((c) => c.name === "unet")!.weights, {
      storedBytes: 1000, loadedBytes: 1000, convBytes: 0, smallConvBytes: 0, inlineBytes: 1000, float16Bytes: 0, largestBytes: 1000, tensors: 0, fileBytes: 1000, externalFiles: [],
    });
    await assert.rejects(OnnxBackend.load(dir, { parallelism: 1 }), /unet\/model\.onnx: cannot load the ONNX model/);
  });

  it("budgets for the size it is told (the graph's default_resolution)", async () => {
    const facts = await readMemoryFacts(SD1_FP32);
    const at64 = estimateMemory(facts, { workers: 1 }).total;
    const at512 = estimateMemory(facts, { workers: 1, width: 512, height: 512 }).total;
    // Enough for the native 64×64, not for 512×512: loads, then refuses once told 512×512.
    const available = () => figure((at64 + at512) / 2);
    const b = await OnnxBackend.load(SD1_FP32, { parallelism: 1, memoryCheck: { readAvailable: available } });
    await b.dispose();
    await assert.rejects(OnnxBackend.load(SD1_FP32, { parallelism: 1, memoryCheck: { readAvailable: available, imageSize: { width: 512, height: 512 } } }), /working memory for one 512×512 image/);
  });
});

describe("the server", () => {
  const statusOf = async (server: Awaited<ReturnType<typeof start>>, name: string) =>
    ((await server.request("GET", "/v1/config")).body as Record<string, { model_version_status: { state: string; status: { error_code: string; error_message: string } }[] }>)[name]
      .model_version_status[0];

  it("a model that does not fit: the failed-load state with the refusal as its reason; requests get 503 model_failed", async () => {
    const path = await imageServable();
    const server = await start({ single: { name: "big", path }, memoryCheck: { readAvailable: () => figure(1e6) } });
    const st = await statusOf(server, "big");
    assert.deepEqual([st.state, st.status.error_code], ["LOADING", "FAILED_PRECONDITION"]);
    assert.match(st.status.error_message, /: this model needs about .* of memory to load and run, but 1 MB is available \(injected figure\)\. .* or --skip_memory_check to load it anyway/);
    const r = await server.request("POST", "/v3/images/generations", { json: { model: "big", prompt: "a" } });
    assert.equal(r.status, 503);
    assert.equal(errorOf(r).code, "model_failed");
    assert.match(errorOf(r).message, /but 1 MB is available \(injected figure\)/);
  });

  it("--skip_memory_check: the same model loads and answers", async () => {
    const v = serveOptionsFrom({ rest_port: "0", model_name: "m", model_path: "/x", skip_memory_check: true });
    assert.equal(v.skipMemoryCheck, true);
    assert.equal(serveOptionsFrom({ rest_port: "0", model_name: "m", model_path: "/x" }).skipMemoryCheck, undefined);
    assert.match(SERVER_USAGE, /--skip_memory_check/);

    const path = await imageServable();
    const server = await start({ single: { name: "big", path }, skipMemoryCheck: true, memoryCheck: { readAvailable: () => figure(1e6) } });
    const st = await statusOf(server, "big");
    assert.deepEqual([st.state, st.status.error_code], ["AVAILABLE", "OK"]);
    const r = await server.request("POST", "/v3/images/generations", { json: { model: "big", prompt: "a", rng_seed: 1 } });
    assert.equal(r.status, 200, r.text);
  });
});
