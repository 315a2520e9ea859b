/**
 * Stable Diffusion 1.x/2.x (and LCM on an SD UNet): one CLIP text encoder whose
 * last hidden state conditions the UNet (diffusers' StableDiffusion*Pipeline,
 * LatentConsistencyModel*Pipeline).
 */
import { join } from "node:path";
import type * as ort from "onnxruntime-node";
import { type ModelIndex, numberField, readJsonFile } from "../../model-index.js";
import { BackendError, type GenerationMode, type GenerationRequest } from "../../types.js";
import type { ModelFolderInfo } from "../model-folder.js";
import { checkWidth, createSession, idsTensor, intDtype, requireNames, type SessionLoadOptions } from "../sessions.js";
import {
  type BatchLayout,
  type CallDefaults,
  type Conditioning,
  type DenoiserConfig,
  type DiffusionFamily,
  type EncodeContext,
  type FamilyConfigFacts,
  type OnnxFamily,
  type TextEncoderSessions,
  tileRows,
} from "./types.js";

/** LatentConsistencyModel{,Img2Img}Pipeline: 4 steps, guidance 8.5, img2img strength 0.8. */
export function lcmDefaults(pipelineClass: string, mode: GenerationMode): CallDefaults | undefined {
  return /^LatentConsistencyModel/.test(pipelineClass) ? { steps: 4, guidance: 8.5, strength: mode === "image2image" ? 0.8 : 1 } : undefined;
}

export class StableDiffusionFamily implements DiffusionFamily {
  readonly name: OnnxFamily = "sd";
  readonly textEncoderComponents: readonly string[] = ["text_encoder"];
  readonly tokenizerComponents: readonly string[] = ["tokenizer"];
  readonly defaultVaeScalingFactor: number = 0.18215;
  readonly denoiserInputs: readonly string[] = ["encoder_hidden_states"];

  async readConfigs(index: ModelIndex, denoiser: DenoiserConfig, legacy: boolean): Promise<FamilyConfigFacts> {
    const facts = { forceZerosForEmptyPrompt: false, requiresAestheticsScore: false };
    if (legacy || denoiser.crossAttentionDim === undefined) return facts;
    const path = join(index.dir, "text_encoder", "config.json");
    const hidden = numberField(await readJsonFile(path), "hidden_size", path);
    if (hidden !== denoiser.crossAttentionDim) {
      throw new BackendError(`${path}: hidden_size ${hidden} does not match the UNet's cross_attention_dim ${denoiser.crossAttentionDim} (${denoiser.path})`);
    }
    return facts;
  }

  async loadTextEncoders(info: ModelFolderInfo, opts: SessionLoadOptions): Promise<TextEncoderSessions> {
    const path = info.paths.textEncoder;
    const textEncoder = await createSession(path, opts);
    requireNames(textEncoder, path, ["input_ids"], ["last_hidden_state"]);
    const inputIdsDtype = intDtype(textEncoder, "input_ids", path);
    return { textEncoder, inputIdsDtype, inputIds2Dtype: inputIdsDtype };
  }

  checkDenoiser(_unet: ort.InferenceSession, info: ModelFolderInfo, encoders: TextEncoderSessions, hiddenWidth: number | undefined): void {
    const p = info.paths;
    if (hiddenWidth !== undefined) checkWidth(encoders.textEncoder, p.textEncoder, "last_hidden_state", "output", hiddenWidth, "the UNet's encoder_hidden_states width", p.unet);
  }

  /** StableDiffusion{,Img2Img,Inpaint}Pipeline: 50 steps, guidance 7.5, strength 0.8 (img2img) / 1.0. */
  defaults(pipelineClass: string, mode: GenerationMode): CallDefaults {
    return lcmDefaults(pipelineClass, mode) ?? { steps: 50, guidance: 7.5, strength: mode === "image2image" ? 0.8 : 1 };
  }

  async encodePrompt(ctx: EncodeContext, req: GenerationRequest, n: number, cfg: boolean): Promise<Conditioning> {
    const prompts = cfg ? [req.negativePrompt ?? "", req.prompt] : [req.prompt];
    const ids = prompts.map((p) => ctx.tokenizers[0].encode(p));
    const out = await ctx.run(ctx.encoders.textEncoder, { input_ids: idsTensor(ids, ctx.encoders.inputIdsDtype) });
    const h = out.last_hidden_state as ort.Tensor;
    const [, seq, dim] = h.dims as number[];
    return { hidden: tileRows(h.data as Float32Array, prompts.length, seq * dim, n), seq, dim };
  }

  conditioningFeeds(_cond: Conditioning, _layout: BatchLayout, _info: ModelFolderInfo): Record<string, ort.Tensor> {
    return {};
  }
}
