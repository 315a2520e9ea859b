/**
 * Stable Diffusion 1.x/2.x (and LCM on an SD UNet): one CLIP text encoder whose
 * last hidden state conditions the UNet (diffusers' StableDiffusion*Pipeline,
 * LatentConsistencyModel*Pipeline).
 */
import { join } from "node:path";
import type * as ort from "onnxruntime-node";
import { type Json, type ModelIndex, numberField, readJsonFile } from "../../model-index.js";
import { BackendError, type GenerationMode, type GenerationRequest } from "../../types.js";
import type { ModelFolderInfo } from "../model-folder.js";
import { checkWidth, createSession, idsTensor, intDtype, requireNames, type SessionLoadOptions } from "../sessions.js";
import type { FlowMatchTimestepsOptions } from "../schedulers/index.js";
import {
  type BatchLayout,
  type CallDefaults,
  type Conditioning,
  type DenoiserConfig,
  type DenoiserGeometry,
  type DenoiserSpec,
  type DiffusionFamily,
  type EncodeContext,
  type FamilyConfigFacts,
  type Guidance,
  type OnnxFamily,
  type TextEncoder,
  type TextEncoderComponent,
  type TextEncoderSessions,
  NCHW_LAYOUT,
  promptPair,
  tileRows,
} from "./types.js";

/** LatentConsistencyModel{,Img2Img}Pipeline: 4 steps, guidance 8.5, img2img strength 0.8. */
export function lcmDefaults(pipelineClass: string, mode: GenerationMode): CallDefaults | undefined {
  return /^LatentConsistencyModel/.test(pipelineClass) ? { steps: 4, guidance: 8.5, strength: mode === "image2image" ? 0.8 : 1 } : undefined;
}

/** Opens a text encoder and checks its input and the outputs the family reads. */
export async function openTextEncoder(path: string, opts: SessionLoadOptions, outputs: readonly string[], hiddenOutput: (s: ort.InferenceSession) => string): Promise<TextEncoder> {
  const session = await createSession(path, opts);
  requireNames(session, path, ["input_ids"], outputs);
  return { session, path, idsDtype: intDtype(session, "input_ids", path), hiddenOutput: hiddenOutput(session) };
}

/** Optimum's UNet export: `sample`, `timestep`, `encoder_hidden_states` → `out_sample`. */
export const UNET: DenoiserSpec = {
  component: "unet",
  sampleInput: "sample",
  output: "out_sample",
  conditioningInputs: ["encoder_hidden_states"],
  timestepDivisor: 1,
  layout: NCHW_LAYOUT,
};

export class StableDiffusionFamily implements DiffusionFamily {
  readonly name: OnnxFamily = "sd";
  readonly scheduleKind: "beta" | "flow-match" = "beta";
  readonly textEncoders: readonly TextEncoderComponent[] = [{ encoder: "text_encoder", tokenizer: "tokenizer", tokenizerKind: "clip" }];
  readonly denoiser: DenoiserSpec = UNET;
  readonly defaultVaeScalingFactor: number = 0.18215;

  /**
   * The legacy diffusers ONNX layout (scripts/convert_stable_diffusion_checkpoint_to_onnx.py, the Onnx*Pipeline
   * classes) saves no unet/config.json; those pipelines assume SD 1.x values (512×512, 4-channel latents or a
   * 9-channel inpainting UNet), and widths are checked against the ONNX graphs when the sessions load.
   */
  denoiserGeometry(config: Json | undefined, path: string, latentChannels: number, vaeScaleFactor: number, pipelineClass: string): DenoiserGeometry {
    const legacyInpainting = pipelineClass === "OnnxStableDiffusionInpaintPipeline";
    const inChannels = config ? numberField(config, "in_channels", path) : legacyInpainting ? 9 : 4;
    const inpainting = inChannels === 2 * latentChannels + 1;
    if (!inpainting && inChannels !== latentChannels) {
      throw new BackendError(`${path}: in_channels ${inChannels} matches neither the VAE's latent_channels ${latentChannels} nor an inpainting UNet (${2 * latentChannels + 1})`);
    }
    // Each UNet block but the last halves the latent (diffusers' UNet2DConditionModel); a traced UNet
    // lines up its skip connections only at those multiples. Without a config (legacy layout) nothing
    // says how many blocks there are: only the VAE's factor is checked.
    const blocks = Array.isArray(config?.block_out_channels) ? config.block_out_channels.length : 1;
    return {
      inChannels,
      inpainting,
      contextDim: config ? numberField(config, "cross_attention_dim", path) : undefined,
      sampleSize: config ? numberField(config, "sample_size", path, 64) : 64,
      sizeMultiple: vaeScaleFactor * 2 ** Math.max(0, blocks - 1),
      timeCondProjDim: typeof config?.time_cond_proj_dim === "number" ? config.time_cond_proj_dim : undefined,
      patchSize: 1,
    };
  }

