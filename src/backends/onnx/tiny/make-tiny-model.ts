/**
 * Writes a tiny, complete Stable Diffusion / SDXL model folder in the layout of
 * a Hugging Face Optimum ONNX export (diffusers repo style): model_index.json,
 * scheduler/, tokenizer(_2)/, text_encoder(_2)/, unet/, vae_encoder/, vae_decoder/.
 *
 * The ONNX graphs use the real input/output names, dtypes and symbolic dims of
 * an Optimum export, with random seeded weights and tiny dimensions, and every
 * output depends on every input. Same options → byte-identical files.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GraphBuilder } from "./onnx-writer.js";

export type TinyFamily = "sd" | "sdxl";

export interface TinyModelOptions {
  family: TinyFamily;
  /** 9-channel inpainting UNet (StableDiffusion(XL)InpaintPipeline). */
  inpainting?: boolean;
  /** Weight seed (default 0). */
  seed?: number;
  /** UNet `timestep` input: newer Optimum exports a float32 scalar, older ones int64 ["steps"] (default float32). */
  timestepDtype?: "float32" | "int64";
  /** Text encoders' `input_ids` dtype (default int32). */
  inputIdsDtype?: "int32" | "int64";
  /** VAE encoder output: `latent_sample` [B,C,h,w] (older exports, default) or `latent_parameters` [B,2C,h,w] (mean ‖ logvar). */
  vaeEncoderOutput?: "latent_sample" | "latent_parameters";
  /** Scheduler config to write (default: pndm for sd, euler for sdxl; lcm with `lcm`). */
  scheduler?: "pndm" | "euler" | "lcm";
  /**
   * An LCM-distilled UNet: guidance arrives as a `timestep_cond` embedding
   * [B, time_cond_proj_dim] instead of a doubled batch, with an LCMScheduler.
   */
  lcm?: boolean;
}

/** Tiny dimensions used by the models (exported so tests and pipelines can check them). */
export const TINY_DIMS = {
  maxLength: 77,
  latentChannels: 4,
  vaeScaleFactor: 8,
  /** Latent sample size (unet `sample_size`); images default to 64×64. */
  sampleSize: 8,
  /** Text encoder layers; Optimum exports hidden_states.0 … hidden_states.N for SDXL. */
  numHiddenLayers: 2,
  te1Hidden: 32,
  te2Hidden: 64,
  te2Projection: 48,
  /** LCM `time_cond_proj_dim` (the guidance embedding width). */
  timeCondProjDim: 16,
  /** SDXL `addition_time_embed_dim` (time_ids has 6 values). */
  additionTimeEmbedDim: 8,
  timeIds: 6,
} as const;

export const VAE_SCALING_FACTOR: Readonly<Record<TinyFamily, number>> = { sd: 0.18215, sdxl: 0.13025 };

const DIFFUSERS_VERSION = "0.30.0";

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

// ---------------------------------------------------------------------------
// Tokenizer: a tiny CLIP byte-level BPE vocabulary.

/** GPT-2/CLIP bytes_to_unicode: byte value → printable unicode character, in vocabulary order. */
export function bytesToUnicode(): { byte: number; char: string }[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return bs.map((b, i) => ({ byte: b, char: String.fromCharCode(cs[i]) }));
}

/** Words whose BPE merges are included, so common prompts give multi-character tokens. */
const MERGE_WORDS = ["a", "photo", "of", "the", "cat", "dog", "an", "astronaut", "riding", "horse", "red", "blue", "on", "in", "painting"];

export interface TinyVocab {
  vocab: Record<string, number>;
  merges: [string, string][];
  bosId: number;
  eosId: number;
  size: number;
}

/** The tiny vocabulary: 256 byte tokens, 256 `</w>` byte tokens, a few merges, then the two special tokens (last, as in CLIP). */
export function tinyVocab(): TinyVocab {
  const bytes = bytesToUnicode().map((e) => e.char);
  const tokens: string[] = [...bytes, ...bytes.map((c) => c + "</w>")];
  const merges: [string, string][] = [];
  const seen = new Set(tokens);
  for (const word of MERGE_WORDS) {
    if (word.length < 2) continue;
    let acc = word[0];
    for (let i = 1; i < word.length; i++) {
      const piece = i === word.length - 1 ? word[i] + "</w>" : word[i];
      const merged = acc + piece;
      if (!seen.has(merged)) {
        merges.push([acc, piece]);
        tokens.push(merged);
        seen.add(merged);
      }
      acc = merged;
    }
  }
  tokens.push("<|startoftext|>", "<|endoftext|>");
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  return { vocab, merges, bosId: tokens.length - 2, eosId: tokens.length - 1, size: tokens.length };
}

