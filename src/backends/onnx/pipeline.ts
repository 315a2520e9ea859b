/**
 * The diffusion pipeline on onnxruntime-node: one loop for every model family
 * (families/: SD, SDXL, SD3, FLUX), which supplies encoders, conditioning,
 * the denoiser's inputs, the latent layout, the schedule's options and defaults.
 * It runs wherever it is created: inside a piscina worker (onnx-worker.ts) in production, on the
 * calling thread in tests and benches. `session.run` blocks its thread.
 *
 * text2image, image2image (VAE encode, strength cut, addNoise) and inpainting
 * (9-channel UNet: [latents ‖ mask ‖ masked-image latents]; any other denoiser:
 * latent blending with the re-noised original outside the mask each step).
 * Guidance runs the negative and positive halves in one denoiser batch of 2N.
 * Latents live in the family's layout (families/types.ts LatentLayout; FLUX:
 * 2×2-packed tokens) from the first draw to the decode, as in diffusers, so
 * per-step latents compare directly.
 * Every random draw of a request goes through one NoiseGenerator in diffusers'
 * order and shapes: the VAE encoder's sample ([1, C, h, w] per encode), the
 * initial latents ([N, C, h, w] in one call), then each ancestral scheduler
 * step ([N, C, h, w]); draws are made in NCHW and packed afterwards. The
 * request's seed starts the servable's generator (src/backends/noise: OVMS's
 * by default).
 * Prompts encoded before come from the pipeline's prompt cache (prompt-cache.ts);
 * step previews are latent→RGB approximations unless the options or the VAE
 * call for decodes (latent-preview.ts).
 */
import { performance } from "node:perf_hooks";
import * as ort from "onnxruntime-node";
import {
  BackendError,
  GenerationCancelledError,
  type GenerationRequest,
  type GenerationResult,
  type RequestLimits,
  type RgbImage,
  checkRequestLimits,
  checkSeed,
  requestLimits,
  type StepDecision,
  type StepProgress,
} from "../types.js";
import { type DiffusionFamily, familyModule } from "./families/index.js";
import type { BatchLayout, Conditioning } from "./families/types.js";
import { type ModelFolderInfo, type ModelSessions, type SessionLoadOptions, loadModelSessions, readModelFolder, releaseSessions } from "./model-folder.js";
import { staticDim } from "./sessions.js";
import { type FittedLatentRgbMap, type LatentRgbMap, type PreviewMode, type VaeAccess, fitLatentRgbMap, latentRgbPreview, previewMode, publishedLatentRgbMap } from "./latent-preview.js";
import { PromptCache, promptCacheKey, promptCacheLimits, tileConditioning } from "./prompt-cache.js";
import { readVaeConfig } from "../model-index.js";
import { grayscaleL, resizeLanczos, resizeRgbLanczos } from "./pil-image.js";
import { type NormalRng, type Scheduler, schedulerFor } from "./schedulers/index.js";
import { type PromptTokenizer, loadPromptTokenizer } from "./tokenizer.js";
import { DEFAULT_NOISE_KIND, type NoiseGenerator, type NoiseKind, createNoiseGenerator } from "../noise/index.js";

export interface PipelineLoadOptions extends SessionLoadOptions {
  /** Overrides scheduler_config.json's `_class_name`. */
  readonly scheduler?: string;
  /** Largest width·height per image (default DEFAULT_MAX_PIXELS). */
  readonly maxPixels?: number;
  /** Largest numImagesPerPrompt (default DEFAULT_MAX_IMAGES_PER_PROMPT). */
  readonly maxImagesPerPrompt?: number;
  /** The generator a request's seed starts (default DEFAULT_NOISE_KIND). */
  readonly noise?: NoiseKind;
  /** How step previews are made (default "approx"; see latent-preview.ts). */
  readonly previews?: PreviewMode;
  /** Prompt-embedding cache bounds (prompt-cache.ts); 0 in either disables it. */
  readonly promptCacheEntries?: number;
  readonly promptCacheMiB?: number;
}

/**
 * A fitted latent→RGB map must reproduce the VAE's colours on held-out probes within this PSNR (dB), else
 * previews stay VAE decodes: 20 dB is an RMS error of 13/255. The demo model's VAE, whose latent pixels
 * carry 4×4 patches of its 32×32 picture, fits at 12 dB (colours visibly wrong); the tiny test VAEs at 37–40 dB
 * on encoded probes and 16 dB on prior draws (their decoder's 3×3 convolution and Tanh).
 */
export const MIN_FITTED_PREVIEW_PSNR = 20;

/** How this pipeline makes step previews, and why. */
export type PreviewInfo =
  | { readonly mode: "approx"; readonly map: LatentRgbMap; readonly validationPsnr?: number; readonly fitMs?: number }
  | { readonly mode: "vae"; readonly reason: "asked" | "fit"; readonly validationPsnr?: number; readonly fitMs?: number; readonly error?: string };

