/**
 * The one interface every image-generation backend implements (ONNX Runtime
 * here, OpenVINO GenAI on Intel hosts). The server and ImageGenCalculator see
 * nothing else, so they can refuse what a backend cannot do before any work
 * starts.
 */
import type { MemoryCheckOptions } from "./host-memory.js";
import type { BackendKind } from "./catalog.js";
import type { NoiseKind } from "./noise/types.js";

export type GenerationMode = "text2image" | "image2image" | "inpainting";

/** An RGB image, 8 bits per channel, rows top to bottom: `data.length === width * height * 3`. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export interface GenerationRequest {
  readonly mode: GenerationMode;
  readonly prompt: string;
  readonly prompt2?: string;
  readonly prompt3?: string;
  readonly negativePrompt?: string;
  readonly negativePrompt2?: string;
  readonly negativePrompt3?: string;
  /** Output size in pixels; undefined: the model's native size (image2image/inpainting: the input's). */
  readonly width?: number;
  readonly height?: number;
  /** Images to generate for the prompt (default 1). */
  readonly numImagesPerPrompt?: number;
  readonly numInferenceSteps?: number;
  /** Classifier-free guidance; ≤ 1 turns the unconditional pass off. */
  readonly guidanceScale?: number;
  /**
   * The same seed gives bit-identical images on the same backend and machine; the
   * initial noise is the reference generator's for that seed (src/backends/noise).
   */
  readonly rngSeed?: number;
  /** image2image/inpainting: how much of the schedule to run, in [0, 1]. */
  readonly strength?: number;
  /** T5 padding length for SD3/FLUX text encoders. */
  readonly maxSequenceLength?: number;
  /**
   * FLUX: true classifier-free guidance (diffusers' `true_cfg_scale`): above 1, with a negative prompt, a
   * second transformer pass on the negative prompt is combined as neg + scale·(pos − neg). Other families
   * guide with `guidanceScale`.
   */
  readonly trueCfgScale?: number;
  /** image2image/inpainting: the input image. */
  readonly image?: RgbImage;
  /** inpainting: white (255) repaints, black keeps; same size as `image`. */
  readonly mask?: RgbImage;
}

/** What the per-step callback sees. */
export interface StepProgress {
  /** 0-based index of the step just finished. */
  readonly step: number;
  readonly totalSteps: number;
  /** Milliseconds the step took. */
  readonly stepMs: number;
}

export interface StepDecision {
  /** Stop the run after this step; generate() then rejects with a GenerationCancelledError. */
  readonly stop?: boolean;
  /** Pass a picture of the current latents, at the request's size, to `onPreview` (a VAE decode, or the ONNX backend's latent→RGB approximation). */
  readonly preview?: boolean;
}

export interface GenerateOptions {
  /** Called after every denoising step; its answer can stop the run or ask for a preview. */
  onStep?(progress: StepProgress): StepDecision | void;
  /** Receives the intermediate images after a step that asked for a preview. */
  onPreview?(step: number, images: readonly RgbImage[]): void;
  /** Honoured between steps (never by killing a thread in native code). */
  readonly signal?: AbortSignal;
}

export interface GenerationTimings {
  readonly textEncodingMs: number;
  /** One entry per denoising step. */
  readonly stepMs: readonly number[];
  readonly vaeDecodeMs: number;
  /** image2image/inpainting: encoding the input image. */
  readonly vaeEncodeMs?: number;
  readonly totalMs: number;
}

export interface GenerationResult {
  /** RGB u8 NHWC: `[count, height, width, 3]` in `data`. */
  readonly data: Uint8Array;
  readonly count: number;
  readonly width: number;
  readonly height: number;
  readonly timings: GenerationTimings;
}

export interface BackendCapabilities {
  readonly backend: BackendKind;
  /** The detected model family, e.g. "sd", "sdxl", "sd3", "flux". */
  readonly family: string;
  readonly modes: readonly GenerationMode[];
  /** Scheduler class names the backend can run for this model. */
  readonly schedulers: readonly string[];
  readonly lora: boolean;
  /** Fixed sizes the model was compiled for; empty when any multiple of `sizeMultiple` works. */
  readonly staticResolutions: readonly { width: number; height: number }[];
  /** Width and height must be multiples of this (8 for SD-family VAEs). */
  readonly sizeMultiple: number;
  /** The model's native output size. */
  readonly defaultWidth: number;
  readonly defaultHeight: number;
  /** Negative prompts, guidance and the like apply (false for guidance-distilled models). */
  readonly guidance: boolean;
  /** How many generations can run at once without queueing. */
  readonly parallelism: number;
}

export interface DiffusionBackend {
  capabilities(): BackendCapabilities;
  /**
   * Throws the BackendError generate() would reject this request with for
   * its shape (mode, sizes, counts, steps, strength), without running
   * anything: callers check before a request waits for a slot.
   */
  check(request: GenerationRequest): void;
  /** Rejects with GenerationCancelledError when stopped, BackendError for bad requests or failures. */
  generate(request: GenerationRequest, options?: GenerateOptions): Promise<GenerationResult>;
  /** Frees sessions and threads; in-flight generations finish or are cancelled first. */
  dispose(): Promise<void>;
}

