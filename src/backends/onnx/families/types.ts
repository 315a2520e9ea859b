/**
 * What a model family module describes for the generic ONNX pipeline
 * (pipeline.ts): its components and sessions, prompt encoding, the denoiser's
 * inputs, latent layout and schedule, and its call defaults. One module per
 * family (sd.ts, sdxl.ts, sd3.ts, flux.ts), registered by name in index.ts.
 */
import type * as ort from "onnxruntime-node";
import type { GenerationMode, GenerationRequest } from "../../types.js";
import type { Json, ModelIndex } from "../../model-index.js";
import type { ModelFolderInfo } from "../model-folder.js";
import type { FlowMatchTimestepsOptions } from "../schedulers/index.js";
import type { IntDtype, SessionLoadOptions } from "../sessions.js";
import type { PromptTokenizer, TokenizerKind } from "../tokenizer.js";

export type OnnxFamily = "sd" | "sdxl" | "sd3" | "flux";

/** One loaded text encoder. */
export interface TextEncoder {
  readonly session: ort.InferenceSession;
  readonly path: string;
  readonly idsDtype: IntDtype;
  /** The hidden-state output the family reads (e.g. `last_hidden_state`, the penultimate `hidden_states.N`). */
  readonly hiddenOutput: string;
}

/** The text encoders in the family's component order; `undefined` for an optional one the folder leaves out (SD3's T5). */
export interface TextEncoderSessions {
  readonly textEncoders: readonly (TextEncoder | undefined)[];
}

/** A text encoder component and its tokenizer. */
export interface TextEncoderComponent {
  /** Component folder, e.g. `text_encoder_2`. */
  readonly encoder: string;
  readonly tokenizer: string;
  readonly tokenizerKind: TokenizerKind;
  /** The folder may leave it out (model_index.json `[null, null]`); the family then conditions without it. */
  readonly optional?: boolean;
}

/** What the family reads from the folder's configs besides the shared ones. */
export interface FamilyConfigFacts {
  /** Pooled-embedding width the denoiser takes, when it has one and the configs say it. */
  readonly pooledDim?: number;
  readonly forceZerosForEmptyPrompt: boolean;
  readonly requiresAestheticsScore: boolean;
  /** FLUX.1-dev: the transformer embeds the guidance scale (`guidance` input). */
  readonly guidanceEmbeds: boolean;
}

/** The denoiser's config as read (undefined in the legacy layout). */
export interface DenoiserConfig {
  readonly path: string;
  readonly config: Json | undefined;
  /** Width of its `encoder_hidden_states` (UNet cross_attention_dim, transformer joint_attention_dim). */
  readonly contextDim?: number;
}

/** What the denoiser's config says about its shapes. */
export interface DenoiserGeometry {
  /** Channels of its sample input (per packed token for FLUX). */
  readonly inChannels: number;
  /** The sample carries [latents ‖ mask ‖ masked-image latents] (9-channel SD inpainting UNets). */
  readonly inpainting: boolean;
  readonly contextDim?: number;
  /** Latent size of the native image (native size = sampleSize · vaeScaleFactor). */
  readonly sampleSize: number;
  /** What width and height must be multiples of (see ModelFolderInfo.sizeMultiple). */
  readonly sizeMultiple: number;
  /** LCM-style `timestep_cond` width. */
  readonly timeCondProjDim?: number;
  /** Latent pixels per side of one transformer token (SD3 patch_size, FLUX's 2×2 packing); 1 for a UNet. */
  readonly patchSize: number;
}

/** The denoiser's tensor names. */
export interface DenoiserSpec {
  /** Component folder: `unet` or `transformer`. */
  readonly component: string;
  readonly sampleInput: string;
  readonly output: string;
  /** Inputs besides the sample and `timestep`. */
  readonly conditioningInputs: readonly string[];
  /** The scheduler's t is divided by this before it is fed (FLUX feeds t/1000). */
  readonly timestepDivisor: number;
  /** Latents as the denoiser and the scheduler see them: NCHW, or e.g. FLUX's 2×2-packed tokens. */
  readonly layout: LatentLayout;
}

/**
 * How the denoiser and the scheduler see latents. Random draws, the VAE and masks work in NCHW
 * [n, C, h, w]; the pipeline converts at those boundaries, so latents keep the denoiser's layout
 * from the first draw to the decode, as in diffusers.
 */
export interface LatentLayout {
  /** NCHW, or tokens whose last axis is the channels (then the denoiser's static sizes are not spatial). */
  readonly kind: "spatial" | "tokens";
  /** [n, C, h, w] in this layout (may return `latents` itself). */
  fromNchw(latents: Float32Array, n: number, C: number, h: number, w: number): Float32Array;
  /** Back to [n, C, h, w] (may return `latents` itself). */
  toNchw(latents: Float32Array, n: number, C: number, h: number, w: number): Float32Array;
  /** The denoiser's sample dims for a batch of latents [C, h, w] each, `inC` channels per sample position. */
  sampleDims(batch: number, inC: number, C: number, h: number, w: number): number[];
}

/** Latents as they are: [n, C, h, w]. */
export const NCHW_LAYOUT: LatentLayout = {
  kind: "spatial",
  fromNchw: (latents) => latents,
  toNchw: (latents) => latents,
  sampleDims: (batch, inC, _C, h, w) => [batch, inC, h, w],
};

