/**
 * The OpenVINO GenAI backend: a DiffusionBackend over the optional
 * `openvino-genai-node` JS binding (see load-module.ts).
 *
 * Load follows OVMS: it builds inpainting, then image-to-image, then
 * text-to-image pipelines; each failure is a warning and only "all three
 * failed" is fatal. The JS binding cannot derive one pipeline from another, so
 * every pipeline (and every one of `parallelism` instances per mode) compiles
 * its own copy of the model. One instance runs one generate at a time
 * (the binding asserts this), so each mode has a FIFO queue over its instances.
 *
 * What the 2026.4.0 binding cannot do is refused at load: a device per stage,
 * LoRA adapters, reshape to a static shape (and so NPU), and schedulers outside
 * GenAI's Scheduler::Type set (no DPM++, no UniPC). A scheduler override is
 * applied by giving the binding a temporary model view whose
 * scheduler/scheduler_config.json has a rewritten `_class_name`; everything
 * else in it is a symlink to the model folder.
 */
import { AbortableSemaphore } from "../../threads/index.js";
import { copyFile, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { readComponentConfig, readModelIndex, readSchedulerConfig, vaeScaleFactorOf } from "../model-index.js";
import {
  BackendError,
  GenerationCancelledError,
  type BackendCapabilities,
  type BackendLoadOptions,
  type DiffusionBackend,
  type GenerateOptions,
  type GenerationMode,
  type GenerationRequest,
  type GenerationResult,
  type GenerationTimings,
  type RgbImage,
  type RequestLimits,
  checkRequestLimits,
  checkSeed,
  requestLimits,
} from "../types.js";
import {
  OV_ELEMENT_U8,
  loadOpenVino,
  type OpenVinoBindings,
  type OpenVinoLoader,
  type OvImage2ImagePipeline,
  type OvImageGenerateOptions,
  type OvImageGenerationCallback,
  type OvImageGenerationConfig,
  type OvImageGenerationPerfMetrics,
  type OvImagePipelineCommon,
  type OvInpaintingPipeline,
  type OvTensor,
  type OvText2ImagePipeline,
} from "./load-module.js";

/**
 * Diffusers scheduler class names GenAI 2026.x maps through Scheduler::Type
 * AUTO (LCM, DDIM, EULER_DISCRETE, FLOW_MATCH_EULER_DISCRETE, PNDM,
 * EULER_ANCESTRAL_DISCRETE). LMSDiscreteScheduler is left out: GenAI
 * silently runs DDIM for it.
 */
export const OPENVINO_SCHEDULERS = [
  "LCMScheduler",
  "DDIMScheduler",
  "EulerDiscreteScheduler",
  "FlowMatchEulerDiscreteScheduler",
  "PNDMScheduler",
  "EulerAncestralDiscreteScheduler",
] as const;

const FLOW_MATCH_SCHEDULERS: readonly string[] = ["FlowMatchEulerDiscreteScheduler"];
const DDPM_SCHEDULERS: readonly string[] = OPENVINO_SCHEDULERS.filter((s) => !FLOW_MATCH_SCHEDULERS.includes(s));

/** The order OVMS builds pipelines in. */
export const OPENVINO_LOAD_ORDER: readonly GenerationMode[] = ["inpainting", "image2image", "text2image"];

export interface OpenVinoLoadOptions extends BackendLoadOptions {
  /** Supplies the binding; tests pass a fake. Default: lazy import of openvino-genai-node. */
  readonly loader?: OpenVinoLoader;
  /** Receives load warnings (a pipeline that failed to build). They are also kept in `loadWarnings`. */
  readonly onWarning?: (message: string) => void;
  /** Refused: the JS binding has no LoRA adapter support. */
  readonly loraAdapters?: readonly unknown[];
  /** Refused: the JS binding cannot reshape a pipeline to a static shape. */
  readonly staticResolution?: { readonly width: number; readonly height: number };
  /** Parent of the temporary model view made for a scheduler override (default: os.tmpdir()). */
  readonly tempDir?: string;
}

type AnyPipeline = OvText2ImagePipeline | OvImage2ImagePipeline | OvInpaintingPipeline;

/** `parallelism` pipeline instances of one mode behind a FIFO queue (a waiter that aborts is a cancelled generation). */
type InstancePool = AbortableSemaphore<AnyPipeline>;

interface ModelInfo {
  readonly family: string;
  readonly pipelineClass?: string;
  readonly schedulerClass?: string;
  readonly defaultWidth: number;
  readonly defaultHeight: number;
  readonly sizeMultiple: number;
  readonly guidance: boolean;
  readonly flowMatch: boolean;
  /** GenAI's max_sequence_length default when the model runs a T5 encoder (FLUX, SD3 with text_encoder_3). */
  readonly t5DefaultLength?: number;
}

/** GenAI's T5 lengths: its default per family (initialize_generation_config) and the most check_inputs allows. */
const T5_DEFAULT_LENGTH: Readonly<Record<string, number>> = { flux: 512, sd3: 256 };
const T5_MAX_LENGTH = 512;
/** GenAI's FluxTransformer2DModel default_sample_size: FLUX's native size is this × the VAE factor, whatever the config says. */
const FLUX_SAMPLE_SIZE = 128;

/** A config that cannot be read counts as absent here: the binding has the last word. */
async function tolerant<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch {
    return undefined;
  }
}