/** Hooks called on the pipeline's own thread between steps. */
export interface PipelineHooks {
  /** After each denoising step; may stop the run or ask for a preview. */
  onStep?(progress: StepProgress): StepDecision | void;
  onPreview?(step: number, images: RgbImage[]): void;
  /** The latents [N, C, h, w] after step `step` (after inpainting's blend); valid only during the call. */
  onStepLatents?(step: number, latents: Float32Array): void;
  /** Polled between steps (and before the first); true stops the run. */
  isCancelled?(): boolean;
}

/** Time spent inside `session.run` during the last generate() (for benches), and what ran. */
export interface RunStats {
  /** Total ms inside every run call. */
  runMs: number;
  /** ms inside the denoiser run of each step. */
  denoiserRunMs: number[];
  /** Text encoder runs (0 when the prompt cache had the conditioning). */
  textEncoderRuns: number;
  /** VAE decoder runs (previews included). */
  vaeDecoderRuns: number;
  /** ms each preview took, pixels included. */
  previewMs: number[];
}

// ---------------------------------------------------------------------------
// Noise.

/**
 * A scheduler's per-element rng that makes one `shape` draw the first time a step asks
 * (diffusers draws once per ancestral step; a step that needs no noise draws nothing).
 */
function stepRng(noise: NoiseGenerator, shape: readonly number[]): NormalRng {
  let buf: Float32Array | undefined;
  let k = 0;
  return () => (buf ??= noise.randn(shape))[k++];
}

/** The scheduler a config describes, refused when it is not of the kind the family's denoiser was trained for. */
export function familyScheduler(family: DiffusionFamily, config: Record<string, unknown>): Scheduler {
  const scheduler = schedulerFor(config);
  const flow = scheduler.className === "FlowMatchEulerDiscreteScheduler";
  if (flow !== (family.scheduleKind === "flow-match")) {
    throw new BackendError(
      family.scheduleKind === "flow-match"
        ? `${family.name} models need FlowMatchEulerDiscreteScheduler, not ${scheduler.className}`
        : `FlowMatchEulerDiscreteScheduler is for flow-matching models (SD3, FLUX), not ${family.name}`,
    );
  }
  return scheduler;
}

// ---------------------------------------------------------------------------
// Image helpers.

/**
 * An inpainting mask as diffusers' mask processor makes it: grayscale ("L"), resized with
 * Lanczos, binarised at 0.5 (white = repaint), then nearest-downsampled to latent size
 * (the top-left pixel of each block).
 */
function inpaintingMask(mask: RgbImage, width: number, height: number, factor: number): { keep: Uint8Array; latent: Float32Array } {
  const gray = resizeLanczos(grayscaleL(mask), width, height).data;
  const keep = new Uint8Array(width * height);
  for (let i = 0; i < keep.length; i++) keep[i] = gray[i] < 128 ? 1 : 0;
  const lw = width / factor;
  const lh = height / factor;
  const latent = new Float32Array(lw * lh);
  for (let y = 0; y < lh; y++) for (let x = 0; x < lw; x++) latent[y * lw + x] = keep[y * factor * width + x * factor] ? 0 : 1;
  return { keep, latent };
}

/** RGB u8 NHWC → float NCHW in [−1, 1]; pixels where `keep` is 0 become 0 (masked image). */
function toNchw(img: RgbImage, keep?: Uint8Array): Float32Array {
  const hw = img.width * img.height;
  const out = new Float32Array(3 * hw);
  for (let i = 0; i < hw; i++) {
    if (keep && !keep[i]) continue;
    out[i] = img.data[i * 3] / 127.5 - 1;
    out[hw + i] = img.data[i * 3 + 1] / 127.5 - 1;
    out[2 * hw + i] = img.data[i * 3 + 2] / 127.5 - 1;
  }
  return out;
}

/** Decoder output [N, 3, H, W] in ≈[−1, 1] → RGB u8 NHWC: round((x + 1) / 2 · 255), clamped. */
export function nchwToRgbU8(src: Float32Array, n: number, height: number, width: number, out = new Uint8Array(n * height * width * 3)): Uint8Array {
  const hw = height * width;
  for (let b = 0; b < n; b++) {
    const base = b * 3 * hw;
    const o = b * hw * 3;
    for (let c = 0; c < 3; c++) {
      const plane = base + c * hw;
      for (let i = 0, j = o + c; i < hw; i++, j += 3) {
        // floor(y + 0.5) = Math.round(y); y < 0 and y > 255 clamp (NaN → 0).
        const y = (src[plane + i] + 1) * 127.5 + 0.5;
        out[j] = y >= 255 ? 255 : y > 0 ? y | 0 : 0;
      }
    }
  }
  return out;
}

/**
 * The sinusoidal embedding of a guidance weight w (LCM's `timestep_cond`):
 * [sin(1000·w·f_k) … , cos(1000·w·f_k) …] with f_k = exp(−k·ln(10000)/(half − 1)),
 * zero-padded to `dim` when odd.
 */
