/**
 * Cross-runtime: graphserve's ONNX pipeline against OpenVINO GenAI (what OVMS
 * runs) on the same tiny model and seed. The GenAI goldens in
 * test/fixtures/openvino/goldens/<name>/ were made by tools/reference/
 * openvino_ref.py with openvino_genai 2026.4.1 on the optimum-intel IR export
 * (fp32, INFERENCE_PRECISION_HINT f32) and `rng_seed`, i.e. GenAI's
 * CppStdGenerator; graphserve runs the optimum ONNX export of the SAME saved
 * weights with its default generator (mt19937, OVMS's) and the same seed.
 *
 * Each rng_seed golden also holds diffusers' image for the same request with
 * every random draw taken from CppStdGenerator(seed) in call order
 * (`diffusers_same_draws`), so two things are checked:
 * - graphserve vs that diffusers image: within DIFFUSERS_TOLERANCE (2/255, the
 *   conformance bound of test/conformance.test.ts): the seed means the same
 *   noise and the pipeline computes what diffusers computes with it;
 * - graphserve vs GenAI: within CROSS_RUNTIME_TOLERANCE = 4/255 where GenAI
 *   itself stays within the conformance bound of diffusers with identical
 *   draws (2/255; measured 1–2, f32) — 2/255 for graphserve plus 2/255 for
 *   GenAI. Cases where GenAI departs further (GENAI_DIVERGENCES, the spread
 *   in the manifest) must be listed, and graphserve's distance to GenAI there
 *   must be that spread within 2/255: GenAI's departure, not graphserve's.
 * (GenAI's default CPU precision is bf16 on AMX hosts: 8/255 (sd1) and 38/255
 * (sdxl) from diffusers, which is why the goldens are made at f32.)
 *
 * FLUX.1-schnell and SD3 (manifest `flux_sd3`, tools/reference/
 * flux_sd3_openvino.py) have no diffusers image per rng_seed case. What bounds
 * GenAI there is `t2i-torch-seed42`: GenAI handed torch's initial latents
 * (its only randn call, `genai_randn_calls`) against diffusers on the same
 * latents (`diffusers_max_abs_255`). graphserve replays that case with its
 * torch-cpu generator and must make the same draws, and every case is held to
 * CROSS_RUNTIME_TOLERANCE, which presumes GenAI within 2/255 of diffusers: for
 * text-to-image the torch case shows it; for image-to-image and inpainting it is
 * not measured (no diffusers run with CppStdGenerator's draws for these yet).
 * graphserve's own distance to diffusers is the conformance tests' business.
 */
import { strict as assert } from "node:assert";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { OnnxPipeline } from "../src/backends/onnx/pipeline.js";
import { createNoiseGenerator, type NoiseGenerator } from "../src/backends/noise/index.js";
import type { GenerationRequest, RgbImage } from "../src/backends/types.js";
import { decodeRgb } from "../src/tools/accuracy/run.js";

const DIFFUSERS_TOLERANCE = 2;
const CROSS_RUNTIME_TOLERANCE = 2 * DIFFUSERS_TOLERANCE;
/**
 * Cases where GenAI 2026.4.1 and diffusers 0.39 part although every random draw is the same
 * (manifest `diffusers_same_draws.max_abs_diff`): inpainting with a 4-channel UNet under the Euler
 * schedulers. The same requests with DDIM or PNDM, and every text-to-image / image-to-image one with
 * Euler or Euler ancestral, agree within 2/255. Cause not found yet: GenAI's Euler add_noise and its
 * blend (latents re-noised to timesteps[i + 1] after step i) read, in source, the same sigma as
 * diffusers' step_index does. graphserve follows diffusers here (within 1/255 of it).
 */