/** Reads model_index.json and the component configs for capabilities (never fatal: the binding has the last word). */
async function readModelInfo(modelDir: string): Promise<ModelInfo> {
  const index = await tolerant(readModelIndex(modelDir));
  const pipelineClass = index?.pipelineClass || undefined;
  const family = index?.family ?? pipelineClass ?? "unknown";
  const scheduler = (await tolerant(readSchedulerConfig(modelDir)))?.config;
  const schedulerClass = typeof scheduler?.["_class_name"] === "string" ? scheduler["_class_name"] : undefined;
  const flowMatch = family === "sd3" || family === "flux" || (schedulerClass !== undefined && FLOW_MATCH_SCHEDULERS.includes(schedulerClass));

  const vaeScale = vaeScaleFactorOf((await tolerant(readComponentConfig(modelDir, "vae_decoder")))?.config);
  const denoiser = (await tolerant(readComponentConfig(modelDir, "transformer")))?.config ?? (await tolerant(readComponentConfig(modelDir, "unet")))?.config ?? {};
  const nativeDefault = family === "sd" || family === "lcm" || family === "unknown" ? 512 : 1024;
  const sampleSize = typeof denoiser["sample_size"] === "number" ? denoiser["sample_size"] * vaeScale : nativeDefault;
  // SD3 patchifies latents (its config's patch_size, 2). FLUX.1's transformer says patch_size 1 but the
  // pipeline packs 2×2 latent patches: GenAI only checks multiples of 8 and then fails packing odd latents.
  const patch = family === "flux" ? 2 : typeof denoiser["patch_size"] === "number" ? denoiser["patch_size"] : 1;
  const native = family === "flux" ? FLUX_SAMPLE_SIZE * vaeScale : sampleSize;
  const runsT5 = family === "flux" || (family === "sd3" && index?.has("text_encoder_3") === true);
  return {
    family,
    pipelineClass,
    schedulerClass,
    defaultWidth: native,
    defaultHeight: native,
    sizeMultiple: vaeScale * patch,
    // GenAI feeds FLUX's guidance_scale only to a transformer with a guidance embedding (dev, not schnell).
    guidance: family === "flux" ? denoiser["guidance_embeds"] === true : true,
    flowMatch,
    ...(runsT5 ? { t5DefaultLength: T5_DEFAULT_LENGTH[family] } : {}),
  };
}

/** Parses the device option: one device, or refuse. */
export function parseOpenVinoDevice(device: string | undefined): string {
  const parts = (device ?? "CPU").trim().split(/\s+/).filter((p) => p.length > 0);
  if (parts.length === 3) {
    throw new BackendError(
      `device "${device}": a different device per stage is not supported by the JS binding ` +
        `(openvino-genai-node cannot compile text encoders, denoiser and VAE on separate devices); give one device.`,
    );
  }
  if (parts.length !== 1) {
    throw new BackendError(`device "${device}": give one device (e.g. "CPU", "GPU"); OVMS's three-device form is not supported by the JS binding.`);
  }
  const only = parts[0]!;
  if (/^NPU/i.test(only)) {
    throw new BackendError(
      `device "${only}": NPU needs the pipeline reshaped to a static resolution, which the JS binding (openvino-genai-node) cannot do.`,
    );
  }
  return only;
}