export function guidanceEmbedding(w: number, dim: number): Float32Array {
  const half = Math.floor(dim / 2);
  const out = new Float32Array(dim);
  const scale = Math.log(10000) / Math.max(1, half - 1);
  for (let k = 0; k < half; k++) {
    const a = w * 1000 * Math.exp(-k * scale);
    out[k] = Math.sin(a);
    out[half + k] = Math.cos(a);
  }
  return out;
}

// ---------------------------------------------------------------------------

/** What checking a request needs to know about a loaded model; known on the main thread too, so requests are refused before they queue. */
export interface RequestRules {
  readonly info: ModelFolderInfo;
  readonly hasVaeEncoder: boolean;
  /** Latent size of a static-shape export. */
  readonly staticLatentSize: { readonly width: number; readonly height: number } | undefined;
  readonly limits: RequestLimits;
  readonly schedulerConfig: Record<string, unknown>;
}

export interface CheckedRequest {
  readonly width: number;
  readonly height: number;
  readonly n: number;
  readonly steps: number;
  readonly guidance: number;
  readonly strength: number;
  /** T5 length (families with a T5 encoder; 0 otherwise). */
  readonly maxSequenceLength: number;
  /** The request's schedule, set up (the check had to build it to know it is valid; generate() runs it). */
  readonly scheduler: Scheduler;
}

/** The request's effective settings, or the BackendError generate() would fail with, without running anything. */
export function checkGenerationRequest(rules: RequestRules, req: GenerationRequest): CheckedRequest {
  const { info } = rules;
  const mode = req.mode;
  if (mode !== "text2image" && mode !== "image2image" && mode !== "inpainting") throw new BackendError(`unknown mode ${JSON.stringify(mode)}`);
  if (info.inpainting && mode !== "inpainting") throw new BackendError(`this model (${info.pipelineClass}) is an inpainting model; ${mode} is not supported`);
  if (mode !== "text2image" && !rules.hasVaeEncoder) throw new BackendError(`${mode} needs a vae_encoder, which this model does not have`);
  if (mode !== "text2image" && !req.image) throw new BackendError(`${mode} needs an input image`);
  if (mode === "inpainting" && !req.mask) throw new BackendError("inpainting needs a mask");
  for (const [what, img] of [["image", req.image], ["mask", req.mask]] as const) {
    if (img && img.data.length !== img.width * img.height * 3) throw new BackendError(`${what}: data length ${img.data.length} is not width·height·3 = ${img.width * img.height * 3}`);
  }
  if (req.image && req.mask && (req.image.width !== req.mask.width || req.image.height !== req.mask.height)) {
    throw new BackendError(`mask size ${req.mask.width}×${req.mask.height} differs from the image's ${req.image.width}×${req.image.height}`);
  }
  const native = info.sampleSize * info.vaeScaleFactor;
  const width = req.width ?? req.image?.width ?? native;
  const height = req.height ?? req.image?.height ?? native;
  const m = info.vaeScaleFactor;
  const multiple = info.sizeMultiple;
  for (const [what, v] of [["width", width], ["height", height]] as const) {
    if (!Number.isInteger(v) || v <= 0 || v % multiple !== 0) throw new BackendError(`${what} must be a positive multiple of ${multiple} for this model, got ${v}`);
  }
  const fixed = rules.staticLatentSize;
  if (fixed && (width !== fixed.width * m || height !== fixed.height * m)) {
    throw new BackendError(`this model was exported for ${fixed.width * m}×${fixed.height * m} only, got ${width}×${height}`);
  }
  const n = req.numImagesPerPrompt ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new BackendError(`numImagesPerPrompt must be a positive integer, got ${n}`);
  checkRequestLimits(width, height, n, rules.limits);
  checkSeed(req.rngSeed);
  const family = familyModule(info.family);
  const defaults = family.defaults(info.pipelineClass, mode);
  const steps = req.numInferenceSteps ?? defaults.steps;
  if (!Number.isInteger(steps) || steps < 1) throw new BackendError(`numInferenceSteps must be a positive integer, got ${steps}`);
  const guidance = req.guidanceScale ?? defaults.guidance;
  if (!Number.isFinite(guidance)) throw new BackendError(`guidanceScale must be a number, got ${guidance}`);
  const strength = mode === "text2image" ? 1 : req.strength ?? defaults.strength;
  if (!(strength > 0 && strength <= 1)) throw new BackendError(`strength must be in (0, 1], got ${strength}`);
  family.checkRequest(req, info, guidance);
  // The schedule itself can refuse (too many steps for the training schedule, a strength that leaves no step).
  const scheduler = familyScheduler(family, rules.schedulerConfig);
  try {
    scheduler.setTimesteps(steps, { strength, ...family.scheduleOptions(steps, height / m, width / m, info) });
  } catch (e) {
    throw new BackendError((e as Error).message, { cause: e });
  }
  return { width, height, n, steps, guidance, strength, maxSequenceLength: req.maxSequenceLength ?? defaults.maxSequenceLength ?? 0, scheduler };
}

