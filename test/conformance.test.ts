/**
 * Conformance: every golden in test/fixtures/conformance/goldens (a diffusers run, PyTorch fp32 CPU,
 * made by tools/reference) replayed through graphserve's ONNX pipeline on the real exporter's folder,
 * served unchanged, with diffusers' own random draws. Final images must agree within 2/255 per pixel
 * (fp32 exports), per-step latents within LATENT_TOLERANCE; fp16 exports within FP16_PIXEL_TOLERANCE.
 * Measured (60 goldens on the current exports of sd1, sd2, sd-turbo, lcm, sdxl, sd-inpaint): fp32 max
 * 1/255 (mean ≤ 0.0002), per-step latents ≤ 1.2e-4; fp16 (sd1, sdxl; 35 runs) max 1/255, latents ≤ 1.3e-2.
 * The largest differences measured are printed (test diagnostics) for the issue note.
 */
import { strict as assert } from "node:assert";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { NoiseGenerator } from "../src/backends/noise/index.js";
import { OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import { CONFORMANCE_ROOT as ROOT, type GoldenCase, goldenFloats, goldenImage, goldenNames, goldenRequest, readGolden } from "./helpers/conformance.js";

/** Final images, fp32 exports: at most 2/255 off per channel value. */
const PIXEL_TOLERANCE = 2;
/** Latents after each step, fp32 exports: ONNX Runtime vs PyTorch kernels (float32 sums in another order). */
const LATENT_TOLERANCE = 1e-3;
/**
 * fp16 exports (upcast to fp32 at load) against the fp32 diffusers run: the only extra difference is
 * the weights' rounding to binary16 (relative error ≤ 2^-11 ≈ 4.9e-4 each), which moved the tiny
 * models' pixels by at most 1 level (mean ≈ 0.03) over every golden. Bound: the fp32 bound plus
 * one level for the rounded weights.
 */
const FP16_PIXEL_TOLERANCE = PIXEL_TOLERANCE + 1;
/**
 * Per-step latents on fp16 exports: the rounded weights move each UNet output by ~1e-3 and the
 * schedulers carry that forward (measured at most 1.3e-2, Euler ancestral on sd1); bound 3e-2.
 */
const FP16_LATENT_TOLERANCE = 3e-2;

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
function pipeline(folder: string, scheduler: string | null): Promise<OnnxPipeline> {
  const key = `${folder}|${scheduler ?? ""}`;
  let p = pipelines.get(key);
  if (!p) {
    p = OnnxPipeline.load(join(ROOT, folder), { intraOpNumThreads: 1, ...(scheduler ? { scheduler } : {}) });
    pipelines.set(key, p);
  }
  return p;
}

after(async () => {
  for (const r of await Promise.allSettled(pipelines.values())) if (r.status === "fulfilled") await r.value.dispose();
});

/** Runs one golden on `folder`; returns the largest and mean absolute pixel difference and the largest latent difference. */
async function runGolden(name: string, folder: string): Promise<{ maxPixel: number; meanPixel: number; maxLatent?: number }> {
  const c = readGolden(name);
  const r = c.request;
  const req = await goldenRequest(c);
  const p = await pipeline(folder, r.scheduler);
  const noise = replay(c);
  const ref = c.step_latents ? goldenFloats(c, c.step_latents.file) : undefined;
  let maxLatent = 0;
  const result = await p.generate(req, {
    onStepLatents(step, latents) {
      if (!ref) return;
      const base = step * latents.length;
      for (let i = 0; i < latents.length; i++) maxLatent = Math.max(maxLatent, Math.abs(latents[i] - ref[base + i]));
    },
  }, noise);
  assert.equal(noise.calls, c.draws.calls.length, "number of random draws");
  let maxPixel = 0;
  let sum = 0;
  const size = r.width * r.height * 3;
  for (let k = 0; k < c.outputs.length; k++) {
    const want = await goldenImage(c, c.outputs[k]);
    const got = result.data.subarray(k * size, (k + 1) * size);
    for (let i = 0; i < size; i++) {
      const d = Math.abs(got[i] - want.data[i]);
      maxPixel = Math.max(maxPixel, d);
      sum += d;
    }
  }
  return { maxPixel, meanPixel: sum / (size * c.outputs.length), ...(ref ? { maxLatent } : {}) };
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
        if (samplesVae && (await pipeline(folder, c.request.scheduler)).sessions.vaeEncoderOutput === "latent_sample") {
          // optimum ≤ 1.22 and the legacy layout sample the VAE latent inside the graph with an unseeded RandomNormalLike.
          return t.skip("the export samples the VAE latent in its graph, unseeded");
        }
        const m = await runGolden(name, folder);
        t.diagnostic(`${name} on ${folder}: max |Δpixel| ${m.maxPixel}, mean ${m.meanPixel.toFixed(4)}${m.maxLatent !== undefined ? `, max |Δlatent| ${m.maxLatent.toExponential(2)}` : ""}`);
        const bound = fp16 ? FP16_PIXEL_TOLERANCE : PIXEL_TOLERANCE;
        assert.ok(m.maxPixel <= bound, `max pixel difference ${m.maxPixel} > ${bound}`);
        const latentBound = fp16 ? FP16_LATENT_TOLERANCE : LATENT_TOLERANCE;
        if (m.maxLatent !== undefined) assert.ok(m.maxLatent <= latentBound, `max latent difference ${m.maxLatent} > ${latentBound}`);
      });
    }
  }
});
