/** Reading the conformance goldens (test/fixtures/conformance, format in its README.md). */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { GenerationRequest, RgbImage } from "../../src/backends/types.js";
import { decodeRgb } from "../../src/tools/accuracy/run.js";

export const CONFORMANCE_ROOT = join(import.meta.dirname, "..", "..", "..", "test", "fixtures", "conformance");
export const GOLDENS = join(CONFORMANCE_ROOT, "goldens");

/** One diffusers run: goldens/<name>/case.json. */
export interface GoldenCase {
  readonly name: string;
  readonly pipeline: string;
  /** The diffusers class that ran. */
  readonly pipeline_class: string;
  readonly request: {
    readonly mode: "text-to-image" | "image-to-image" | "inpainting";
    readonly prompt: string;
    readonly negative_prompt: string | null;
    readonly steps: number;
    readonly guidance: number | null;
    readonly strength: number | null;
    readonly n: number;
    readonly seed: number;
    readonly width: number;
    readonly height: number;
    readonly scheduler: string | null;
    /** Further diffusers call arguments (FLUX/SD3: prompt_2/3, negative_prompt_2/3, max_sequence_length, true_cfg_scale). */
    readonly extra?: {
      readonly prompt_2?: string;
      readonly prompt_3?: string;
      readonly negative_prompt_2?: string;
      readonly negative_prompt_3?: string;
      readonly max_sequence_length?: number;
      readonly true_cfg_scale?: number;
    };
  };
  /** The exported folder (relative to CONFORMANCE_ROOT) holding the same weights. */
  readonly export: string;
  readonly draws: { readonly file: string; readonly calls: readonly { readonly shape: number[]; readonly site: string }[] };
  /** The scheduler config diffusers ran with (a file of the golden's folder). */
  readonly scheduler_config: string;
  readonly outputs: readonly string[];
  readonly image?: string;
  readonly mask?: string;
  readonly step_latents?: { readonly file: string; readonly shape: number[] };
}

/**
 * Pipeline classes whose diffusers output is wrong in a known, reported way, and how: graphserve does
 * the right thing, and the test checks it against the golden with the reference's mistake applied to
 * graphserve's own final latents. Named in the README.
 */
export const DIFFUSERS_QUIRKS: ReadonlyMap<string, { readonly what: string; readonly decodeWithoutShift: true }> = new Map([
  [
    "StableDiffusion3InpaintPipeline",
    {
      what:
        "diffusers' StableDiffusion3InpaintPipeline decodes latents / scaling_factor without + shift_factor, unlike its own encode and every other SD3 pipeline " +
        "(huggingface/diffusers#13611, issue 1; the fix, #14671, was closed unmerged); graphserve, like OpenVINO GenAI, decodes with the shift",
      decodeWithoutShift: true,
    },
  ],
]);

export function goldenNames(): string[] {
  return existsSync(GOLDENS) ? readdirSync(GOLDENS).sort() : [];
}

export function readGolden(name: string): GoldenCase {
  return { name, ...JSON.parse(readFileSync(join(GOLDENS, name, "case.json"), "utf8")) } as GoldenCase;
}

/** A file of the golden's folder as little-endian float32. */
export function goldenFloats(g: GoldenCase, file: string): Float32Array {
  const b = readFileSync(join(GOLDENS, g.name, file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** A PNG of the golden's folder as RGB. */
export async function goldenImage(g: GoldenCase, file: string): Promise<RgbImage> {
  const { data, width, height } = await decodeRgb(readFileSync(join(GOLDENS, g.name, file)));
  return { data: new Uint8Array(data), width, height };
}

/** The golden's request as graphserve's pipeline takes it (null fields left to the pipeline's defaults). */
export async function goldenRequest(g: GoldenCase): Promise<GenerationRequest> {
  const r = g.request;
  return {
    mode: r.mode === "text-to-image" ? "text2image" : r.mode === "image-to-image" ? "image2image" : "inpainting",
    prompt: r.prompt,
    ...(r.negative_prompt !== null ? { negativePrompt: r.negative_prompt } : {}),
    numInferenceSteps: r.steps,
    ...(r.guidance !== null ? { guidanceScale: r.guidance } : {}),
    ...(r.strength !== null && r.mode !== "text-to-image" ? { strength: r.strength } : {}),
    numImagesPerPrompt: r.n,
    width: r.width,
    height: r.height,
    ...(r.extra?.prompt_2 !== undefined ? { prompt2: r.extra.prompt_2 } : {}),
    ...(r.extra?.prompt_3 !== undefined ? { prompt3: r.extra.prompt_3 } : {}),
    ...(r.extra?.negative_prompt_2 !== undefined ? { negativePrompt2: r.extra.negative_prompt_2 } : {}),
    ...(r.extra?.negative_prompt_3 !== undefined ? { negativePrompt3: r.extra.negative_prompt_3 } : {}),
    ...(r.extra?.max_sequence_length !== undefined ? { maxSequenceLength: r.extra.max_sequence_length } : {}),
    ...(r.extra?.true_cfg_scale !== undefined ? { trueCfgScale: r.extra.true_cfg_scale } : {}),
    ...(g.image ? { image: await goldenImage(g, g.image) } : {}),
    ...(g.mask ? { mask: await goldenImage(g, g.mask) } : {}),
  };
}
