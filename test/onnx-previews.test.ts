/**
 * Step previews on the ONNX pipeline (src/backends/onnx/latent-preview.ts): with "approx" previews a
 * run that previews every step never runs the VAE decoder but for the final image, and each preview
 * has the request's size; with "vae" previews every preview is a decode. Decoder runs are counted on
 * the ORT session itself.
 */
import { strict as assert } from "node:assert";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { unpackLatents } from "../src/backends/onnx/families/packing.js";
import { LatentRgbFit, fitLatentRgbMap, latentRgbPreview, previewMode, publishedLatentRgbMap, type LatentRgbMap } from "../src/backends/onnx/latent-preview.js";
import { OnnxBackend } from "../src/backends/onnx/onnx-backend.js";
import { MIN_FITTED_PREVIEW_PSNR, OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import { makeTinyModel } from "../src/backends/onnx/tiny/make-tiny-model.js";
import { BackendError, type GenerationRequest, type RgbImage } from "../src/backends/types.js";
import { countRuns } from "./helpers/session-runs.js";
import { CONFORMANCE_ROOT } from "./helpers/conformance.js";

const temps: string[] = [];
const pipelines: OnnxPipeline[] = [];
after(async () => {
  for (const p of pipelines) await p.dispose();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "onnx-previews-"));
  temps.push(d);
  return d;
}

async function load(dir: string, previews?: "approx" | "vae"): Promise<OnnxPipeline> {
  const p = await OnnxPipeline.load(dir, { intraOpNumThreads: 1, ...(previews ? { previews } : {}) });
  pipelines.push(p);
  return p;
}


/** Rewrites a folder's VAE configs as the published VAE's (same block count, so the same scale factor): the published map applies. */
function asPublishedVae(dir: string): void {
  for (const component of ["vae_decoder", "vae_encoder"]) {
    const path = join(dir, component, "config.json");
    const json = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...json, block_out_channels: [128, 256, 512, 512] }));
  }
}

/** A generation with a preview after every step; the previews' images copied. */
async function withPreviews(p: OnnxPipeline, req: GenerationRequest, latents?: Float32Array[]): Promise<{ previews: RgbImage[][]; data: Uint8Array; steps: number }> {
  const previews: RgbImage[][] = [];
  const r = await p.generate(req, {
    onStep: () => ({ preview: true }),
    onPreview: (_step, images) => previews.push(images.map((i) => ({ ...i, data: i.data.slice() }))),
    onStepLatents: latents && ((_step, l) => void latents.push(l.slice())),
  });
  return { previews, data: r.data, steps: r.timings.stepMs.length };
}

