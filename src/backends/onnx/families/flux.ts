/**
 * FLUX.1 (schnell, dev): CLIP-L's pooled output and T5's hidden states condition a
 * rectified-flow transformer on 2×2-packed latents with image/text position ids;
 * dev also embeds the guidance scale (diffusers' Flux{,Img2Img,Inpaint}Pipeline,
 * Optimum's `flux-transformer-2d` export).
 */
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { type Json, type ModelIndex, numberField, readJsonFile } from "../../model-index.js";
import { BackendError, type GenerationMode, type GenerationRequest } from "../../types.js";
import type { ModelFolderInfo } from "../model-folder.js";
import type { FlowMatchTimestepsOptions } from "../schedulers/index.js";
import { linspace } from "../schedulers/flow-match.js";
import { checkWidth, idsTensor, type SessionLoadOptions, tensorMeta } from "../sessions.js";
import { imagePositionIds, PACKED_2X2_LAYOUT } from "./packing.js";
import { checkMaxSequenceLength, encodeT5 } from "./t5.js";
import { openTextEncoder } from "./sd.js";
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
  type TextEncoderComponent,
  type TextEncoderSessions,
  orElse,
  promptPair,
  tileRows,
} from "./types.js";

/** A position-id tensor as the transformer declares it: int64 (Optimum) or float, [tokens, 3] (diffusers ≥ 0.31) or [1, tokens, 3]. */
function positionIds(denoiser: ort.InferenceSession, name: string, values: readonly number[]): ort.Tensor {
  const meta = tensorMeta(denoiser, name, "input");
  const rank = (meta?.shape as readonly unknown[] | undefined)?.length ?? 2;
  const dims = rank === 3 ? [1, values.length / 3, 3] : [values.length / 3, 3];
  return meta?.type === "int64" ? new ort.Tensor("int64", BigInt64Array.from(values, (v) => BigInt(v)), dims) : new ort.Tensor("float32", Float32Array.from(values), dims);
}

export class FluxFamily implements DiffusionFamily {
  readonly name: OnnxFamily = "flux";
  readonly scheduleKind = "flow-match" as const;
  readonly textEncoders: readonly TextEncoderComponent[] = [
    { encoder: "text_encoder", tokenizer: "tokenizer", tokenizerKind: "clip" },
    { encoder: "text_encoder_2", tokenizer: "tokenizer_2", tokenizerKind: "t5" },
  ];
  readonly denoiser: DenoiserSpec = {
    component: "transformer",
    sampleInput: "hidden_states",
    output: "out_hidden_states",
    conditioningInputs: ["encoder_hidden_states", "pooled_projections", "img_ids", "txt_ids"],
    // The transformer multiplies the timestep (and the guidance) by 1000 inside.
    timestepDivisor: 1000,
    layout: PACKED_2X2_LAYOUT,
  };
  readonly defaultVaeScalingFactor = 0.3611;

  /** in_channels is per packed token (4 × the VAE's 16 latent channels); sizes are multiples of 16 (VAE 8 × packing 2); native 1024². */
  denoiserGeometry(config: Json | undefined, path: string, latentChannels: number, vaeScaleFactor: number): DenoiserGeometry {
    const cfg = config!;
    const inChannels = numberField(cfg, "in_channels", path, 64);
    if (inChannels !== 4 * latentChannels) {
      throw new BackendError(`${path}: in_channels ${inChannels} is not 4 × the VAE's latent_channels ${latentChannels} (FLUX packs 2×2 latent patches; Fill/Control variants are not supported)`);
    }
    const patch = numberField(cfg, "patch_size", path, 1);
    if (patch !== 1) throw new BackendError(`${path}: patch_size ${patch} is not supported (FLUX.1 packs 2×2 latents itself, patch_size 1)`);
    return { inChannels, inpainting: false, contextDim: numberField(cfg, "joint_attention_dim", path, 4096), sampleSize: 128, sizeMultiple: vaeScaleFactor * 2, patchSize: 2 };
  }

  async readConfigs(index: ModelIndex, denoiser: DenoiserConfig): Promise<FamilyConfigFacts> {
    const cfg = denoiser.config!;
    const pooledDim = numberField(cfg, "pooled_projection_dim", denoiser.path, 768);
    const clipPath = join(index.dir, "text_encoder", "config.json");
    const clipHidden = numberField(await readJsonFile(clipPath), "hidden_size", clipPath);
    if (clipHidden !== pooledDim) throw new BackendError(`${clipPath}: hidden_size ${clipHidden} does not match the transformer's pooled_projection_dim ${pooledDim} (${denoiser.path})`);
    const t5Path = join(index.dir, "text_encoder_2", "config.json");
    const t5Width = numberField(await readJsonFile(t5Path), "d_model", t5Path);
    if (t5Width !== denoiser.contextDim) throw new BackendError(`${t5Path}: d_model ${t5Width} does not match the transformer's joint_attention_dim ${denoiser.contextDim} (${denoiser.path})`);
    return { pooledDim, forceZerosForEmptyPrompt: false, requiresAestheticsScore: false, guidanceEmbeds: cfg.guidance_embeds === true };
  }

  async loadTextEncoders(info: ModelFolderInfo, opts: SessionLoadOptions): Promise<TextEncoderSessions> {
    const [clip, t5] = info.paths.textEncoders;
    return {
      textEncoders: [await openTextEncoder(clip!, opts, ["pooler_output"], () => "pooler_output"), await openTextEncoder(t5!, opts, ["last_hidden_state"], () => "last_hidden_state")],
    };
  }

