/** The ONNX Runtime SD/SDXL pipeline, in-process, on tiny generated models. */
import { strict as assert } from "node:assert";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { guidanceEmbedding, nchwToRgbU8, OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import { createNoiseGenerator, type NoiseGenerator } from "../src/backends/noise/index.js";
import { makeTinyModel, type TinyModelOptions } from "../src/backends/onnx/tiny/make-tiny-model.js";
import { BackendError, GenerationCancelledError, type GenerationRequest, type RgbImage } from "../src/backends/types.js";

let root: string;
const pipelines: OnnxPipeline[] = [];

async function tiny(name: string, opts: TinyModelOptions): Promise<OnnxPipeline> {
  const dir = join(root, name);
  await makeTinyModel(dir, opts);
  const p = await OnnxPipeline.load(dir, { intraOpNumThreads: 1 });
  pipelines.push(p);
  return p;
}

function gradient(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 255) / (width - 1);
      data[i + 1] = (y * 255) / (height - 1);
      data[i + 2] = 128;
    }
  return { width, height, data };
}

/** White (repaint) on the left half, black (keep) on the right. */
function halfMask(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width / 2; x++) data.fill(255, (y * width + x) * 3, (y * width + x) * 3 + 3);
  return { width, height, data };
}

function differs(a: Uint8Array, b: Uint8Array): boolean {
  return a.length !== b.length || a.some((v, i) => v !== b[i]);
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), "onnx-pipeline-"));
});
after(async () => {
  for (const p of pipelines) await p.dispose();
  await rm(root, { recursive: true, force: true });
});

describe("request limits and seeds", () => {
  it("refuses sizes, batch counts and buffers over the limits with a BackendError naming the limit", async () => {
    const p = await tiny("sd-limits", { family: "sd" });
    const base: GenerationRequest = { mode: "text2image", prompt: "a cat", numInferenceSteps: 1, rngSeed: 1 };
    await assert.rejects(p.generate({ ...base, width: 80_000_000, height: 8 }), (e: Error) => e instanceof BackendError && /maxPixels = 16777216/.test(e.message));
    await assert.rejects(p.generate({ ...base, numImagesPerPrompt: 17 }), (e: Error) => e instanceof BackendError && /maxImagesPerPrompt = 16/.test(e.message));
    await assert.rejects(p.generate({ ...base, width: 4096, height: 4096, numImagesPerPrompt: 16 }), (e: Error) => e instanceof BackendError && /2 GiB/.test(e.message));
    const small = await OnnxPipeline.load(join(root, "sd-limits"), { intraOpNumThreads: 1, maxPixels: 64 * 64, maxImagesPerPrompt: 2 });
    pipelines.push(small);
    await assert.rejects(small.generate({ ...base, width: 72 }), (e: Error) => e instanceof BackendError && /maxPixels = 4096/.test(e.message));
    await assert.rejects(small.generate({ ...base, numImagesPerPrompt: 3 }), (e: Error) => e instanceof BackendError && /maxImagesPerPrompt = 2/.test(e.message));
    assert.equal((await small.generate({ ...base, numImagesPerPrompt: 2 })).count, 2);
    await assert.rejects(OnnxPipeline.load(join(root, "sd-limits"), { maxImagesPerPrompt: 0 }), /maxImagesPerPrompt must be a positive integer/);
  });

  it("seeds must be integers in [0, 2^53); the generator keeps them mod 2^32, as OVMS does", async () => {
    const p = await tiny("sd-seeds", { family: "sd" });
    const base: GenerationRequest = { mode: "text2image", prompt: "a cat", numInferenceSteps: 2 };
    for (const rngSeed of [-1, 1.5, 2 ** 53, Number.NaN]) {
      await assert.rejects(p.generate({ ...base, rngSeed }), (e: Error) => e instanceof BackendError && /rngSeed must be an integer in \[0, 2\^53\)/.test(e.message), String(rngSeed));
    }
    // As in OVMS (and torch), the generator keeps the seed mod 2^32.
    const a = await p.generate({ ...base, rngSeed: 7 });
    const b = await p.generate({ ...base, rngSeed: 2 ** 32 + 7 });
    assert.deepEqual(a.data, b.data);
    assert.ok(differs(a.data, (await p.generate({ ...base, rngSeed: 8 })).data));
    await p.generate({ ...base, rngSeed: 2 ** 53 - 1 });
  });
});

