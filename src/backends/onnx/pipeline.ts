/**
 * The SD / SDXL diffusion pipeline on onnxruntime-node. It runs wherever it is
 * created: inside a piscina worker (onnx-worker.ts) in production, on the
 * calling thread in tests and benches. `session.run` blocks its thread.
 *
 * text2image, image2image (VAE encode, strength cut, addNoise) and inpainting
 * (9-channel UNet: [latents ‖ mask ‖ masked-image latents]; 4-channel UNet:
 * latent blending with the re-noised original outside the mask each step).
 * Classifier-free guidance runs the unconditional and conditional halves in
 * one UNet batch of 2N. Noise comes from the request's seed through the
 * servable's generator (src/backends/noise: OVMS's by default), so a seed
 * gives bit-identical output on the same machine.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
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
import { type ModelFolderInfo, type ModelSessions, type SessionLoadOptions, loadModelSessions, readModelFolder, releaseSessions } from "./model-folder.js";
import { type Scheduler, createScheduler } from "./schedulers/index.js";
import { type ClipTokenizer, loadClipTokenizer } from "./tokenizer.js";
import { DEFAULT_NOISE_KIND, type NoiseKind, createNoiseGenerator } from "../noise/index.js";

export interface PipelineLoadOptions extends SessionLoadOptions {
  /** Overrides scheduler_config.json's `_class_name`. */
  readonly scheduler?: string;
  /** Largest width·height per image (default DEFAULT_MAX_PIXELS). */
  readonly maxPixels?: number;
  /** Largest numImagesPerPrompt (default DEFAULT_MAX_IMAGES_PER_PROMPT). */
  readonly maxImagesPerPrompt?: number;
  /** The generator a request's seed starts (default DEFAULT_NOISE_KIND). */
  readonly noise?: NoiseKind;
}

/** Hooks called on the pipeline's own thread between steps. */
export interface PipelineHooks {
  /** After each denoising step; may stop the run or ask for a preview. */
  onStep?(progress: StepProgress): StepDecision | void;
  onPreview?(step: number, images: RgbImage[]): void;
  /** Polled between steps (and before the first); true stops the run. */
  isCancelled?(): boolean;
}

/** Time spent inside `session.run` during the last generate() (for benches). */
export interface RunStats {
  /** Total ms inside every run call. */
  runMs: number;
  /** ms inside the UNet run of each step. */
  unetRunMs: number[];
}

// ---------------------------------------------------------------------------
// Image helpers.

/** Bilinear resize of an RGB u8 image (returns the input when the size already matches). */
export function resizeRgb(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === width && img.height === height) return img;
  const out = new Uint8Array(width * height * 3);
  const sx = img.width / width;
  const sy = img.height / height;
  for (let y = 0; y < height; y++) {
    const fy = Math.max(0, (y + 0.5) * sy - 0.5);
    const y0 = Math.min(img.height - 1, Math.floor(fy));
    const y1 = Math.min(img.height - 1, y0 + 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.max(0, (x + 0.5) * sx - 0.5);
      const x0 = Math.min(img.width - 1, Math.floor(fx));
      const x1 = Math.min(img.width - 1, x0 + 1);
      const wx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const p00 = img.data[(y0 * img.width + x0) * 3 + c];
        const p01 = img.data[(y0 * img.width + x1) * 3 + c];
        const p10 = img.data[(y1 * img.width + x0) * 3 + c];
        const p11 = img.data[(y1 * img.width + x1) * 3 + c];
        const v = (p00 * (1 - wx) + p01 * wx) * (1 - wy) + (p10 * (1 - wx) + p11 * wx) * wy;
        out[(y * width + x) * 3 + c] = Math.round(v);
      }
    }
  }
  return { width, height, data: out };
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

