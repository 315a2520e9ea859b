/**
 * What a model family module describes for the generic ONNX pipeline
 * (pipeline.ts): its components and sessions, prompt encoding, the denoiser's
 * conditioning inputs and its call defaults. One module per family
 * (sd.ts, sdxl.ts), registered by name in index.ts.
 */
import type * as ort from "onnxruntime-node";
import type { GenerationMode, GenerationRequest } from "../../types.js";
import type { Json, ModelIndex } from "../../model-index.js";
import type { ModelFolderInfo } from "../model-folder.js";
import type { IntDtype, SessionLoadOptions } from "../sessions.js";
import type { ClipTokenizer } from "../tokenizer.js";

export type OnnxFamily = "sd" | "sdxl";

/** The text encoders' sessions and how to feed/read them. */
export interface TextEncoderSessions {
  readonly textEncoder: ort.InferenceSession;
  readonly textEncoder2?: ort.InferenceSession;
  readonly inputIdsDtype: IntDtype;
  readonly inputIds2Dtype: IntDtype;
  /** The penultimate hidden-state output names of each encoder, when the family reads them. */
  readonly penultimate1?: string;
  readonly penultimate2?: string;
}

/** What the family reads from the folder's configs besides the shared ones. */
export interface FamilyConfigFacts {
  /** `text_embeds` width (SDXL: text_encoder_2 projection_dim). */
  readonly textEmbedsDim?: number;
  readonly forceZerosForEmptyPrompt: boolean;
  readonly requiresAestheticsScore: boolean;
}

/** The denoiser's config as read (undefined in the legacy layout). */
export interface DenoiserConfig {
  readonly path: string;
  readonly config: Json | undefined;
  readonly crossAttentionDim?: number;
}

/** Prompt conditioning for a batch of B = 2N (unconditional first) under CFG, else N. */
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
  readonly tokenizers: readonly ClipTokenizer[];
  readonly info: ModelFolderInfo;
  run(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.ReturnType>;
}

/** The batch a denoiser call sees. */
export interface BatchLayout {
  readonly n: number;
  readonly batch: number;
  readonly cfg: boolean;
  readonly width: number;
  readonly height: number;
}

export interface CallDefaults {
  readonly steps: number;
  readonly guidance: number;
  readonly strength: number;
}

export interface DiffusionFamily {
  readonly name: OnnxFamily;
  /** Text encoder component folders, in encoding order. */
  readonly textEncoderComponents: readonly string[];
  /** Tokenizer component folders, one per text encoder. */
  readonly tokenizerComponents: readonly string[];
  /** diffusers' VAE scaling_factor for the family when the VAE config has none. */
  readonly defaultVaeScalingFactor: number;
  /** Reads and cross-checks the text encoders' configs against the denoiser's; `legacy` folders have none. */
  readConfigs(index: ModelIndex, denoiser: DenoiserConfig, legacy: boolean): Promise<FamilyConfigFacts>;
  /** Creates the text encoder sessions and checks them. */
  loadTextEncoders(info: ModelFolderInfo, opts: SessionLoadOptions): Promise<TextEncoderSessions>;
  /** The denoiser inputs besides sample and timestep. */
  readonly denoiserInputs: readonly string[];
  /**
   * Checks the loaded denoiser's conditioning inputs against the encoders; `hiddenWidth` is its
   * encoder_hidden_states width (from the graph, else the config), when known.
   */
  checkDenoiser(unet: ort.InferenceSession, info: ModelFolderInfo, encoders: TextEncoderSessions, hiddenWidth: number | undefined): void;
  /** diffusers' call defaults for this pipeline class and mode. */
  defaults(pipelineClass: string, mode: GenerationMode): CallDefaults;
  /** Encodes [negative, positive] (or just positive) and tiles each to N images. */
  encodePrompt(ctx: EncodeContext, req: GenerationRequest, n: number, cfg: boolean): Promise<Conditioning>;
  /** The denoiser's fixed conditioning feeds besides `encoder_hidden_states`. */
  conditioningFeeds(cond: Conditioning, layout: BatchLayout, info: ModelFolderInfo): Record<string, ort.Tensor>;
}

/** src [rows, rowLen] → [rows·n, rowLen], each row repeated n times, in order. */
export function tileRows(src: Float32Array, rows: number, rowLen: number, n: number): Float32Array {
  const out = new Float32Array(rows * n * rowLen);
  for (let r = 0; r < rows; r++) for (let k = 0; k < n; k++) out.set(src.subarray(r * rowLen, (r + 1) * rowLen), (r * n + k) * rowLen);
  return out;
}