describe("OnnxPipeline SD text2image", () => {
  let p: OnnxPipeline;
  before(async () => {
    p = await tiny("sd", { family: "sd" });
  });

  it("detects the family", () => {
    assert.equal(p.info.family, "sd");
    assert.equal(p.info.inpainting, false);
    assert.equal(p.info.sampleSize * p.info.vaeScaleFactor, 64);
  });

  it("returns [N, H, W, 3] u8 with timings per phase", async () => {
    const r = await p.generate({ mode: "text2image", prompt: "a photo of a cat", numInferenceSteps: 4, numImagesPerPrompt: 2, rngSeed: 1 });
    assert.ok(r.data instanceof Uint8Array);
    assert.equal(r.count, 2);
    assert.equal(r.width, 64);
    assert.equal(r.height, 64);
    assert.equal(r.data.length, 2 * 64 * 64 * 3);
    // PNDM (PLMS) runs the first timestep twice: n + 1 UNet evaluations.
    assert.equal(r.timings.stepMs.length, 5);
    assert.ok(r.timings.textEncodingMs >= 0 && r.timings.vaeDecodeMs >= 0 && r.timings.totalMs >= r.timings.vaeDecodeMs);
    assert.equal(r.timings.vaeEncodeMs, undefined);
    // N images from one seed are different images.
    assert.ok(differs(r.data.subarray(0, 64 * 64 * 3), r.data.subarray(64 * 64 * 3)));
  });

  it("same seed → identical bytes; different seeds → different images", async () => {
    const req: GenerationRequest = { mode: "text2image", prompt: "a red dog", numInferenceSteps: 3, rngSeed: 7, guidanceScale: 3 };
    const a = await p.generate(req);
    const b = await p.generate(req);
    const c = await p.generate({ ...req, rngSeed: 8 });
    assert.deepEqual(a.data, b.data);
    assert.ok(differs(a.data, c.data));
  });

  it("the prompt and the negative prompt matter; guidance ≤ 1 runs without the unconditional pass", async () => {
    const base: GenerationRequest = { mode: "text2image", prompt: "a red dog", numInferenceSteps: 3, rngSeed: 7, guidanceScale: 2 };
    const a = await p.generate(base);
    const b = await p.generate({ ...base, prompt: "a blue horse on the painting" });
    const c = await p.generate({ ...base, negativePrompt: "astronaut" });
    const d = await p.generate({ ...base, guidanceScale: 1 });
    assert.ok(differs(a.data, b.data));
    assert.ok(differs(a.data, c.data));
    assert.ok(differs(a.data, d.data));
  });

  it("honours width/height (multiples of 8)", async () => {
    const r = await p.generate({ mode: "text2image", prompt: "x", width: 96, height: 32, numInferenceSteps: 2, rngSeed: 1 });
    assert.equal(r.width, 96);
    assert.equal(r.height, 32);
    assert.equal(r.data.length, 96 * 32 * 3);
    await assert.rejects(p.generate({ mode: "text2image", prompt: "x", width: 60 }), BackendError);
  });

  it("calls onStep once per step and stops when asked", async () => {
    const seen: number[] = [];
    const r = await p.generate({ mode: "text2image", prompt: "x", numInferenceSteps: 6, rngSeed: 1 }, { onStep: (s) => void seen.push(s.step) });
    assert.deepEqual(seen, [...Array(r.timings.stepMs.length).keys()]);
    const seen2: number[] = [];
    await assert.rejects(
      p.generate({ mode: "text2image", prompt: "x", numInferenceSteps: 6, rngSeed: 1 }, { onStep: (s) => (seen2.push(s.step), { stop: s.step === 2 }) }),
      (e: unknown) => e instanceof GenerationCancelledError && e.step === 2,
    );
    assert.deepEqual(seen2, [0, 1, 2]);
  });

  it("decodes previews on request", async () => {
    const previews: number[] = [];
    await p.generate(
      { mode: "text2image", prompt: "x", numInferenceSteps: 3, numImagesPerPrompt: 2, rngSeed: 1 },
      {
        onStep: (s) => ({ preview: s.step === 1 }),
        onPreview: (step, imgs) => {
          previews.push(step);
          assert.equal(imgs.length, 2);
          assert.equal(imgs[0].data.length, 64 * 64 * 3);
        },
      },
    );
    assert.deepEqual(previews, [1]);
  });

  it("image2image: encodes the input, cuts the schedule by strength", async () => {
    const image = gradient(64, 64);
    const req: GenerationRequest = { mode: "image2image", prompt: "a cat", image, strength: 0.5, numInferenceSteps: 8, rngSeed: 3 };
    const a = await p.generate(req);
    const b = await p.generate(req);
    assert.deepEqual(a.data, b.data);
    assert.ok(a.timings.vaeEncodeMs !== undefined);
    assert.ok(a.timings.stepMs.length <= 5, `steps ${a.timings.stepMs.length}`);
    const c = await p.generate({ ...req, image: gradient(32, 32), width: 64, height: 64 });
    assert.equal(c.data.length, 64 * 64 * 3);
    const d = await p.generate({ ...req, strength: 0.9 });
    assert.ok(differs(a.data, d.data));
  });

  it("inpainting with a 4-channel UNet blends latents: the kept side follows the input image", async () => {
    const image = gradient(64, 64);
    const mask = halfMask(64, 64);
    const r = await p.generate({ mode: "inpainting", prompt: "a cat", image, mask, numInferenceSteps: 4, rngSeed: 5, strength: 1 });
    assert.equal(r.data.length, 64 * 64 * 3);
    const r2 = await p.generate({ mode: "inpainting", prompt: "a dog", image, mask, numInferenceSteps: 4, rngSeed: 6, strength: 1 });
    // The kept (right) half comes from the same original latents; the repainted half depends on the seed/prompt.
    let leftDiff = 0;
    let rightDiff = 0;
    for (let y = 0; y < 64; y++)
      for (let x = 0; x < 64; x++)
        for (let c = 0; c < 3; c++) {
          const i = (y * 64 + x) * 3 + c;
          const d = Math.abs(r.data[i] - r2.data[i]);
          if (x < 24) leftDiff += d;
          else if (x >= 40) rightDiff += d;
        }
    assert.ok(rightDiff < leftDiff, `kept side differs by ${rightDiff}, repainted side by ${leftDiff}`);
  });

  it("rejects bad requests", async () => {
    await assert.rejects(p.generate({ mode: "image2image", prompt: "x" }), BackendError);
    await assert.rejects(p.generate({ mode: "inpainting", prompt: "x", image: gradient(64, 64) }), BackendError);
    await assert.rejects(p.generate({ mode: "text2image", prompt: "x", numInferenceSteps: 0 }), BackendError);
    await assert.rejects(p.generate({ mode: "inpainting", prompt: "x", image: gradient(64, 64), mask: halfMask(32, 32) }), BackendError);
  });
});