const GENAI_DIVERGENCES: Readonly<Record<string, string>> = {
  "sd1 inpaint-EulerDiscreteScheduler-seed42": "Euler, 4-channel inpainting",
  "sd1 inpaint-EulerAncestralDiscreteScheduler-seed42": "Euler ancestral, 4-channel inpainting",
  "sdxl inpaint-seed42": "SDXL's own Euler, 4-channel inpainting",
};
const OV = resolve("test/fixtures/openvino");
const CONFORMANCE = resolve("test/fixtures/conformance");

interface GoldenParams {
  prompt: string;
  negative_prompt?: string;
  width?: number;
  height?: number;
  guidance_scale?: number;
  num_inference_steps: number;
  rng_seed?: number;
  strength?: number;
  num_images_per_prompt?: number;
  max_sequence_length?: number;
}
interface GoldenEntry {
  id: string;
  scheduler?: string;
  diffusers_same_draws?: { images: string[]; max_abs_diff: number };
  mode: "text2image" | "image2image" | "inpainting";
  noise: "rng_seed" | "torch";
  params: GoldenParams;
  image?: string;
  mask?: string;
  outputs: { file: string }[];
  initial_noise?: { shape: number[]; file: string };
}
/** A GenAI run on the FLUX/SD3 IR folders (manifest `flux_sd3.<name>.genai.cases`). */
interface FluxSd3Case {
  id: string;
  mode: "text2image" | "image2image" | "inpainting";
  noise: "rng_seed" | "torch";
  params: GoldenParams;
  /** torch cases: torch.Generator("cpu").manual_seed(seed) drew GenAI's initial latents. */
  seed?: number;
  shape?: number[];
  outputs?: string[];
  genai_randn_calls?: number[][];
  /** torch cases: GenAI vs diffusers on the same latents, 0..255. */
  diffusers_max_abs_255?: number;
  error?: string;
}
interface FluxSd3Entry {
  genai: { default_generation_config: Record<string, { rng_seed: number }>; cases: FluxSd3Case[] };
}
interface Manifest {
  pipelines: Record<string, { defaults: Record<string, { guidance_scale?: number }>; cases: GoldenEntry[] }>;
  flux_sd3: Record<string, FluxSd3Entry>;
}

const manifest = JSON.parse(readFileSync(join(OV, "manifest.json"), "utf8")) as Manifest;

/** The ONNX export of the same saved weights: the current optimum-onnx one, else optimum 1.23's. */
function onnxFolder(name: string): string | undefined {
  for (const kind of ["optimum-onnx-fp32", "optimum-1.23"]) {
    const dir = join(CONFORMANCE, name, kind);
    if (existsSync(join(dir, "model_index.json"))) return dir;
  }
  return undefined;
}

async function png(path: string): Promise<RgbImage> {
  const { data, width, height } = await decodeRgb(readFileSync(path));
  return { data: new Uint8Array(data), width, height };
}

const loaded = new Map<string, Promise<OnnxPipeline>>();
function pipeline(dir: string, scheduler: string | undefined): Promise<OnnxPipeline> {
  const key = `${dir}|${scheduler ?? ""}`;
  let p = loaded.get(key);
  if (!p) {
    p = OnnxPipeline.load(dir, { intraOpNumThreads: 1, ...(scheduler ? { scheduler } : {}) });
    loaded.set(key, p);
  }
  return p;
}

/** Largest and mean absolute difference between `data` (count images) and the PNGs `files`. */
async function compare(data: Uint8Array, width: number, height: number, files: string[], gold: string): Promise<{ max: number; mean: number }> {
  assert.equal(data.length, files.length * width * height * 3, "image count");
  let max = 0;
  let sum = 0;
  const size = width * height * 3;
  for (const [k, file] of files.entries()) {
    const want = await png(join(gold, file));
    assert.equal(want.width, width);
    assert.equal(want.height, height);
    for (let i = 0; i < size; i++) {
      const d = Math.abs(data[k * size + i]! - want.data[i]!);
      max = Math.max(max, d);
      sum += d;
    }
  }
  return { max, mean: sum / data.length };
}

after(async () => {
  for (const p of loaded.values()) await (await p).dispose();
});