/** Builds a temporary model view whose scheduler_config.json names `schedulerClass`. Returns its path. */
async function makeSchedulerView(modelDir: string, schedulerClass: string, parent: string): Promise<string> {
  const configPath = join(modelDir, "scheduler", "scheduler_config.json");
  const config = (await tolerant(readSchedulerConfig(modelDir)))?.config;
  if (!config) throw new BackendError(`scheduler "${schedulerClass}": ${configPath} is missing or not a JSON object, so it cannot be overridden.`);
  const view = await mkdtemp(join(parent, "graphserve-ov-model-"));
  try {
    for (const entry of await readdir(modelDir, { withFileTypes: true })) {
      if (entry.name === "scheduler") continue;
      const source = join(modelDir, entry.name);
      const target = join(view, entry.name);
      if (entry.isDirectory()) {
        // "junction" only matters on Windows, where it needs no privilege.
        await symlink(source, target, "junction");
      } else {
        // Top-level files (model_index.json, …) are small: copy when a file symlink is not allowed.
        await symlink(source, target, "file").catch(() => copyFile(source, target));
      }
    }
    const schedulerDir = join(view, "scheduler");
    await mkdir(schedulerDir);
    for (const entry of await readdir(join(modelDir, "scheduler"))) {
      if (entry === "scheduler_config.json") continue;
      await copyFile(join(modelDir, "scheduler", entry), join(schedulerDir, entry));
    }
    await writeFile(join(schedulerDir, "scheduler_config.json"), JSON.stringify({ ...config, _class_name: schedulerClass }, null, 2));
  } catch (err) {
    await rm(view, { recursive: true, force: true });
    throw err instanceof BackendError ? err : new BackendError(`could not build a model view for scheduler "${schedulerClass}": ${String(err)}`, { cause: err });
  }
  return view;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Converts a u8 `[N, H, W, 3]` (or `[H, W, 3]`) tensor to `count` RGB images in one buffer. */
export function tensorToNhwc(tensor: OvTensor): { data: Uint8Array; count: number; width: number; height: number } {
  const shape = tensor.getShape();
  const dims = shape.length === 3 ? [1, ...shape] : shape;
  if (dims.length !== 4 || dims[3] !== 3) throw new BackendError(`OpenVINO returned an image tensor of shape [${shape.join(", ")}], expected [N, H, W, 3]`);
  if (tensor.getElementType() !== OV_ELEMENT_U8) throw new BackendError(`OpenVINO returned an image tensor of element type ${tensor.getElementType()}, expected u8`);
  const [count, height, width] = dims as [number, number, number, number];
  const raw = tensor.getData();
  if (!(raw instanceof Uint8Array) || raw.length !== count * height * width * 3) {
    throw new BackendError(`OpenVINO returned ${raw.length} values for an image tensor of shape [${shape.join(", ")}]`);
  }
  // Copy: getData() may view native memory that the binding reuses.
  return { data: new Uint8Array(raw), count, width, height };
}

function splitImages(nhwc: { data: Uint8Array; count: number; width: number; height: number }): RgbImage[] {
  const size = nhwc.width * nhwc.height * 3;
  const images: RgbImage[] = [];
  for (let i = 0; i < nhwc.count; i++) images.push({ width: nhwc.width, height: nhwc.height, data: nhwc.data.slice(i * size, (i + 1) * size) });
  return images;
}

function checkImage(name: string, image: RgbImage | undefined, mode: GenerationMode): RgbImage {
  if (!image) throw new BackendError(`${mode} needs an input ${name}`);
  if (!Number.isInteger(image.width) || !Number.isInteger(image.height) || image.width <= 0 || image.height <= 0) {
    throw new BackendError(`the input ${name} has an invalid size ${image.width}x${image.height}`);
  }
  if (image.data.length !== image.width * image.height * 3) {
    throw new BackendError(`the input ${name} has ${image.data.length} bytes, expected ${image.width * image.height * 3} (${image.width}x${image.height} RGB)`);
  }
  return image;
}

/** Maps a GenerationRequest onto GenAI's ImageGenerationConfig (only the fields that are set). */
export function toImageGenerationConfig(request: GenerationRequest): OvImageGenerationConfig {
  const config: OvImageGenerationConfig = {};
  if (request.prompt2 !== undefined) config.prompt_2 = request.prompt2;
  if (request.prompt3 !== undefined) config.prompt_3 = request.prompt3;
  if (request.negativePrompt !== undefined) config.negative_prompt = request.negativePrompt;
  if (request.negativePrompt2 !== undefined) config.negative_prompt_2 = request.negativePrompt2;
  if (request.negativePrompt3 !== undefined) config.negative_prompt_3 = request.negativePrompt3;
  const width = request.width ?? (request.mode !== "text2image" ? request.image?.width : undefined);
  const height = request.height ?? (request.mode !== "text2image" ? request.image?.height : undefined);
  if (width !== undefined) config.width = width;
  if (height !== undefined) config.height = height;
  if (request.numImagesPerPrompt !== undefined) config.num_images_per_prompt = request.numImagesPerPrompt;
  if (request.numInferenceSteps !== undefined) config.num_inference_steps = request.numInferenceSteps;
  if (request.guidanceScale !== undefined) config.guidance_scale = request.guidanceScale;
  if (request.rngSeed !== undefined) config.rng_seed = request.rngSeed;
  // Text-to-image always runs the whole schedule; GenAI rejects strength ≠ 1 there.
  if (request.strength !== undefined && request.mode !== "text2image") config.strength = request.strength;
  if (request.maxSequenceLength !== undefined) config.max_sequence_length = request.maxSequenceLength;
  return config;
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const v of values) if (Number.isFinite(v)) total += v;
  return total;
}

