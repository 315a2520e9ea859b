/**
 * What approximate previews and the prompt cache save on the ONNX pipeline, and how close a
 * latent→RGB preview comes to the VAE decode of the same latents.
 *
 *   node dist/bench/previews.bench.js [--model models/demo] [--real <folder>] [--prompts 8] [--reps 5]
 *
 * --model (default the demo model, 512², its default 20 steps):
 *   - what the pipeline chose at load: the map's source, or the fit's validation PSNR and why previews stay decodes;
 *   - the fitted map (what "approx" would show) and the best 1×1 linear map for these very pictures (least
 *     squares on half the prompts' latents, scored on the other half) against the VAE decode of the same
 *     latents, after the steps partial_images 3 shows (5, 10, 15) and the last: PSNR and SSIM at full size
 *     and box-downscaled to 64×64;
 *   - ms per preview: VAE decode (the "vae" option) against the map and its bilinear upscale;
 *   - the prompt cache: text encoding ms of a request that misses and of one that hits.
 * --real: a full-size SD-layout folder's vae_decoder/, vae_encoder/ and text_encoder/ (e.g. issue 18's random-weight
 *   SD-Turbo export, tools/reference): one 512² decode against the map, what fitting a map to that VAE would take
 *   at load, and one guided text-encoder run (batch 2).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { LatentRgbFit, fitLatentRgbMap, latentRgbPreview, publishedLatentRgbMap, type LatentRgbMap } from "../src/backends/onnx/latent-preview.js";
import { OnnxPipeline, nchwToRgbU8 } from "../src/backends/onnx/pipeline.js";
import { familyModule } from "../src/backends/onnx/families/index.js";
import type { GenerationRequest } from "../src/backends/types.js";
import { downscale, psnr, ssim } from "./image-metrics.js";

const DEMO = fileURLToPath(new URL(import.meta.url.includes("/dist/") ? "../../models/demo" : "../models/demo", import.meta.url));
const { values } = parseArgs({
  options: { model: { type: "string", default: DEMO }, real: { type: "string" }, prompts: { type: "string", default: "8" }, reps: { type: "string", default: "5" } },
});
const reps = Number(values.reps);
const PROMPTS = [
  "a red circle on a blue background",
  "a green square on a white background",
  "a yellow triangle on a black background",
  "a blue circle on a yellow background",
  "a white square on a red background",
  "a black triangle on a green background",
  "a red square on a green background",
  "a yellow circle on a blue background",
  "a blue triangle on a white background",
  "a green circle on a black background",
].slice(0, Number(values.prompts));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Median wall and CPU ms of `reps` calls (after one warm-up). CPU time (every thread of this process) barely moves
 * with the machine's load; wall time on a shared machine does.
 */
async function measure(reps: number, fn: (rep: number) => unknown): Promise<{ wall: number; cpu: number }> {
  await fn(-1);
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn(r);
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall: median(wall), cpu: median(cpu) };
}
const show = (m: { wall: number; cpu: number }, digits = 1) => `${m.wall.toFixed(digits)} ms (CPU ${m.cpu.toFixed(digits)} ms)`;

// ---------------------------------------------------------------------------
// The model's own previews.
const vaeP = await OnnxPipeline.load(values.model, { previews: "vae" });
const approxP = await OnnxPipeline.load(values.model);
const info = vaeP.info;
const f = info.vaeScaleFactor;
const C = info.latentChannels;
const size = info.sampleSize * f;
const [lh, lw] = [size / f, size / f];
const pv = approxP.previews;
console.log(`${values.model}: ${info.family}, ${size}×${size}, latents ${C}×${lh}×${lw}, VAE factor ${f}`);
console.log(
  pv.mode === "approx"
    ? `previews at load: approx, ${pv.map.source} map${pv.validationPsnr !== undefined ? ` (fit ${pv.fitMs!.toFixed(0)} ms, validation ${pv.validationPsnr.toFixed(1)} dB)` : ""}`
    : `previews at load: vae (${pv.reason}${pv.validationPsnr !== undefined ? `: the fitted map scored ${pv.validationPsnr.toFixed(1)} dB on held-out probes in ${pv.fitMs!.toFixed(0)} ms` : ""}${pv.error ? `: ${pv.error}` : ""})`,
);

