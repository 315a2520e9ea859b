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
import { checkWidth, idsTensor, type SessionLoadOptions, staticDim } from "../sessions.js";
import { lcmDefaults, openTextEncoder, StableDiffusionFamily, UNET } from "./sd.js";
import {
  type BatchLayout,
  type CallDefaults,
  type Conditioning,
  type DenoiserConfig,
  type DenoiserSpec,
  type EncodeContext,
  type FamilyConfigFacts,
  type OnnxFamily,
  type TextEncoderComponent,
  type TextEncoderSessions,
  tileRows,
} from "./types.js";

/**
 * The name of the second-to-last `hidden_states.N` output (diffusers' `hidden_states[-2]`), which
 * CLIPTextModelWithProjection exports carry when made with output_hidden_states (SDXL, SD3).
 */
export function penultimateHiddenState(session: ort.InferenceSession, path: string, family: string): string {
  const hs = session.outputNames
    .map((n) => /^hidden_states\.(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
  if (hs.length < 2) throw new BackendError(`${path}: ${family} needs the hidden_states.N outputs (export with output_hidden_states); found none`);
  return `hidden_states.${Math.max(...hs) - 1}`;
}

/** Row-wise concatenation of [rows, a] and [rows, b] into [rows, a + b]. */
export function concatRows(x: Float32Array, a: number, y: Float32Array, b: number, rows: number, width = a + b): Float32Array {
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    out.set(x.subarray(r * a, (r + 1) * a), r * width);
    out.set(y.subarray(r * b, (r + 1) * b), r * width + a);
  }
  return out;
}

export class StableDiffusionXLFamily extends StableDiffusionFamily {
  override readonly name: OnnxFamily = "sdxl";
  override readonly textEncoders: readonly TextEncoderComponent[] = [
    { encoder: "text_encoder", tokenizer: "tokenizer", tokenizerKind: "clip" },
    { encoder: "text_encoder_2", tokenizer: "tokenizer_2", tokenizerKind: "clip" },
  ];
  override readonly defaultVaeScalingFactor: number = 0.13025;
  override readonly denoiser: DenoiserSpec = { ...UNET, conditioningInputs: ["encoder_hidden_states", "text_embeds", "time_ids"] };

  override async readConfigs(index: ModelIndex, denoiser: DenoiserConfig, legacy: boolean): Promise<FamilyConfigFacts> {
    if (legacy) throw new BackendError(`${denoiser.path}: missing (SDXL folders need their component configs)`);
    if (denoiser.config?.addition_embed_type !== "text_time") {
      throw new BackendError(`${denoiser.path}: SDXL needs addition_embed_type "text_time", got ${JSON.stringify(denoiser.config?.addition_embed_type)}`);
    }
    const te1Path = join(index.dir, "text_encoder", "config.json");
    const te1 = await readJsonFile(te1Path);
    let pooledDim: number | undefined;
    if (denoiser.contextDim !== undefined) {
      const te1Hidden = numberField(te1, "hidden_size", te1Path);
      const te2Path = join(index.dir, "text_encoder_2", "config.json");
      const te2 = await readJsonFile(te2Path);
      const te2Hidden = numberField(te2, "hidden_size", te2Path);
      pooledDim = numberField(te2, "projection_dim", te2Path);
      if (te1Hidden + te2Hidden !== denoiser.contextDim) {
        throw new BackendError(
          `${te1Path} + ${te2Path}: hidden sizes ${te1Hidden} + ${te2Hidden} do not add up to the UNet's cross_attention_dim ${denoiser.contextDim} (${denoiser.path})`,
        );
      }
    }
    return {
      pooledDim,
      forceZerosForEmptyPrompt: index.json.force_zeros_for_empty_prompt !== false,
      requiresAestheticsScore: index.json.requires_aesthetics_score === true,
      guidanceEmbeds: false,
    };
  }

  override async loadTextEncoders(info: ModelFolderInfo, opts: SessionLoadOptions): Promise<TextEncoderSessions> {
    const [p1, p2] = info.paths.textEncoders;
    return {
      textEncoders: [
        await openTextEncoder(p1!, opts, [], (s) => penultimateHiddenState(s, p1!, "SDXL")),
        await openTextEncoder(p2!, opts, ["text_embeds"], (s) => penultimateHiddenState(s, p2!, "SDXL")),
      ],
    };
  }

  override checkDenoiser(unet: ort.InferenceSession, info: ModelFolderInfo, encoders: TextEncoderSessions, contextWidth: number | undefined): void {
    const te1 = encoders.textEncoders[0]!;
    const te2 = encoders.textEncoders[1]!;
    const p = info.paths;
    const w1 = staticDim(te1.session, te1.hiddenOutput, "output", -1);
    const w2 = staticDim(te2.session, te2.hiddenOutput, "output", -1);
    if (w1 !== undefined && w2 !== undefined && contextWidth !== undefined && w1 + w2 !== contextWidth) {
      throw new BackendError(`${te1.path} + ${te2.path}: hidden sizes ${w1} + ${w2} do not match the UNet's encoder_hidden_states width ${contextWidth} (${p.denoiser})`);
    }
    // time_ids: size, crop, target size (6), or size, crop, aesthetic score (5) with requires_aesthetics_score.
    const timeIds = staticDim(unet, "time_ids", "input", -1);
    const wanted = info.requiresAestheticsScore ? 5 : 6;
    if (timeIds !== undefined && timeIds !== wanted) {
      throw new BackendError(
        `${p.denoiser}: input "time_ids" has width ${timeIds}, but model_index.json ${info.requiresAestheticsScore ? "sets" : "does not set"} requires_aesthetics_score (${wanted} values)`,
      );
    }
    const te = staticDim(unet, "text_embeds", "input", -1);
    if (te !== undefined) checkWidth(te2.session, te2.path, "text_embeds", "output", te, "the UNet's text_embeds width", p.denoiser);
  }

  /** StableDiffusionXL{,Img2Img}Pipeline guidance 5.0, img2img strength 0.3; XLInpaintPipeline guidance 7.5, strength 0.9999; 50 steps. */
  override defaults(pipelineClass: string, mode: GenerationMode): CallDefaults {
    const lcm = lcmDefaults(pipelineClass, mode);
    if (lcm) return lcm;
    return mode === "inpainting" ? { steps: 50, guidance: 7.5, strength: 0.9999 } : { steps: 50, guidance: 5, strength: mode === "image2image" ? 0.3 : 1 };
  }

  /** Penultimate hidden states of both encoders, concatenated; pooled text_embeds from encoder 2. */
  override async encodePrompt(ctx: EncodeContext, req: GenerationRequest, n: number, cfg: boolean): Promise<Conditioning> {
    const [te1, te2] = ctx.encoders.textEncoders;
    const prompts = cfg ? [req.negativePrompt ?? "", req.prompt] : [req.prompt];
    const prompts2 = cfg ? [req.negativePrompt2 ?? req.negativePrompt ?? "", req.prompt2 ?? req.prompt] : [req.prompt2 ?? req.prompt];
    const ids1 = prompts.map((p) => ctx.tokenizers[0]!.encode(p));
    const ids2 = prompts2.map((p) => ctx.tokenizers[1]!.encode(p));
    const o1 = await ctx.run(te1!.session, { input_ids: idsTensor(ids1, te1!.idsDtype) });
    const o2 = await ctx.run(te2!.session, { input_ids: idsTensor(ids2, te2!.idsDtype) });
    const h1 = o1[te1!.hiddenOutput] as ort.Tensor;
    const h2 = o2[te2!.hiddenOutput] as ort.Tensor;
    const te = o2.text_embeds as ort.Tensor;
    const [, seq, d1] = h1.dims as number[];
    const d2 = h2.dims[2] as number;
    if (h2.dims[1] !== seq) throw new BackendError(`text encoders disagree on sequence length (${seq} vs ${h2.dims[1]})`);
    const dim = d1 + d2;
    const rows = prompts.length;
    const cat = concatRows(h1.data as Float32Array, d1, h2.data as Float32Array, d2, rows * seq);
    const pooledDim = te.dims[1] as number;
    const pooled = new Float32Array(te.data as Float32Array);
    // Only an absent negative prompt is zeroed; an explicit "" is encoded like any other prompt.
    if (cfg && ctx.info.forceZerosForEmptyPrompt && req.negativePrompt === undefined && req.negativePrompt2 === undefined) {
      cat.fill(0, 0, seq * dim);
      pooled.fill(0, 0, pooledDim);
    }
    return { hidden: tileRows(cat, rows, seq * dim, n), seq, dim, pooled: tileRows(pooled, rows, pooledDim, n), pooledDim };
  }

  override conditioningFeeds(cond: Conditioning, layout: BatchLayout, info: ModelFolderInfo, _guidanceScale: number, _denoiser: ort.InferenceSession): Record<string, ort.Tensor> {
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