function timingsFrom(
  metrics: OvImageGenerationPerfMetrics | undefined,
  mode: GenerationMode,
  wallStepMs: readonly number[],
  wallTotalMs: number,
): GenerationTimings {
  if (!metrics) return { textEncodingMs: 0, stepMs: [...wallStepMs], vaeDecodeMs: 0, totalMs: wallTotalMs };
  const iterations = metrics.rawMetrics?.iterationDurations ?? [];
  const timings: GenerationTimings = {
    textEncodingMs: sum(Object.values(metrics.getTextEncoderInferDuration())),
    stepMs: iterations.length > 0 ? [...iterations] : [...wallStepMs],
    vaeDecodeMs: metrics.getVaeDecoderInferDuration(),
    totalMs: metrics.getGenerateDuration() || wallTotalMs,
  };
  return mode === "text2image" ? timings : { ...timings, vaeEncodeMs: metrics.getVaeEncoderInferDuration() };
}

export class OpenVinoBackend implements DiffusionBackend {
  private disposed = false;
  private readonly inFlight = new Set<Promise<unknown>>();
  /**
   * The T5 length each mode's pipelines run at, fixed by the first request that mode accepted: GenAI (2026.4)
   * shapes T5's input on its first call and fails every later call with another max_sequence_length.
   */
  private readonly t5Lengths = new Map<GenerationMode, number>();

  private constructor(
    private readonly bindings: OpenVinoBindings,
    private readonly pools: ReadonlyMap<GenerationMode, InstancePool>,
    private readonly failures: ReadonlyMap<GenerationMode, string>,
    private readonly info: ModelInfo,
    private readonly schedulers: readonly string[],
    private readonly parallelism: number,
    private readonly viewDir: string | undefined,
    /** Warnings from load (pipelines that failed to build). */
    readonly loadWarnings: readonly string[],
    private readonly limits: RequestLimits,
  ) {}