/** The latents a run starts from, and what inpainting keeps for every step. */
interface PreparedLatents {
  /** [N, C, h, w], scaled to the first step's noise level. */
  latents: Float32Array;
  initialNoise: Float32Array;
  /** Scaled image latents tiled to N (image2image, inpainting). */
  imageLatents?: Float32Array;
  /** [h·w], 1 = repaint (inpainting). */
  maskLatent?: Float32Array;
  /** The latent mask for every value of one image's latents, in the family's layout (inpainting by blending). */
  blendMask?: Float32Array;
  /** [C, h, w] (9-channel UNet). */
  maskedImageLatents?: Float32Array;
  vaeEncodeMs?: number;
}

/** A run's fixed shapes and the denoiser's feeds, allocated once and refilled every step. */
interface DenoiseState {
  readonly layout: BatchLayout;
  /** The scale combining the two guided halves. */
  readonly guidanceScale: number;
  readonly latentShape: readonly number[];
  /** C·h·w of one image. */
  readonly per: number;
  /** Values of one batch item's sample input (per, or the 9-channel UNet's (2C + 1)·h·w). */
  readonly samplePer: number;
  readonly feeds: Record<string, ort.Tensor>;
  readonly sampleBuf: Float32Array;
  readonly tsData: Float32Array | BigInt64Array;
  /** The scaled latents of a 9-channel UNet's run, before they go into the sample's first channels. */
  readonly scaled?: Float32Array;
  readonly noisePred: Float32Array;
  /** Inpainting by blending: the re-noised original of the next step. */
  readonly blend?: Float32Array;
}

/**
 * The generic diffusion loop: check inputs → encode prompt → prepare latents →
 * denoise step (× steps) → decode. What differs between families (encoders,
 * conditioning inputs, defaults) is asked of the family module (families/).
 */
export class OnnxPipeline {
  /** Time inside session.run during the last generate(). */
  readonly stats: RunStats = { runMs: 0, denoiserRunMs: [], textEncoderRuns: 0, vaeDecoderRuns: 0, previewMs: [] };
  private limits: RequestLimits = requestLimits();
  private noiseKind: NoiseKind = DEFAULT_NOISE_KIND;
  private cache = new PromptCache();
  private previewInfo: PreviewInfo = { mode: "vae", reason: "asked" };
  private readonly family: DiffusionFamily;

  private constructor(
    readonly info: ModelFolderInfo,
    readonly sessions: ModelSessions,
    private readonly tokenizers: readonly (PromptTokenizer | undefined)[],
    private readonly schedulerConfig: Record<string, unknown>,
  ) {
    this.family = familyModule(info.family);
  }

  static async load(dir: string, opts: PipelineLoadOptions = {}): Promise<OnnxPipeline> {
    const limits = requestLimits(opts);
    const mode = previewMode(opts.previews);
    const cacheLimits = promptCacheLimits(opts.promptCacheEntries, opts.promptCacheMiB);
    const info = await readModelFolder(dir);
    const family = familyModule(info.family);
    const schedulerConfig = opts.scheduler ? { ...info.schedulerConfig, _class_name: opts.scheduler } : info.schedulerConfig;
    try {
      familyScheduler(family, schedulerConfig);
    } catch (e) {
      throw new BackendError(`scheduler "${opts.scheduler}": ${(e as Error).message}`, { cause: e });
    }
    const tokenizers: (PromptTokenizer | undefined)[] = [];
    for (const [i, t] of info.tokenizerDirs.entries()) {
      try {
        tokenizers.push(t === undefined ? undefined : await loadPromptTokenizer(t, family.textEncoders[i].tokenizerKind));
      } catch (e) {
        throw new BackendError((e as Error).message, { cause: e });
      }
    }
    const sessions = await loadModelSessions(info, opts);
    const p = new OnnxPipeline(info, sessions, tokenizers, schedulerConfig);
    p.limits = limits;
    p.noiseKind = opts.noise ?? DEFAULT_NOISE_KIND;
    p.cache = new PromptCache(cacheLimits);
    try {
      p.previewInfo = mode === "vae" ? { mode, reason: "asked" } : await p.approxPreviews();
    } catch (e) {
      await p.dispose();
      throw e;
    }
    return p;
  }

  /**
   * Approximate previews: the published map for a VAE the families ship, else one fitted to this VAE now;
   * a fit under MIN_FITTED_PREVIEW_PSNR keeps VAE-decoded previews.
   */
  private async approxPreviews(): Promise<PreviewInfo> {
    const published = publishedLatentRgbMap((await readVaeConfig(this.info.dir)).config);
    if (published) return { mode: "approx", map: published };
    let fitted: FittedLatentRgbMap;
    try {
      fitted = await this.fitPreviewMap();
    } catch (e) {
      // A VAE that refuses the probes still decodes requests: previews stay decodes, the model still loads.
      return { mode: "vae", reason: "fit", error: (e as Error).message };
    }
    const { map, validationPsnr, ms: fitMs } = fitted;
    return validationPsnr >= MIN_FITTED_PREVIEW_PSNR ? { mode: "approx", map, validationPsnr, fitMs } : { mode: "vae", reason: "fit", validationPsnr, fitMs };
  }

