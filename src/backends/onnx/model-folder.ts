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
import { type ModelFamily, numberField, readComponentConfig, readModelIndex, readSchedulerConfig, readVaeConfig, vaeScaleFactorOf } from "../model-index.js";
import { BackendError } from "../types.js";
import { FAMILIES, familyModule, type OnnxFamily, type TextEncoderSessions } from "./families/index.js";
import { createSession, requireNames, type SessionLoadOptions, staticDim, tensorMeta } from "./sessions.js";
import { schedulerFor } from "./schedulers/index.js";

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
  /** Channels of the denoiser's sample input (per packed token for FLUX). */
  readonly denoiserInChannels: number;
  /** Width of the denoiser's encoder_hidden_states from its config; undefined in the legacy layout (then taken from the graph). */
  readonly contextDim?: number;
  /** Latent sample size; native image size = sampleSize · vaeScaleFactor. */
  readonly sampleSize: number;
  readonly vaeScaleFactor: number;
  /**
   * What width and height must be multiples of: the VAE's factor times the denoiser's own (a UNet's
   * downsampling, a transformer's patch, FLUX's 2×2 packing). A traced UNet (every ONNX export) fixes
   * at export that its skip connections line up, so other sizes fail inside it.
   */
  readonly sizeMultiple: number;
  readonly vaeScalingFactor: number;
  readonly vaeShiftFactor: number;
  /** Pooled-embedding width of the denoiser (SDXL text_embeds, SD3/FLUX pooled_projections), when the configs say it. */
  readonly pooledDim?: number;
  /** LCM-style `timestep_cond` width, when the UNet has one. */
  readonly timeCondProjDim?: number;
  /** Latent pixels per side of one transformer token (SD3 patch_size, FLUX's 2×2 packing); 1 for a UNet. */
  readonly patchSize: number;
  /** FLUX.1-dev: the transformer takes the guidance scale as an input (`guidance`). */
  readonly guidanceEmbeds: boolean;
  readonly hasVaeEncoder: boolean;
  /** The legacy diffusers ONNX layout: no per-component config.json. */
  readonly legacyLayout: boolean;
  /** model_index.json `force_zeros_for_empty_prompt` (SDXL pipelines default it to true). */
  readonly forceZerosForEmptyPrompt: boolean;
  /** model_index.json `requires_aesthetics_score` (SDXL refiner-style time ids: size, crop, aesthetic score). */
  readonly requiresAestheticsScore: boolean;
  /** Component → model.onnx path. */
  readonly paths: {
    /** In the family's order; undefined for an optional encoder the folder leaves out. */
    readonly textEncoders: readonly (string | undefined)[];
    readonly denoiser: string;
    readonly vaeDecoder: string;
    readonly vaeEncoder?: string;
  };
  /** One per text encoder (undefined where the encoder is left out). */
  readonly tokenizerDirs: readonly (string | undefined)[];
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** The ONNX family module for a detected family: LCM runs an SD UNet; a folder naming no family is taken as SD. */
function onnxFamilyOf(family: ModelFamily | undefined): OnnxFamily {
  return family !== undefined && Object.hasOwn(FAMILIES, family) ? (family as OnnxFamily) : "sd";
}