const steps = 20;
const shown = [4, 9, 14, 19]; // 0-based: partial_images 3 at 20 steps, and the last step
const nchw = (l: Float32Array) => familyModule(info.family).denoiser.layout.toNchw(l, 1, C, lh, lw);
const trajectories: Float32Array[][] = [];
for (const [i, prompt] of PROMPTS.entries()) {
  const latents: Float32Array[] = [];
  await vaeP.generate(
    { mode: "text2image", prompt, width: size, height: size, numInferenceSteps: steps, rngSeed: 1000 + i },
    { onStepLatents: (s, l) => void (shown.includes(s) && (latents[s] = nchw(l).slice())) },
  );
  trajectories.push(latents);
}
const decoded = new Map<string, Uint8Array>();
const decode = async (z: Float32Array): Promise<Float32Array> => {
  const u = z.map((v) => v / info.vaeScalingFactor + info.vaeShiftFactor);
  return ((await vaeP.sessions.vaeDecoder.run({ latent_sample: new ort.Tensor("float32", u, [1, C, lh, lw]) })).sample as ort.Tensor).data as Float32Array;
};
const floats = new Map<string, Float32Array>();
for (const [i, t] of trajectories.entries()) {
  for (const s of shown) {
    const d = await decode(t[s]);
    floats.set(`${i}/${s}`, d);
    decoded.set(`${i}/${s}`, nchwToRgbU8(d, 1, size, size));
  }
}

const fitted = await vaeP.fitPreviewMap();
const half = Math.floor(trajectories.length / 2);
const best = new LatentRgbFit(C);
for (let i = 0; i < half; i++) for (const s of shown) best.add(trajectories[i][s], floats.get(`${i}/${s}`)!, 1, lh, lw, f);
const maps: [string, LatentRgbMap, number[]][] = [
  [`fitted at load (validation ${fitted.validationPsnr.toFixed(1)} dB)`, fitted.map, [...trajectories.keys()]],
  ["best linear for these pictures", best.solve(), [...trajectories.keys()].slice(half)],
];
const published = publishedLatentRgbMap({ block_out_channels: [128, 256, 512, 512], latent_channels: C, scaling_factor: info.vaeScalingFactor, shift_factor: info.vaeShiftFactor });
if (published) maps.push([`published ${published.source}`, published, [...trajectories.keys()]]);
const k = size / 64;
console.log(`\npreview vs VAE decode of the same latents (mean over ${PROMPTS.length} prompts; "best linear" over the held-out half): PSNR dB / SSIM`);
console.log("map".padEnd(40) + shown.map((s) => `step ${s + 1}: full, 64²`.padStart(30)).join(""));
for (const [name, map, subset] of maps) {
  const cells = shown.map((s) => {
    const full: number[][] = [[], [], [], []];
    for (const i of subset) {
      const a = latentRgbPreview(map, trajectories[i][s], 1, lh, lw, size, size);
      const b = decoded.get(`${i}/${s}`)!;
      const [sa, sb] = [downscale(a, size, size, k), downscale(b, size, size, k)];
      full[0].push(psnr(a, b));
      full[1].push(ssim(a, b, size, size));
      full[2].push(psnr(sa, sb));
      full[3].push(ssim(sa, sb, 64, 64));
    }
    return `${mean(full[0]).toFixed(1)}/${mean(full[1]).toFixed(2)}, ${mean(full[2]).toFixed(1)}/${mean(full[3]).toFixed(2)}`.padStart(30);
  });
  console.log(name.padEnd(40) + cells.join(""));
}

