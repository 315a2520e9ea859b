/**
 * Stable Diffusion 3 / 3.5: an MMDiT transformer conditioned on CLIP-L and CLIP-G
 * (penultimate hidden states side by side, zero-padded to T5's width) followed
 * by T5's hidden states, and on both CLIPs' pooled projections; classifier-free
 * guidance as in SD (diffusers' StableDiffusion3{,Img2Img,Inpaint}Pipeline,
 * Optimum's `sd3-transformer-2d` export). T5 is optional: without it its part
 * of the sequence is zeros.
 */
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { type Json, type ModelIndex, numberField, readJsonFile } from "../../model-index.js";
import { BackendError, type GenerationMode, type GenerationRequest } from "../../types.js";
import type { ModelFolderInfo } from "../model-folder.js";
import type { FlowMatchTimestepsOptions } from "../schedulers/index.js";
import { idsTensor, type SessionLoadOptions, staticDim } from "../sessions.js";
import { checkMaxSequenceLength, encodeT5 } from "./t5.js";
import { openTextEncoder } from "./sd.js";
import { concatRows, penultimateHiddenState } from "./sdxl.js";
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
  NCHW_LAYOUT,
  orElse,
  promptPair,
  tileRows,
} from "./types.js";

export class StableDiffusion3Family implements DiffusionFamily {
  readonly name: OnnxFamily = "sd3";
  readonly scheduleKind = "flow-match" as const;
  readonly textEncoders: readonly TextEncoderComponent[] = [
    { encoder: "text_encoder", tokenizer: "tokenizer", tokenizerKind: "clip" },
    { encoder: "text_encoder_2", tokenizer: "tokenizer_2", tokenizerKind: "clip" },
    { encoder: "text_encoder_3", tokenizer: "tokenizer_3", tokenizerKind: "t5", optional: true },
  ];
  readonly denoiser: DenoiserSpec = {
    component: "transformer",
    sampleInput: "hidden_states",
    output: "out_hidden_states",
    conditioningInputs: ["encoder_hidden_states", "pooled_projections"],
    timestepDivisor: 1,
    layout: NCHW_LAYOUT,
  };
  readonly defaultVaeScalingFactor = 1.5305;

  denoiserGeometry(config: Json | undefined, path: string, latentChannels: number, vaeScaleFactor: number): DenoiserGeometry {
    const cfg = config!;
    const inChannels = numberField(cfg, "in_channels", path, 16);
    if (inChannels !== latentChannels) {
      throw new BackendError(`${path}: in_channels ${inChannels} does not match the VAE's latent_channels ${latentChannels} (inpainting transformers with mask channels are not supported)`);
    }
    const patchSize = numberField(cfg, "patch_size", path, 2);
    return {
      inChannels,
      inpainting: false,
      contextDim: numberField(cfg, "joint_attention_dim", path, 4096),
      sampleSize: numberField(cfg, "sample_size", path, 128),
      sizeMultiple: vaeScaleFactor * patchSize,
      patchSize,
    };
  }

  async readConfigs(index: ModelIndex, denoiser: DenoiserConfig): Promise<FamilyConfigFacts> {
    const cfg = denoiser.config!;
    const pooledDim = numberField(cfg, "pooled_projection_dim", denoiser.path, 2048);
    const clip = await Promise.all(["text_encoder", "text_encoder_2"].map(async (c) => {
      const path = join(index.dir, c, "config.json");
      const json = await readJsonFile(path);
      return { path, hidden: numberField(json, "hidden_size", path), projection: numberField(json, "projection_dim", path) };
    }));
    const context = denoiser.contextDim!;
    if (clip[0].hidden + clip[1].hidden > context) {
      throw new BackendError(`${clip[0].path} + ${clip[1].path}: hidden sizes ${clip[0].hidden} + ${clip[1].hidden} exceed the transformer's joint_attention_dim ${context} (${denoiser.path})`);
    }
    if (clip[0].projection + clip[1].projection !== pooledDim) {
      throw new BackendError(`${clip[0].path} + ${clip[1].path}: projection_dim ${clip[0].projection} + ${clip[1].projection} does not match the transformer's pooled_projection_dim ${pooledDim} (${denoiser.path})`);
    }
    if (index.has("text_encoder_3")) {
      const t5Path = join(index.dir, "text_encoder_3", "config.json");
      const t5 = await readJsonFile(t5Path, true);
      if (t5 && numberField(t5, "d_model", t5Path) !== context) {
        throw new BackendError(`${t5Path}: d_model ${t5.d_model} does not match the transformer's joint_attention_dim ${context} (${denoiser.path})`);
      }
    }
    return { pooledDim, forceZerosForEmptyPrompt: false, requiresAestheticsScore: false, guidanceEmbeds: false };
  }

  async loadTextEncoders(info: ModelFolderInfo, opts: SessionLoadOptions): Promise<TextEncoderSessions> {
    const [l, g, t5] = info.paths.textEncoders;
    const clip = (path: string) => openTextEncoder(path, opts, ["text_embeds"], (s) => penultimateHiddenState(s, path, "SD3"));
    return {
      textEncoders: [await clip(l!), await clip(g!), t5 === undefined ? undefined : await openTextEncoder(t5, opts, ["last_hidden_state"], () => "last_hidden_state")],
    };
  }