describe("OnnxPipeline SD variants", () => {
  it("int64 input_ids and timestep, Euler, latent_parameters VAE encoder", async () => {
    const p = await tiny("sd-int64", { family: "sd", timestepDtype: "int64", inputIdsDtype: "int64", vaeEncoderOutput: "latent_parameters", scheduler: "euler" });
    assert.deepEqual(p.sessions.timestep, { type: "int64", length: "batch" });
    assert.equal(p.sessions.textEncoders[0]?.idsDtype, "int64");
    const r = await p.generate({ mode: "text2image", prompt: "a cat", numInferenceSteps: 3, rngSeed: 1 });
    assert.equal(r.timings.stepMs.length, 3);
    const i = await p.generate({ mode: "image2image", prompt: "a cat", image: gradient(64, 64), numInferenceSteps: 4, strength: 0.5, rngSeed: 1 });
    assert.equal(i.data.length, 64 * 64 * 3);
  });

  it("a scheduler override applies", async () => {
    const dir = join(root, "sd-ddim");
    await makeTinyModel(dir, { family: "sd" });
    const p = await OnnxPipeline.load(dir, { scheduler: "DDIMScheduler" });
    pipelines.push(p);
    const r = await p.generate({ mode: "text2image", prompt: "a cat", numInferenceSteps: 4, rngSeed: 1 });
    assert.equal(r.timings.stepMs.length, 4);
    await assert.rejects(OnnxPipeline.load(dir, { scheduler: "NoSuchScheduler" }), BackendError);
  });
});