// ms per preview: a VAE decode (what the "vae" option runs: decoder and conversion) vs the map and its upscale.
const last = trajectories.map((t) => t[19]);
const decodeMs = await measure(reps, async (r) => nchwToRgbU8(await decode(last[Math.max(r, 0) % last.length]), 1, size, size));
const mapMs = await measure(reps * 4, (r) => latentRgbPreview(fitted.map, last[Math.max(r, 0) % last.length], 1, lh, lw, size, size));
console.log(`\nper ${size}² preview (median): VAE decode ${show(decodeMs)}, map + bilinear upscale ${show(mapMs, 2)}`);

// The prompt cache: text encoding of a miss and of a hit.
const miss: number[] = [];
const hit: number[] = [];
for (let r = 0; r < reps; r++) {
  const req: GenerationRequest = { mode: "text2image", prompt: `${PROMPTS[r % PROMPTS.length]} ${r}`, width: size, height: size, numInferenceSteps: 1, rngSeed: r };
  miss.push((await approxP.generate(req)).timings.textEncodingMs);
  hit.push((await approxP.generate({ ...req, rngSeed: r + 1 })).timings.textEncodingMs);
}
console.log(`text encoding ms (median, guided batch): miss ${median(miss).toFixed(2)}, hit ${median(hit).toFixed(3)}`);
await vaeP.dispose();
await approxP.dispose();

// ---------------------------------------------------------------------------
// A full-size VAE decoder and text encoder.
if (values.real) {
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: "all" };
  const dec = await ort.InferenceSession.create(join(values.real, "vae_decoder", "model.onnx"), opts);
  const z = new Float32Array(4 * 64 * 64).map((_, i) => Math.sin(i));
  const decMs = await measure(Math.max(1, Math.floor(reps / 4)), async () => {
    const out = (await dec.run({ latent_sample: new ort.Tensor("float32", z, [1, 4, 64, 64]) })).sample as ort.Tensor;
    nchwToRgbU8(out.data as Float32Array, 1, 512, 512);
  });
  // What fitting costs an unrecognised full-size VAE at load (random weights here: the score means nothing).
  const enc = await ort.InferenceSession.create(join(values.real, "vae_encoder", "model.onnx"), opts);
  const fitCpu0 = process.cpuUsage();
  const fit = await fitLatentRgbMap({
    channels: 4,
    factor: 8,
    decode: async (zz, n, h, w) => ((await dec.run({ latent_sample: new ort.Tensor("float32", zz.map((v) => v / 0.18215), [n, 4, h, w]) })).sample as ort.Tensor).data as Float32Array,
    encode: async (px, h, w) => {
      const out = (await enc.run({ sample: new ort.Tensor("float32", px, [1, 3, h, w]) })).latent_parameters as ort.Tensor;
      return (out.data as Float32Array).slice(0, 4 * (h / 8) * (w / 8)).map((v) => v * 0.18215);
    },
  });
  const fitCpu = process.cpuUsage(fitCpu0);
  await enc.release();
  await dec.release();
  const map = publishedLatentRgbMap({ block_out_channels: [128, 256, 512, 512], latent_channels: 4, scaling_factor: 0.18215 })!;
  const apMs = await measure(reps * 4, () => latentRgbPreview(map, z, 1, 64, 64, 512, 512));
  const te = await ort.InferenceSession.create(join(values.real, "text_encoder", "model.onnx"), opts);
  const ids = new Int32Array(2 * 77).fill(49407);
  const dtype = (te.inputMetadata.find((m) => m.name === "input_ids") as { type?: string } | undefined)?.type === "int64" ? "int64" : "int32";
  const teMs = await measure(reps, () => te.run({ input_ids: dtype === "int64" ? new ort.Tensor("int64", BigInt64Array.from(ids, (v) => BigInt(v)), [2, 77]) : new ort.Tensor("int32", ids, [2, 77]) }));
  await te.release();
  console.log(`\n${values.real}:\n  512² preview by VAE decode ${show(decMs, 0)}, by the sd1 map ${show(apMs, 2)}\n  a fit at load would take ${fit.ms.toFixed(0)} ms (CPU ${((fitCpu.user + fitCpu.system) / 1000).toFixed(0)} ms)\n  one guided text-encoder run (2 × 77 tokens) ${show(teMs, 0)}`);
}