/** Reads and cross-checks the folder's JSON files and that every model.onnx exists. */
export async function readModelFolder(dir: string): Promise<ModelFolderInfo> {
  const index = await readModelIndex(dir);
  const { pipelineClass } = index;
  const family = familyModule(onnxFamilyOf(index.family));
  const denoiserComponent = family.denoiser.component;
  if (denoiserComponent === "unet" && index.json.transformer !== undefined && !index.has("unet")) {
    throw new BackendError(`${index.path}: ${pipelineClass || "this pipeline"} is transformer-based, which is not supported here (no unet)`);
  }

  const sched = await readSchedulerConfig(dir);
  try {
    schedulerFor(sched.config);
  } catch (e) {
    throw new BackendError(`${sched.path}: ${(e as Error).message}`, { cause: e });
  }

  const den = await readComponentConfig(dir, denoiserComponent);
  const legacy = den.config === undefined;
  if (legacy && denoiserComponent !== "unet") throw new BackendError(`${den.path}: missing`);

  const vae = await readVaeConfig(dir);
  if (!vae.config && !legacy) throw new BackendError(`${vae.path}: missing`);
  const vaeCfg = vae.config ?? {};
  const latentChannels = numberField(vaeCfg, "latent_channels", vae.path, 4);
  const vaeScalingFactor = numberField(vaeCfg, "scaling_factor", vae.path, family.defaultVaeScalingFactor);
  const vaeShiftFactor = numberField(vaeCfg, "shift_factor", vae.path, 0);
  const vaeScaleFactor = vaeScaleFactorOf(vae.config);
  const geometry = family.denoiserGeometry(den.config, den.path, latentChannels, vaeScaleFactor, pipelineClass);
  const facts = await family.readConfigs(index, { path: den.path, config: den.config, contextDim: geometry.contextDim }, legacy);

  const textEncoders: (string | undefined)[] = [];
  const tokenizerDirs: (string | undefined)[] = [];
  for (const c of family.textEncoders) {
    const path = join(dir, c.encoder, "model.onnx");
    // An optional encoder (SD3's T5) may be left out: listed as [null, null], or its folder absent.
    const present = !c.optional || (index.has(c.encoder) && (await exists(path)));
    textEncoders.push(present ? path : undefined);
    tokenizerDirs.push(present ? join(dir, c.tokenizer) : undefined);
  }
  const paths = {
    textEncoders,
    denoiser: join(dir, denoiserComponent, "model.onnx"),
    vaeDecoder: join(dir, "vae_decoder", "model.onnx"),
    vaeEncoder: join(dir, "vae_encoder", "model.onnx"),
  };
  for (const p of [...paths.textEncoders, paths.denoiser, paths.vaeDecoder]) {
    if (p !== undefined && !(await exists(p))) throw new BackendError(`${p}: missing`);
  }
  const hasVaeEncoder = await exists(paths.vaeEncoder);
  for (const [i, t] of tokenizerDirs.entries()) {
    if (t === undefined) continue;
    const files = family.textEncoders[i].tokenizerKind === "t5" ? ["tokenizer.json"] : ["tokenizer.json", "vocab.json"];
    if (!(await Promise.all(files.map((f) => exists(join(t, f))))).some(Boolean)) {
      throw new BackendError(`${t}: missing tokenizer files (${family.textEncoders[i].tokenizerKind === "t5" ? "tokenizer.json" : "tokenizer.json or vocab.json + merges.txt"})`);
    }
  }
  return {
    dir,
    family: family.name,
    inpainting: geometry.inpainting,
    pipelineClass,
    schedulerConfig: sched.config,
    latentChannels,
    denoiserInChannels: geometry.inChannels,
    contextDim: geometry.contextDim,
    sampleSize: geometry.sampleSize,
    vaeScaleFactor,
    sizeMultiple: geometry.sizeMultiple,
    vaeScalingFactor,
    vaeShiftFactor,
    pooledDim: facts.pooledDim,
    timeCondProjDim: geometry.timeCondProjDim,
    patchSize: geometry.patchSize,
    guidanceEmbeds: facts.guidanceEmbeds,
    hasVaeEncoder,
    legacyLayout: legacy,
    forceZerosForEmptyPrompt: facts.forceZerosForEmptyPrompt,
    requiresAestheticsScore: facts.requiresAestheticsScore,
    paths: { ...paths, vaeEncoder: hasVaeEncoder ? paths.vaeEncoder : undefined },
    tokenizerDirs,
  };
}