function tokenizerFiles(pad: "<|endoftext|>" | "!"): Record<string, string> {
  const v = tinyVocab();
  const special = {
    bos_token: "<|startoftext|>",
    eos_token: "<|endoftext|>",
    pad_token: pad,
    unk_token: "<|endoftext|>",
  };
  return {
    "vocab.json": json(v.vocab),
    "merges.txt": "#version: 0.2\n" + v.merges.map(([a, b]) => `${a} ${b}`).join("\n") + "\n",
    "special_tokens_map.json": json(special),
    "tokenizer_config.json": json({
      add_prefix_space: false,
      ...special,
      clean_up_tokenization_spaces: true,
      do_lower_case: true,
      errors: "replace",
      model_max_length: TINY_DIMS.maxLength,
      tokenizer_class: "CLIPTokenizer",
    }),
  };
}

// ---------------------------------------------------------------------------
// ONNX components.

export interface TextEncoderSpec {
  hidden: number;
  /** Adds `text_embeds` = pooled · W (CLIPTextModelWithProjection) instead of `pooler_output`. */
  projection?: number;
  /** Exports `hidden_states.0 … hidden_states.N`. */
  hiddenStates: boolean;
  inputIdsDtype: "int32" | "int64";
  seed: number;
}

/**
 * CLIP-like text encoder: token + position embeddings; N residual layers that
 * mix each position with the causal mean of positions ≤ it (CLIP's causal
 * attention, crudely) through a Tanh MLP; a final LayerNorm. As in CLIP, the
 * pooled output is `last_hidden_state` at the first position of the largest
 * token id (the EOS token), so it depends on the prompt but not on padding
 * after EOS; `text_embeds` projects it.
 */
export function buildTextEncoder(spec: TextEncoderSpec): Uint8Array {
  const { hidden: D } = spec;
  const L = TINY_DIMS.numHiddenLayers;
  const M = TINY_DIMS.maxLength;
  const g = new GraphBuilder(spec.projection ? "text_encoder_2" : "text_encoder", spec.seed);
  const V = tinyVocab().size;
  const ids = g.input("input_ids", spec.inputIdsDtype, ["batch_size", "sequence_length"]);
  const tokEmb = g.weight("embeddings.token_embedding.weight", [V, D], 1);
  const posEmb = g.weight("embeddings.position_embedding.weight", [M, D], 0.5);
  const idsShape = g.shape(ids);
  const seqLen = g.slice(idsShape, g.constInt64([1]), g.constInt64([2]), [0]);
  const zero = g.constInt64([0]);
  const pos = g.slice(posEmb, zero, seqLen, [0]);
  // 1 … S as [S, 1], to turn a CumSum over the sequence into a causal mean.
  const counts = g.slice(g.constFloat(Array.from({ length: M }, (_, i) => i + 1), [M, 1]), zero, seqLen, [0]);
  const hsName = (i: number): string | undefined => (spec.hiddenStates ? `hidden_states.${i}` : undefined);
  let h = g.add(g.gather(tokEmb, ids, 0), pos, hsName(0));
  const hs = [h];
  for (let l = 0; l < L; l++) {
    const causalMean = g.div(g.cumSum(h, 1), counts);
    const w = g.weight(`encoder.layers.${l}.mlp.weight`, [D, D], 1 / Math.sqrt(D));
    const b = g.weight(`encoder.layers.${l}.mlp.bias`, [D], 0.1);
    h = g.add(h, g.tanh(g.add(g.matMul(g.add(h, causalMean), w), b)), hsName(l + 1));
    hs.push(h);
  }
  const gamma = g.initializer("final_layer_norm.weight", "float32", [D], new Float32Array(D).fill(1));
  const beta = g.weight("final_layer_norm.bias", [D], 0.1);
  const last = g.layerNorm(h, gamma, beta, 1e-5, "last_hidden_state");
  // EOS pooling: ArgMax over the ids (first occurrence), then GatherElements along the sequence.
  const eosPos = g.node("ArgMax", [g.cast(ids, "float32")], { axis: 1, keepdims: 1 }); // [B, 1] int64
  const batch = g.slice(idsShape, zero, g.constInt64([1]), [0]);
  const index = g.node("Expand", [g.unsqueeze(eosPos, [2]), g.concat([batch, g.constInt64([1, D])], 0)]); // [B, 1, D]
  const pooledName = spec.projection ? undefined : "pooler_output";
  const pooled = g.reshape(g.node("GatherElements", [last, index], { axis: 1 }), [-1, D], pooledName);
  const outputs: [string, (string | number)[]][] = [];
  if (spec.projection) {
    const proj = g.weight("text_projection.weight", [D, spec.projection], 1 / Math.sqrt(D));
    g.matMul(pooled, proj, "text_embeds");
    outputs.push(["text_embeds", ["batch_size", spec.projection]]);
    outputs.push(["last_hidden_state", ["batch_size", "sequence_length", D]]);
  } else {
    outputs.push(["last_hidden_state", ["batch_size", "sequence_length", D]]);
    outputs.push(["pooler_output", ["batch_size", D]]);
  }
  if (spec.hiddenStates) hs.forEach((_, i) => outputs.push([`hidden_states.${i}`, ["batch_size", "sequence_length", D]]));
  for (const [name, dims] of outputs) g.output(name, "float32", dims);
  return g.encode({ docString: "graphserve tiny CLIP text encoder (random weights, tests only)" });
}