async function request(entry: Pick<GoldenEntry, "mode" | "params" | "image" | "mask">, gold: string): Promise<GenerationRequest> {
  const p = entry.params;
  return {
    mode: entry.mode,
    prompt: p.prompt,
    ...(p.negative_prompt !== undefined ? { negativePrompt: p.negative_prompt } : {}),
    ...(p.width !== undefined ? { width: p.width } : {}),
    ...(p.height !== undefined ? { height: p.height } : {}),
    ...(p.guidance_scale !== undefined ? { guidanceScale: p.guidance_scale } : {}),
    numInferenceSteps: p.num_inference_steps,
    ...(p.rng_seed !== undefined ? { rngSeed: p.rng_seed } : {}),
    ...(p.strength !== undefined && entry.mode !== "text2image" ? { strength: p.strength } : {}),
    ...(p.num_images_per_prompt !== undefined ? { numImagesPerPrompt: p.num_images_per_prompt } : {}),
    ...(p.max_sequence_length !== undefined ? { maxSequenceLength: p.max_sequence_length } : {}),
    ...(entry.image ? { image: await png(join(gold, entry.image)) } : {}),
    ...(entry.mask ? { mask: await png(join(gold, entry.mask)) } : {}),
  };
}

describe("the initial noise GenAI drew for each golden's rng_seed", () => {
  for (const [name, entry] of Object.entries(manifest.pipelines)) {
    for (const c of entry.cases.filter((k) => k.initial_noise)) {
      it(`${name} ${c.id}: graphserve's default generator draws it bit for bit`, () => {
        const buf = readFileSync(join(OV, "goldens", name, c.initial_noise!.file));
        const want = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
        const got = createNoiseGenerator("mt19937", c.params.rng_seed!).randn(c.initial_noise!.shape);
        assert.deepEqual(got, want);
      });
    }
  }
});

describe("graphserve ONNX vs OpenVINO GenAI, same tiny model and rng_seed", () => {
  for (const [name, entry] of Object.entries(manifest.pipelines)) {
    const dir = onnxFolder(name);
    for (const c of entry.cases.filter((k) => k.noise === "rng_seed")) {
      it(`${name} ${c.id}`, { skip: dir ? false : `no ONNX export of ${name} in test/fixtures/conformance` }, async (t) => {
        const gold = join(OV, "goldens", name);
        const p = await pipeline(dir!, c.scheduler);
        const result = await p.generate(await request(c, gold));
        const same = c.diffusers_same_draws!;
        const vsDiffusers = await compare(result.data, result.width, result.height, same.images, gold);
        const vsGenAi = await compare(result.data, result.width, result.height, c.outputs.map((o) => o.file), gold);
        t.diagnostic(
          `${name} ${c.id}: vs diffusers (same draws) max ${vsDiffusers.max} mean ${vsDiffusers.mean.toFixed(4)}; ` +
            `vs GenAI max ${vsGenAi.max} mean ${vsGenAi.mean.toFixed(4)}; GenAI vs diffusers max ${same.max_abs_diff}`,
        );
        assert.ok(vsDiffusers.max <= DIFFUSERS_TOLERANCE, `graphserve vs diffusers: ${vsDiffusers.max} > ${DIFFUSERS_TOLERANCE}`);
        const key = `${name} ${c.id}`;
        if (GENAI_DIVERGENCES[key]) {
          assert.ok(same.max_abs_diff > DIFFUSERS_TOLERANCE, `${key} is listed as a GenAI divergence but GenAI now agrees with diffusers`);
          assert.ok(Math.abs(vsGenAi.max - same.max_abs_diff) <= DIFFUSERS_TOLERANCE, `graphserve vs GenAI ${vsGenAi.max}, GenAI vs diffusers ${same.max_abs_diff}`);
        } else {
          assert.ok(same.max_abs_diff <= DIFFUSERS_TOLERANCE, `GenAI departs from diffusers by ${same.max_abs_diff} on ${key}, not a known divergence`);
          assert.ok(vsGenAi.max <= CROSS_RUNTIME_TOLERANCE, `graphserve vs GenAI: ${vsGenAi.max} > ${CROSS_RUNTIME_TOLERANCE}`);
        }
      });
    }
  }
});