  async readConfigs(index: ModelIndex, denoiser: DenoiserConfig, legacy: boolean): Promise<FamilyConfigFacts> {
    const facts = { forceZerosForEmptyPrompt: false, requiresAestheticsScore: false, guidanceEmbeds: false };
    if (legacy || denoiser.contextDim === undefined) return facts;
    const path = join(index.dir, "text_encoder", "config.json");
    const hidden = numberField(await readJsonFile(path), "hidden_size", path);
    if (hidden !== denoiser.contextDim) {
      throw new BackendError(`${path}: hidden_size ${hidden} does not match the UNet's cross_attention_dim ${denoiser.contextDim} (${denoiser.path})`);
    }
    return facts;
  }

  async loadTextEncoders(info: ModelFolderInfo, opts: SessionLoadOptions): Promise<TextEncoderSessions> {
    return { textEncoders: [await openTextEncoder(info.paths.textEncoders[0]!, opts, ["last_hidden_state"], () => "last_hidden_state")] };
  }

  checkDenoiser(_denoiser: ort.InferenceSession, info: ModelFolderInfo, encoders: TextEncoderSessions, contextWidth: number | undefined): void {
    const te = encoders.textEncoders[0]!;
    if (contextWidth !== undefined) checkWidth(te.session, te.path, "last_hidden_state", "output", contextWidth, "the UNet's encoder_hidden_states width", info.paths.denoiser);
  }

  /** StableDiffusion{,Img2Img,Inpaint}Pipeline: 50 steps, guidance 7.5, strength 0.8 (img2img) / 1.0. */
  defaults(pipelineClass: string, mode: GenerationMode): CallDefaults {
    return lcmDefaults(pipelineClass, mode) ?? { steps: 50, guidance: 7.5, strength: mode === "image2image" ? 0.8 : 1 };
  }

  checkRequest(req: GenerationRequest, _info: ModelFolderInfo, _guidance: number): void {
    if (req.trueCfgScale !== undefined) throw new BackendError("true_cfg_scale applies to FLUX; Stable Diffusion guides with guidance_scale", { param: "true_cfg_scale" });
  }

  /** LCM-style UNets embed the guidance themselves (`timestep_cond`). */
  takesGuidance(info: ModelFolderInfo): boolean {
    return info.timeCondProjDim === undefined;
  }

  /** Classifier-free guidance above 1, except for LCM-style UNets, which take the guidance as an embedding. */
  guidance(_req: GenerationRequest, guidanceScale: number, timeCond: boolean): Guidance {
    return { cfg: guidanceScale > 1 && !timeCond, scale: guidanceScale };
  }

  scheduleOptions(_steps: number, _lh: number, _lw: number, _info: ModelFolderInfo): FlowMatchTimestepsOptions {
    return {};
  }

  async encodePrompt(ctx: EncodeContext, req: GenerationRequest, n: number, cfg: boolean): Promise<Conditioning> {
    const prompts = promptPair(req.prompt, req.negativePrompt ?? "", cfg);
    const te = ctx.encoders.textEncoders[0]!;
    const ids = prompts.map((p) => ctx.tokenizers[0]!.encode(p));
    const out = await ctx.run(te.session, { input_ids: idsTensor(ids, te.idsDtype) });
    const h = out.last_hidden_state as ort.Tensor;
    const [, seq, dim] = h.dims as number[];
    return { hidden: tileRows(h.data as Float32Array, prompts.length, seq * dim, n), seq, dim };
  }

  conditioningFeeds(_cond: Conditioning, _layout: BatchLayout, _info: ModelFolderInfo, _guidanceScale: number, _denoiser: ort.InferenceSession): Record<string, ort.Tensor> {
    return {};
  }
}