  /** A latent→RGB map fitted to this model's VAE (fitLatentRgbMap), whatever its quality (load uses it; benches compare it). */
  fitPreviewMap(): Promise<FittedLatentRgbMap> {
    const s = this.sessions;
    const C = this.info.latentChannels;
    const f = this.info.vaeScaleFactor;
    const sf = this.info.vaeScalingFactor;
    const shift = this.info.vaeShiftFactor;
    const h = staticDim(s.vaeDecoder, "latent_sample", "input", 2);
    const w = staticDim(s.vaeDecoder, "latent_sample", "input", 3);
    // Encoder means are deterministic; an in-graph sample (latent_sample) is not, so those fit on prior draws.
    const encoder = s.vaeEncoderOutput === "latent_parameters" ? s.vaeEncoder : undefined;
    const vae: VaeAccess = {
      channels: C,
      factor: f,
      decode: async (z, n, zh, zw) => (await this.decodeScaled(new Float32Array(z), n, zh, zw)).data as Float32Array,
      encode: encoder && (async (pixels, height, width) => {
        const out = (await encoder.run({ sample: new ort.Tensor("float32", pixels, [1, 3, height, width]) })).latent_parameters as ort.Tensor;
        const mean = (out.data as Float32Array).slice(0, C * (height / f) * (width / f));
        for (let i = 0; i < mean.length; i++) mean[i] = (mean[i] - shift) * sf;
        return mean;
      }),
      staticLatentSize: h !== undefined && w !== undefined ? { height: h, width: w } : undefined,
    };
    return fitLatentRgbMap(vae);
  }

  /** Conditioning of prompts seen before (one image's rows, before tiling). */
  get promptCache(): PromptCache {
    return this.cache;
  }

  /** How previews are made (decided at load). */
  get previews(): PreviewInfo {
    return this.previewInfo;
  }

  async dispose(): Promise<void> {
    await releaseSessions(this.sessions);
  }