export interface UnetSpec {
  inChannels: number;
  crossAttentionDim: number;
  /** SDXL: `text_embeds` [B, textEmbedsDim] and `time_ids` [B, 6]. */
  textEmbedsDim?: number;
  /** LCM: `timestep_cond` [B, timeCondDim], the guidance-scale embedding. */
  timeCondDim?: number;
  timestepDtype: "float32" | "int64";
  seed: number;
}

/**
 * UNet: 3×3 Conv over `sample` (all channels) plus a per-channel bias from the
 * mean text embedding, a sinusoidal timestep embedding and (SDXL) text_embeds
 * and time_ids projections → `out_sample` [B, 4, h, w].
 */
export function buildUnet(spec: UnetSpec): Uint8Array {
  const C = TINY_DIMS.latentChannels;
  const g = new GraphBuilder("unet", spec.seed);
  const sample = g.input("sample", "float32", ["batch_size", "num_channels", "height", "width"]);
  // As real exports declare it: a float scalar (optimum ≥ 1.24, optimum-onnx), int64 ["steps"] before.
  const timestep = g.input("timestep", spec.timestepDtype, spec.timestepDtype === "float32" ? [] : ["steps"]);
  const ehs = g.input("encoder_hidden_states", "float32", ["batch_size", "sequence_length", spec.crossAttentionDim]);
  const xl = spec.textEmbedsDim !== undefined;
  const textEmbeds = xl ? g.input("text_embeds", "float32", ["batch_size", spec.textEmbedsDim!]) : undefined;
  const timeIds = xl ? g.input("time_ids", "float32", ["batch_size", TINY_DIMS.timeIds]) : undefined;

  const convW = g.weight("conv_in.weight", [C, spec.inChannels, 3, 3], 1 / Math.sqrt(spec.inChannels * 9));
  const convB = g.weight("conv_in.bias", [C], 0.05);
  const conv = g.conv(sample, convW, convB, { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });

  // Text: mean over the sequence, projected to C → [B, C].
  const ctx = g.matMul(g.reduceMean(ehs, [1], false), g.weight("context_proj.weight", [spec.crossAttentionDim, C], 1 / Math.sqrt(spec.crossAttentionDim)));
  // Timestep: sin(t/1000 · freq + phase) · amp → [steps, C] (broadcasts against [B, C] when steps is 1 or B).
  const t = spec.timestepDtype === "float32" ? timestep : g.cast(timestep, "float32");
  const tCol = g.reshape(g.mul(t, g.constFloat(1 / 1000)), [-1, 1]);
  const freq = g.weight("time_embedding.freq", [1, C], 3);
  const phase = g.weight("time_embedding.phase", [C], 1);
  const temb = g.mul(g.sin(g.add(g.mul(tCol, freq), phase)), g.weight("time_embedding.amp", [C], 0.5));
  let cond = g.add(ctx, temb);
  if (spec.timeCondDim !== undefined) {
    const tc = g.input("timestep_cond", "float32", ["batch_size", spec.timeCondDim]);
    cond = g.add(cond, g.matMul(tc, g.weight("time_embedding.cond_proj.weight", [spec.timeCondDim, C], 1 / Math.sqrt(spec.timeCondDim))));
  }
  if (textEmbeds && timeIds) {
    const te = g.matMul(textEmbeds, g.weight("add_embedding.text.weight", [spec.textEmbedsDim!, C], 1 / Math.sqrt(spec.textEmbedsDim!)));
    const ti = g.matMul(g.mul(timeIds, g.constFloat(1 / 1024)), g.weight("add_embedding.time.weight", [TINY_DIMS.timeIds, C], 0.5));
    cond = g.add(cond, g.add(te, ti));
  }
  g.add(conv, g.reshape(cond, [-1, C, 1, 1]), "out_sample");
  g.output("out_sample", "float32", ["batch_size", C, "height", "width"]);
  return g.encode({ docString: "graphserve tiny UNet (random weights, tests only)" });
}

