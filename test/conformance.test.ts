/**
 * Conformance: every golden in test/fixtures/conformance/goldens (a diffusers run, PyTorch fp32 CPU,
 * made by tools/reference) replayed through graphserve's ONNX pipeline on the real exporter's folder,
 * served unchanged, with diffusers' own random draws. Final images must agree within 2/255 per pixel
 * (fp32 exports), per-step latents within LATENT_TOLERANCE; fp16 exports within FP16_PIXEL_TOLERANCE.
 * Measured (60 goldens on the current exports of sd1, sd2, sd-turbo, lcm, sdxl, sd-inpaint): fp32 max
 * 1/255 (mean ≤ 0.0002), per-step latents ≤ 4.1e-6 relative; fp16 (sd1, sd-turbo, sdxl) max 1/255,
 * latents ≤ 8.4e-4 relative.
 * The largest differences measured are printed (test diagnostics) for the issue note.
 */
import { strict as assert } from "node:assert";
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { NoiseGenerator } from "../src/backends/noise/index.js";
import * as ort from "onnxruntime-node";
import { nchwToRgbU8, OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import { CONFORMANCE_ROOT as ROOT, DIFFUSERS_QUIRKS, GOLDENS, type GoldenCase, goldenFloats, goldenImage, goldenNames, goldenRequest, readGolden } from "./helpers/conformance.js";

/** Final images, fp32 exports: at most 2/255 off per channel value. */
const PIXEL_TOLERANCE = 2;
/**
 * Latents after each step, fp32 exports, relative to the step's largest |latent| (at least 1; Euler
 * latents reach ~60 at σ_max, LCM's are x₀ predictions): ONNX Runtime vs PyTorch kernels summing
 * float32 (ε ≈ 1.2e-7) in another order; measured at most 4.1e-6, bound 2e-5.
 */
const LATENT_TOLERANCE = 2e-5;
/**
 * fp16 exports (upcast to fp32 at load) against the fp32 diffusers run: the only extra difference is
 * the weights' rounding to binary16 (relative error ≤ 2^-11 ≈ 4.9e-4 each), which moved the tiny
 * models' pixels by at most 1 level (mean ≈ 0.03) over every golden. Bound: the fp32 bound plus
 * one level for the rounded weights.
 */
const FP16_PIXEL_TOLERANCE = PIXEL_TOLERANCE + 1;
/**
 * Per-step latents on fp16 exports, relative as above: weights rounded to binary16 (2^-11 ≈ 4.9e-4
 * relative) move every output by about that much; measured at most 8.4e-4, bound 2e-3 (4 binary16 ulps).
 */
const FP16_LATENT_TOLERANCE = 2e-3;

/** Hands out diffusers' recorded draws in order, checking each call's shape. */
function replay(c: GoldenCase): NoiseGenerator & { readonly calls: number } {
  const data = goldenFloats(c, c.draws.file);
  let offset = 0;
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    randn(shape) {
      const expected = c.draws.calls[calls];
      assert.ok(expected, `draw ${calls} (shape [${shape.join(", ")}]) is one more than diffusers made`);
      assert.deepEqual([...shape], expected.shape, `draw ${calls} (${expected.site}): shape`);
      calls++;
      const n = shape.reduce((a, b) => a * b, 1);
      const out = data.slice(offset, offset + n);
      offset += n;
      return out;
    },
  };
}

const pipelines = new Map<string, Promise<OnnxPipeline>>();
const copies: string[] = [];

/**
 * The pipeline for `folder` as the golden ran it: the folder itself, or, when the golden swapped the
 * scheduler, a copy whose scheduler_config.json is the one diffusers ran with (the golden's own).
 */
function pipeline(folder: string, c: GoldenCase): Promise<OnnxPipeline> {
  const swapped = c.request.scheduler !== null;
  const key = swapped ? `${folder}|${c.name}` : folder;
  let p = pipelines.get(key);
  if (!p) {
    let dir = join(ROOT, folder);
    if (swapped) {
      const copy = mkdtempSync(join(tmpdir(), "graphserve-conformance-"));
      copies.push(copy);
      cpSync(dir, copy, { recursive: true });
      copyFileSync(join(GOLDENS, c.name, c.scheduler_config), join(copy, "scheduler", "scheduler_config.json"));
      dir = copy;
    }
    p = OnnxPipeline.load(dir, { intraOpNumThreads: 1 });
    pipelines.set(key, p);
  }
  return p;
}

after(async () => {
  for (const r of await Promise.allSettled(pipelines.values())) if (r.status === "fulfilled") await r.value.dispose();
  for (const d of copies) rmSync(d, { recursive: true, force: true });
});

/**
 * Runs one golden on `folder`: the largest and mean absolute pixel difference, and the largest latent
 * difference relative to its step's largest |latent| (at least 1).
 */