interface Conditioning {
  /** [B, seq, D] with B = 2N (uncond first) under CFG, else N. */
  hidden: Float32Array;
  seq: number;
  dim: number;
  /** SDXL: [B, textEmbedsDim]. */
  textEmbeds?: Float32Array;
  textEmbedsDim?: number;
}

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
  for (const [what, v] of [["width", width], ["height", height]] as const) {
    if (!Number.isInteger(v) || v <= 0 || v % m !== 0) throw new BackendError(`${what} must be a positive multiple of ${m}, got ${v}`);
  }
  const fixed = rules.staticLatentSize;
  if (fixed && (width !== fixed.width * m || height !== fixed.height * m)) {
    throw new BackendError(`this model was exported for ${fixed.width * m}×${fixed.height * m} only, got ${width}×${height}`);
  }
  const n = req.numImagesPerPrompt ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new BackendError(`numImagesPerPrompt must be a positive integer, got ${n}`);
  checkRequestLimits(width, height, n, rules.limits);
  checkSeed(req.rngSeed);
  const steps = req.numInferenceSteps ?? 50;
  if (!Number.isInteger(steps) || steps < 1) throw new BackendError(`numInferenceSteps must be a positive integer, got ${steps}`);
  const guidance = req.guidanceScale ?? 7.5;
  if (!Number.isFinite(guidance)) throw new BackendError(`guidanceScale must be a number, got ${guidance}`);
  const strength = mode === "text2image" ? 1 : req.strength ?? (mode === "inpainting" ? 1 : 0.8);
  if (!(strength > 0 && strength <= 1)) throw new BackendError(`strength must be in (0, 1], got ${strength}`);
  // The schedule itself can refuse (too many steps for the training schedule, a strength that leaves no step).
  try {
    createScheduler(rules.schedulerConfig).setTimesteps(steps, { strength });
  } catch (e) {
    throw new BackendError((e as Error).message, { cause: e });
  }
  return { width, height, n, steps, guidance, strength };
}

export class OnnxPipeline {
  /** Time inside session.run during the last generate(). */
  readonly stats: RunStats = { runMs: 0, unetRunMs: [] };
  private readonly forceZerosForEmptyPrompt: boolean;
  private limits: RequestLimits = requestLimits();
  private noiseKind: NoiseKind = DEFAULT_NOISE_KIND;

  private constructor(
    readonly info: ModelFolderInfo,
    readonly sessions: ModelSessions,
    private readonly tokenizers: readonly ClipTokenizer[],
    private readonly schedulerConfig: Record<string, unknown>,
    indexJson: Record<string, unknown>,
  ) {
    this.forceZerosForEmptyPrompt = indexJson.force_zeros_for_empty_prompt === true;
  }