  /**
   * Loads `modelDir` (an OpenVINO IR diffusers-style export). Rejects with a
   * BackendError for what the binding cannot do, a missing binding, or when
   * no pipeline could be built.
   */
  static async load(modelDir: string, opts: OpenVinoLoadOptions = {}): Promise<OpenVinoBackend> {
    if (opts.backend === "onnxruntime") throw new BackendError(`OpenVinoBackend cannot load with backend "onnxruntime"`);
    const device = parseOpenVinoDevice(opts.device);
    if (opts.loraAdapters && opts.loraAdapters.length > 0) {
      throw new BackendError("LoRA adapters are not supported by the OpenVINO JS binding (openvino-genai-node has no adapter config); remove lora_adapters or use the onnxruntime backend.");
    }
    if (opts.staticResolution) {
      throw new BackendError(
        `a static resolution (${opts.staticResolution.width}x${opts.staticResolution.height}) needs reshape(), which the OpenVINO JS binding (openvino-genai-node) does not have; ` +
          `leave the shape dynamic and limit sizes per request instead.`,
      );
    }
    // GenAI makes its own CppStdGenerator from rng_seed; the JS binding cannot hand it another.
    if (opts.noise !== undefined && opts.noise !== "mt19937") {
      throw new BackendError(`noise generator "${opts.noise}" is not available on the OpenVINO backend: OpenVINO GenAI draws its own noise (mt19937, as OVMS does)`);
    }
    const limits = requestLimits(opts);
    const parallelism = opts.parallelism ?? 1;
    if (!Number.isInteger(parallelism) || parallelism < 1) throw new BackendError(`parallelism must be a positive integer, got ${parallelism}`);

    const dir = resolve(modelDir);
    try {
      if (!(await stat(dir)).isDirectory()) throw new Error("not a directory");
    } catch {
      throw new BackendError(`model folder ${dir} does not exist or is not a directory`);
    }
    const info = await readModelInfo(dir);
    const runnable = info.flowMatch ? FLOW_MATCH_SCHEDULERS : DDPM_SCHEDULERS;
    if (opts.scheduler !== undefined) {
      if (!(OPENVINO_SCHEDULERS as readonly string[]).includes(opts.scheduler)) {
        const dpm = /DPM|UniPC/i.test(opts.scheduler) ? " (DPM++ and UniPC are not in the OpenVINO GenAI scheduler set)" : "";
        throw new BackendError(`scheduler "${opts.scheduler}" is not supported by OpenVINO GenAI${dpm}; supported: ${runnable.join(", ")}`);
      }
      if (!runnable.includes(opts.scheduler)) {
        throw new BackendError(`scheduler "${opts.scheduler}" does not fit this ${info.family} model; supported: ${runnable.join(", ")}`);
      }
    }

    const bindings = await loadOpenVino(opts.loader);

    let viewDir: string | undefined;
    let modelPath = dir;
    if (opts.scheduler !== undefined && opts.scheduler !== info.schedulerClass) {
      viewDir = await makeSchedulerView(dir, opts.scheduler, opts.tempDir ?? tmpdir());
      modelPath = viewDir;
    }

    const properties = { ...(opts.properties ?? {}) };
    const pools = new Map<GenerationMode, InstancePool>();
    const failures = new Map<GenerationMode, string>();
    const warnings: string[] = [];
    const factories: Record<GenerationMode, () => Promise<AnyPipeline>> = {
      inpainting: () => bindings.genai.InpaintingPipeline(modelPath, device, properties),
      image2image: () => bindings.genai.Image2ImagePipeline(modelPath, device, properties),
      text2image: () => bindings.genai.Text2ImagePipeline(modelPath, device, properties),
    };
    for (const mode of OPENVINO_LOAD_ORDER) {
      const instances: AnyPipeline[] = [];
      try {
        for (let i = 0; i < parallelism; i++) instances.push(await factories[mode]());
        pools.set(mode, new AbortableSemaphore(instances, { abortError: (reason) => new GenerationCancelledError(-1, { cause: reason }) }));
      } catch (err) {
        const reason = errorText(err);
        failures.set(mode, reason);
        const warning = `OpenVINO ${mode} pipeline not available for ${dir}: ${reason}`;
        warnings.push(warning);
        opts.onWarning?.(warning);
      }
    }
    if (pools.size === 0) {
      if (viewDir) await rm(viewDir, { recursive: true, force: true });
      const reasons = OPENVINO_LOAD_ORDER.map((mode) => `${mode}: ${failures.get(mode)}`).join("; ");
      throw new BackendError(`no OpenVINO pipeline could be built from ${dir} on ${device} (${reasons})`);
    }
    const schedulers = opts.scheduler !== undefined ? [opts.scheduler] : info.schedulerClass && runnable.includes(info.schedulerClass) ? [info.schedulerClass] : [...runnable];
    return new OpenVinoBackend(bindings, pools, failures, info, schedulers, parallelism, viewDir, warnings, limits);
  }

  capabilities(): BackendCapabilities {
    const modes = (["text2image", "image2image", "inpainting"] as const).filter((m) => this.pools.has(m));
    return {
      backend: "openvino",
      family: this.info.family,
      modes,
      schedulers: this.schedulers,
      lora: false,
      staticResolutions: [],
      sizeMultiple: this.info.sizeMultiple,
      defaultWidth: this.info.defaultWidth,
      defaultHeight: this.info.defaultHeight,
      guidance: this.info.guidance,
      parallelism: this.parallelism,
    };
  }

  /** Requests waiting for a free instance of `mode` (for metrics and tests). */
  queued(mode: GenerationMode): number {
    return this.pools.get(mode)?.waiting ?? 0;
  }