/** VAE encoder: a stride-8 8×8 Conv, `sample` [B,3,H,W] → `latent_sample` [B,4,H/8,W/8] (or `latent_parameters` [B,8,H/8,W/8]). */
export function buildVaeEncoder(spec: { output: "latent_sample" | "latent_parameters"; seed: number }): Uint8Array {
  const C = TINY_DIMS.latentChannels;
  const f = TINY_DIMS.vaeScaleFactor;
  const outC = spec.output === "latent_parameters" ? 2 * C : C;
  const g = new GraphBuilder("vae_encoder", spec.seed);
  const x = g.input("sample", "float32", ["batch_size", "num_channels", "height", "width"]);
  const w = g.weight("encoder.conv.weight", [outC, 3, f, f], 1 / Math.sqrt(3 * f * f));
  const b = g.weight("encoder.conv.bias", [outC], 0.05);
  g.conv(x, w, b, { kernel_shape: [f, f], strides: [f, f] }, spec.output);
  g.output(spec.output, "float32", ["batch_size", "num_channels_latent", "height_latent", "width_latent"]);
  return g.encode({ docString: "graphserve tiny VAE encoder (random weights, tests only)" });
}

/**
 * VAE decoder: 3×3 Conv 4→3, nearest Resize ×8, Tanh: `latent_sample` [B,4,h,w] → `sample` [B,3,8h,8w] in (−1, 1).
 * Weights are scaled by `scalingFactor` so that unscaled latents (≈ N(0,1)/scaling_factor) do not saturate the Tanh.
 */
