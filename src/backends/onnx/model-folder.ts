/**
 * Reading and validating an Optimum-layout ONNX diffusion folder (diffusers
 * repo style): model_index.json, scheduler/scheduler_config.json, each
 * component's config.json and model.onnx, tokenizer folders.
 *
 * `readModelFolder` reads only the JSON files (cheap, main thread);
 * `loadModelSessions` creates the ORT sessions and checks them against the
 * configs (runs once per worker). Every error is a BackendError naming the
 * file at fault and the problem.
 */
import { access } from "node:fs/promises";
import { join } from "node:path";
import type * as ort from "onnxruntime-node";
import { numberField, readComponentConfig, readModelIndex, readSchedulerConfig, readVaeConfig, vaeScaleFactorOf } from "../model-index.js";
import { BackendError } from "../types.js";
import { familyModule, type OnnxFamily, type TextEncoderSessions } from "./families/index.js";
import { createSession, requireNames, type SessionLoadOptions, staticDim, tensorMeta } from "./sessions.js";
import { createScheduler } from "./schedulers/index.js";

export type { OnnxFamily } from "./families/index.js";
export type { SessionLoadOptions } from "./sessions.js";

export interface ModelFolderInfo {
  readonly dir: string;
  readonly family: OnnxFamily;
  /** The UNet has 9 input channels (latents ‖ mask ‖ masked-image latents). */
  readonly inpainting: boolean;
  /** model_index.json `_class_name`. */
  readonly pipelineClass: string;
  /** Parsed scheduler/scheduler_config.json. */
  readonly schedulerConfig: Record<string, unknown>;
  readonly latentChannels: number;
  readonly unetInChannels: number;
  /** unet/config.json cross_attention_dim; undefined in the legacy layout (then taken from the UNet graph). */
  readonly crossAttentionDim?: number;
  /** Latent sample size (unet sample_size); native image size = sampleSize · vaeScaleFactor. */
  readonly sampleSize: number;
  readonly vaeScaleFactor: number;
  /**
   * What width and height must be multiples of: the VAE's factor times the UNet's downsampling. A traced UNet
   * (every ONNX export) fixes at export that its skip connections line up, so other sizes fail inside it.
   */
  readonly sizeMultiple: number;
  readonly vaeScalingFactor: number;
  readonly vaeShiftFactor: number;
  /** SDXL: `text_embeds` width (text_encoder_2 projection_dim). */
  readonly textEmbedsDim?: number;
  /** LCM-style `timestep_cond` width, when the UNet has one. */
  readonly timeCondProjDim?: number;
  readonly hasVaeEncoder: boolean;
  /** The legacy diffusers ONNX layout: no per-component config.json. */
  readonly legacyLayout: boolean;
  /** model_index.json `force_zeros_for_empty_prompt` (SDXL pipelines default it to true). */
  readonly forceZerosForEmptyPrompt: boolean;
  /** model_index.json `requires_aesthetics_score` (SDXL refiner-style time ids: size, crop, aesthetic score). */
  readonly requiresAestheticsScore: boolean;
  /** Component → model.onnx path. */
  readonly paths: {
    readonly textEncoder: string;
    readonly textEncoder2?: string;
    readonly unet: string;
    readonly vaeDecoder: string;
    readonly vaeEncoder?: string;
  };
  readonly tokenizerDirs: readonly string[];
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads and cross-checks the folder's JSON files and that every model.onnx exists. */
export async function readModelFolder(dir: string): Promise<ModelFolderInfo> {
  const index = await readModelIndex(dir);
  const { pipelineClass } = index;
  if (index.family === "sd3" || index.family === "flux") {
    throw new BackendError(`${index.path}: ${pipelineClass} is not supported by the ONNX Runtime backend (SD and SDXL only)`);
  }
  if (index.json.transformer !== undefined && !index.has("unet")) {
    throw new BackendError(`${index.path}: transformer-based pipelines are not supported (no unet)`);
  }
  // LCM pipelines run an SD UNet; a folder naming no family is taken as SD.
  const family = familyModule(index.family === "sdxl" ? "sdxl" : "sd");

  const sched = await readSchedulerConfig(dir);
  try {
    createScheduler(sched.config);
  } catch (e) {
    throw new BackendError(`${sched.path}: ${(e as Error).message}`, { cause: e });
  }

  // The legacy diffusers ONNX layout (scripts/convert_stable_diffusion_checkpoint_to_onnx.py, the
  // Onnx*Pipeline classes) saves no per-component config.json; those pipelines assume SD 1.x values
  // (4 latent channels, 512×512, VAE factor 8, scaling 0.18215), and widths are checked against the
  // ONNX graphs when the sessions load.
  const unet = await readComponentConfig(dir, "unet");
  const unetCfg = unet.config;
  const legacy = unetCfg === undefined;
  const legacyInpainting = pipelineClass === "OnnxStableDiffusionInpaintPipeline";
  const unetInChannels = unetCfg ? numberField(unetCfg, "in_channels", unet.path) : legacyInpainting ? 9 : 4;
  const crossAttentionDim = unetCfg ? numberField(unetCfg, "cross_attention_dim", unet.path) : undefined;
  const sampleSize = unetCfg ? numberField(unetCfg, "sample_size", unet.path, 64) : 64;
  const timeCondProjDim = typeof unetCfg?.time_cond_proj_dim === "number" ? unetCfg.time_cond_proj_dim : undefined;
  const denoiser = { path: unet.path, config: unetCfg, crossAttentionDim };

  const vae = await readVaeConfig(dir);
  if (!vae.config && !legacy) throw new BackendError(`${vae.path}: missing`);
  const vaeCfg = vae.config ?? {};
  const latentChannels = numberField(vaeCfg, "latent_channels", vae.path, 4);
  const vaeScalingFactor = numberField(vaeCfg, "scaling_factor", vae.path, family.defaultVaeScalingFactor);
  const vaeShiftFactor = numberField(vaeCfg, "shift_factor", vae.path, 0);
  const vaeScaleFactor = vaeScaleFactorOf(vae.config);
  // Each UNet block but the last halves the latent (diffusers' UNet2DConditionModel). Without a config
  // (legacy layout) nothing says how many there are: only the VAE's factor is checked, as before.
  const unetBlocks = Array.isArray(unetCfg?.block_out_channels) ? unetCfg.block_out_channels.length : 1;
  const sizeMultiple = vaeScaleFactor * 2 ** Math.max(0, unetBlocks - 1);

  const inpainting = unetInChannels === 2 * latentChannels + 1;
  if (!inpainting && unetInChannels !== latentChannels) {
    throw new BackendError(`${unet.path}: in_channels ${unetInChannels} matches neither the VAE's latent_channels ${latentChannels} nor an inpainting UNet (${2 * latentChannels + 1})`);
  }
  const facts = await family.readConfigs(index, denoiser, legacy);

  const [textEncoder, textEncoder2] = family.textEncoderComponents.map((c) => join(dir, c, "model.onnx"));
  const paths = {
    textEncoder,
    textEncoder2,
    unet: join(dir, "unet", "model.onnx"),
    vaeDecoder: join(dir, "vae_decoder", "model.onnx"),
    vaeEncoder: join(dir, "vae_encoder", "model.onnx"),
  };
  for (const p of [paths.textEncoder, paths.textEncoder2, paths.unet, paths.vaeDecoder]) {
    if (p !== undefined && !(await exists(p))) throw new BackendError(`${p}: missing`);
  }
  const hasVaeEncoder = await exists(paths.vaeEncoder);
  const tokenizerDirs = family.tokenizerComponents.map((c) => join(dir, c));
  for (const t of tokenizerDirs) {
    if (!(await exists(join(t, "tokenizer.json"))) && !(await exists(join(t, "vocab.json")))) {
      throw new BackendError(`${t}: missing tokenizer files (tokenizer.json or vocab.json + merges.txt)`);
    }
  }
  return {
    dir,
    family: family.name,
    inpainting,
    pipelineClass,
    schedulerConfig: sched.config,
    latentChannels,
    unetInChannels,
    crossAttentionDim,
    sampleSize,
    vaeScaleFactor,
    sizeMultiple,
    vaeScalingFactor,
    vaeShiftFactor,
    textEmbedsDim: facts.textEmbedsDim,
    timeCondProjDim,
    hasVaeEncoder,
    legacyLayout: legacy,
    forceZerosForEmptyPrompt: facts.forceZerosForEmptyPrompt,
    requiresAestheticsScore: facts.requiresAestheticsScore,
    paths: { ...paths, vaeEncoder: hasVaeEncoder ? paths.vaeEncoder : undefined },
    tokenizerDirs,
  };
}

/** The text encoders (see the family module), the UNet and the VAE. */
export interface ModelSessions extends TextEncoderSessions {
  readonly unet: ort.InferenceSession;
  readonly vaeDecoder: ort.InferenceSession;
  readonly vaeEncoder?: ort.InferenceSession;
  /**
   * The UNet `timestep` input as declared: a float scalar in optimum ≥ 1.24 / optimum-onnx exports,
   * int64 `[batch]` in older ones, float `[1]` in the legacy diffusers layout. `length` is the static
   * length of a rank-1 input, "batch" when symbolic, 0 for a scalar.
   */
  readonly timestep: { readonly type: "float32" | "int64"; readonly length: number | "batch" };
  /** vae_encoder output name: `latent_sample` or `latent_parameters` (mean ‖ logvar). */
  readonly vaeEncoderOutput?: "latent_sample" | "latent_parameters";
  /** Latent size the UNet was exported for, when its `sample` height and width are static. */
  readonly staticLatentSize?: { readonly height: number; readonly width: number };
  /** Batch size the UNet was exported for, when static. */
  readonly staticBatch?: number;
}

/** Creates every session and checks names, dtypes and static widths against the folder's configs. */
export async function loadModelSessions(info: ModelFolderInfo, opts: SessionLoadOptions = {}): Promise<ModelSessions> {
  const p = info.paths;
  const family = familyModule(info.family);
  const encoders = await family.loadTextEncoders(info, opts);

  const unet = await createSession(p.unet, opts);
  requireNames(unet, p.unet, ["sample", "timestep", ...family.denoiserInputs], ["out_sample"]);
  const tsMeta = tensorMeta(unet, "timestep", "input");
  const tsType = tsMeta?.type;
  if (tsType !== "float32" && tsType !== "int64") throw new BackendError(`${p.unet}: input "timestep" must be float32 or int64, got ${tsType}`);
  const tsShape = tsMeta!.shape as readonly (number | string)[];
  if (tsShape.length > 1) throw new BackendError(`${p.unet}: input "timestep" must be a scalar or a vector, got shape [${tsShape.join(", ")}]`);
  const tsLength = tsShape.length === 0 ? 0 : staticDim(unet, "timestep", "input", 0) ?? "batch";
  const ehsWidth = staticDim(unet, "encoder_hidden_states", "input", -1);
  if (ehsWidth !== undefined && info.crossAttentionDim !== undefined && ehsWidth !== info.crossAttentionDim) {
    throw new BackendError(`${p.unet}: input "encoder_hidden_states" has width ${ehsWidth}, but unet/config.json cross_attention_dim is ${info.crossAttentionDim}`);
  }
  const sh = staticDim(unet, "sample", "input", 2);
  const sw = staticDim(unet, "sample", "input", 3);
  const ch = staticDim(unet, "sample", "input", 1);
  if (ch !== undefined && ch !== info.unetInChannels) {
    throw new BackendError(`${p.unet}: input "sample" has ${ch} channels, but unet/config.json in_channels is ${info.unetInChannels}`);
  }
  family.checkDenoiser(unet, info, encoders, ehsWidth ?? info.crossAttentionDim);

  const vaeDecoder = await createSession(p.vaeDecoder, opts);
  requireNames(vaeDecoder, p.vaeDecoder, ["latent_sample"], ["sample"]);
  const decCh = staticDim(vaeDecoder, "latent_sample", "input", 1);
  if (decCh !== undefined && decCh !== info.latentChannels) {
    throw new BackendError(`${p.vaeDecoder}: input "latent_sample" has ${decCh} channels, expected latent_channels ${info.latentChannels}`);
  }

  let vaeEncoder: ort.InferenceSession | undefined;
  let vaeEncoderOutput: "latent_sample" | "latent_parameters" | undefined;
  if (p.vaeEncoder) {
    vaeEncoder = await createSession(p.vaeEncoder, opts);
    requireNames(vaeEncoder, p.vaeEncoder, ["sample"], []);
    if (vaeEncoder.outputNames.includes("latent_parameters")) vaeEncoderOutput = "latent_parameters";
    else if (vaeEncoder.outputNames.includes("latent_sample")) vaeEncoderOutput = "latent_sample";
    else throw new BackendError(`${p.vaeEncoder}: missing output "latent_sample" or "latent_parameters" (outputs are ${vaeEncoder.outputNames.join(", ")})`);
  }
  return {
    ...encoders,
    unet,
    vaeDecoder,
    vaeEncoder,
    timestep: { type: tsType, length: tsLength },
    vaeEncoderOutput,
    staticLatentSize: sh !== undefined && sw !== undefined ? { height: sh, width: sw } : undefined,
    staticBatch: staticDim(unet, "sample", "input", 0),
  };
}

export async function releaseSessions(s: ModelSessions): Promise<void> {
  for (const x of [s.textEncoder, s.textEncoder2, s.unet, s.vaeDecoder, s.vaeEncoder]) await x?.release();
}