/** The text encoders (see the family module), the denoiser and the VAE. */
export interface ModelSessions extends TextEncoderSessions {
  readonly denoiser: ort.InferenceSession;
  readonly vaeDecoder: ort.InferenceSession;
  readonly vaeEncoder?: ort.InferenceSession;
  /**
   * The denoiser's `timestep` input as declared: a float scalar in optimum ≥ 1.24 / optimum-onnx UNet exports,
   * float `[batch]` in transformer exports, int64 `[batch]` in older UNet ones, float `[1]` in the legacy diffusers
   * layout. `length` is the static length of a rank-1 input, "batch" when symbolic, 0 for a scalar.
   */
  readonly timestep: { readonly type: "float32" | "int64"; readonly length: number | "batch" };
  /** vae_encoder output name: `latent_sample` or `latent_parameters` (mean ‖ logvar). */
  readonly vaeEncoderOutput?: "latent_sample" | "latent_parameters";
  /** Latent size the denoiser was exported for, when its sample height and width are static. */
  readonly staticLatentSize?: { readonly height: number; readonly width: number };
  /** Batch size the denoiser was exported for, when static. */
  readonly staticBatch?: number;
}

/** Creates every session and checks names, dtypes and static widths against the folder's configs. */
export async function loadModelSessions(info: ModelFolderInfo, opts: SessionLoadOptions = {}): Promise<ModelSessions> {
  const p = info.paths;
  const family = familyModule(info.family);
  const spec = family.denoiser;
  const encoders = await family.loadTextEncoders(info, opts);

  const denoiser = await createSession(p.denoiser, opts);
  requireNames(denoiser, p.denoiser, [spec.sampleInput, "timestep", ...spec.conditioningInputs], [spec.output]);
  const tsMeta = tensorMeta(denoiser, "timestep", "input");
  const tsType = tsMeta?.type;
  if (tsType !== "float32" && tsType !== "int64") throw new BackendError(`${p.denoiser}: input "timestep" must be float32 or int64, got ${tsType}`);
  const tsShape = tsMeta!.shape as readonly (number | string)[];
  if (tsShape.length > 1) throw new BackendError(`${p.denoiser}: input "timestep" must be a scalar or a vector, got shape [${tsShape.join(", ")}]`);
  const tsLength = tsShape.length === 0 ? 0 : staticDim(denoiser, "timestep", "input", 0) ?? "batch";
  const ehsWidth = staticDim(denoiser, "encoder_hidden_states", "input", -1);
  if (ehsWidth !== undefined && info.contextDim !== undefined && ehsWidth !== info.contextDim) {
    throw new BackendError(`${p.denoiser}: input "encoder_hidden_states" has width ${ehsWidth}, but its config's ${spec.component === "unet" ? "cross_attention_dim" : "joint_attention_dim"} is ${info.contextDim}`);
  }
  // The sample's channels: NCHW axis 1, or the last axis of FLUX's packed tokens.
  const spatial = spec.layout.kind === "spatial";
  const ch = staticDim(denoiser, spec.sampleInput, "input", spatial ? 1 : -1);
  if (ch !== undefined && ch !== info.denoiserInChannels) {
    throw new BackendError(`${p.denoiser}: input "${spec.sampleInput}" has ${ch} channels, but its config's in_channels is ${info.denoiserInChannels}`);
  }
  const sh = spatial ? staticDim(denoiser, spec.sampleInput, "input", 2) : undefined;
  const sw = spatial ? staticDim(denoiser, spec.sampleInput, "input", 3) : undefined;
  family.checkDenoiser(denoiser, info, encoders, ehsWidth ?? info.contextDim);

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
    denoiser,
    vaeDecoder,
    vaeEncoder,
    timestep: { type: tsType, length: tsLength },
    vaeEncoderOutput,
    staticLatentSize: sh !== undefined && sw !== undefined ? { height: sh, width: sw } : undefined,
    staticBatch: staticDim(denoiser, spec.sampleInput, "input", 0),
  };
}

export async function releaseSessions(s: ModelSessions): Promise<void> {
  for (const x of [...s.textEncoders.map((e) => e?.session), s.denoiser, s.vaeDecoder, s.vaeEncoder]) await x?.release();
}