/** A generator that passes `base`'s draws through and records each call's shape. */
function recording(base: NoiseGenerator): NoiseGenerator & { calls: number[][] } {
  const calls: number[][] = [];
  return { calls, randn: (shape) => (calls.push([...shape]), base.randn(shape)) };
}

/** How many pixels graphserve has above / below GenAI (GenAI's u8 conversion truncates, diffusers' and graphserve's round). */
function signs(data: Uint8Array, want: Uint8Array): { above: number; below: number } {
  let above = 0;
  let below = 0;
  for (let i = 0; i < want.length; i++) {
    if (data[i]! > want[i]!) above++;
    else if (data[i]! < want[i]!) below++;
  }
  return { above, below };
}

/** The torch case's seed: tools/reference/flux_sd3_openvino.py's cases_for() sets it but does not copy it into the manifest row. */
const FLUX_SD3_TORCH_SEED = 42;

describe("graphserve ONNX vs OpenVINO GenAI on FLUX.1-schnell and SD3, same tiny model and noise", () => {
  for (const [name, entry] of Object.entries(manifest.flux_sd3)) {
    const dir = join(CONFORMANCE, name, "optimum-onnx-fp32");
    const torchCase = entry.genai.cases.find((c) => c.noise === "torch");
    for (const c of entry.genai.cases) {
      const skip = c.error ? `GenAI refused it (${c.error.slice(0, 80)}…), checked in openvino-real-folders` : !c.outputs ? `GenAI's ${c.shape?.join("x")} output is recorded by sha256 only` : false;
      it(`${name} ${c.id}`, { skip }, async (t) => {
        const gold = join(OV, "goldens", name);
        const seed = c.noise === "torch" ? (c.seed ?? FLUX_SD3_TORCH_SEED) : (c.params.rng_seed ?? entry.genai.default_generation_config[c.mode]!.rng_seed);
        const noise = recording(createNoiseGenerator(c.noise === "torch" ? "torch-cpu" : "mt19937", seed));
        const p = await pipeline(dir, undefined);
        const req = await request({ mode: c.mode, params: c.params, ...(c.mode !== "text2image" ? { image: "init.png" } : {}), ...(c.mode === "inpainting" ? { mask: "mask.png" } : {}) }, gold);
        const result = await p.generate(req, {}, noise);
        const vsGenAi = await compare(result.data, result.width, result.height, c.outputs!, gold);
        const sign = signs(result.data, (await png(join(gold, c.outputs![0]!))).data);
        // GenAI's spread from diffusers with identical draws: measured by the torch case, text-to-image only.
        const spread = c.mode === "text2image" ? torchCase?.diffusers_max_abs_255 : undefined;
        t.diagnostic(
          `${name} ${c.id}: vs GenAI max ${vsGenAi.max} mean ${vsGenAi.mean.toFixed(4)} (graphserve above ${sign.above}, below ${sign.below}); ` +
            `draws ${JSON.stringify(noise.calls)}; GenAI vs diffusers (same draws) ${spread ?? "not measured for this mode"}`,
        );
        if (c.genai_randn_calls) assert.deepEqual(noise.calls, c.genai_randn_calls, "graphserve draws GenAI's initial latents in GenAI's shape ([N, 16, h, w], packed afterwards for FLUX)");
        if (spread !== undefined) assert.ok(spread <= DIFFUSERS_TOLERANCE, `GenAI departs from diffusers by ${spread} on ${name} text-to-image, not a known divergence`);
        assert.ok(vsGenAi.max <= CROSS_RUNTIME_TOLERANCE, `graphserve vs GenAI: ${vsGenAi.max} > ${CROSS_RUNTIME_TOLERANCE}`);
      });
    }
  }
});