async function runGolden(name: string, folder: string): Promise<{ maxPixel: number; meanPixel: number; maxLatent?: number; quirkPixel?: number }> {
  const c = readGolden(name);
  const r = c.request;
  const req = await goldenRequest(c);
  const p = await pipeline(folder, c);
  const noise = replay(c);
  const ref = c.step_latents ? goldenFloats(c, c.step_latents.file) : undefined;
  const quirk = DIFFUSERS_QUIRKS.get(c.pipeline_class);
  let maxLatent = 0;
  let last: Float32Array | undefined;
  const result = await p.generate(req, {
    onStepLatents(step, latents) {
      if (quirk) last = latents.slice();
      if (!ref) return;
      const base = step * latents.length;
      let scale = 1;
      for (let i = 0; i < latents.length; i++) scale = Math.max(scale, Math.abs(ref[base + i]));
      for (let i = 0; i < latents.length; i++) maxLatent = Math.max(maxLatent, Math.abs(latents[i] - ref[base + i]) / scale);
    },
  }, noise);
  assert.equal(noise.calls, c.draws.calls.length, "number of random draws");
  const size = r.width * r.height * 3;
  const compare = async (data: Uint8Array) => {
    let maxPixel = 0;
    let sum = 0;
    for (let k = 0; k < c.outputs.length; k++) {
      const want = await goldenImage(c, c.outputs[k]);
      const got = data.subarray(k * size, (k + 1) * size);
      for (let i = 0; i < size; i++) {
        const d = Math.abs(got[i] - want.data[i]);
        maxPixel = Math.max(maxPixel, d);
        sum += d;
      }
    }
    return { maxPixel, meanPixel: sum / (size * c.outputs.length) };
  };
  const own = await compare(result.data);
  if (!quirk) return { ...own, ...(ref ? { maxLatent } : {}) };
  // The reference's decode (z / scaling_factor, no shift) of graphserve's own final latents must give the golden.
  const z = last!.map((v) => v / p.info.vaeScalingFactor);
  const [n, C, lh, lw] = [c.outputs.length, p.info.latentChannels, r.height / p.info.vaeScaleFactor, r.width / p.info.vaeScaleFactor];
  const out = (await p.sessions.vaeDecoder.run({ latent_sample: new ort.Tensor("float32", z, [n, C, lh, lw]) })).sample as ort.Tensor;
  const asReference = await compare(nchwToRgbU8(out.data as Float32Array, n, r.height, r.width));
  return { ...asReference, ...(ref ? { maxLatent } : {}), quirkPixel: own.maxPixel };
}

const cases = goldenNames();

/** Every exported folder of a tiny pipeline (`<pipeline>/<export kind>/` holding a model_index.json). */
function exportsOf(pipeline: string): string[] {
  const dir = join(ROOT, pipeline);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((kind) => existsSync(join(dir, kind, "model_index.json")))
    .sort()
    .map((kind) => `${pipeline}/${kind}`);
}

describe("conformance: diffusers goldens replayed on every exported folder of their pipeline", () => {
  it("has goldens", () => assert.ok(cases.length > 0));
  for (const name of cases) {
    const c = readGolden(name);
    const folders = exportsOf(c.pipeline);
    if (!folders.includes(c.export)) it(`${name} on ${c.export}`, { skip: `no export folder ${c.export}` }, () => {});
    for (const folder of folders) {
      const fp16 = /fp16/.test(folder);
      it(`${name} on ${folder}`, async (t) => {
        const samplesVae = c.draws.calls.some((d) => d.site === "vae.sample");
        if (samplesVae && (await pipeline(folder, c)).sessions.vaeEncoderOutput === "latent_sample") {
          // optimum ≤ 1.22 and the legacy layout sample the VAE latent inside the graph with an unseeded RandomNormalLike.
          return t.skip("the export samples the VAE latent in its graph, unseeded");
        }
        const m = await runGolden(name, folder);
        const quirk = m.quirkPixel !== undefined ? ` (with diffusers' decode; graphserve's corrected decode differs by up to ${m.quirkPixel})` : "";
        t.diagnostic(`${name} on ${folder}: max |Δpixel| ${m.maxPixel}, mean ${m.meanPixel.toFixed(4)}${m.maxLatent !== undefined ? `, max |Δlatent|/scale ${m.maxLatent.toExponential(2)}` : ""}${quirk}`);
        const bound = fp16 ? FP16_PIXEL_TOLERANCE : PIXEL_TOLERANCE;
        assert.ok(m.maxPixel <= bound, `max pixel difference ${m.maxPixel} > ${bound}`);
        // The correction is in effect: graphserve's own output is not diffusers' mistaken one.
        if (m.quirkPixel !== undefined) assert.ok(m.quirkPixel > bound, `graphserve's output matches diffusers' ${c.pipeline_class} decode, which drops shift_factor`);
        const latentBound = fp16 ? FP16_LATENT_TOLERANCE : LATENT_TOLERANCE;
        if (m.maxLatent !== undefined) assert.ok(m.maxLatent <= latentBound, `max latent difference ${m.maxLatent} > ${latentBound}`);
      });
    }
  }
});