export function buildVaeDecoder(spec: { scalingFactor: number; seed: number }): Uint8Array {
  const C = TINY_DIMS.latentChannels;
  const f = TINY_DIMS.vaeScaleFactor;
  const g = new GraphBuilder("vae_decoder", spec.seed);
  const z = g.input("latent_sample", "float32", ["batch_size", "num_channels_latent", "height_latent", "width_latent"]);
  const w = g.weight("decoder.conv.weight", [3, C, 3, 3], spec.scalingFactor / Math.sqrt(C * 9));
  const b = g.weight("decoder.conv.bias", [3], 0.05);
  const up = g.resizeNearest(g.conv(z, w, b, { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), [1, 1, f, f]);
  g.tanh(up, "sample");
  g.output("sample", "float32", ["batch_size", "num_channels", "height", "width"]);
  return g.encode({ docString: "graphserve tiny VAE decoder (random weights, tests only)" });
}

// ---------------------------------------------------------------------------
// Configs.

function textEncoderConfig(kind: "clip" | "clip_projection", hidden: number, projection: number, vocab: TinyVocab): Record<string, unknown> {
  return {
    architectures: [kind === "clip" ? "CLIPTextModel" : "CLIPTextModelWithProjection"],
    attention_dropout: 0.0,
    bos_token_id: vocab.bosId,
    eos_token_id: vocab.eosId,
    hidden_act: "quick_gelu",
    hidden_size: hidden,
    initializer_factor: 1.0,
    initializer_range: 0.02,
    intermediate_size: hidden * 4,
    layer_norm_eps: 1e-5,
    max_position_embeddings: TINY_DIMS.maxLength,
    model_type: "clip_text_model",
    num_attention_heads: 4,
    num_hidden_layers: TINY_DIMS.numHiddenLayers,
    pad_token_id: 1,
    projection_dim: projection,
    torch_dtype: "float32",
    vocab_size: vocab.size,
  };
}

function schedulerConfig(kind: "pndm" | "euler" | "lcm"): Record<string, unknown> {
  const common = {
    beta_end: 0.012,
    beta_schedule: "scaled_linear",
    beta_start: 0.00085,
    clip_sample: false,
    num_train_timesteps: 1000,
    prediction_type: "epsilon",
    set_alpha_to_one: false,
    skip_prk_steps: true,
    steps_offset: 1,
    timestep_spacing: "leading",
    trained_betas: null,
  };
  if (kind === "lcm") {
    return { _class_name: "LCMScheduler", _diffusers_version: DIFFUSERS_VERSION, ...common, original_inference_steps: 50, timestep_scaling: 10.0 };
  }
  return kind === "pndm"
    ? { _class_name: "PNDMScheduler", _diffusers_version: DIFFUSERS_VERSION, ...common }
    : {
        _class_name: "EulerDiscreteScheduler",
        _diffusers_version: DIFFUSERS_VERSION,
        ...common,
        interpolation_type: "linear",
        sample_max_value: 1.0,
        use_karras_sigmas: false,
      };
}

function pipelineClass(family: TinyFamily, inpainting: boolean): string {
  if (family === "sd") return inpainting ? "StableDiffusionInpaintPipeline" : "StableDiffusionPipeline";
  return inpainting ? "StableDiffusionXLInpaintPipeline" : "StableDiffusionXLPipeline";
}

/** Every file of the folder, relative path → contents (text or ONNX bytes), in a fixed order. */
export function tinyModelFiles(opts: TinyModelOptions): Map<string, string | Uint8Array> {
  const family = opts.family;
  const xl = family === "sdxl";
  const inpainting = opts.inpainting ?? false;
  const seed = opts.seed ?? 0;
  const timestepDtype = opts.timestepDtype ?? "float32";
  const inputIdsDtype = opts.inputIdsDtype ?? "int32";
  const vaeOut = opts.vaeEncoderOutput ?? "latent_sample";
  const scheduler = opts.scheduler ?? (opts.lcm ? "lcm" : xl ? "euler" : "pndm");
  const vocab = tinyVocab();
  const C = TINY_DIMS.latentChannels;
  const inChannels = inpainting ? 2 * C + 1 : C;
  const crossDim = xl ? TINY_DIMS.te1Hidden + TINY_DIMS.te2Hidden : TINY_DIMS.te1Hidden;
  // Distinct, stable sub-seeds per component.
  const sub = (k: number): number => (Math.imul(seed >>> 0, 0x9e3779b1) + k * 0x85ebca6b) >>> 0;

  const files = new Map<string, string | Uint8Array>();
  const components: Record<string, unknown> = {
    feature_extractor: [null, null],
    requires_safety_checker: false,
    safety_checker: [null, null],
    scheduler: ["diffusers", scheduler === "pndm" ? "PNDMScheduler" : scheduler === "lcm" ? "LCMScheduler" : "EulerDiscreteScheduler"],
    text_encoder: ["transformers", "CLIPTextModel"],
    tokenizer: ["transformers", "CLIPTokenizer"],
    unet: ["diffusers", "UNet2DConditionModel"],
    vae: ["diffusers", "AutoencoderKL"],
  };
  if (xl) {
    delete components.safety_checker;
    delete components.requires_safety_checker;
    Object.assign(components, {
      force_zeros_for_empty_prompt: true,
      image_encoder: [null, null],
      text_encoder_2: ["transformers", "CLIPTextModelWithProjection"],
      tokenizer_2: ["transformers", "CLIPTokenizer"],
    });
    if (inpainting) components.requires_aesthetics_score = false;
  }
  files.set(
    "model_index.json",
    json({
      _class_name: pipelineClass(family, inpainting),
      _diffusers_version: DIFFUSERS_VERSION,
      ...Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))),
    }),
  );
  files.set("scheduler/scheduler_config.json", json(schedulerConfig(scheduler)));

  for (const [name, content] of Object.entries(tokenizerFiles("<|endoftext|>"))) files.set(`tokenizer/${name}`, content);
  files.set("text_encoder/config.json", json(textEncoderConfig("clip", TINY_DIMS.te1Hidden, TINY_DIMS.te1Hidden, vocab)));
  files.set(
    "text_encoder/model.onnx",
    buildTextEncoder({ hidden: TINY_DIMS.te1Hidden, hiddenStates: xl, inputIdsDtype, seed: sub(1) }),
  );
  if (xl) {
    for (const [name, content] of Object.entries(tokenizerFiles("!"))) files.set(`tokenizer_2/${name}`, content);
    files.set("text_encoder_2/config.json", json(textEncoderConfig("clip_projection", TINY_DIMS.te2Hidden, TINY_DIMS.te2Projection, vocab)));
    files.set(
      "text_encoder_2/model.onnx",
      buildTextEncoder({ hidden: TINY_DIMS.te2Hidden, projection: TINY_DIMS.te2Projection, hiddenStates: true, inputIdsDtype, seed: sub(2) }),
    );
  }

  const unetConfig: Record<string, unknown> = {
    _class_name: "UNet2DConditionModel",
    _diffusers_version: DIFFUSERS_VERSION,
    act_fn: "silu",
    addition_embed_type: xl ? "text_time" : null,
    addition_time_embed_dim: xl ? TINY_DIMS.additionTimeEmbedDim : null,
    attention_head_dim: 8,
    // One block, no downsampling: the tiny UNet is a single convolution (so any multiple of the VAE's 8 fits).
    block_out_channels: [32],
    center_input_sample: false,
    cross_attention_dim: crossDim,
    down_block_types: ["CrossAttnDownBlock2D"],
    flip_sin_to_cos: true,
    freq_shift: 0,
    in_channels: inChannels,
    layers_per_block: 1,
    mid_block_type: "UNetMidBlock2DCrossAttn",
    norm_eps: 1e-5,
    norm_num_groups: 32,
    out_channels: C,
    projection_class_embeddings_input_dim: xl ? TINY_DIMS.additionTimeEmbedDim * TINY_DIMS.timeIds + TINY_DIMS.te2Projection : null,
    sample_size: TINY_DIMS.sampleSize,
    time_cond_proj_dim: opts.lcm ? TINY_DIMS.timeCondProjDim : null,
    up_block_types: ["CrossAttnUpBlock2D"],
    use_linear_projection: xl,
  };
  files.set("unet/config.json", json(unetConfig));
  files.set(
    "unet/model.onnx",
    buildUnet({
      inChannels,
      crossAttentionDim: crossDim,
      textEmbedsDim: xl ? TINY_DIMS.te2Projection : undefined,
      ...(opts.lcm ? { timeCondDim: TINY_DIMS.timeCondProjDim } : {}),
      timestepDtype,
      seed: sub(3),
    }),
  );

  const vaeConfig = {
    _class_name: "AutoencoderKL",
    _diffusers_version: DIFFUSERS_VERSION,
    act_fn: "silu",
    block_out_channels: [8, 8, 8, 8],
    down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
    force_upcast: xl,
    in_channels: 3,
    latent_channels: C,
    layers_per_block: 1,
    norm_num_groups: 8,
    out_channels: 3,
    sample_size: TINY_DIMS.sampleSize * TINY_DIMS.vaeScaleFactor,
    scaling_factor: VAE_SCALING_FACTOR[family],
    shift_factor: null,
    up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
  };
  files.set("vae_encoder/config.json", json(vaeConfig));
  files.set("vae_encoder/model.onnx", buildVaeEncoder({ output: vaeOut, seed: sub(4) }));
  files.set("vae_decoder/config.json", json(vaeConfig));
  files.set("vae_decoder/model.onnx", buildVaeDecoder({ scalingFactor: VAE_SCALING_FACTOR[family], seed: sub(5) }));
  return files;
}

/** Writes the tiny model folder (creating directories); overwrites existing files. */
export async function makeTinyModel(outDir: string, opts: TinyModelOptions): Promise<void> {
  for (const [rel, content] of tinyModelFiles(opts)) {
    const path = join(outDir, rel);
    await mkdir(join(path, ".."), { recursive: true });
    await writeFile(path, content);
  }
}