describe("LCM / SD-Turbo style schedules", () => {
  it("LCMScheduler and EulerAncestral (trailing) run on an SD model", async () => {
    const dir = join(root, "sd-lcm");
    await makeTinyModel(dir, { family: "sd" });
    const lcm = await OnnxPipeline.load(dir, { scheduler: "LCMScheduler" });
    pipelines.push(lcm);
    const a = await lcm.generate({ mode: "text2image", prompt: "a cat", numInferenceSteps: 4, rngSeed: 1, guidanceScale: 1 });
    const b = await lcm.generate({ mode: "text2image", prompt: "a cat", numInferenceSteps: 4, rngSeed: 1, guidanceScale: 1 });
    assert.equal(a.timings.stepMs.length, 4);
    assert.deepEqual(a.data, b.data);
    const anc = await OnnxPipeline.load(dir, { scheduler: "EulerAncestralDiscreteScheduler" });
    pipelines.push(anc);
    const c = await anc.generate({ mode: "text2image", prompt: "a cat", numInferenceSteps: 1, rngSeed: 1, guidanceScale: 0 });
    assert.equal(c.timings.stepMs.length, 1);
  });

  it("draws through one generator in diffusers' order and shapes: initial latents for all images, then one draw per ancestral step", async () => {
    const dir = join(root, "sd-draws");
    await makeTinyModel(dir, { family: "sd", vaeEncoderOutput: "latent_parameters" });
    const cases: [string, GenerationRequest, number[][]][] = [
      // Euler ancestral draws on every step (the last one's goes unused, as in diffusers); LCM on every step but the last.
      ["EulerAncestralDiscreteScheduler", { mode: "text2image", prompt: "a cat", numInferenceSteps: 3, numImagesPerPrompt: 2, guidanceScale: 7.5 }, Array(4).fill([2, 4, 8, 8])],
      ["LCMScheduler", { mode: "text2image", prompt: "a cat", numInferenceSteps: 3, numImagesPerPrompt: 2, guidanceScale: 1 }, Array(3).fill([2, 4, 8, 8])],
      // img2img: the VAE sample (one image), then the noise for both images; DDIM draws nothing per step.
      ["DDIMScheduler", { mode: "image2image", prompt: "a cat", image: gradient(64, 64), strength: 1, numInferenceSteps: 3, numImagesPerPrompt: 2 }, [[1, 4, 8, 8], [2, 4, 8, 8]]],
      // 4-channel inpainting: image sample, noise, then the masked image's sample (diffusers encodes it for every UNet).
      ["DDIMScheduler", { mode: "inpainting", prompt: "a cat", image: gradient(64, 64), mask: halfMask(64, 64), numInferenceSteps: 2 }, [[1, 4, 8, 8], [1, 4, 8, 8], [1, 4, 8, 8]]],
    ];
    for (const [scheduler, req, expected] of cases) {
      const p = await OnnxPipeline.load(dir, { scheduler, intraOpNumThreads: 1 });
      pipelines.push(p);
      const shapes: number[][] = [];
      const inner = createNoiseGenerator("mt19937", 5);
      const recording: NoiseGenerator = { randn: (shape) => (shapes.push([...shape]), inner.randn(shape)) };
      const a = await p.generate(req, {}, recording);
      assert.deepEqual(shapes, expected, `${scheduler} ${req.mode}`);
      // The same draws give the same bytes.
      const b = await p.generate(req, {}, createNoiseGenerator("mt19937", 5));
      assert.deepEqual(a.data, b.data);
    }
  });

  it("a batch draws one noise tensor, as OVMS and diffusers do: image 0 of n=2 is the n=1 image unless steps draw noise", async () => {
    const dir = join(root, "sd-streams");
    await makeTinyModel(dir, { family: "sd" });
    const size = 64 * 64 * 3;
    for (const noise of ["mt19937", "torch-cpu"] as const) {
      for (const scheduler of ["EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler"]) {
        const p = await OnnxPipeline.load(dir, { scheduler, noise, intraOpNumThreads: 1 });
        pipelines.push(p);
        const req: GenerationRequest = { mode: "text2image", prompt: "a cat", numInferenceSteps: 3, rngSeed: 77, guidanceScale: 7.5 };
        const one = await p.generate(req);
        const two = await p.generate({ ...req, numImagesPerPrompt: 2 });
        // The initial latents [2, C, h, w] start with the [1, C, h, w] ones; ancestral steps then draw [2, C, h, w] per step.
        const same = !differs(two.data.subarray(0, size), one.data);
        assert.equal(same, scheduler === "EulerDiscreteScheduler", `${noise} ${scheduler}: image 0`);
        assert.ok(differs(two.data.subarray(size), two.data.subarray(0, size)), `${noise} ${scheduler}: image 1 differs`);
      }
    }
  });

  it("guidanceEmbedding is the sin ‖ cos embedding of 1000·w", () => {
    const e = guidanceEmbedding(0.5, 8);
    assert.equal(e.length, 8);
    assert.ok(Math.abs(e[0] - Math.sin(500)) < 1e-6);
    assert.ok(Math.abs(e[4] - Math.cos(500)) < 1e-6);
    assert.ok(Math.abs(e[3] - Math.sin(500 * Math.exp((-3 * Math.log(10000)) / 3))) < 1e-6);
  });
});