  generate(request: GenerationRequest, options: GenerateOptions = {}): Promise<GenerationResult> {
    const run = this.run(request, options);
    this.inFlight.add(run);
    const forget = (): void => {
      this.inFlight.delete(run);
    };
    run.then(forget, forget);
    return run;
  }

  check(request: GenerationRequest): void {
    if (this.disposed) throw new BackendError("the OpenVINO backend has been disposed");
    if (!this.pools.has(request.mode)) {
      const reason = this.failures.get(request.mode);
      throw new BackendError(`this model has no ${request.mode} pipeline${reason ? ` (it failed to load: ${reason})` : ""}`);
    }
    if (request.trueCfgScale !== undefined) {
      throw new BackendError("true_cfg_scale is not supported by OpenVINO GenAI (it has no true classifier-free guidance for FLUX); use the onnxruntime backend", { param: "true_cfg_scale" });
    }
    this.validate(request);
    this.checkT5Length(request);
  }

  /** The max_sequence_length a request runs T5 at (the request's, else GenAI's default); undefined without T5. */
  private t5Length(request: GenerationRequest): number | undefined {
    const fallback = this.info.t5DefaultLength;
    return fallback === undefined ? undefined : (request.maxSequenceLength ?? fallback);
  }

  private checkT5Length(request: GenerationRequest): void {
    const length = this.t5Length(request);
    if (length === undefined) return;
    if (!Number.isInteger(length) || length < 1 || length > T5_MAX_LENGTH) {
      throw new BackendError(`max_sequence_length must be an integer from 1 to ${T5_MAX_LENGTH}, got ${length}`, { param: "max_sequence_length" });
    }
    const fixed = this.t5Lengths.get(request.mode);
    if (fixed !== undefined && fixed !== length) {
      const given = request.maxSequenceLength === undefined ? ` (GenAI's ${this.info.family} default)` : "";
      throw new BackendError(
        `max_sequence_length ${length}${given} cannot be served: this model's ${request.mode} pipeline runs T5 at ${fixed}, ` +
          `the length of the first request it served, and OpenVINO GenAI cannot change it afterwards; send max_sequence_length ${fixed}, or reload the model for another length`,
        { param: "max_sequence_length" },
      );
    }
  }

  private async run(request: GenerationRequest, options: GenerateOptions): Promise<GenerationResult> {
    this.check(request);
    const length = this.t5Length(request);
    if (length !== undefined && !this.t5Lengths.has(request.mode)) this.t5Lengths.set(request.mode, length);
    const pool = this.pools.get(request.mode)!;
    const config = toImageGenerationConfig(request);
    const { signal } = options;
    if (signal?.aborted) throw new GenerationCancelledError(-1, { cause: signal.reason });

    const pipeline = await pool.acquire(signal);
    try {
      return await this.runOn(pipeline, request, config, options);
    } finally {
      pool.release(pipeline);
    }
  }

  private validate(request: GenerationRequest): void {
    const m = this.info.sizeMultiple;
    let image: RgbImage | undefined;
    if (request.mode === "image2image" || request.mode === "inpainting") {
      image = checkImage("image", request.image, request.mode);
      if (request.mode === "inpainting") {
        const mask = checkImage("mask", request.mask, request.mode);
        if (mask.width !== image.width || mask.height !== image.height) {
          throw new BackendError(`the mask is ${mask.width}x${mask.height} but the image is ${image.width}x${image.height}`);
        }
      }
    }
    // The effective size: the request's, else the input image's, else the model's native one.
    const width = request.width ?? image?.width ?? this.info.defaultWidth;
    const height = request.height ?? image?.height ?? this.info.defaultHeight;
    for (const [name, value] of [["width", width], ["height", height]] as const) {
      if (!Number.isInteger(value) || value <= 0 || value % m !== 0) {
        const from = request[name] === undefined && image ? " (taken from the input image)" : "";
        throw new BackendError(`${name} ${value}${from} must be a positive multiple of ${m}`);
      }
    }
    const positiveInt = (name: string, value: number | undefined): void => {
      if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw new BackendError(`${name} must be a positive integer, got ${value}`);
    };
    positiveInt("numImagesPerPrompt", request.numImagesPerPrompt);
    positiveInt("numInferenceSteps", request.numInferenceSteps);
    checkRequestLimits(width, height, request.numImagesPerPrompt ?? 1, this.limits);
    if (request.strength !== undefined) {
      // image2image/inpainting need at least one step of the schedule: strength 0 would run none.
      const ok = request.mode === "text2image" ? request.strength >= 0 && request.strength <= 1 : request.strength > 0 && request.strength <= 1;
      if (!ok) throw new BackendError(`strength must be in ${request.mode === "text2image" ? "[0, 1]" : "(0, 1]"}, got ${request.strength}`);
    }
    checkSeed(request.rngSeed);
  }