describe("latent → RGB maps", () => {
  it("published factors are recognised by the VAE's architecture, scaling and shift factors only", () => {
    const blocks = [128, 256, 512, 512];
    const cases: [Record<string, unknown>, string | undefined][] = [
      [{ block_out_channels: blocks, latent_channels: 4, scaling_factor: 0.18215 }, "sd1"],
      [{ block_out_channels: blocks, latent_channels: 4, scaling_factor: 0.18215, shift_factor: null }, "sd1"],
      [{ block_out_channels: blocks, latent_channels: 4, scaling_factor: 0.13025 }, "sdxl"],
      [{ block_out_channels: blocks, latent_channels: 16, scaling_factor: 1.5305, shift_factor: 0.0609 }, "sd3"],
      [{ block_out_channels: blocks, latent_channels: 16, scaling_factor: 0.3611, shift_factor: 0.1159 }, "flux"],
      // Another VAE: the tiny test ones, the demo's (7 blocks), a different scaling or shift.
      [{ block_out_channels: [8, 8, 8, 8], latent_channels: 4, scaling_factor: 0.18215 }, undefined],
      [{ block_out_channels: [16, 16, 16, 16, 16, 32, 32], latent_channels: 4, scaling_factor: 0.604 }, undefined],
      [{ block_out_channels: blocks, latent_channels: 4, scaling_factor: 0.5 }, undefined],
      [{ block_out_channels: blocks, latent_channels: 16, scaling_factor: 0.3611 }, undefined],
      [{ block_out_channels: blocks, latent_channels: 16, scaling_factor: 1.5305, shift_factor: 0.1159 }, undefined],
    ];
    for (const [config, source] of cases) assert.equal(publishedLatentRgbMap(config)?.source, source, JSON.stringify(config));
    assert.equal(publishedLatentRgbMap(undefined), undefined, "a config-less (legacy) folder gets a fitted map");
    const sd3 = publishedLatentRgbMap(cases[3][0])!;
    assert.equal(sd3.weights.length, 16 * 3);
    assert.deepEqual([...sd3.bias].map((v) => Math.round(v * 1e4)), [2394, 2135, 1925]);
  });

  it("a preview has the asked size: each latent pixel's colour, scaled up bilinearly", () => {
    // One channel, R = z, G = −z, B = 0.
    const map: LatentRgbMap = { channels: 1, weights: Float32Array.of(1, -1, 0), bias: Float32Array.of(0, 0, 0), source: "test" };
    // Two images of 1×2 latent pixels: [−1, 1] and [0.5, 0.5].
    const out = latentRgbPreview(map, Float32Array.of(-1, 1, 0.5, 0.5), 2, 1, 2, 8, 4);
    assert.equal(out.length, 2 * 8 * 4 * 3);
    const px = (b: number, y: number, x: number) => [...out.subarray(((b * 4 + y) * 8 + x) * 3, ((b * 4 + y) * 8 + x) * 3 + 3)];
    // Outer columns are the latent pixels' own colours; the middle blends them; every row is the same.
    assert.deepEqual(px(0, 0, 0), [0, 255, 128]);
    assert.deepEqual(px(0, 3, 7), [255, 0, 128]);
    assert.deepEqual(px(0, 2, 3), [96, 159, 128]); // x = 3 samples 0.375 of the way: z = −0.25
    assert.deepEqual(px(0, 1, 3), px(0, 2, 3));
    for (let x = 0; x < 8; x++) assert.deepEqual(px(1, 0, x), [191, 64, 128]);
    assert.throws(() => latentRgbPreview(map, new Float32Array(3), 2, 1, 2, 8, 4), /not 2×1×1×2/);
  });

  it("least squares recovers a linear decoder's map exactly", async () => {
    const truth: LatentRgbMap = { channels: 4, weights: Float32Array.from([0.3, -0.2, 0.1, 0.5, 0.4, -0.3, -0.1, 0.2, 0.6, 0.05, -0.5, 0.25]), bias: Float32Array.of(0.1, -0.05, 0.2), source: "truth" };
    const f = 4;
    // A "VAE" whose decoder is the map itself, nearest-upsampled by f.
    const decode = async (z: Float32Array, n: number, h: number, w: number) => {
      const out = new Float32Array(n * 3 * h * f * w * f);
      for (let y = 0; y < h * f; y++) {
        for (let x = 0; x < w * f; x++) {
          const p = Math.floor(y / f) * w + Math.floor(x / f);
          for (let k = 0; k < 3; k++) {
            let v = truth.bias[k];
            for (let c = 0; c < 4; c++) v += z[c * h * w + p] * truth.weights[c * 3 + k];
            out[k * h * f * w * f + y * w * f + x] = v;
          }
        }
      }
      return out;
    };
    const fitted = await fitLatentRgbMap({ channels: 4, factor: f, decode });
    for (let i = 0; i < 12; i++) assert.ok(Math.abs(fitted.map.weights[i] - truth.weights[i]) < 1e-4, `weight ${i}: ${fitted.map.weights[i]}`);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(fitted.map.bias[k] - truth.bias[k]) < 1e-4);
    assert.ok(fitted.validationPsnr > 60, `validation ${fitted.validationPsnr} dB`);
    // Too few samples to fit is an error, not a map.
    assert.throws(() => new LatentRgbFit(4).solve(), /cannot fit/);
  });

  it("the option is \"approx\" by default, or \"vae\"; anything else is refused", async () => {
    assert.equal(previewMode(undefined), "approx");
    assert.equal(previewMode("vae"), "vae");
    for (const bad of ["VAE", "taesd", 1, true]) assert.throws(() => previewMode(bad), (e: Error) => e instanceof BackendError && /previews must be one of "approx", "vae"/.test(e.message));
    const dir = tempDir();
    await makeTinyModel(dir, { family: "sd" });
    await assert.rejects(OnnxPipeline.load(dir, { previews: "fast" as "approx" }), /previews must be one of/);
    await assert.rejects(OnnxBackend.load(dir, { properties: { previews: "none" } }), (e: Error) => e instanceof BackendError && /previews must be one of/.test(e.message));
  });
});

