/**
 * Stable Diffusion XL: two CLIP text encoders whose penultimate hidden states are
 * concatenated, the second's pooled `text_embeds`, and the `time_ids` micro-
 * conditioning (diffusers' StableDiffusionXL*Pipeline).
 */
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { type ModelIndex, numberField, readJsonFile } from "../../model-index.js";
import { BackendError, type GenerationMode, type GenerationRequest } from "../../types.js";
import type { ModelFolderInfo } from "../model-folder.js";
import { checkWidth, createSession, idsTensor, intDtype, requireNames, type SessionLoadOptions, staticDim } from "../sessions.js";
import { lcmDefaults, StableDiffusionFamily } from "./sd.js";
import {
  type BatchLayout,
  type CallDefaults,
  type Conditioning,
  type DenoiserConfig,
  type EncodeContext,
  type FamilyConfigFacts,
  type OnnxFamily,
  type TextEncoderSessions,
  tileRows,
} from "./types.js";

/** The name of the second-to-last `hidden_states.N` output. */
function penultimate(session: ort.InferenceSession, path: string): string {
  const hs = session.outputNames
    .map((n) => /^hidden_states\.(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
  if (hs.length < 2) throw new BackendError(`${path}: SDXL needs the hidden_states.N outputs (export with output_hidden_states); found none`);
  return `hidden_states.${Math.max(...hs) - 1}`;
}

export class StableDiffusionXLFamily extends StableDiffusionFamily {
  override readonly name: OnnxFamily = "sdxl";
  override readonly textEncoderComponents: readonly string[] = ["text_encoder", "text_encoder_2"];
  override readonly tokenizerComponents: readonly string[] = ["tokenizer", "tokenizer_2"];
  override readonly defaultVaeScalingFactor: number = 0.13025;
  override readonly denoiserInputs: readonly string[] = ["encoder_hidden_states", "text_embeds", "time_ids"];

  override async readConfigs(index: ModelIndex, denoiser: DenoiserConfig, legacy: boolean): Promise<FamilyConfigFacts> {
    if (legacy) throw new BackendError(`${denoiser.path}: missing (SDXL folders need their component configs)`);
    if (denoiser.config?.addition_embed_type !== "text_time") {
      throw new BackendError(`${denoiser.path}: SDXL needs addition_embed_type "text_time", got ${JSON.stringify(denoiser.config?.addition_embed_type)}`);
    }
    const te1Path = join(index.dir, "text_encoder", "config.json");
    const te1 = await readJsonFile(te1Path);
    let textEmbedsDim: number | undefined;
    if (denoiser.crossAttentionDim !== undefined) {
      const te1Hidden = numberField(te1, "hidden_size", te1Path);
      const te2Path = join(index.dir, "text_encoder_2", "config.json");
      const te2 = await readJsonFile(te2Path);
      const te2Hidden = numberField(te2, "hidden_size", te2Path);
      textEmbedsDim = numberField(te2, "projection_dim", te2Path);
      if (te1Hidden + te2Hidden !== denoiser.crossAttentionDim) {
        throw new BackendError(
          `${te1Path} + ${te2Path}: hidden sizes ${te1Hidden} + ${te2Hidden} do not add up to the UNet's cross_attention_dim ${denoiser.crossAttentionDim} (${denoiser.path})`,
        );
      }
    }
    return {
      textEmbedsDim,
      forceZerosForEmptyPrompt: index.json.force_zeros_for_empty_prompt !== false,
      requiresAestheticsScore: index.json.requires_aesthetics_score === true,
    };
  }

  override async loadTextEncoders(info: ModelFolderInfo, opts: SessionLoadOptions): Promise<TextEncoderSessions> {
    const first = await super.loadTextEncoders(info, opts);
    const path = info.paths.textEncoder2!;
    const textEncoder2 = await createSession(path, opts);
    requireNames(textEncoder2, path, ["input_ids"], ["text_embeds"]);
    return {
      ...first,
      textEncoder2,
      inputIds2Dtype: intDtype(textEncoder2, "input_ids", path),
      penultimate1: penultimate(first.textEncoder, info.paths.textEncoder),
      penultimate2: penultimate(textEncoder2, path),
    };
  }

  override checkDenoiser(unet: ort.InferenceSession, info: ModelFolderInfo, encoders: TextEncoderSessions, hiddenWidth: number | undefined): void {
    const p = info.paths;
    const w1 = staticDim(encoders.textEncoder, encoders.penultimate1!, "output", -1);
    const w2 = staticDim(encoders.textEncoder2!, encoders.penultimate2!, "output", -1);
    if (w1 !== undefined && w2 !== undefined && hiddenWidth !== undefined && w1 + w2 !== hiddenWidth) {
      throw new BackendError(`${p.textEncoder} + ${p.textEncoder2}: hidden sizes ${w1} + ${w2} do not match the UNet's encoder_hidden_states width ${hiddenWidth} (${p.unet})`);
    }
    // time_ids: size, crop, target size (6), or size, crop, aesthetic score (5) with requires_aesthetics_score.
    const timeIds = staticDim(unet, "time_ids", "input", -1);
    const wanted = info.requiresAestheticsScore ? 5 : 6;
    if (timeIds !== undefined && timeIds !== wanted) {
      throw new BackendError(
        `${p.unet}: input "time_ids" has width ${timeIds}, but model_index.json ${info.requiresAestheticsScore ? "sets" : "does not set"} requires_aesthetics_score (${wanted} values)`,
      );
    }
    const te = staticDim(unet, "text_embeds", "input", -1);
    if (te !== undefined) checkWidth(encoders.textEncoder2!, p.textEncoder2!, "text_embeds", "output", te, "the UNet's text_embeds width", p.unet);
  }

  /** StableDiffusionXL{,Img2Img}Pipeline guidance 5.0, img2img strength 0.3; XLInpaintPipeline guidance 7.5, strength 0.9999; 50 steps. */
  override defaults(pipelineClass: string, mode: GenerationMode): CallDefaults {
    const lcm = lcmDefaults(pipelineClass, mode);
    if (lcm) return lcm;
    return mode === "inpainting" ? { steps: 50, guidance: 7.5, strength: 0.9999 } : { steps: 50, guidance: 5, strength: mode === "image2image" ? 0.3 : 1 };
  }

  /** Penultimate hidden states of both encoders, concatenated; pooled text_embeds from encoder 2. */
  override async encodePrompt(ctx: EncodeContext, req: GenerationRequest, n: number, cfg: boolean): Promise<Conditioning> {
    const e = ctx.encoders;
    const prompts = cfg ? [req.negativePrompt ?? "", req.prompt] : [req.prompt];
    const prompts2 = cfg ? [req.negativePrompt2 ?? req.negativePrompt ?? "", req.prompt2 ?? req.prompt] : [req.prompt2 ?? req.prompt];
    const ids1 = prompts.map((p) => ctx.tokenizers[0].encode(p));
    const ids2 = prompts2.map((p) => ctx.tokenizers[1].encode(p));
    const o1 = await ctx.run(e.textEncoder, { input_ids: idsTensor(ids1, e.inputIdsDtype) });
    const o2 = await ctx.run(e.textEncoder2!, { input_ids: idsTensor(ids2, e.inputIds2Dtype) });
    const h1 = o1[e.penultimate1!] as ort.Tensor;
    const h2 = o2[e.penultimate2!] as ort.Tensor;
    const te = o2.text_embeds as ort.Tensor;
    const [, seq, d1] = h1.dims as number[];
    const d2 = h2.dims[2] as number;
    if (h2.dims[1] !== seq) throw new BackendError(`text encoders disagree on sequence length (${seq} vs ${h2.dims[1]})`);
    const dim = d1 + d2;
    const rows = prompts.length;
    const cat = new Float32Array(rows * seq * dim);
    const a = h1.data as Float32Array;
    const b = h2.data as Float32Array;
    for (let r = 0; r < rows * seq; r++) {
      cat.set(a.subarray(r * d1, (r + 1) * d1), r * dim);
      cat.set(b.subarray(r * d2, (r + 1) * d2), r * dim + d1);
    }
    const pooledDim = te.dims[1] as number;
    const pooled = new Float32Array(te.data as Float32Array);
    // Only an absent negative prompt is zeroed; an explicit "" is encoded like any other prompt.
    if (cfg && ctx.info.forceZerosForEmptyPrompt && req.negativePrompt === undefined && req.negativePrompt2 === undefined) {
      cat.fill(0, 0, seq * dim);
      pooled.fill(0, 0, pooledDim);
    }
    return { hidden: tileRows(cat, rows, seq * dim, n), seq, dim, pooled: tileRows(pooled, rows, pooledDim, n), pooledDim };
  }

  override conditioningFeeds(cond: Conditioning, layout: BatchLayout, info: ModelFolderInfo): Record<string, ort.Tensor> {
    const { batch, n, cfg, width, height } = layout;
    // [original size, crop top-left, target size], or with requires_aesthetics_score [original size, crop, aesthetic score]
    // (6.0 for the prompt, 2.5 for the negative half).
    const row = (negative: boolean): number[] => (info.requiresAestheticsScore ? [height, width, 0, 0, negative ? 2.5 : 6] : [height, width, 0, 0, height, width]);
    const len = row(false).length;
    const ids = new Float32Array(batch * len);
    for (let b = 0; b < batch; b++) ids.set(row(cfg && b < n), b * len);
    return {
      text_embeds: new ort.Tensor("float32", cond.pooled!, [batch, cond.pooledDim!]),
      time_ids: new ort.Tensor("float32", ids, [batch, len]),
    };
  }
}