describe("OnnxPipeline SD inpainting (9-channel UNet)", () => {
  let p: OnnxPipeline;
  before(async () => {
    p = await tiny("sd-inpaint", { family: "sd", inpainting: true });
  });

  it("detects inpainting and generates deterministically", async () => {
    assert.equal(p.info.inpainting, true);
    assert.equal(p.info.denoiserInChannels, 9);
    const req: GenerationRequest = { mode: "inpainting", prompt: "a cat", image: gradient(64, 64), mask: halfMask(64, 64), numInferenceSteps: 4, numImagesPerPrompt: 2, rngSeed: 9 };
    const a = await p.generate(req);
    const b = await p.generate(req);
    assert.equal(a.data.length, 2 * 64 * 64 * 3);
    assert.deepEqual(a.data, b.data);
    const c = await p.generate({ ...req, mask: { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3) } });
    assert.ok(differs(a.data, c.data), "the mask reaches the UNet");
    const d = await p.generate({ ...req, strength: 0.6 });
    assert.ok(differs(a.data, d.data));
  });

  it("refuses text2image", async () => {
    await assert.rejects(p.generate({ mode: "text2image", prompt: "x" }), /inpainting model/);
  });
});

describe("OnnxPipeline SDXL", () => {
  let p: OnnxPipeline;
  before(async () => {
    p = await tiny("sdxl", { family: "sdxl" });
  });

  it("detects SDXL and its penultimate hidden states", () => {
    assert.equal(p.info.family, "sdxl");
    assert.deepEqual(
      p.sessions.textEncoders.map((e) => e?.hiddenOutput),
      ["hidden_states.1", "hidden_states.1"],
    );
  });

  it("text2image: shape, determinism, prompt_2 and size reach the UNet", async () => {
    const req: GenerationRequest = { mode: "text2image", prompt: "a photo of a cat", numInferenceSteps: 3, numImagesPerPrompt: 2, rngSeed: 2, guidanceScale: 1.5 };
    const a = await p.generate(req);
    const b = await p.generate(req);
    assert.equal(a.data.length, 2 * 64 * 64 * 3);
    assert.equal(a.timings.stepMs.length, 3);
    assert.deepEqual(a.data, b.data);
    const c = await p.generate({ ...req, rngSeed: 3 });
    assert.ok(differs(a.data, c.data));
    const d = await p.generate({ ...req, prompt2: "a red horse" });
    assert.ok(differs(a.data, d.data));
  });

  it("force_zeros_for_empty_prompt zeroes only an absent negative prompt, not an explicit empty one", async () => {
    const req: GenerationRequest = { mode: "text2image", prompt: "a photo of a cat", numInferenceSteps: 2, rngSeed: 4, guidanceScale: 3 };
    const absent = await p.generate(req);
    const empty = await p.generate({ ...req, negativePrompt: "" });
    const empty2 = await p.generate({ ...req, negativePrompt: "", negativePrompt2: "" });
    assert.ok(differs(absent.data, empty.data));
    assert.deepEqual(empty.data, empty2.data);
  });

  it("force_zeros_for_empty_prompt defaults to true, as in diffusers' SDXL pipelines; requires_aesthetics_score must match the UNet's time_ids", async () => {
    assert.equal(p.info.forceZerosForEmptyPrompt, true);
    const dir = join(root, "sdxl-aesthetic");
    await makeTinyModel(dir, { family: "sdxl" });
    const indexPath = join(dir, "model_index.json");
    const index = JSON.parse(await readFile(indexPath, "utf8")) as Record<string, unknown>;
    delete index.force_zeros_for_empty_prompt;
    await writeFile(indexPath, JSON.stringify({ ...index, requires_aesthetics_score: true }));
    await assert.rejects(OnnxPipeline.load(dir), (e: Error) => e instanceof BackendError && /"time_ids" has width 6, but model_index.json sets requires_aesthetics_score \(5 values\)/.test(e.message));
  });

  it("image2image and inpainting", async () => {
    const i = await p.generate({ mode: "image2image", prompt: "a cat", image: gradient(64, 64), strength: 0.5, numInferenceSteps: 4, rngSeed: 1, guidanceScale: 1.5 });
    assert.equal(i.data.length, 64 * 64 * 3);
    const m = await p.generate({ mode: "inpainting", prompt: "a cat", image: gradient(64, 64), mask: halfMask(64, 64), numInferenceSteps: 4, rngSeed: 1, guidanceScale: 1.5 });
    assert.equal(m.data.length, 64 * 64 * 3);
  });

  it("SDXL inpainting UNet (9 channels)", async () => {
    const q = await tiny("sdxl-inpaint", { family: "sdxl", inpainting: true });
    assert.equal(q.info.inpainting, true);
    const r = await q.generate({ mode: "inpainting", prompt: "a cat", image: gradient(64, 64), mask: halfMask(64, 64), numInferenceSteps: 3, rngSeed: 1 });
    assert.equal(r.data.length, 64 * 64 * 3);
  });
});

describe("nchwToRgbU8", () => {
  it("maps [−1, 1] to round((x + 1) / 2 · 255), clamped, NCHW → NHWC", () => {
    // One image, 1×3 pixels, channel planes R, G, B.
    const src = new Float32Array([-1, 0, 1, -2, 2, Number.NaN, 0.5, -0.5, 0.0039]);
    const out = nchwToRgbU8(src, 1, 1, 3);
    assert.deepEqual([...out], [0, 0, 191, 128, 255, 64, 255, 0, 128]);
  });
});