  private async runOn(
    pipeline: AnyPipeline,
    request: GenerationRequest,
    config: OvImageGenerationConfig,
    options: GenerateOptions,
  ): Promise<GenerationResult> {
    const { signal, onStep, onPreview } = options;
    const started = performance.now();
    let last = started;
    let lastStep = -1;
    let cancelled = false;
    let callbackError: unknown;
    const wallStepMs: number[] = [];

    // Always returns a boolean (true = stop): the binding fails the call on anything else.
    const callback: OvImageGenerationCallback = (step, numSteps, latent) => {
      try {
        const now = performance.now();
        const stepMs = now - last;
        last = now;
        lastStep = step;
        wallStepMs.push(stepMs);
        if (this.disposed || signal?.aborted) {
          cancelled = true;
          return true;
        }
        const decision = onStep?.({ step, totalSteps: numSteps, stepMs }) ?? undefined;
        const stop = (): boolean => {
          if (decision?.stop || signal?.aborted || this.disposed) cancelled = true;
          return cancelled;
        };
        if (decision?.preview && onPreview) {
          return pipeline.decode(latent).then(
            (tensor) => {
              try {
                onPreview(step, splitImages(tensorToNhwc(tensor)));
              } catch (err) {
                callbackError = err;
                return true;
              }
              // Decoding is not a step: restart the clock so the next step's time excludes it.
              last = performance.now();
              return stop();
            },
            (err: unknown) => {
              callbackError = err;
              return true;
            },
          );
        }
        return stop();
      } catch (err) {
        callbackError = err;
        return true;
      }
    };

    const generateOptions: OvImageGenerateOptions = { ...config, callback };
    let output: OvTensor;
    const Tensor = this.bindings.Tensor;
    try {
      switch (request.mode) {
        case "text2image":
          output = await (pipeline as OvText2ImagePipeline).generate(request.prompt, generateOptions);
          break;
        case "image2image": {
          const image = request.image!;
          const imageTensor = new Tensor("u8", [1, image.height, image.width, 3], image.data);
          output = await (pipeline as OvImage2ImagePipeline).generate(request.prompt, imageTensor, generateOptions);
          break;
        }
        case "inpainting": {
          const image = request.image!;
          const mask = request.mask!;
          const imageTensor = new Tensor("u8", [1, image.height, image.width, 3], image.data);
          const maskTensor = new Tensor("u8", [1, mask.height, mask.width, 3], mask.data);
          output = await (pipeline as OvInpaintingPipeline).generate(request.prompt, imageTensor, maskTensor, generateOptions);
          break;
        }
      }
    } catch (err) {
      if (callbackError !== undefined) throw new BackendError(`the step callback failed: ${errorText(callbackError)}`, { cause: callbackError });
      if (cancelled) throw new GenerationCancelledError(lastStep, { cause: err });
      throw new BackendError(`OpenVINO ${request.mode} generation failed: ${errorText(err)}`, { cause: err });
    }
    if (callbackError !== undefined) throw new BackendError(`the step callback failed: ${errorText(callbackError)}`, { cause: callbackError });
    if (cancelled) throw new GenerationCancelledError(lastStep, signal?.aborted ? { cause: signal.reason } : undefined);

    const wallTotalMs = performance.now() - started;
    const nhwc = tensorToNhwc(output);
    let metrics: OvImageGenerationPerfMetrics | undefined;
    try {
      metrics = (pipeline as OvImagePipelineCommon).getPerformanceMetrics();
    } catch {
      metrics = undefined;
    }
    return { ...nhwc, timings: timingsFrom(metrics, request.mode, wallStepMs, wallTotalMs) };
  }

  /** Cancels in-flight generations at their next step, rejects queued ones, and removes the scheduler view. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const pool of this.pools.values()) pool.rejectAll(new BackendError("the OpenVINO backend was disposed"));
    await Promise.allSettled([...this.inFlight]);
    if (this.viewDir) await rm(this.viewDir, { recursive: true, force: true });
  }
}