  static async load(dir: string, opts: PipelineLoadOptions = {}): Promise<OnnxPipeline> {
    const limits = requestLimits(opts);
    const info = await readModelFolder(dir);
    const schedulerConfig = opts.scheduler ? { ...info.schedulerConfig, _class_name: opts.scheduler } : info.schedulerConfig;
    try {
      createScheduler(schedulerConfig);
    } catch (e) {
      throw new BackendError(`scheduler "${opts.scheduler}": ${(e as Error).message}`, { cause: e });
    }
    const tokenizers: ClipTokenizer[] = [];
    for (const t of info.tokenizerDirs) {
      try {
        tokenizers.push(await loadClipTokenizer(t));
      } catch (e) {
        throw new BackendError((e as Error).message, { cause: e });
      }
    }
    const sessions = await loadModelSessions(info, opts);
    const indexJson = JSON.parse(await readFile(join(dir, "model_index.json"), "utf8")) as Record<string, unknown>;
    const p = new OnnxPipeline(info, sessions, tokenizers, schedulerConfig, indexJson);
    p.limits = limits;
    p.noiseKind = opts.noise ?? DEFAULT_NOISE_KIND;
    return p;
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

  private idsTensor(ids: Int32Array[], dtype: "int32" | "int64"): ort.Tensor {
    const len = ids[0].length;
    if (dtype === "int32") {
      const data = new Int32Array(ids.length * len);
      ids.forEach((a, i) => data.set(a, i * len));
      return new ort.Tensor("int32", data, [ids.length, len]);
    }
    const data = new BigInt64Array(ids.length * len);
    ids.forEach((a, i) => a.forEach((v, j) => (data[i * len + j] = BigInt(v))));
    return new ort.Tensor("int64", data, [ids.length, len]);
  }

  /** Encodes [negative, positive] (or just positive) and tiles each to N. */
  private async encodePrompts(req: GenerationRequest, n: number, cfg: boolean): Promise<Conditioning> {
    const s = this.sessions;
    const prompts = cfg ? [req.negativePrompt ?? "", req.prompt] : [req.prompt];
    const tile = (src: Float32Array, rows: number, rowLen: number): Float32Array => {
      // src: [rows, rowLen] → [rows·n, rowLen] (each row repeated n times, in order).
      const out = new Float32Array(rows * n * rowLen);
      for (let r = 0; r < rows; r++) for (let k = 0; k < n; k++) out.set(src.subarray(r * rowLen, (r + 1) * rowLen), (r * n + k) * rowLen);
      return out;
    };
    if (this.info.family === "sd") {
      const ids = prompts.map((p) => this.tokenizers[0].encode(p));
      const out = await this.run(s.textEncoder, { input_ids: this.idsTensor(ids, s.inputIdsDtype) });
      const h = out.last_hidden_state as ort.Tensor;
      const [, seq, dim] = h.dims as number[];
      return { hidden: tile(h.data as Float32Array, prompts.length, seq * dim), seq, dim };
    }
    // SDXL: penultimate hidden states of both encoders, concatenated; pooled text_embeds from encoder 2.
    const prompts2 = cfg ? [req.negativePrompt2 ?? req.negativePrompt ?? "", req.prompt2 ?? req.prompt] : [req.prompt2 ?? req.prompt];
    const ids1 = prompts.map((p) => this.tokenizers[0].encode(p));
    const ids2 = prompts2.map((p) => this.tokenizers[1].encode(p));
    const o1 = await this.run(s.textEncoder, { input_ids: this.idsTensor(ids1, s.inputIdsDtype) });
    const o2 = await this.run(s.textEncoder2!, { input_ids: this.idsTensor(ids2, s.inputIds2Dtype) });
    const h1 = o1[s.penultimate1!] as ort.Tensor;
    const h2 = o2[s.penultimate2!] as ort.Tensor;
    const te = o2.text_embeds as ort.Tensor;
    const [, seq, d1] = h1.dims as number[];
    const d2 = h2.dims[2] as number;
    if (h2.dims[1] !== seq) throw new BackendError(`text encoders disagree on sequence length (${seq} vs ${h2.dims[1]})`);
    const dim = d1 + d2;
    const rows = prompts.length;
    const cat = new Float32Array(rows * seq * dim);
    const a = h1.data as Float32Array;
    const b = h2.data as Float32Array;
    for (let r = 0; r < rows * seq; r++) {
      cat.set(a.subarray(r * d1, (r + 1) * d1), r * dim);
      cat.set(b.subarray(r * d2, (r + 1) * d2), r * dim + d1);
    }
    const teDim = te.dims[1] as number;
    const pooled = new Float32Array(te.data as Float32Array);
    // Only an absent negative prompt is zeroed; an explicit "" is encoded like any other prompt.
    if (cfg && this.forceZerosForEmptyPrompt && req.negativePrompt === undefined && req.negativePrompt2 === undefined) {
      cat.fill(0, 0, seq * dim);
      pooled.fill(0, 0, teDim);
    }
    return { hidden: tile(cat, rows, seq * dim), seq, dim, textEmbeds: tile(pooled, rows, teDim), textEmbedsDim: teDim };
  }

  private async vaeEncode(pixels: Float32Array, height: number, width: number): Promise<Float32Array> {
    const s = this.sessions;
    if (!s.vaeEncoder) throw new BackendError(`${this.info.dir}: no vae_encoder/model.onnx, needed for image2image and inpainting`);
    const out = await this.run(s.vaeEncoder, { sample: new ort.Tensor("float32", pixels, [1, 3, height, width]) });
    const t = out[s.vaeEncoderOutput!] as ort.Tensor;
    const C = this.info.latentChannels;
    const hw = (t.dims[2] as number) * (t.dims[3] as number);
    // latent_parameters: mean ‖ logvar → the mean (first C channels).
    const lat = new Float32Array((t.data as Float32Array).subarray(0, C * hw));
    const sf = this.info.vaeScalingFactor;
    const shift = this.info.vaeShiftFactor;
    for (let i = 0; i < lat.length; i++) lat[i] = (lat[i] - shift) * sf;
    return lat;
  }

  private async vaeDecode(latents: Float32Array, n: number, h: number, w: number): Promise<Uint8Array> {
    const C = this.info.latentChannels;
    const sf = this.info.vaeScalingFactor;
    const shift = this.info.vaeShiftFactor;
    const z = new Float32Array(latents.length);
    for (let i = 0; i < z.length; i++) z[i] = latents[i] / sf + shift;
    const out = await this.run(this.sessions.vaeDecoder, { latent_sample: new ort.Tensor("float32", z, [n, C, h, w]) });
    const t = out.sample as ort.Tensor;
    const [, , H, W] = t.dims as number[];
    return nchwToRgbU8(t.data as Float32Array, n, H, W);
  }

  private validate(req: GenerationRequest): CheckedRequest {
    return checkGenerationRequest(
      { info: this.info, hasVaeEncoder: this.sessions.vaeEncoder !== undefined, staticLatentSize: this.sessions.staticLatentSize, limits: this.limits, schedulerConfig: this.schedulerConfig },
      req,
    );
  }

  async generate(req: GenerationRequest, hooks: PipelineHooks = {}): Promise<GenerationResult> {
    const t0 = performance.now();
    this.stats.runMs = 0;
    this.stats.unetRunMs = [];
    const { width, height, n, steps, guidance, strength } = this.validate(req);
    const info = this.info;
    const s = this.sessions;
    const C = info.latentChannels;
    const lh = height / info.vaeScaleFactor;
    const lw = width / info.vaeScaleFactor;
    const plane = lh * lw;
    const per = C * plane;
    // LCM-style UNets take the guidance as an embedding (`timestep_cond`) instead of a CFG batch.
    const timeCond = s.unet.inputNames.includes("timestep_cond");
    const cfg = guidance > 1 && !timeCond;
    const batch = cfg ? 2 * n : n;
    if (s.staticBatch !== undefined && s.staticBatch !== batch) {
      throw new BackendError(`this model's UNet was exported for batch ${s.staticBatch}; the request needs ${batch} (numImagesPerPrompt ${n}${cfg ? ", doubled by guidance" : ""})`);
    }
    const generator = createNoiseGenerator(this.noiseKind, req.rngSeed ?? Math.floor(Math.random() * 2 ** 32));
    const latentShape = [n, C, lh, lw];
    // The schedulers read step noise value by value: one randn of the latent shape per step that asks.
    let stepNoise: Float32Array = new Float32Array(0);
    let stepUsed = 0;
    const rng = (): number => {
      if (stepUsed === stepNoise.length) [stepNoise, stepUsed] = [generator.randn(latentShape), 0];
      return stepNoise[stepUsed++];
    };

    const scheduler: Scheduler = createScheduler(this.schedulerConfig);
    try {
      scheduler.setTimesteps(steps, { strength });
    } catch (e) {
      throw new BackendError((e as Error).message, { cause: e });
    }
    if (hooks.isCancelled?.()) throw new GenerationCancelledError(-1);

    // Text.
    const tText = performance.now();
    const cond = await this.encodePrompts(req, n, cfg);
    const textEncodingMs = performance.now() - tText;

    // Input image / mask → latents.
    let vaeEncodeMs: number | undefined;
    let imageLatents: Float32Array | undefined; // [N, C, h, w], scaled
    let maskLatent: Float32Array | undefined; // [h·w], 1 = repaint
    let maskedImageLatents: Float32Array | undefined; // [C, h, w] (9-channel UNet)
    if (req.mode !== "text2image") {
      const tEnc = performance.now();
      const image = resizeRgb(req.image!, width, height);
      let keep: Uint8Array | undefined;
      if (req.mode === "inpainting") {
        const mask = resizeRgb(req.mask!, width, height);
        keep = new Uint8Array(width * height);
        for (let i = 0; i < keep.length; i++) keep[i] = (mask.data[i * 3] + mask.data[i * 3 + 1] + mask.data[i * 3 + 2]) / 3 < 127.5 ? 1 : 0;
        // Nearest downsampling to latent size (the pixel at each block's centre).
        maskLatent = new Float32Array(plane);
        const f = info.vaeScaleFactor;
        for (let y = 0; y < lh; y++) for (let x = 0; x < lw; x++) maskLatent[y * lw + x] = keep[(y * f + (f >> 1)) * width + x * f + (f >> 1)] ? 0 : 1;
      }
      const lat = await this.vaeEncode(toNchw(image), height, width);
      imageLatents = new Float32Array(n * per);
      for (let k = 0; k < n; k++) imageLatents.set(lat, k * per);
      if (info.inpainting) maskedImageLatents = await this.vaeEncode(toNchw(image, keep), height, width);
      vaeEncodeMs = performance.now() - tEnc;
    }

    // Initial latents.
    const noise = generator.randn(latentShape);
    let latents: Float32Array;
    if (imageLatents && strength < 1) latents = scheduler.addNoise(imageLatents, noise, 0);
    else {
      latents = new Float32Array(noise.length);
      const sig = scheduler.initNoiseSigma;
      for (let i = 0; i < noise.length; i++) latents[i] = noise[i] * sig;
    }

    // Fixed UNet feeds, allocated once.
    const inC = info.unetInChannels;
    const sampleBuf = new Float32Array(batch * inC * plane);
    if (info.inpainting) {
      // Mask and masked-image latents are the same every step: write them once.
      for (let b = 0; b < batch; b++) {
        const base = b * inC * plane;
        sampleBuf.set(maskLatent!, base + C * plane);
        sampleBuf.set(maskedImageLatents!, base + (C + 1) * plane);
      }
    }
    const feeds: Record<string, ort.Tensor> = {
      sample: new ort.Tensor("float32", sampleBuf, [batch, inC, lh, lw]),
      encoder_hidden_states: new ort.Tensor("float32", cond.hidden, [batch, cond.seq, cond.dim]),
    };
    const tsData = s.timestepDtype === "int64" ? new BigInt64Array(1) : new Float32Array(1);
    feeds.timestep = new ort.Tensor(s.timestepDtype === "int64" ? "int64" : "float32", tsData, [1]);
    if (info.family === "sdxl") {
      feeds.text_embeds = new ort.Tensor("float32", cond.textEmbeds!, [batch, cond.textEmbedsDim!]);
      const ids = new Float32Array(batch * 6);
      for (let b = 0; b < batch; b++) ids.set([height, width, 0, 0, height, width], b * 6);
      feeds.time_ids = new ort.Tensor("float32", ids, [batch, 6]);
    }
    if (timeCond) {
      const dim = info.timeCondProjDim ?? 256;
      const emb = guidanceEmbedding(guidance - 1, dim);
      const data = new Float32Array(batch * dim);
      for (let b = 0; b < batch; b++) data.set(emb, b * dim);
      feeds.timestep_cond = new ort.Tensor("float32", data, [batch, dim]);
    }
    const scaled = new Float32Array(n * per);
    const noisePred = new Float32Array(n * per);
    const blend = info.inpainting || req.mode !== "inpainting" ? undefined : new Float32Array(n * per);

    const total = scheduler.timesteps.length;
    const stepMs: number[] = [];
    for (let i = 0; i < total; i++) {
      const tStep = performance.now();
      const x = scheduler.scaleModelInput(latents, i, scaled);
      // Copy the scaled latents into each batch item's first C channels (twice under CFG).
      for (let half = 0; half < (cfg ? 2 : 1); half++) {
        for (let k = 0; k < n; k++) sampleBuf.set(x.subarray(k * per, (k + 1) * per), (half * n + k) * inC * plane);
      }
      const t = scheduler.timesteps[i];
      if (tsData instanceof BigInt64Array) tsData[0] = BigInt(Math.round(t));
      else tsData[0] = t;
      const tRun = performance.now();
      const out = await s.unet.run(feeds);
      const runMs = performance.now() - tRun;
      this.stats.runMs += runMs;
      this.stats.unetRunMs.push(runMs);
      const pred = (out.out_sample as ort.Tensor).data as Float32Array;
      let eps: Float32Array;
      if (cfg) {
        const half = n * per;
        for (let j = 0; j < half; j++) {
          const u = pred[j];
          noisePred[j] = u + guidance * (pred[half + j] - u);
        }
        eps = noisePred;
      } else eps = pred;
      latents = scheduler.step(eps, i, latents, rng, latents);
      if (blend) {
        // 4-channel inpainting: outside the mask, keep the original re-noised to the next step's level.
        const orig = i + 1 < total ? scheduler.addNoise(imageLatents!, noise, i + 1, blend) : imageLatents!;
        for (let k = 0; k < n; k++) {
          const o = k * per;
          for (let c = 0; c < C; c++) {
            const p = o + c * plane;
            for (let j = 0; j < plane; j++) {
              const m = maskLatent![j];
              latents[p + j] = m * latents[p + j] + (1 - m) * orig[p + j];
            }
          }
        }
      }
      const ms = performance.now() - tStep;
      stepMs.push(ms);
      const decision = hooks.onStep?.({ step: i, totalSteps: total, stepMs: ms });
      if (decision?.preview && hooks.onPreview) {
        const rgb = await this.vaeDecode(latents, n, lh, lw);
        const imgs: RgbImage[] = [];
        for (let k = 0; k < n; k++) imgs.push({ width, height, data: rgb.subarray(k * width * height * 3, (k + 1) * width * height * 3) });
        hooks.onPreview(i, imgs);
      }
      if (decision?.stop || hooks.isCancelled?.()) throw new GenerationCancelledError(i);
    }

    const tDec = performance.now();
    const data = await this.vaeDecode(latents, n, lh, lw);
    const vaeDecodeMs = performance.now() - tDec;
    return {
      data,
      count: n,
      width,
      height,
      timings: { textEncodingMs, stepMs, vaeDecodeMs, ...(vaeEncodeMs !== undefined ? { vaeEncodeMs } : {}), totalMs: performance.now() - t0 },
    };
  }
}