  private async run(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType> {
    const t0 = performance.now();
    const out = await session.run(feeds);
    this.stats.runMs += performance.now() - t0;
    return out;
  }

  // 1. Check inputs.
  private checkInputs(req: GenerationRequest): CheckedRequest {
    return checkGenerationRequest(
      { info: this.info, hasVaeEncoder: this.sessions.vaeEncoder !== undefined, staticLatentSize: this.sessions.staticLatentSize, limits: this.limits, schedulerConfig: this.schedulerConfig },
      req,
    );
  }

  // 2. Encode the prompt (the family's encoders), or take it from the prompt cache; one image's rows, tiled to n.
  private async encodePrompt(req: GenerationRequest, checked: CheckedRequest, cfg: boolean): Promise<Conditioning> {
    const key = promptCacheKey(req, cfg, checked.maxSequenceLength);
    let one = this.cache.get(key);
    if (!one) {
      const run = (session: ort.InferenceSession, feeds: Record<string, ort.Tensor>) => {
        this.stats.textEncoderRuns++;
        return this.run(session, feeds);
      };
      one = await this.family.encodePrompt({ encoders: this.sessions, tokenizers: this.tokenizers, info: this.info, maxSequenceLength: checked.maxSequenceLength, run }, req, 1, cfg);
      this.cache.set(key, one);
    }
    // Tiling copies: what the cache holds is never fed to a session.
    return tileConditioning(one, checked.n);
  }

  /** [n, C, h, w] latents in the family's layout. */
  private toLayout(latents: Float32Array, n: number, h: number, w: number): Float32Array {
    return this.family.denoiser.layout.fromNchw(latents, n, this.info.latentChannels, h, w);
  }

  /**
   * Scaled image latents [1, C, h, w]. A `latent_parameters` output (mean ‖ logvar) is sampled as
   * diffusers' DiagonalGaussianDistribution does: mean + exp(½·clamp(logvar, −30, 20))·ε with one
   * [1, C, h, w] draw; a `latent_sample` output (optimum ≤ 1.22, legacy layout) was sampled inside
   * the graph and is taken as is.
   */
  private async vaeEncode(pixels: Float32Array, height: number, width: number, noise: NoiseGenerator): Promise<Float32Array> {
    const s = this.sessions;
    if (!s.vaeEncoder) throw new BackendError(`${this.info.dir}: no vae_encoder/model.onnx, needed for image2image and inpainting`);
    const out = await this.run(s.vaeEncoder, { sample: new ort.Tensor("float32", pixels, [1, 3, height, width]) });
    const t = out[s.vaeEncoderOutput!] as ort.Tensor;
    const C = this.info.latentChannels;
    const [, , h, w] = t.dims as number[];
    const n = C * h * w;
    const data = t.data as Float32Array;
    const lat = new Float32Array(data.subarray(0, n));
    if (s.vaeEncoderOutput === "latent_parameters") {
      const eps = noise.randn([1, C, h, w]);
      for (let i = 0; i < n; i++) lat[i] += Math.exp(0.5 * Math.min(20, Math.max(-30, data[n + i]))) * eps[i];
    }
    const sf = this.info.vaeScalingFactor;
    const shift = this.info.vaeShiftFactor;
    for (let i = 0; i < lat.length; i++) lat[i] = (lat[i] - shift) * sf;
    return lat;
  }

  /**
   * 3. Prepare latents: the input image / mask → latents, with the draws in diffusers' order:
   * image encode, initial noise ([N, C, h, w] in one call), masked-image encode.
   */
  private async prepareLatents(req: GenerationRequest, checked: CheckedRequest, scheduler: Scheduler, noise: NoiseGenerator): Promise<PreparedLatents> {
    const { width, height, n, strength } = checked;
    const info = this.info;
    const C = info.latentChannels;
    const lh = height / info.vaeScaleFactor;
    const lw = width / info.vaeScaleFactor;
    const per = C * lh * lw;
    const tEnc = performance.now();
    const image = req.mode === "text2image" ? undefined : resizeRgbLanczos(req.image!, width, height);
    let keep: Uint8Array | undefined; // per pixel, 1 = keep (inpainting)
    let maskLatent: Float32Array | undefined;
    let blendMask: Float32Array | undefined;
    if (req.mode === "inpainting") {
      const mask = inpaintingMask(req.mask!, width, height, info.vaeScaleFactor);
      keep = mask.keep;
      maskLatent = mask.latent;
      if (!info.inpainting) {
        const full = new Float32Array(per);
        for (let c = 0; c < C; c++) full.set(maskLatent, c * lh * lw);
        blendMask = this.toLayout(full, 1, lh, lw);
      }
    }
    let imageLatents: Float32Array | undefined;
    // A 9-channel inpainting UNet at strength 1 starts from pure noise and needs no image latents.
    if (image && !(info.inpainting && strength === 1)) {
      const lat = this.toLayout(await this.vaeEncode(toNchw(image), height, width, noise), 1, lh, lw);
      imageLatents = new Float32Array(n * per);
      for (let k = 0; k < n; k++) imageLatents.set(lat, k * per);
    }

    const initialNoise = this.toLayout(noise.randn([n, C, lh, lw]), n, lh, lw);
    let latents: Float32Array;
    if (imageLatents && !(req.mode === "inpainting" && strength === 1)) latents = scheduler.addNoise(imageLatents, initialNoise, 0);
    else {
      latents = new Float32Array(initialNoise.length);
      const sig = scheduler.initNoiseSigma;
      for (let i = 0; i < initialNoise.length; i++) latents[i] = initialNoise[i] * sig;
    }
    let maskedImageLatents: Float32Array | undefined;
    if (req.mode === "inpainting") {
      // diffusers encodes the masked image for every UNet; a 4-channel UNet only needs its draw consumed.
      if (info.inpainting) maskedImageLatents = await this.vaeEncode(toNchw(image!, keep), height, width, noise);
      else if (this.sessions.vaeEncoderOutput === "latent_parameters") noise.randn([1, C, lh, lw]);
    }
    return { latents, initialNoise, imageLatents, maskLatent, blendMask, maskedImageLatents, vaeEncodeMs: image ? performance.now() - tEnc : undefined };
  }

  /** The denoiser's feeds for the run: the sample buffer, the timestep as declared, and the family's conditioning. */
  private denoiseState(req: GenerationRequest, checked: CheckedRequest, cond: Conditioning, prepared: PreparedLatents, guidanceScale: number, cfg: boolean, timeCond: boolean): DenoiseState {
    const { width, height, n, guidance } = checked;
    const info = this.info;
    const s = this.sessions;
    const spec = this.family.denoiser;
    const C = info.latentChannels;
    const lh = height / info.vaeScaleFactor;
    const lw = width / info.vaeScaleFactor;
    const plane = lh * lw;
    const per = C * plane;
    const batch = cfg ? 2 * n : n;
    const layout: BatchLayout = { n, batch, cfg, width, height, lh, lw };
    const inC = info.denoiserInChannels;
    const samplePer = info.inpainting ? inC * plane : per;
    const sampleBuf = new Float32Array(batch * samplePer);
    if (info.inpainting) {
      // Mask and masked-image latents are the same every step: write them once.
      for (let b = 0; b < batch; b++) {
        const base = b * inC * plane;
        sampleBuf.set(prepared.maskLatent!, base + C * plane);
        sampleBuf.set(prepared.maskedImageLatents!, base + (C + 1) * plane);
      }
    }
    const feeds: Record<string, ort.Tensor> = {
      [spec.sampleInput]: new ort.Tensor("float32", sampleBuf, spec.layout.sampleDims(batch, inC, C, lh, lw)),
      encoder_hidden_states: new ort.Tensor("float32", cond.hidden, [batch, cond.seq, cond.dim]),
    };
    // The timestep as the UNet declares it: a scalar, or one value per batch item (or its static length).
    const ts = s.timestep;
    const tsLength = ts.length === 0 ? 1 : ts.length === "batch" ? batch : ts.length;
    const tsData = ts.type === "int64" ? new BigInt64Array(tsLength) : new Float32Array(tsLength);
    feeds.timestep = new ort.Tensor(ts.type === "int64" ? "int64" : "float32", tsData, ts.length === 0 ? [] : [tsLength]);
    Object.assign(feeds, this.family.conditioningFeeds(cond, layout, info, guidance, s.denoiser));
    if (timeCond) {
      const dim = info.timeCondProjDim ?? 256;
      const emb = guidanceEmbedding(guidance - 1, dim);
      const data = new Float32Array(batch * dim);
      for (let b = 0; b < batch; b++) data.set(emb, b * dim);
      feeds.timestep_cond = new ort.Tensor("float32", data, [batch, dim]);
    }
    return {
      layout,
      guidanceScale,
      latentShape: [n, C, lh, lw],
      per,
      samplePer,
      feeds,
      sampleBuf,
      tsData,
      scaled: samplePer === per ? undefined : new Float32Array(n * per),
      noisePred: new Float32Array(n * per),
      blend: prepared.blendMask ? new Float32Array(n * per) : undefined,
    };
  }

  /** 4. One denoising step: the denoiser on the scaled latents (guided batch), guidance, the scheduler update, inpainting's blend. */
  private async denoiseStep(i: number, latents: Float32Array, st: DenoiseState, prepared: PreparedLatents, scheduler: Scheduler, noise: NoiseGenerator): Promise<Float32Array> {
    const { n, cfg } = st.layout;
    const { per, samplePer } = st;
    const spec = this.family.denoiser;
    if (samplePer === per) {
      // The sample is the scaled latents themselves: scale straight into the first half, copy it to the second under CFG.
      scheduler.scaleModelInput(latents, i, st.sampleBuf.subarray(0, n * per));
      if (cfg) st.sampleBuf.copyWithin(n * per, 0, n * per);
    } else {
      // 9-channel UNet: the scaled latents go into each batch item's first C channels (twice under CFG).
      const x = scheduler.scaleModelInput(latents, i, st.scaled!);
      for (let half = 0; half < (cfg ? 2 : 1); half++) {
        for (let k = 0; k < n; k++) st.sampleBuf.set(x.subarray(k * per, (k + 1) * per), (half * n + k) * samplePer);
      }
    }
    const t = scheduler.timesteps[i];
    if (st.tsData instanceof BigInt64Array) st.tsData.fill(BigInt(Math.round(t)));
    else st.tsData.fill(spec.timestepDivisor === 1 ? t : Math.fround(t / spec.timestepDivisor));
    const tRun = performance.now();
    const out = await this.sessions.denoiser.run(st.feeds);
    const runMs = performance.now() - tRun;
    this.stats.runMs += runMs;
    this.stats.denoiserRunMs.push(runMs);
    const pred = (out[spec.output] as ort.Tensor).data as Float32Array;
    let eps: Float32Array;
    if (cfg) {
      const half = n * per;
      const g = st.guidanceScale;
      const noisePred = st.noisePred;
      for (let j = 0; j < half; j++) {
        const u = pred[j];
        noisePred[j] = u + g * (pred[half + j] - u);
      }
      eps = noisePred;
    } else eps = pred;
    latents = scheduler.step(eps, i, latents, stepRng(noise, st.latentShape), latents);
    if (st.blend) {
      // Inpainting by blending: outside the mask, keep the original re-noised to the next step's level.
      // diffusers computes m·latents + (1 − m)·original; the mask is binary, so that is a choice per value.
      const imageLatents = prepared.imageLatents!;
      const mask = prepared.blendMask!;
      const orig = i + 1 < scheduler.timesteps.length ? scheduler.addNoise(imageLatents, prepared.initialNoise, i + 1, st.blend) : imageLatents;
      for (let k = 0; k < n; k++) {
        const o = k * per;
        for (let j = 0; j < per; j++) if (mask[j] === 0) latents[o + j] = orig[o + j];
      }
    }
    return latents;
  }

  /** [n, C, h, w] NCHW latents from the family's layout (a copy). */
  private toNchw(latents: Float32Array, n: number, h: number, w: number): Float32Array {
    const nchw = this.family.denoiser.layout.toNchw(latents, n, this.info.latentChannels, h, w);
    return nchw === latents ? new Float32Array(latents) : nchw;
  }

  /** The VAE decoder on scaled NCHW latents `z` (overwritten with z / scaling_factor + shift_factor): its `sample`, [n, 3, H, W]. */
  private async decodeScaled(z: Float32Array, n: number, h: number, w: number): Promise<ort.Tensor> {
    const sf = this.info.vaeScalingFactor;
    const shift = this.info.vaeShiftFactor;
    for (let i = 0; i < z.length; i++) z[i] = z[i] / sf + shift;
    this.stats.vaeDecoderRuns++;
    const out = await this.run(this.sessions.vaeDecoder, { latent_sample: new ort.Tensor("float32", z, [n, this.info.latentChannels, h, w]) });
    return out.sample as ort.Tensor;
  }

  /** 5. Decode: back to NCHW, unscale (z / scaling_factor + shift_factor), VAE decoder, RGB u8. */
  private async vaeDecode(latents: Float32Array, n: number, h: number, w: number): Promise<Uint8Array> {
    const t = await this.decodeScaled(this.toNchw(latents, n, h, w), n, h, w);
    const [, , H, W] = t.dims as number[];
    return nchwToRgbU8(t.data as Float32Array, n, H, W);
  }

  /** A preview of the current latents at the request's size: the latent→RGB map, or a VAE decode (PreviewInfo). */
  private async preview(latents: Float32Array, n: number, h: number, w: number, width: number, height: number): Promise<Uint8Array> {
    const p = this.previewInfo;
    if (p.mode === "vae") return this.vaeDecode(latents, n, h, w);
    // The map only reads the latents: no copy needed.
    return latentRgbPreview(p.map, this.family.denoiser.layout.toNchw(latents, n, this.info.latentChannels, h, w), n, h, w, width, height);
  }

  /** `noise` replaces the seed's generator (tests replay a reference's recorded draws through it). */
  async generate(req: GenerationRequest, hooks: PipelineHooks = {}, noise?: NoiseGenerator): Promise<GenerationResult> {
    const t0 = performance.now();
    Object.assign(this.stats, { runMs: 0, denoiserRunMs: [], textEncoderRuns: 0, vaeDecoderRuns: 0, previewMs: [] });
    const checked = this.checkInputs(req);
    const { width, height, n, guidance, scheduler } = checked;
    const s = this.sessions;
    // LCM-style UNets take the guidance as an embedding (`timestep_cond`) instead of a CFG batch.
    const timeCond = s.denoiser.inputNames.includes("timestep_cond");
    const { cfg, scale } = this.family.guidance(req, guidance, timeCond);
    const batch = cfg ? 2 * n : n;
    if (s.staticBatch !== undefined && s.staticBatch !== batch) {
      throw new BackendError(`this model's ${this.family.denoiser.component} was exported for batch ${s.staticBatch}; the request needs ${batch} (numImagesPerPrompt ${n}${cfg ? ", doubled by guidance" : ""})`);
    }
    noise ??= createNoiseGenerator(this.noiseKind, req.rngSeed ?? Math.floor(Math.random() * 2 ** 32));

    if (hooks.isCancelled?.()) throw new GenerationCancelledError(-1);

    const tText = performance.now();
    const cond = await this.encodePrompt(req, checked, cfg);
    const textEncodingMs = performance.now() - tText;

    const prepared = await this.prepareLatents(req, checked, scheduler, noise);
    const st = this.denoiseState(req, checked, cond, prepared, scale, cfg, timeCond);
    const [, , lh, lw] = st.latentShape;
    let latents = prepared.latents;

    const total = scheduler.timesteps.length;
    const stepMs: number[] = [];
    for (let i = 0; i < total; i++) {
      const tStep = performance.now();
      latents = await this.denoiseStep(i, latents, st, prepared, scheduler, noise);
      hooks.onStepLatents?.(i, latents);
      const ms = performance.now() - tStep;
      stepMs.push(ms);
      const decision = hooks.onStep?.({ step: i, totalSteps: total, stepMs: ms });
      if (decision?.preview && hooks.onPreview) {
        const tPreview = performance.now();
        const rgb = await this.preview(latents, n, lh, lw, width, height);
        this.stats.previewMs.push(performance.now() - tPreview);
        const imgs: RgbImage[] = [];
        for (let k = 0; k < n; k++) imgs.push({ width, height, data: rgb.subarray(k * width * height * 3, (k + 1) * width * height * 3) });
        hooks.onPreview(i, imgs);
      }
      if (decision?.stop || hooks.isCancelled?.()) throw new GenerationCancelledError(i);
    }

    const tDec = performance.now();
    const data = await this.vaeDecode(latents, n, lh, lw);
    const vaeDecodeMs = performance.now() - tDec;
    const vaeEncodeMs = prepared.vaeEncodeMs;
    return {
      data,
      count: n,
      width,
      height,
      timings: { textEncodingMs, stepMs, vaeDecodeMs, ...(vaeEncodeMs !== undefined ? { vaeEncodeMs } : {}), totalMs: performance.now() - t0 },
    };
  }
}