  checkDenoiser(denoiser: ort.InferenceSession, info: ModelFolderInfo, encoders: TextEncoderSessions, contextWidth: number | undefined): void {
    const [clip, t5] = encoders.textEncoders;
    const p = info.paths.denoiser;
    if (contextWidth !== undefined) checkWidth(t5!.session, t5!.path, "last_hidden_state", "output", contextWidth, "the transformer's encoder_hidden_states width", p);
    if (info.pooledDim !== undefined) checkWidth(clip!.session, clip!.path, "pooler_output", "output", info.pooledDim, "the transformer's pooled_projection_dim", p);
    const hasGuidance = denoiser.inputNames.includes("guidance");
    if (hasGuidance !== info.guidanceEmbeds) {
      throw new BackendError(`${p}: ${hasGuidance ? "has" : "lacks"} a "guidance" input, but transformer/config.json guidance_embeds is ${info.guidanceEmbeds}`);
    }
  }

  /** FluxPipeline: 28 steps, guidance 3.5; Flux{Img2Img,Inpaint}Pipeline: 28 steps, guidance 7.0, strength 0.6; T5 length 512. */
  defaults(_pipelineClass: string, mode: GenerationMode): CallDefaults {
    return mode === "text2image" ? { steps: 28, guidance: 3.5, strength: 1, maxSequenceLength: 512 } : { steps: 28, guidance: 7, strength: 0.6, maxSequenceLength: 512 };
  }

  /**
   * FLUX.1 is guidance-distilled: a negative prompt only means something under true CFG, which diffusers runs
   * when true_cfg_scale > 1 and negative_prompt is given and otherwise ignores silently. Here what would be
   * ignored is refused instead.
   */
  checkRequest(req: GenerationRequest): void {
    checkMaxSequenceLength(req);
    for (const [value, param] of [[req.prompt3, "prompt_3"], [req.negativePrompt3, "negative_prompt_3"]] as const) {
      if (value !== undefined) throw new BackendError(`${param} is not used by FLUX, which has two text encoders (prompt, prompt_2)`, { param });
    }
    const t = req.trueCfgScale;
    if (t !== undefined && !Number.isFinite(t)) throw new BackendError(`true_cfg_scale must be a number, got ${t}`, { param: "true_cfg_scale" });
    const trueCfg = t !== undefined && t > 1;
    for (const [value, param] of [[req.negativePrompt, "negative_prompt"], [req.negativePrompt2, "negative_prompt_2"]] as const) {
      if (!trueCfg && value !== undefined) {
        throw new BackendError(`${param} is not used by FLUX unless true_cfg_scale is above 1 (true classifier-free guidance, a second transformer pass per step)`, { param });
      }
    }
    if (trueCfg && req.negativePrompt === undefined) throw new BackendError("true_cfg_scale above 1 needs a negative_prompt", { param: "true_cfg_scale" });
  }

  /** FLUX.1-schnell is guidance-distilled; dev embeds guidance_scale. */
  takesGuidance(info: ModelFolderInfo): boolean {
    return info.guidanceEmbeds;
  }

  guidance(req: GenerationRequest): Guidance {
    const scale = req.trueCfgScale ?? 1;
    return { cfg: scale > 1 && req.negativePrompt !== undefined, scale };
  }

  /** The FLUX pipelines' own sigmas, linspace(1, 1/n, n), and the packed sequence length for dynamic shifting (dev). */
  scheduleOptions(steps: number, lh: number, lw: number): FlowMatchTimestepsOptions {
    return { sigmas: Array.from(linspace(1, 1 / steps, steps)), imageSeqLen: Math.floor(lh / 2) * Math.floor(lw / 2) };
  }

  /** CLIP-L's pooled output of `prompt`, T5's hidden states of `prompt_2` (else `prompt`), padded to max_sequence_length. */
  async encodePrompt(ctx: EncodeContext, req: GenerationRequest, n: number, cfg: boolean): Promise<Conditioning> {
    const [clip, t5] = ctx.encoders.textEncoders;
    const negative = req.negativePrompt ?? "";
    const prompts = promptPair(req.prompt, negative, cfg);
    const prompts2 = promptPair(orElse(req.prompt2, req.prompt), orElse(req.negativePrompt2, negative), cfg);
    const clipIds = prompts.map((p) => ctx.tokenizers[0]!.encode(p));
    const pooledOut = (await ctx.run(clip!.session, { input_ids: idsTensor(clipIds, clip!.idsDtype) })).pooler_output as ort.Tensor;
    const hiddenOut = await encodeT5(ctx, t5!, ctx.tokenizers[1]!, prompts2);
    const [, seq, dim] = hiddenOut.dims as number[];
    const pooledDim = pooledOut.dims[1] as number;
    const rows = prompts.length;
    return {
      hidden: tileRows(hiddenOut.data as Float32Array, rows, seq * dim, n),
      seq,
      dim,
      pooled: tileRows(pooledOut.data as Float32Array, rows, pooledDim, n),
      pooledDim,
    };
  }

  conditioningFeeds(cond: Conditioning, layout: BatchLayout, info: ModelFolderInfo, guidanceScale: number, denoiser: ort.InferenceSession): Record<string, ort.Tensor> {
    const { batch, lh, lw } = layout;
    const feeds: Record<string, ort.Tensor> = {
      pooled_projections: new ort.Tensor("float32", cond.pooled!, [batch, cond.pooledDim!]),
      img_ids: positionIds(denoiser, "img_ids", imagePositionIds(lh, lw)),
      txt_ids: positionIds(denoiser, "txt_ids", new Array<number>(cond.seq * 3).fill(0)),
    };
    if (info.guidanceEmbeds) feeds.guidance = new ort.Tensor("float32", new Float32Array(batch).fill(guidanceScale), [batch]);
    return feeds;
  }
}