  checkDenoiser(_denoiser: ort.InferenceSession, info: ModelFolderInfo, encoders: TextEncoderSessions, contextWidth: number | undefined): void {
    const t5 = encoders.textEncoders[2];
    const w = t5 && staticDim(t5.session, "last_hidden_state", "output", -1);
    if (t5 && w !== undefined && contextWidth !== undefined && w !== contextWidth) {
      throw new BackendError(`${t5.path}: output "last_hidden_state" has width ${w}, but the transformer's encoder_hidden_states width is ${contextWidth} (${info.paths.denoiser})`);
    }
  }

  /** StableDiffusion3Pipeline: 28 steps; Img2Img and Inpaint: 50 steps, strength 0.6; guidance 7.0; T5 length 256. */
  defaults(_pipelineClass: string, mode: GenerationMode): CallDefaults {
    return mode === "text2image" ? { steps: 28, guidance: 7, strength: 1, maxSequenceLength: 256 } : { steps: 50, guidance: 7, strength: 0.6, maxSequenceLength: 256 };
  }

  /** Negative prompts need guidance above 1 (diffusers would ignore them silently; OpenVINO GenAI refuses them too). */
  checkRequest(req: GenerationRequest, info: ModelFolderInfo, guidance: number): void {
    checkMaxSequenceLength(req);
    if (req.trueCfgScale !== undefined) throw new BackendError("true_cfg_scale applies to FLUX; Stable Diffusion 3 guides with guidance_scale", { param: "true_cfg_scale" });
    if (info.paths.textEncoders[2] === undefined) {
      for (const [value, param] of [[req.prompt3, "prompt_3"], [req.negativePrompt3, "negative_prompt_3"]] as const) {
        if (value !== undefined) throw new BackendError(`${param} needs text_encoder_3 (T5), which this model leaves out`, { param });
      }
    }
    if (guidance <= 1) {
      for (const [value, param] of [[req.negativePrompt, "negative_prompt"], [req.negativePrompt2, "negative_prompt_2"], [req.negativePrompt3, "negative_prompt_3"]] as const) {
        if (value !== undefined) throw new BackendError(`${param} is not used when guidance_scale is 1 or below`, { param });
      }
    }
  }

  takesGuidance(): boolean {
    return true;
  }

  guidance(_req: GenerationRequest, guidanceScale: number): Guidance {
    return { cfg: guidanceScale > 1, scale: guidanceScale };
  }

  /** The latent tokens, (h/patch)·(w/patch), for a scheduler with dynamic shifting. */
  scheduleOptions(_steps: number, lh: number, lw: number, info: ModelFolderInfo): FlowMatchTimestepsOptions {
    return { imageSeqLen: Math.floor(lh / info.patchSize) * Math.floor(lw / info.patchSize) };
  }

  async encodePrompt(ctx: EncodeContext, req: GenerationRequest, n: number, cfg: boolean): Promise<Conditioning> {
    const [l, g, t5] = ctx.encoders.textEncoders;
    // diffusers falls back on an empty prompt_2/3 as on an absent one (`prompt_2 or prompt`).
    const negative = req.negativePrompt ?? "";
    const prompts = [
      promptPair(req.prompt, negative, cfg),
      promptPair(orElse(req.prompt2, req.prompt), orElse(req.negativePrompt2, negative), cfg),
      promptPair(orElse(req.prompt3, req.prompt), orElse(req.negativePrompt3, negative), cfg),
    ];
    const rows = prompts[0].length;
    const clipOut = async (k: 0 | 1) => {
      const enc = [l, g][k]!;
      const out = await ctx.run(enc.session, { input_ids: idsTensor(prompts[k].map((p) => ctx.tokenizers[k]!.encode(p)), enc.idsDtype) });
      const hidden = out[enc.hiddenOutput] as ort.Tensor;
      const pooled = out.text_embeds as ort.Tensor;
      return { hidden: hidden.data as Float32Array, seq: hidden.dims[1] as number, width: hidden.dims[2] as number, pooled: pooled.data as Float32Array, pooledWidth: pooled.dims[1] as number };
    };
    const a = await clipOut(0);
    const b = await clipOut(1);
    if (a.seq !== b.seq) throw new BackendError(`text encoders disagree on sequence length (${a.seq} vs ${b.seq})`);
    const dim = ctx.info.contextDim!;
    const L = ctx.maxSequenceLength;
    const seq = a.seq + L;
    // [CLIP-L ‖ CLIP-G ‖ zeros up to the T5 width] for the CLIP tokens, then the T5 tokens.
    const clipRows = concatRows(a.hidden, a.width, b.hidden, b.width, rows * a.seq, dim);
    let t5Hidden: Float32Array;
    if (t5) t5Hidden = (await encodeT5(ctx, t5, ctx.tokenizers[2]!, prompts[2])).data as Float32Array;
    else t5Hidden = new Float32Array(rows * L * dim);
    const hidden = new Float32Array(rows * seq * dim);
    for (let r = 0; r < rows; r++) {
      hidden.set(clipRows.subarray(r * a.seq * dim, (r + 1) * a.seq * dim), r * seq * dim);
      hidden.set(t5Hidden.subarray(r * L * dim, (r + 1) * L * dim), (r * seq + a.seq) * dim);
    }
    const pooledDim = a.pooledWidth + b.pooledWidth;
    const pooled = concatRows(a.pooled, a.pooledWidth, b.pooled, b.pooledWidth, rows);
    return { hidden: tileRows(hidden, rows, seq * dim, n), seq, dim, pooled: tileRows(pooled, rows, pooledDim, n), pooledDim };
  }

  conditioningFeeds(cond: Conditioning, layout: BatchLayout): Record<string, ort.Tensor> {
    return { pooled_projections: new ort.Tensor("float32", cond.pooled!, [layout.batch, cond.pooledDim!]) };
  }
}