export interface BackendLoadOptions {
  /** "auto" picks by the folder's files: openvino_model.xml → openvino, model.onnx → onnxruntime. */
  readonly backend?: "auto" | BackendKind;
  /** Device string(s) for backends that have devices ("CPU", "GPU", "NPU NPU GPU"…). */
  readonly device?: string;
  /** Backend properties (OVMS plugin_config). */
  readonly properties?: Readonly<Record<string, unknown>>;
  /** Concurrent generations (worker threads or pipeline instances). */
  readonly parallelism?: number;
  /** Overrides scheduler/scheduler_config.json's `_class_name`. */
  readonly scheduler?: string;
  /** Which generator turns `rngSeed` into noise (default "mt19937", OVMS's); see src/backends/noise. */
  readonly noise?: NoiseKind;
  /**
   * Largest output size per image, in pixels (width·height); larger requests
   * are refused with a BackendError before anything is allocated. Default
   * 4096·4096 (OVMS's default max_resolution).
   */
  readonly maxPixels?: number;
  /** Largest `numImagesPerPrompt` a request may ask for (default 16). */
  readonly maxImagesPerPrompt?: number;
  /**
   * Compare what the model needs with the memory there is before loading, and refuse (or start
   * fewer workers than the default) when it does not fit. The ONNX Runtime backend checks; default on.
   */
  readonly memoryCheck?: MemoryCheckOptions;
}

/** Default `BackendLoadOptions.maxPixels`: 4096·4096, OVMS's default max_resolution. */
export const DEFAULT_MAX_PIXELS = 4096 * 4096;
/** Default `BackendLoadOptions.maxImagesPerPrompt`. */
export const DEFAULT_MAX_IMAGES_PER_PROMPT = 16;
/** Cap on the batch's decoded float32 buffer (numImages · 3 · width · height · 4 bytes): 2 GiB. */
export const MAX_BATCH_BUFFER_BYTES = 2 * 1024 ** 3;

export interface RequestLimits {
  readonly maxPixels: number;
  readonly maxImagesPerPrompt: number;
}

/** The limits of `opts` with defaults filled in; BackendError for values that are not positive integers. */
export function requestLimits(opts: Pick<BackendLoadOptions, "maxPixels" | "maxImagesPerPrompt"> = {}): RequestLimits {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const maxImagesPerPrompt = opts.maxImagesPerPrompt ?? DEFAULT_MAX_IMAGES_PER_PROMPT;
  if (!Number.isSafeInteger(maxPixels) || maxPixels < 1) throw new BackendError(`maxPixels must be a positive integer, got ${maxPixels}`);
  if (!Number.isSafeInteger(maxImagesPerPrompt) || maxImagesPerPrompt < 1) throw new BackendError(`maxImagesPerPrompt must be a positive integer, got ${maxImagesPerPrompt}`);
  return { maxPixels, maxImagesPerPrompt };
}

/**
 * Refuses sizes and batch counts over the limits (call after width, height and
 * n are known to be positive integers, before allocating anything).
 */
export function checkRequestLimits(width: number, height: number, n: number, limits: RequestLimits): void {
  const pixels = width * height;
  if (pixels > limits.maxPixels) throw new BackendError(`${width}×${height} = ${pixels} pixels exceeds the limit maxPixels = ${limits.maxPixels} per image`);
  if (n > limits.maxImagesPerPrompt) throw new BackendError(`numImagesPerPrompt ${n} exceeds the limit maxImagesPerPrompt = ${limits.maxImagesPerPrompt}`);
  const bytes = n * pixels * 3 * 4;
  if (bytes > MAX_BATCH_BUFFER_BYTES) {
    throw new BackendError(`the batch (${n} × ${width}×${height}) needs ${bytes} bytes of decoded float32 buffer, over the 2 GiB limit (${MAX_BATCH_BUFFER_BYTES} bytes); lower numImagesPerPrompt or the size`);
  }
}

/** Largest accepted rngSeed + 1: seeds are integers in [0, 2^53). */
export const SEED_LIMIT = 2 ** 53;

/** BackendError unless `seed` is undefined or an integer in [0, 2^53). */
export function checkSeed(seed: number | undefined): void {
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed < SEED_LIMIT)) throw new BackendError(`rngSeed must be an integer in [0, 2^53), got ${seed}`);
}

/** A request the backend refuses (unsupported mode, size, option) or a model that cannot load. */
export class BackendError extends Error {
  /** The request field at fault (e.g. `negative_prompt` on a family without one), when one is: the 400's `param`. */
  declare readonly param?: string;
  constructor(message: string, options?: ErrorOptions & { param?: string }) {
    super(message, options);
    this.name = "BackendError";
    if (options?.param !== undefined) this.param = options.param;
  }
}

/** generate() was stopped by the step callback or the signal. */
export class GenerationCancelledError extends Error {
  constructor(readonly step: number, options?: ErrorOptions) {
    super(`generation cancelled after step ${step}`, options);
    this.name = "GenerationCancelledError";
  }
}