describe("pipeline previews", () => {
  it("approx (a map fitted at load): previews on every step never run the decoder, and have the request's size", async () => {
    const dir = tempDir();
    // A tiny model whose encoder gives means (latent_parameters): fitted on encoded probes.
    await makeTinyModel(dir, { family: "sd", vaeEncoderOutput: "latent_parameters" });
    const approx = await load(dir);
    assert.equal(approx.previews.mode, "approx");
    assert.ok(approx.previews.mode === "approx" && approx.previews.map.source === "fitted" && approx.previews.validationPsnr! >= MIN_FITTED_PREVIEW_PSNR);
    const decodes = countRuns([approx.sessions.vaeDecoder]);
    const req: GenerationRequest = { mode: "text2image", prompt: "a cat", width: 96, height: 64, numImagesPerPrompt: 2, numInferenceSteps: 4, guidanceScale: 3, rngSeed: 5 };
    const latents: Float32Array[] = [];
    const r = await withPreviews(approx, req, latents);
    assert.equal(decodes.runs, 1, "the final image is the only decode");
    assert.equal(approx.stats.vaeDecoderRuns, 1);
    assert.equal(r.previews.length, r.steps); // PNDM runs 5 steps for 4
    for (const images of r.previews) assert.deepEqual(images.map((i) => [i.width, i.height, i.data.length]), [[96, 64, 96 * 64 * 3], [96, 64, 96 * 64 * 3]]);
    // Each preview is the map applied to that step's latents.
    const map = (approx.previews as { map: LatentRgbMap }).map;
    latents.forEach((l, i) => assert.deepEqual(Buffer.concat(r.previews[i].map((im) => im.data)), Buffer.from(latentRgbPreview(map, l, 2, 8, 12, 96, 64)), `step ${i}`));
    // Previews change nothing in the result.
    assert.deepEqual(r.data, (await approx.generate(req)).data);
  });

  it("vae: every preview is a decode; the last step's preview is the final image", async () => {
    const dir = tempDir();
    await makeTinyModel(dir, { family: "sd", vaeEncoderOutput: "latent_parameters" });
    const vae = await load(dir, "vae");
    assert.deepEqual(vae.previews, { mode: "vae", reason: "asked" });
    const decodes = countRuns([vae.sessions.vaeDecoder]);
    const req: GenerationRequest = { mode: "text2image", prompt: "a cat", width: 96, height: 64, numImagesPerPrompt: 2, numInferenceSteps: 4, guidanceScale: 3, rngSeed: 5 };
    const r = await withPreviews(vae, req);
    assert.equal(r.previews.length, r.steps);
    assert.equal(decodes.runs, r.steps + 1);
    assert.deepEqual(Buffer.concat(r.previews[r.steps - 1].map((i) => i.data)), Buffer.from(r.data));
    // Same final image as with approx previews.
    const approx = await load(dir);
    assert.deepEqual((await approx.generate(req)).data, r.data);
  });

  it("a VAE the fit cannot follow keeps decoded previews (the default tiny VAE on prior draws)", async () => {
    const dir = tempDir();
    await makeTinyModel(dir, { family: "sd" });
    const p = await load(dir);
    assert.equal(p.previews.mode, "vae");
    assert.ok(p.previews.mode === "vae" && p.previews.reason === "fit" && p.previews.validationPsnr! < MIN_FITTED_PREVIEW_PSNR, JSON.stringify(p.previews));
    const decodes = countRuns([p.sessions.vaeDecoder]);
    const r = await withPreviews(p, { mode: "text2image", prompt: "a cat", numInferenceSteps: 2, rngSeed: 1 });
    assert.equal(decodes.runs, r.steps + 1);
  });

  it("published factors (a VAE config the families ship): no fit at load, no decode per preview", async () => {
    const dir = tempDir();
    await makeTinyModel(dir, { family: "sdxl" });
    const plain = await load(dir, "vae");
    asPublishedVae(dir);
    const p = await load(dir);
    assert.ok(p.previews.mode === "approx" && p.previews.map.source === "sdxl" && p.previews.fitMs === undefined);
    const decodes = countRuns([p.sessions.vaeDecoder]);
    const req: GenerationRequest = { mode: "text2image", prompt: "a cat", numInferenceSteps: 3, rngSeed: 2, guidanceScale: 2 };
    const r = await withPreviews(p, req);
    assert.equal(decodes.runs, 1);
    assert.equal(r.previews.length, r.steps);
    for (const images of r.previews) assert.deepEqual(images.map((i) => `${i.width}x${i.height}`), ["64x64"]);
    assert.deepEqual(r.data, (await plain.generate(req)).data);
  });

  it("FLUX: the map reads the packed latents unpacked", async () => {
    const dir = tempDir();
    cpSync(join(CONFORMANCE_ROOT, "flux-schnell/optimum-onnx-fp32"), dir, { recursive: true });
    asPublishedVae(dir);
    const p = await load(dir);
    assert.ok(p.previews.mode === "approx" && p.previews.map.source === "flux");
    const decodes = countRuns([p.sessions.vaeDecoder]);
    const latents: Float32Array[] = [];
    const r = await withPreviews(p, { mode: "text2image", prompt: "three cats", width: 96, height: 64, numImagesPerPrompt: 2, numInferenceSteps: 2, rngSeed: 4, maxSequenceLength: 16 }, latents);
    assert.equal(decodes.runs, 1);
    const map = (p.previews as { map: LatentRgbMap }).map;
    latents.forEach((l, i) => assert.deepEqual(Buffer.concat(r.previews[i].map((im) => im.data)), Buffer.from(latentRgbPreview(map, unpackLatents(l, 2, 16, 8, 12), 2, 8, 12, 96, 64)), `step ${i}`));
  });
});

describe("OnnxBackend previews", () => {
  it("the workers make previews as asked (option or property), at the request's size", async () => {
    const dir = tempDir();
    await makeTinyModel(dir, { family: "sd", vaeEncoderOutput: "latent_parameters" });
    for (const [opts, mode, source] of [[{}, "approx", "fitted"], [{ previews: "vae" as const }, "vae", "asked"], [{ properties: { previews: "vae" } }, "vae", "asked"]] as const) {
      const backend = await OnnxBackend.load(dir, { parallelism: 1, intraOpNumThreads: 1, ...opts });
      try {
        assert.equal(backend.previews.mode, mode, JSON.stringify(opts));
        assert.equal(backend.previews.source, source);
        const sizes: string[] = [];
        await backend.generate(
          { mode: "text2image", prompt: "a cat", width: 96, height: 64, numInferenceSteps: 2, rngSeed: 1 },
          { onStep: () => ({ preview: true }), onPreview: (_s, images) => sizes.push(...images.map((i) => `${i.width}x${i.height}:${i.data.length}`)) },
        );
        assert.ok(sizes.length >= 2 && sizes.every((s) => s === `96x64:${96 * 64 * 3}`), sizes.join());
      } finally {
        await backend.dispose();
      }
    }
  });
});