/** Prompt conditioning for a batch of B = 2N (negative first) under guidance, else N. */
export interface Conditioning {
  /** [B, seq, dim]. */
  readonly hidden: Float32Array;
  readonly seq: number;
  readonly dim: number;
  /** Pooled embeddings [B, pooledDim], when the family has them. */
  readonly pooled?: Float32Array;
  readonly pooledDim?: number;
}

/** What encoding a prompt uses: the loaded encoders and tokenizers, and the pipeline's timed `run`. */
export interface EncodeContext {
  readonly encoders: TextEncoderSessions;
  /** One per text encoder component (undefined where the encoder is absent). */
  readonly tokenizers: readonly (PromptTokenizer | undefined)[];
  readonly info: ModelFolderInfo;
  /** The request's T5 length (max_sequence_length, or the family's default). */
  readonly maxSequenceLength: number;
  run(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType>;
}

/** The batch a denoiser call sees. */
export interface BatchLayout {
  readonly n: number;
  readonly batch: number;
  /** Two halves (negative, then positive) combined by guidance. */
  readonly cfg: boolean;
  readonly width: number;
  readonly height: number;
  /** Latent height and width. */
  readonly lh: number;
  readonly lw: number;
}

export interface CallDefaults {
  readonly steps: number;
  readonly guidance: number;
  readonly strength: number;
  /** T5 length for families with a T5 encoder. */
  readonly maxSequenceLength?: number;
}

/** How a request is guided. */
export interface Guidance {
  /** Run negative and positive halves and combine them: out = neg + scale·(pos − neg). */
  readonly cfg: boolean;
  /** The combining scale when `cfg`. */
  readonly scale: number;
}

export interface DiffusionFamily {
  readonly name: OnnxFamily;
  /** The scheduler classes the denoiser was trained for: ᾱ-table (DDPM-style) ones, or flow matching. */
  readonly scheduleKind: "beta" | "flow-match";
  /** Text encoders and tokenizers, in encoding order. */
  readonly textEncoders: readonly TextEncoderComponent[];
  readonly denoiser: DenoiserSpec;
  /** diffusers' VAE scaling_factor for the family when the VAE config has none. */
  readonly defaultVaeScalingFactor: number;
  /** The denoiser's shapes from its config (`config` undefined: the legacy layout). */
  denoiserGeometry(config: Json | undefined, path: string, latentChannels: number, vaeScaleFactor: number, pipelineClass: string): DenoiserGeometry;
  /** Reads and cross-checks the text encoders' configs against the denoiser's; `legacy` folders have none. */
  readConfigs(index: ModelIndex, denoiser: DenoiserConfig, legacy: boolean): Promise<FamilyConfigFacts>;
  /** Creates the text encoder sessions and checks them. */
  loadTextEncoders(info: ModelFolderInfo, opts: SessionLoadOptions): Promise<TextEncoderSessions>;
  /**
   * Checks the loaded denoiser's conditioning inputs against the encoders; `contextWidth` is its
   * encoder_hidden_states width (from the graph, else the config), when known.
   */
  checkDenoiser(denoiser: ort.InferenceSession, info: ModelFolderInfo, encoders: TextEncoderSessions, contextWidth: number | undefined): void;
  /** diffusers' call defaults for this pipeline class and mode. */
  defaults(pipelineClass: string, mode: GenerationMode): CallDefaults;
  /** Refuses what the family cannot do with this request (after the generic checks); `guidance` is the effective guidance_scale. */
  checkRequest(req: GenerationRequest, info: ModelFolderInfo, guidance: number): void;
  /** Whether guidance_scale means anything to this model (the capabilities' `guidance`). */
  takesGuidance(info: ModelFolderInfo): boolean;
  /** Whether and how the request runs two guided halves; `timeCond`: the UNet embeds guidance (LCM). */
  guidance(req: GenerationRequest, guidanceScale: number, timeCond: boolean): Guidance;
  /** Extra options for the scheduler's setTimesteps (FLUX's own sigmas, the sequence length for dynamic shifting). */
  scheduleOptions(steps: number, lh: number, lw: number, info: ModelFolderInfo): FlowMatchTimestepsOptions;
  /** Encodes [negative, positive] (or just positive) and tiles each to N images. */
  encodePrompt(ctx: EncodeContext, req: GenerationRequest, n: number, cfg: boolean): Promise<Conditioning>;
  /**
   * The denoiser's fixed feeds besides the sample, the timestep and `encoder_hidden_states`, as the loaded
   * `denoiser` declares them; `guidanceScale` is the request's.
   */
  conditioningFeeds(cond: Conditioning, layout: BatchLayout, info: ModelFolderInfo, guidanceScale: number, denoiser: ort.InferenceSession): Record<string, ort.Tensor>;
}

/** src [rows, rowLen] → [rows·n, rowLen], each row repeated n times, in order. */
export function tileRows(src: Float32Array, rows: number, rowLen: number, n: number): Float32Array {
  const out = new Float32Array(rows * n * rowLen);
  for (let r = 0; r < rows; r++) for (let k = 0; k < n; k++) out.set(src.subarray(r * rowLen, (r + 1) * rowLen), (r * n + k) * rowLen);
  return out;
}

/** The prompts a guided batch encodes: [negative, positive], or just [positive]. */
export function promptPair(positive: string, negative: string, cfg: boolean): string[] {
  return cfg ? [negative, positive] : [positive];
}

/** Python's `a or b` on optional strings: diffusers falls back on an absent *or empty* prompt_2/3. */
export function orElse(value: string | undefined, fallback: string): string {
  return value ? value : fallback;
}
